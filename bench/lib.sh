# Shared helpers of the benchmark scripts in bench/. Sourced, not run.
#
# Sets ROOT (the repository), BIN (the release binary), PG_URL (a superuser URL) and offers:
#   bench_setup            PostgreSQL (scripts/services when TELLTALE_TEST_POSTGRES_URL is unset),
#                          /usr/bin/time, the release binary, a temp dir ($TMP) removed on exit
#   db_url NAME            PG_URL pointing at database NAME
#   bench_db_create NAME   create a database, dropped again on exit (and on Ctrl-C)
#   measure LABEL -- CMD   run CMD under /usr/bin/time -v with a deadline; sets WALL_S, RSS_MB, RC
#                          and leaves CMD's stdout/stderr in $TMP/LABEL.out / $TMP/LABEL.err
# shellcheck shell=bash
# shellcheck disable=SC2034  # WALL_S, RSS_MB, RC and PG_URL are read by the scripts that source this

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${TELLTALE_BIN:-$ROOT/target/release/telltale}"
SERVICES="$ROOT/scripts/services"
# Deadline for any single timed step (seconds); keeps a run bounded even when something hangs.
STEP_TIMEOUT="${BENCH_STEP_TIMEOUT:-1800}"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

_DBS=()
_STOP_SERVICES=0
TMP=""

_bench_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local db
    for db in "${_DBS[@]+"${_DBS[@]}"}"; do
        psql "$PG_URL" -X -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 ||
            printf 'bench: warning: could not drop database %s\n' "$db" >&2
    done
    if [ -n "$TMP" ] && [ -d "$TMP" ] && [ "${BENCH_KEEP_TMP:-0}" != "1" ]; then
        rm -rf "$TMP"
    elif [ -n "$TMP" ] && [ -d "$TMP" ]; then
        printf 'bench: kept %s (BENCH_KEEP_TMP=1)\n' "$TMP" >&2
    fi
    if [ "$_STOP_SERVICES" -eq 1 ]; then
        # Started by us and nothing else of scripts/services is running: stop it again.
        if ! "$SERVICES" status mariadb >/dev/null 2>&1; then
            "$SERVICES" stop >/dev/null 2>&1 || true
        else
            printf 'bench: left PostgreSQL running (scripts/services stop stops it)\n' >&2
        fi
    fi
    exit "$rc"
}

bench_setup() {
    trap _bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    command -v psql >/dev/null 2>&1 || die "psql not found (apt-get install -y postgresql-client)"
    command -v python3 >/dev/null 2>&1 || die "python3 not found"
    if [ ! -x /usr/bin/time ]; then
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
            log "installing the Debian 'time' package (for /usr/bin/time -v)"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends time >/dev/null 2>&1 || {
                DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends time >/dev/null
            }
        fi
        [ -x /usr/bin/time ] || die "/usr/bin/time missing: apt-get install -y time"
    fi
    if [ -z "${TELLTALE_TEST_POSTGRES_URL:-}" ]; then
        if [ -z "${BENCH_NESTED:-}" ] && ! "$SERVICES" status postgres >/dev/null 2>&1; then
            _STOP_SERVICES=1
        fi
        log "starting PostgreSQL with scripts/services"
        "$SERVICES" start postgres >/dev/null
        # shellcheck source=/dev/null
        . "${TELLTALE_SERVICES_DIR:-/tmp/telltale-services}/env"
        [ -n "${TELLTALE_TEST_POSTGRES_URL:-}" ] || die "scripts/services did not export TELLTALE_TEST_POSTGRES_URL"
    fi
    PG_URL="$TELLTALE_TEST_POSTGRES_URL"
    export TELLTALE_TEST_POSTGRES_URL
    psql "$PG_URL" -X -q -c 'SELECT 1' >/dev/null || die "cannot connect to PostgreSQL at $(redact "$PG_URL")"
    if [ ! -x "$BIN" ]; then
        command -v cargo >/dev/null 2>&1 || die "$BIN missing and cargo not found"
        log "building the release binary (cargo build --release; a few minutes on 2 cores)"
        (cd "$ROOT" && cargo build --release --locked) >&2
    fi
    [ -x "$BIN" ] || die "$BIN not found after the build"
    TMP="$(mktemp -d "${TMPDIR:-/tmp}/telltale-bench.XXXXXX")"
}

redact() { sed -E 's#(://[^:/@]*:)[^@]*@#\1***@#' <<<"$1"; }

# PG_URL with its database replaced by $1 (query parameters kept).
db_url() {
    python3 - "$PG_URL" "$1" <<'EOF'
import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
print(u.urlunsplit((p.scheme, p.netloc, "/" + sys.argv[2], p.query, p.fragment)))
EOF
}

bench_db_create() {
    local name="$1"
    psql "$PG_URL" -X -q -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" \
        -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null
    psql "$PG_URL" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$name\"" >/dev/null
    _DBS+=("$name")
}

# measure LABEL -- CMD...: wall time (monotonic enough: date +%s%N around the command, which
# includes process start and exit) and peak RSS of CMD (max over CMD and its waited-for children).
measure() {
    local label="$1"
    shift
    [ "${1:-}" = "--" ] && shift
    local t0 t1
    t0="$(date +%s%N)"
    RC=0
    timeout --kill-after=10 "$STEP_TIMEOUT" /usr/bin/time -v -o "$TMP/$label.time" "$@" \
        >"$TMP/$label.out" 2>"$TMP/$label.err" || RC=$?
    t1="$(date +%s%N)"
    WALL_S="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')"
    RSS_MB="$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$TMP/$label.time" 2>/dev/null)"
    RSS_MB="${RSS_MB:-?}"
    if [ "$RC" -eq 124 ]; then
        log "$label: exceeded the ${STEP_TIMEOUT}s deadline (BENCH_STEP_TIMEOUT)"
    fi
}

# Runs SQL on database $1 (rest: psql arguments), stops on the first error, with the step deadline.
sql() {
    local url
    url="$(db_url "$1")"
    shift
    timeout --kill-after=10 "$STEP_TIMEOUT" psql "$url" -X -q -v ON_ERROR_STOP=1 "$@"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "n/a" }'; }

# Appends stdin to $BENCH_SUMMARY_FILE (set by run-foundation.sh) and prints it.
report() {
    if [ -n "${BENCH_SUMMARY_FILE:-}" ]; then
        tee -a "$BENCH_SUMMARY_FILE"
    else
        cat
    fi
}
