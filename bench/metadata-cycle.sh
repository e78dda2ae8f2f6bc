#!/usr/bin/env bash
# Foundation benchmark 1: one metadata cycle (freshness, volume, schema) over N tables.
#
#   bench/metadata-cycle.sh [--tables N]        # default 10000
#
# Creates N small tables bench.t00001… (id, ts timestamptz, v int; 1-7 rows each) in a database of
# its own, ANALYZEs them, then measures `telltale check` (one postgres source with
# `include: ["bench.*"]`, no check files, a SQLite store in a temp dir) twice: cold store and steady
# state. Peer, same run: the per-table approach, one `SELECT count(*), max(ts)` per table,
# sequentially on one connection (`psql -f`). Also times telltale's catalog query alone (psql).
# Drops the database and removes its temp dir on exit.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

TABLES=10000
while [ $# -gt 0 ]; do
    case "$1" in
        --tables) TABLES="$2"; shift 2 ;;
        --tables=*) TABLES="${1#*=}"; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) die "unknown argument $1 (expected --tables N)" ;;
    esac
done
[[ "$TABLES" =~ ^[1-9][0-9]*$ ]] || die "--tables expects a positive integer"

bench_setup
DB="telltale_bench_meta_$$"
WIDTH=$(( ${#TABLES} > 5 ? ${#TABLES} : 5 ))
BATCH=1000   # tables per transaction (each CREATE TABLE holds a lock until commit)

log "metadata: creating $TABLES tables in database $DB"
bench_db_create "$DB"
t0="$(date +%s)"
sql "$DB" -c "CREATE SCHEMA bench" >/dev/null
for ((start = 1; start <= TABLES; start += BATCH)); do
    end=$(( start + BATCH - 1 > TABLES ? TABLES : start + BATCH - 1 ))
    sql "$DB" >/dev/null <<EOF
DO \$\$
DECLARE t text;
BEGIN
  FOR i IN $start..$end LOOP
    t := format('bench.%I', 't' || lpad(i::text, $WIDTH, '0'));
    EXECUTE format('CREATE TABLE %s (id int NOT NULL, ts timestamptz NOT NULL, v int)', t);
    EXECUTE format('INSERT INTO %s SELECT g, now() - g * interval ''1 minute'', g * %s FROM generate_series(1, %s) g',
                   t, i, 1 + i % 7);
  END LOOP;
END \$\$;
EOF
done
sql "$DB" -c "ANALYZE" >/dev/null
log "metadata: $TABLES tables created and analyzed in $(( $(date +%s) - t0 ))s"

# --- telltale config: auto-discovery only, SQLite store in the temp dir ---
mkdir -p "$TMP/checks" "$TMP/store"
export BENCH_SOURCE_URL
BENCH_SOURCE_URL="$(db_url "$DB")"
cat >"$TMP/telltale.yaml" <<EOF
version: 1
data_dir: store
store: sqlite://store/telltale.db
sources:
  bench:
    kind: postgres
    url: \${BENCH_SOURCE_URL}
    include: ["bench.*"]
server:
  enabled: false
checks: [checks/]
EOF

# --- catalog query alone, as telltale sends it ---
python3 "$ROOT/bench/foundation.py" catalog-sql "$ROOT/src/source/postgres.rs" >"$TMP/catalog.sql"
measure catalog -- psql "$BENCH_SOURCE_URL" -X -q -A -t -v ON_ERROR_STOP=1 -f "$TMP/catalog.sql"
[ "$RC" -eq 0 ] || { cat "$TMP/catalog.err" >&2; die "the catalog query failed"; }
CATALOG_S="$WALL_S"
CATALOG_ROWS="$(wc -l <"$TMP/catalog.out")"

# --- telltale: cold store, then steady state ---
declare -A T_WALL T_RSS T_RC T_COUNTS
for cycle in cold steady; do
    log "metadata: telltale check ($cycle store)"
    measure "telltale-$cycle" -- "$BIN" check --config "$TMP/telltale.yaml"
    T_WALL[$cycle]="$WALL_S"; T_RSS[$cycle]="$RSS_MB"; T_RC[$cycle]="$RC"
    if [ "$RC" -ne 0 ]; then
        log "telltale check exited $RC; last lines of its stderr:"
        tail -n 20 "$TMP/telltale-$cycle.err" >&2
    fi
    T_COUNTS[$cycle]="$(python3 "$ROOT/bench/foundation.py" store-counts "$TMP/store/telltale.db")"
done

# --- where the time goes: one more steady cycle with sqlx's per-statement timings ---
log "metadata: telltale check (steady store, --log sqlx=trace, for the breakdown)"
measure telltale-debug -- "$BIN" check --config "$TMP/telltale.yaml" --log "telltale=info,sqlx=trace"
DEBUG_WALL="$WALL_S"
BREAKDOWN="$(python3 "$ROOT/bench/foundation.py" sqlx-breakdown "$TMP/telltale-debug.err")"

# --- peer: one query per table, sequentially on one connection ---
python3 "$ROOT/bench/foundation.py" peer-metadata-sql "$TABLES" "$WIDTH" "$TMP/peer.sql"
log "metadata: peer, $TABLES x SELECT count(*), max(ts) on one connection"
measure peer -- psql "$BENCH_SOURCE_URL" -X -q -A -t -v ON_ERROR_STOP=1 -o /dev/null -f "$TMP/peer.sql"
[ "$RC" -eq 0 ] || { cat "$TMP/peer.err" >&2; die "the peer's queries failed"; }
PEER_WALL="$WALL_S"; PEER_RSS="$RSS_MB"

count() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
assets="$(count "${T_COUNTS[steady]}" assets_with_row_count)"
verdict() { awk -v w="$1" -v r="$2" 'BEGIN { print ((w <= 2 && r <= 150) ? "meets" : "MISSES") " target (<= 2 s, <= 150 MB)" }'; }

{
    echo
    echo "== Metadata cycle on $TABLES PostgreSQL tables ($(date -u +%Y-%m-%dT%H:%MZ)) =="
    printf '%-46s %10s %12s %8s\n' "run" "wall (s)" "peak RSS MB" "exit"
    printf '%-46s %10s %12s %8s\n' "telltale check, cycle 1 (cold store)" "${T_WALL[cold]}" "${T_RSS[cold]}" "${T_RC[cold]}"
    printf '%-46s %10s %12s %8s\n' "telltale check, cycle 2 (steady state)" "${T_WALL[steady]}" "${T_RSS[steady]}" "${T_RC[steady]}"
    printf '%-46s %10s %12s %8s\n' "peer: $TABLES x count(*), max(ts) via psql -f" "$PEER_WALL" "$PEER_RSS (psql)" 0
    printf '%-46s %10s %12s %8s\n' "telltale's catalog query alone (psql)" "$CATALOG_S" "-" "$CATALOG_ROWS rows"
    echo "peer / telltale wall (above 1: telltale faster): cycle 1 $(ratio "$PEER_WALL" "${T_WALL[cold]}")x," \
        "cycle 2 $(ratio "$PEER_WALL" "${T_WALL[steady]}")x"
    echo "cycle 1 $(verdict "${T_WALL[cold]}" "${T_RSS[cold]}"); cycle 2 $(verdict "${T_WALL[steady]}" "${T_RSS[steady]}")"
    echo "store after cycle 1: $(count "${T_COUNTS[cold]}" assets_with_row_count) assets with row_count," \
        "$(count "${T_COUNTS[cold]}" measurements_last_cycle) measurements"
    echo "store after cycle 2: $(count "${T_COUNTS[steady]}" assets_with_row_count) assets with row_count," \
        "$(count "${T_COUNTS[steady]}" assets_with_freshness_lag) with freshness_lag," \
        "$(count "${T_COUNTS[steady]}" measurements_last_cycle) measurements in the cycle," \
        "$(count "${T_COUNTS[steady]}" errors) errors"
    if [ "$assets" -eq "$TABLES" ]; then
        echo "store check: OK, all $TABLES assets measured"
    else
        echo "store check: FAILED, $assets of $TABLES assets have a row_count"
    fi
    echo "where a steady cycle's time goes (cycle 3 with --log sqlx=trace, ${DEBUG_WALL} s wall; time sqlx logged per statement):"
    echo "$BREAKDOWN"
} | report

[ "${T_RC[cold]}" -eq 0 ] && [ "${T_RC[steady]}" -eq 0 ] && [ "$assets" -eq "$TABLES" ]
