#!/usr/bin/env bash
# Installs the command-line tools the test suite uses besides cargo, when missing.
#
#   scripts/tools/xmllint.sh    # run by scripts/ensure-tools; idempotent
#
# Tools:
#   xmllint (Debian package libxml2-utils): tests/it/report.rs validates the JUnit XML of
#   `telltale check` against tests/fixtures/junit/junit.xsd.
#
# Installing needs root and apt-get. Without them the script warns and exits 0, so a developer's
# machine still runs the tests (the ones needing a tool skip) -- except with CI=true, where a tool
# that cannot be installed is an error (and the tests needing it fail instead of skipping).
set -euo pipefail

CI="${CI:-false}"
is_ci() { [ "$CI" = "true" ] || [ "$CI" = "1" ]; }
log() { printf '==> %s\n' "$*" >&2; }
fail() {
    if is_ci; then
        printf 'scripts/ensure-tools: error: %s\n' "$*" >&2
        exit 1
    fi
    printf 'scripts/ensure-tools: warning: %s; tests that need it will skip\n' "$*" >&2
    exit 0
}

missing=()
command -v xmllint >/dev/null 2>&1 || missing+=(libxml2-utils)
[ "${#missing[@]}" -eq 0 ] && exit 0

[ "$(id -u)" -eq 0 ] || fail "need ${missing[*]} but not running as root; install it with apt-get"
command -v apt-get >/dev/null 2>&1 || fail "need ${missing[*]} but apt-get is not available"

apt_log="$(mktemp -t ensure-tools-apt.XXXXXX)"
log "apt-get install -y --no-install-recommends ${missing[*]} (log: $apt_log)"
if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >>"$apt_log" 2>&1; then
    tail -n 20 "$apt_log" >&2 || true
    fail "apt-get install ${missing[*]} failed (log: $apt_log)"
fi
command -v xmllint >/dev/null 2>&1 || fail "libxml2-utils installed but xmllint is not on PATH"
rm -f "$apt_log"
