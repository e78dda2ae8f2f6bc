#!/usr/bin/env bash
# Foundation benchmark 2: profile of one wide table, every column metric at once.
#
#   bench/profile.sh [--rows N]                 # default 10000000
#
# Creates prof.wide (10 columns: 5 numeric, 3 text, 2 timestamps; generate_series, then VACUUM
# ANALYZE) in a database of its own and a check file asking for every column metric PostgreSQL
# supports (numeric: null_rate distinct_count min max mean stddev p50 p95; text: null_rate
# distinct_count max_length; timestamps: min max). Times `telltale measure bench.prof.wide
# --format json` (one aggregate query). Peer, same run: the same metrics as separate queries, one
# `SELECT <metric> FROM prof.wide` per metric and column (`psql -f`), whose values are also
# compared with telltale's. Drops the database and removes its temp dir on exit.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

ROWS=10000000
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) ROWS="$2"; shift 2 ;;
        --rows=*) ROWS="${1#*=}"; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) die "unknown argument $1 (expected --rows N)" ;;
    esac
done
[[ "$ROWS" =~ ^[1-9][0-9]*$ ]] || die "--rows expects a positive integer"

bench_setup
DB="telltale_bench_profile_$$"

log "profile: creating prof.wide with $ROWS rows in database $DB"
bench_db_create "$DB"
t0="$(date +%s)"
sql "$DB" >/dev/null <<EOF
CREATE SCHEMA prof;
CREATE TABLE prof.wide (
  id         bigint NOT NULL,
  qty        integer,
  price      numeric(12,2),
  score      double precision,
  ratio      real,
  category   text,
  email      text,
  note       text,
  created_at timestamptz NOT NULL,
  updated_at timestamp
);
SELECT setseed(0.42);
INSERT INTO prof.wide
SELECT g,
       CASE WHEN g % 100 = 0 THEN NULL ELSE (random() * 1000)::int END,
       round((random() * 10000)::numeric, 2),
       sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) * 15 + 100,
       random()::real,
       CASE WHEN g % 50 = 0 THEN NULL ELSE 'category_' || (g % 40) END,
       'user' || g || '@example.com',
       CASE WHEN g % 10 = 0 THEN NULL ELSE repeat('x', (g % 97)::int) END,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '3 seconds',
       CASE WHEN g % 20 = 0 THEN NULL ELSE timestamp '2024-01-01' + (g % 86400) * interval '1 minute' END
  FROM generate_series(1, $ROWS) g;
VACUUM ANALYZE prof.wide;
EOF
SIZE="$(sql "$DB" -A -t -c "SELECT pg_size_pretty(pg_table_size('prof.wide'))")"
log "profile: $ROWS rows ($SIZE) created and vacuumed in $(( $(date +%s) - t0 ))s"

# --- telltale config and check file; the peer's SQL from the same column list ---
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
    include: ["prof.*"]
    # 10M rows with 8 count(DISTINCT) and 10 percentiles take longer than the default 30 s.
    statement_timeout: 30m
server:
  enabled: false
checks: [checks/]
EOF
METRICS="$(python3 "$ROOT/bench/foundation.py" profile-files "$TMP")"

# Warm the cache the same way for both sides: one full scan first.
sql "$DB" -A -t -c "SELECT count(*) FROM prof.wide" >/dev/null

log "profile: telltale measure ($METRICS metrics in one query)"
measure telltale -- "$BIN" measure bench.prof.wide --config "$TMP/telltale.yaml" --format json
T_WALL="$WALL_S"; T_RSS="$RSS_MB"; T_RC="$RC"
if [ "$T_RC" -ne 0 ]; then
    log "telltale measure exited $T_RC; last lines of its stderr:"
    tail -n 20 "$TMP/telltale.err" >&2
fi

log "profile: peer ($METRICS separate queries via psql -f)"
measure peer -- psql "$BENCH_SOURCE_URL" -X -q -A -t -v ON_ERROR_STOP=1 -f "$TMP/peer-profile.sql"
[ "$RC" -eq 0 ] || { cat "$TMP/peer.err" >&2; die "the peer's queries failed"; }
P_WALL="$WALL_S"

CMP="$(python3 "$ROOT/bench/foundation.py" profile-compare "$TMP/telltale.out" "$TMP/peer.out" \
    "$TMP/peer-profile.order" 2>&1)" || CMP='{"metrics": 0, "telltale_values": 0, "errors": ["cannot read telltale output"], "mismatches": []}'
field() { python3 -c 'import json,sys; v=json.loads(sys.argv[1])[sys.argv[2]]; print(len(v) if isinstance(v, list) else v)' "$CMP" "$1"; }
rps() { awk -v n="$ROWS" -v s="$1" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "n/a" }'; }

{
    echo
    echo "== Profile of prof.wide: $ROWS rows x 10 columns ($SIZE), $METRICS metrics ($(date -u +%Y-%m-%dT%H:%MZ)) =="
    printf '%-50s %10s %14s %12s %6s\n' "run" "wall (s)" "rows/s" "peak RSS MB" "exit"
    printf '%-50s %10s %14s %12s %6s\n' "telltale measure (1 aggregate query)" "$T_WALL" "$(rps "$T_WALL")" "$T_RSS" "$T_RC"
    printf '%-50s %10s %14s %12s %6s\n' "peer: $METRICS single-metric queries via psql -f" "$P_WALL" "$(rps "$P_WALL")" "-" 0
    echo "peer / telltale wall (above 1: telltale faster): $(ratio "$P_WALL" "$T_WALL")x"
    echo "telltale values: $(field telltale_values) of $METRICS; errors: $(field errors); differences from the peer's values: $(field mismatches)"
} | report
python3 -c '
import json, sys
d = json.loads(sys.argv[1])
for line in d["errors"] + d["mismatches"]:
    print("  " + line)' "$CMP" | report

[ "$T_RC" -eq 0 ] && [ "$(field telltale_values)" -eq "$METRICS" ] && [ "$(field mismatches)" -eq 0 ]
