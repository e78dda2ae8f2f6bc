#!/usr/bin/env bash
# CI-gate benchmark: `telltale check` on N checked tables of PostgreSQL, and startup to first query.
#
#   bench/check-gate.sh [--checks N] [--rows N]      # defaults: 500 checked tables, 20000 rows each
#
# Creates N tables gate.t001… (id, ts timestamptz, amount numeric, status text; ROWS rows each) in a
# database of its own and one check file per 50 tables, every table with a freshness rule
# (timestamp column, max_age), a volume rule (row_count min), a not-null rule on `amount` and an
# accepted-values rule on `status`: the checks a CI gate runs. Then, side by side in one run:
#   1. telltale check, cold SQLite store (a fresh CI machine), default max_connections;
#   2. the same, with max_connections: 1 (what the parallelism buys);
#   3. peer: the same questions as one hand-written query per table (count, max(ts), null count of
#      amount, count of unexpected statuses), sent sequentially by psql on one connection — the
#      shell-script gate many teams start with.
# Startup to first query: `strace -f -ttt` on `telltale check --select <one table>` records the
# process start (execve) and the first PostgreSQL protocol query message ('P' Parse or 'Q' Query)
# written to the warehouse socket; the difference is reported (median of 5 runs). strace slows
# syscalls a little, so the figure is an upper bound.
# Drops the database and removes its temp dir on exit. Targets (issue #8): N=500 in <= 10 s;
# startup to first query <= 200 ms. Method and published figures: docs/benchmarks.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

CHECKS=500
ROWS=20000
while [ $# -gt 0 ]; do
    case "$1" in
        --checks) CHECKS="$2"; shift 2 ;;
        --checks=*) CHECKS="${1#*=}"; shift ;;
        --rows) ROWS="$2"; shift 2 ;;
        --rows=*) ROWS="${1#*=}"; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
[[ "$CHECKS" =~ ^[1-9][0-9]*$ ]] || die "--checks expects a positive integer"
[[ "$ROWS" =~ ^[1-9][0-9]*$ ]] || die "--rows expects a positive integer"
command -v strace >/dev/null 2>&1 || die "strace not found (apt-get install -y strace)"

bench_setup
DB="telltale_bench_gate_$$"
log "gate: creating $CHECKS tables of $ROWS rows in database $DB"
bench_db_create "$DB"
t0="$(date +%s)"
sql "$DB" >/dev/null <<EOF
CREATE SCHEMA gate;
DO \$\$
BEGIN
  FOR i IN 1..$CHECKS LOOP
    EXECUTE format('CREATE TABLE gate.%I (id bigint NOT NULL, ts timestamptz NOT NULL, amount numeric, status text)',
                   't' || lpad(i::text, 4, '0'));
    EXECUTE format('INSERT INTO gate.%I SELECT g, now() - (g %% 600) * interval ''1 second'', g * 1.5,
                    (ARRAY[''paid'',''shipped'',''refunded''])[1 + g %% 3] FROM generate_series(1, $ROWS) g',
                   't' || lpad(i::text, 4, '0'));
  END LOOP;
END \$\$;
ANALYZE;
EOF
log "gate: tables created and analyzed in $(( $(date +%s) - t0 ))s"

export BENCH_SOURCE_URL
BENCH_SOURCE_URL="$(db_url "$DB")"
mkdir -p "$TMP/checks"
for ((i = 1; i <= CHECKS; i++)); do
    file="$TMP/checks/gate-$(( (i - 1) / 50 )).yaml"
    [ -e "$file" ] || printf 'version: 1\nassets:\n' >"$file"
    printf '  - source: wh\n    table: gate.t%04d\n    monitors:\n      freshness: {timestamp_column: ts, max_age: 1h}\n      volume: {row_count: {min: 1}}\n      columns:\n        amount: {null_rate: {max: 0}}\n        status: {accepted_values: [paid, shipped, refunded]}\n' "$i" >>"$file"
done
config() {
    cat >"$TMP/$1.yaml" <<EOF
version: 1
store: sqlite://store-$1/telltale.db
sources:
  wh:
    kind: postgres
    url: \${BENCH_SOURCE_URL}
$2
server:
  enabled: false
checks: [checks/]
EOF
}
config parallel ""
config serial "    max_connections: 1"

# Validate once (and fail early on a check-file mistake).
"$BIN" validate --config "$TMP/parallel.yaml" >/dev/null

log "gate: telltale check, $CHECKS tables (default max_connections)"
measure parallel -- "$BIN" check --config "$TMP/parallel.yaml" --format json
P_WALL="$WALL_S"; P_RSS="$RSS_MB"; P_RC="$RC"
log "gate: telltale check, $CHECKS tables (max_connections: 1)"
measure serial -- "$BIN" check --config "$TMP/serial.yaml" --format json
S_WALL="$WALL_S"; S_RSS="$RSS_MB"; S_RC="$RC"

summary() {
    python3 - "$1" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
c = doc["summary"]
assets = {o["asset"] for o in doc["outcomes"]}
print(f'{len(assets)} tables, {c["total"]} results: {c["passed"]} passed, {c["failed"]} failed, {c["errors"]} errors')
PY
}
P_SUMMARY="$(summary "$TMP/parallel.out")"
S_SUMMARY="$(summary "$TMP/serial.out")"

# --- peer: one query per table, sequentially on one connection ---
for ((i = 1; i <= CHECKS; i++)); do
    printf "SELECT count(*), max(ts) < now() - interval '1 hour', count(*) - count(amount), count(*) FILTER (WHERE status NOT IN ('paid','shipped','refunded')) FROM gate.t%04d;\n" "$i"
done >"$TMP/peer.sql"
log "gate: peer, $CHECKS hand-written queries via psql on one connection"
measure peer -- psql "$BENCH_SOURCE_URL" -X -q -A -t -v ON_ERROR_STOP=1 -o /dev/null -f "$TMP/peer.sql"
[ "$RC" -eq 0 ] || { cat "$TMP/peer.err" >&2; die "the peer's queries failed"; }
PEER_WALL="$WALL_S"

# --- startup to first query ---
PORT="$(python3 -c 'import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).port or 5432)' "$BENCH_SOURCE_URL")"
startups=()
for run in 1 2 3 4 5; do
    strace -f -ttt -qq -e trace=execve,sendto,write -yy -xx -s 1 -o "$TMP/strace.$run" \
        "$BIN" check --config "$TMP/parallel.yaml" --select wh.gate.t0001 >/dev/null 2>&1 || true
    ms="$(python3 - "$TMP/strace.$run" "$PORT" <<'PY'
import re, sys
start = first = None
for line in open(sys.argv[1]):
    parts = line.split(None, 2)
    if len(parts) < 3:
        continue
    ts, call = float(parts[1]), parts[2]
    if start is None and call.startswith("execve("):
        start = ts
    # A write to the warehouse socket whose first byte is 'P' (Parse) or 'Q' (simple Query).
    m = re.match(r'(?:sendto|write)\(\d+<TCP(?:v6)?:\[[^\]]*->[^\]]*:(\d+)\]>, "\\x(..)"', call)
    if m and m.group(1) == sys.argv[2] and m.group(2) in ("50", "51"):
        first = ts
        break
print(f"{(first - start) * 1000:.1f}" if start is not None and first is not None else "nan")
PY
)"
    startups+=("$ms")
done
STARTUP_MS="$(printf '%s\n' "${startups[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')"

verdict() { awk -v w="$1" 'BEGIN { print ((w <= 10) ? "meets" : "MISSES") " the target (<= 10 s)" }'; }
{
    echo
    echo "== CI gate: telltale check on $CHECKS PostgreSQL tables of $ROWS rows ($(date -u +%Y-%m-%dT%H:%MZ)) =="
    printf '%-58s %10s %12s %6s\n' "run" "wall (s)" "peak RSS MB" "exit"
    printf '%-58s %10s %12s %6s\n' "telltale check (default max_connections)" "$P_WALL" "$P_RSS" "$P_RC"
    printf '%-58s %10s %12s %6s\n' "telltale check (max_connections: 1)" "$S_WALL" "$S_RSS" "$S_RC"
    printf '%-58s %10s %12s %6s\n' "peer: $CHECKS hand-written queries, psql, one connection" "$PEER_WALL" "-" 0
    echo "default run: $P_SUMMARY"
    echo "serial run:  $S_SUMMARY"
    echo "default run $(verdict "$P_WALL"); parallelism speed-up $(ratio "$S_WALL" "$P_WALL")x"
    echo "startup to first warehouse query (strace, 5 runs): ${startups[*]} ms; median $STARTUP_MS ms" \
        "($(awk -v s="$STARTUP_MS" 'BEGIN { print ((s <= 200) ? "meets" : "MISSES") }') the <= 200 ms target)"
} | report

[ "$P_RC" -eq 0 ] && [ "$S_RC" -eq 0 ]
