#!/usr/bin/env bash
# Lake benchmarks, each side by side with DuckDB in the same run (see docs/benchmarks.md).
#
#   bench/lake.sh [--rows N] [--files N] [--only profile|metadata] [--data DIR]
#
# --data DIR keeps the generated datasets in DIR and reuses them on the next run (they take a
# minute or two to write); without it they live in the temp dir removed on exit.
#
# 1. profile: a Parquet dataset of N rows (default 10,000,000) x 20 columns (8 bigint, 6 double,
#    4 text, 2 timestamps; 8 files written by DuckDB). `telltale measure` with a check asking for
#    the warehouse metric set on every column (numeric: null_rate distinct_count min max mean
#    stddev p50 p95; text: null_rate distinct_count min_length max_length; timestamps: null_rate
#    min max) = one DataFusion query. Peer: DuckDB `SUMMARIZE` on the same files (2 threads).
# 2. metadata: a table of N files (default 10,000; 100 rows each, 100 `day=` partitions).
#    `telltale measure` with volume + freshness from metadata only (listing + Parquet footers), cold
#    (a new process, nothing cached). Peer: a full scan `SELECT count(*), max(ts)` in DuckDB.
# Wall time and peak RSS come from /usr/bin/time -v. Needs scripts/tools/lake.sh (DuckDB) and the
# release binary (built when missing). Temp files are removed on exit (BENCH_KEEP_TMP=1 keeps them).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

ROWS=10000000
FILES=10000
ONLY=""
DATA=""
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) ROWS="$2"; shift 2 ;;
        --files) FILES="$2"; shift 2 ;;
        --only) ONLY="$2"; shift 2 ;;
        --data) DATA="$2"; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) die "unknown argument $1 (expected --rows N, --files N, --only profile|metadata, --data DIR)" ;;
    esac
done

TOOLS="${TELLTALE_TOOLS_DIR:-/tmp/telltale-tools}"
[ -f "$TOOLS/env.d/lake.env" ] || bash "$ROOT/scripts/tools/lake.sh"
# shellcheck source=/dev/null
. "$TOOLS/env.d/lake.env"
PY="${TELLTALE_LAKE_PYTHON:?run scripts/tools/lake.sh first}"
[ -x /usr/bin/time ] || die "/usr/bin/time missing: apt-get install -y time"
if [ ! -x "$BIN" ]; then
    log "building the release binary (cargo build --release; several minutes on 2 cores)"
    (cd "$ROOT" && cargo build --release --locked) >&2
fi
TMP="$(mktemp -d "${TMPDIR:-/tmp}/telltale-lake-bench.XXXXXX")"
cleanup() { [ "${BENCH_KEEP_TMP:-0}" = "1" ] || rm -rf "$TMP"; }
trap cleanup EXIT
if [ -n "$DATA" ]; then
    mkdir -p "$DATA"
    DATA="$(cd "$DATA" && pwd)"
else
    DATA="$TMP/data"
fi
WIDE="$DATA/wide-$ROWS"
MANY="$DATA/many-$FILES"

row() { printf '%-58s %10s %12s %6s\n' "$@"; }

if [ -z "$ONLY" ] || [ "$ONLY" = "profile" ]; then
    if [ ! -f "$WIDE/.complete" ]; then
    log "profile: writing $ROWS rows x 20 columns of Parquet with DuckDB"
    rm -rf "$WIDE" && mkdir -p "$WIDE/lake/wide"
    "$PY" - "$WIDE/lake/wide" "$ROWS" <<'EOF'
import sys, duckdb
out, rows = sys.argv[1], int(sys.argv[2])
con = duckdb.connect()
con.execute("SET threads = 2")
con.execute(f"""
COPY (
  SELECT
    i AS id, i % 1000 AS i1, (i * 7) % 100000 AS i2, CASE WHEN i % 20 = 0 THEN NULL ELSE i % 37 END AS i3,
    i // 10 AS i4, (i * 13) % 5000 AS i5, i % 2 AS i6, (i * 31) % 1000000 AS i7,
    i / 3.0 AS d1, (i % 1000) / 7.0 AS d2, CASE WHEN i % 10 = 0 THEN NULL ELSE sqrt(i) END AS d3,
    ((i * 17) % 10007) * 0.5 AS d4, (i % 97) * 1.25 AS d5, ln(i + 1) AS d6,
    'status_' || (i % 5) AS s1, 'customer_' || (i % 50000) AS s2,
    CASE WHEN i % 7 = 0 THEN NULL ELSE 'note number ' || (i % 1234) END AS s3, md5(CAST(i % 200000 AS VARCHAR)) AS s4,
    TIMESTAMP '2024-01-01' + to_seconds(i) AS t1, TIMESTAMP '2024-06-01' + to_seconds(i % 86400) AS t2
  FROM range({rows}) r(i)
) TO '{out}' (FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 1000000, PER_THREAD_OUTPUT false, FILE_SIZE_BYTES '64MB')
""")
EOF
    touch "$WIDE/.complete"
    fi
    cat >"$TMP/telltale.yaml" <<EOF
version: 1
store: sqlite://$TMP/state/t.db
sources:
  bench:
    kind: files
    url: $WIDE/lake
    statement_timeout: 30m
    memory_limit: 2GiB
checks: [$TMP/checks]
EOF
    mkdir -p "$TMP/checks"
    {
        echo "version: 1"
        echo "assets:"
        echo "  - source: bench"
        echo "    table: wide"
        echo "    monitors:"
        echo "      columns:"
        for c in id i1 i2 i3 i4 i5 i6 i7 d1 d2 d3 d4 d5 d6; do
            echo "        $c: [null_rate, distinct_count, min, max, mean, stddev, p50, p95]"
        done
        for c in s1 s2 s3 s4; do echo "        $c: [null_rate, distinct_count, min_length, max_length]"; done
        for c in t1 t2; do echo "        $c: [null_rate, min, max]"; done
    } >"$TMP/checks/wide.yaml"
    log "profile: telltale measure (one DataFusion query)"
    measure telltale-profile -- "$BIN" measure bench.main.wide --config "$TMP/telltale.yaml" --format json
    T_WALL="$WALL_S" T_RSS="$RSS_MB" T_RC="$RC"
    [ "$T_RC" -eq 0 ] || { tail -n 20 "$TMP/telltale-profile.err" >&2; }
    T_VALUES="$("$PY" -c 'import json,sys; o=json.load(open(sys.argv[1])); print(sum(1 for x in (o if isinstance(o,list) else o.get("outcomes",[])) if x.get("monitor")=="column" and x.get("value") is not None))' "$TMP/telltale-profile.out" 2>/dev/null || echo "?")"
    log "profile: DuckDB SUMMARIZE (2 threads)"
    cat >"$TMP/summarize.py" <<EOF
import duckdb
con = duckdb.connect()
con.execute("SET threads = 2")
rows = con.execute("SUMMARIZE SELECT * FROM read_parquet('$WIDE/lake/wide/*.parquet')").fetchall()
assert len(rows) == 20, rows
EOF
    measure duckdb-summarize -- "$PY" "$TMP/summarize.py"
    D_WALL="$WALL_S" D_RSS="$RSS_MB" D_RC="$RC"
    echo
    echo "Profile of $ROWS rows x 20 columns of Parquet ($(du -sh "$WIDE/lake/wide" | cut -f1), $(find "$WIDE/lake/wide" -name '*.parquet' | wc -l) files; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
    row "" "wall (s)" "peak RSS MB" "exit"
    row "telltale measure (one DataFusion query, $T_VALUES values)" "$T_WALL" "$T_RSS" "$T_RC"
    row "DuckDB SUMMARIZE (2 threads)" "$D_WALL" "$D_RSS" "$D_RC"
    echo "telltale / DuckDB wall: $(ratio "$T_WALL" "$D_WALL")x (target <= 1.5x), memory: $(ratio "$T_RSS" "$D_RSS")x"
    rm -rf "$TMP/state" "$TMP/checks"
fi

if [ -z "$ONLY" ] || [ "$ONLY" = "metadata" ]; then
    if [ ! -f "$MANY/.complete" ]; then
    log "metadata: writing $FILES Parquet files (100 rows each, 100 day= partitions)"
    rm -rf "$MANY" && mkdir -p "$MANY/lake/many"
    "$PY" - "$MANY/lake/many" "$FILES" <<'EOF'
import sys, os, datetime, pyarrow as pa, pyarrow.parquet as pq
out, files = sys.argv[1], int(sys.argv[2])
for f in range(files):
    day = datetime.date(2024, 1, 1) + datetime.timedelta(days=f % 100)
    d = f"{out}/day={day}"
    os.makedirs(d, exist_ok=True)
    base = f * 100
    pq.write_table(pa.table({
        "id": pa.array(range(base, base + 100), pa.int64()),
        "ts": pa.array([datetime.datetime(2024, 1, 1) + datetime.timedelta(seconds=base + i) for i in range(100)], pa.timestamp("us")),
    }), f"{d}/part-{f}.parquet")
EOF
    touch "$MANY/.complete"
    fi
    cat >"$TMP/telltale.yaml" <<EOF
version: 1
store: sqlite://$TMP/state2/t.db
sources:
  bench:
    kind: files
    url: $MANY/lake
checks: [$TMP/checks2]
EOF
    mkdir -p "$TMP/checks2"
    printf 'version: 1\nassets:\n  - source: bench\n    table: many\n    monitors:\n      volume: {}\n      freshness: {}\n' \
        >"$TMP/checks2/many.yaml"
    log "metadata: telltale measure (listing + $FILES footers, cold)"
    measure telltale-metadata -- "$BIN" measure bench.main.many --config "$TMP/telltale.yaml" --format json
    M_WALL="$WALL_S" M_RSS="$RSS_MB" M_RC="$RC"
    [ "$M_RC" -eq 0 ] || { tail -n 20 "$TMP/telltale-metadata.err" >&2; }
    M_ROWS="$("$PY" -c 'import json,sys; o=json.load(open(sys.argv[1])); print([x.get("value") for x in (o if isinstance(o,list) else o.get("outcomes",[])) if x.get("monitor")=="volume"][0])' "$TMP/telltale-metadata.out" 2>/dev/null || echo "?")"
    cat >"$TMP/count.py" <<EOF
import duckdb
con = duckdb.connect()
con.execute("SET threads = 2")
print(con.execute("SELECT count(*), max(ts) FROM read_parquet('$MANY/lake/many/*/*.parquet')").fetchall())
EOF
    log "metadata: DuckDB full scan count(*), max(ts)"
    measure duckdb-count -- "$PY" "$TMP/count.py"
    C_WALL="$WALL_S" C_RSS="$RSS_MB" C_RC="$RC"
    echo
    echo "Volume + freshness of one table of $FILES Parquet files"
    row "" "wall (s)" "peak RSS MB" "exit"
    row "telltale measure, metadata only (rows: $M_ROWS)" "$M_WALL" "$M_RSS" "$M_RC"
    row "DuckDB SELECT count(*), max(ts) (full scan, 2 threads)" "$C_WALL" "$C_RSS" "$C_RC"
    echo "target: telltale <= 2 s; DuckDB answered: $(cat "$TMP/duckdb-count.out")"
fi
