#!/usr/bin/env bash
# Installs what the lineage tests use besides cargo, when missing.
#
#   scripts/tools/lineage.sh    # run by scripts/ensure-tools; idempotent
#
# Tools:
#   openlineage-python (PyPI, the official OpenLineage client) in a virtualenv under
#   $TELLTALE_TOOLS_DIR/lineage: tests/it/lineage.rs sends real RunEvents through its HTTP
#   transport to a running telltale. Exports TELLTALE_OPENLINEAGE_PYTHON (the venv's python).
#
# Needs python3 with venv and network access to PyPI. Without them the script warns and exits 0
# (the tests needing the client skip) -- except with CI=true, where it is an error.
set -euo pipefail

OPENLINEAGE_VERSION="1.54.0"
TOOLS="${TELLTALE_TOOLS_DIR:-/tmp/telltale-tools}"
VENV="$TOOLS/lineage"
ENV_FILE="$TOOLS/env.d/lineage.env"

CI="${CI:-false}"
is_ci() { [ "$CI" = "true" ] || [ "$CI" = "1" ]; }
log() { printf '==> %s\n' "$*" >&2; }
fail() {
    if is_ci; then
        printf 'scripts/tools/lineage.sh: error: %s\n' "$*" >&2
        exit 1
    fi
    printf 'scripts/tools/lineage.sh: warning: %s; tests that need it will skip\n' "$*" >&2
    exit 0
}

mkdir -p "$TOOLS/env.d"
installed() {
    [ -x "$VENV/bin/python" ] &&
        "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('openlineage-python') != '$OPENLINEAGE_VERSION')" 2>/dev/null
}

if ! installed; then
    command -v python3 >/dev/null 2>&1 || fail "python3 is not installed (apt-get install -y python3 python3-venv)"
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
            log "apt-get install -y python3-venv"
            DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null 2>&1 ||
                fail "apt-get install python3-venv failed"
            python3 -m venv "$VENV" || fail "cannot create a virtualenv at $VENV"
        else
            fail "python3 cannot create a virtualenv (install python3-venv)"
        fi
    fi
    log "pip install openlineage-python==$OPENLINEAGE_VERSION into $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "openlineage-python==$OPENLINEAGE_VERSION" ||
        fail "pip install openlineage-python==$OPENLINEAGE_VERSION failed"
    installed || fail "openlineage-python $OPENLINEAGE_VERSION is not importable from $VENV"
fi

printf 'export TELLTALE_OPENLINEAGE_PYTHON=%s\n' "$VENV/bin/python" >"$ENV_FILE"
