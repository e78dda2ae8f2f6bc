#!/usr/bin/env bash
# The Foundation benchmarks, each printed side by side with a peer measured in the same run.
#
#   bench/run-foundation.sh [--tables N] [--rows N] [--only metadata|profile]
#
#   --tables N   tables of the metadata-cycle benchmark (default 10000)
#   --rows N     rows of the profile benchmark (default 10000000)
#   --only X     run one benchmark only
#
# Uses TELLTALE_TEST_POSTGRES_URL (a superuser URL); when unset, starts PostgreSQL with
# scripts/services (and stops it again afterwards if nothing else of scripts/services runs).
# Builds target/release/telltale if missing (TELLTALE_BIN overrides the binary). Every benchmark
# runs in a database of its own, dropped at the end; temp dirs are removed (BENCH_KEEP_TMP=1 keeps
# them). BENCH_STEP_TIMEOUT (default 1800 s) bounds every timed step.
# Method and published figures: docs/benchmarks.md.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

TABLES=10000
ROWS=10000000
ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
        --tables) TABLES="$2"; shift 2 ;;
        --tables=*) TABLES="${1#*=}"; shift ;;
        --rows) ROWS="$2"; shift 2 ;;
        --rows=*) ROWS="${1#*=}"; shift ;;
        --only) ONLY="$2"; shift 2 ;;
        --only=*) ONLY="${1#*=}"; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
case "$ONLY" in ""|metadata|profile) ;; *) die "--only expects metadata or profile" ;; esac

# Services, the binary and a temp dir once for both benchmarks; they inherit the URL.
bench_setup
export TELLTALE_BIN="$BIN" BENCH_NESTED=1
export BENCH_SUMMARY_FILE="$TMP/summary.txt"
: >"$BENCH_SUMMARY_FILE"

{
    echo "telltale Foundation benchmarks — $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo)," \
        "$(psql "$PG_URL" -X -A -t -c 'SHOW server_version' | awk '{ print "PostgreSQL " $1 }')," \
        "binary $("$BIN" --version)"
} >>"$BENCH_SUMMARY_FILE"

rc=0
if [ -z "$ONLY" ] || [ "$ONLY" = metadata ]; then
    "$HERE/metadata-cycle.sh" --tables "$TABLES" || rc=1
fi
if [ -z "$ONLY" ] || [ "$ONLY" = profile ]; then
    "$HERE/profile.sh" --rows "$ROWS" || rc=1
fi

echo
echo "================================ summary ================================"
cat "$BENCH_SUMMARY_FILE"
exit "$rc"
