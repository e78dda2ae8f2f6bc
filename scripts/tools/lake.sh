#!/usr/bin/env bash
# Installs the Python writers and the S3 server the lake tests and benchmarks use, when missing.
#
#   scripts/tools/lake.sh    # run by scripts/ensure-tools; idempotent
#
# Tools (pinned, in a virtualenv at $TELLTALE_TOOLS_DIR/lake):
#   pyarrow      Parquet/CSV/NDJSON fixtures (tests/it/lake.rs) and the benchmark dataset
#   deltalake    Delta Lake tables written by delta-rs' Python package
#   pyiceberg    Iceberg tables in a SQL (sqlite) catalog
#   moto[server] a real S3-compatible server on loopback (`moto_server`)
#   duckdb       the peer of the profile benchmark (bench/lake.sh)
#
# Writes $TELLTALE_TOOLS_DIR/env.d/lake.env with TELLTALE_LAKE_PYTHON (the venv's python) and
# TELLTALE_MOTO_SERVER (the moto_server executable). Without python3/venv or network the script
# warns and exits 0 (tests skip), except with CI=true, where it fails.
set -euo pipefail

CI="${CI:-false}"
is_ci() { [ "$CI" = "true" ] || [ "$CI" = "1" ]; }
log() { printf '==> %s\n' "$*" >&2; }
fail() {
    if is_ci; then
        printf 'scripts/tools/lake.sh: error: %s\n' "$*" >&2
        exit 1
    fi
    printf 'scripts/tools/lake.sh: warning: %s; lake tests will skip\n' "$*" >&2
    exit 0
}

TOOLS="${TELLTALE_TOOLS_DIR:-/tmp/telltale-tools}"
VENV="$TOOLS/lake"
ENV_FILE="$TOOLS/env.d/lake.env"
PACKAGES=(
    "pyarrow==26.0.1"
    "deltalake==1.6.6"
    "pyiceberg[sql-sqlite,pyarrow]==0.12.0"
    "moto[server]==5.2.5"
    "duckdb==2.0.1"
)
STAMP="$VENV/.installed-$(printf '%s\n' "${PACKAGES[@]}" | sha256sum | cut -c1-16)"

mkdir -p "$TOOLS/env.d"
if [ ! -e "$STAMP" ]; then
    command -v python3 >/dev/null 2>&1 || fail "python3 is not installed"
    pip_log="$(mktemp -t lake-pip.XXXXXX)"
    log "installing ${PACKAGES[*]} into $VENV (log: $pip_log)"
    if ! { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q --disable-pip-version-check "${PACKAGES[@]}"; } \
        >>"$pip_log" 2>&1; then
        tail -n 20 "$pip_log" >&2 || true
        fail "pip install into $VENV failed (log: $pip_log)"
    fi
    rm -f "$pip_log"
    touch "$STAMP"
fi
[ -x "$VENV/bin/moto_server" ] || fail "moto_server missing from $VENV"
{
    echo "export TELLTALE_LAKE_PYTHON=$VENV/bin/python"
    echo "export TELLTALE_MOTO_SERVER=$VENV/bin/moto_server"
} >"$ENV_FILE"
