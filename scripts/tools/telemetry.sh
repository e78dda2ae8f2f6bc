#!/usr/bin/env bash
# Installs what the telemetry tests (tests/it/telemetry.rs) use besides cargo, when missing.
#
#   scripts/tools/telemetry.sh    # run by scripts/ensure-tools; idempotent
#
# Tools:
#   prometheus + promtool (Debian package `prometheus`): a real Prometheus scrapes a running
#     telltale; `promtool check metrics` lints the exposition.
#   @grafana/schema, ts-json-schema-generator, ajv, ajv-formats (npm, pinned, under
#     $TELLTALE_TOOLS_DIR/telemetry/node): the dashboards under dashboards/ are validated against a
#     JSON Schema generated from @grafana/schema's `Dashboard` type (scripts/tools/grafana-schema.mjs).
#   check-jsonschema (PyPI, pinned, virtualenv $TELLTALE_TOOLS_DIR/telemetry/venv): validates
#     docker-compose.yml against the Compose Specification schema it ships (vendor.compose-spec).
#
# Writes $TELLTALE_TOOLS_DIR/env.d/telemetry.env with PROMETHEUS_BIN, PROMTOOL_BIN,
# TELLTALE_GRAFANA_SCHEMA (the generated dashboard JSON Schema), TELLTALE_AJV_DIR (node_modules with
# ajv) and TELLTALE_CHECK_JSONSCHEMA.
#
# Without root/network the script warns and exits 0 (the tests needing a tool skip) -- except with
# CI=true, where a tool that cannot be installed is an error.
set -euo pipefail

CI="${CI:-false}"
is_ci() { [ "$CI" = "true" ] || [ "$CI" = "1" ]; }
log() { printf '==> %s\n' "$*" >&2; }
fail() {
    if is_ci; then
        printf 'scripts/tools/telemetry.sh: error: %s\n' "$*" >&2
        exit 1
    fi
    printf 'scripts/tools/telemetry.sh: warning: %s; tests that need it will skip\n' "$*" >&2
    exit 0
}

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TOOLS="${TELLTALE_TOOLS_DIR:-/tmp/telltale-tools}"
DIR="$TOOLS/telemetry"
mkdir -p "$DIR" "$TOOLS/env.d"

GRAFANA_SCHEMA_VERSION=13.2.3
TS_JSON_SCHEMA_GENERATOR_VERSION=2.9.0
AJV_VERSION=8.20.0
AJV_FORMATS_VERSION=3.0.1
CHECK_JSONSCHEMA_VERSION=0.39.0

# --- prometheus (Debian) -------------------------------------------------------
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || fail "need the Debian package prometheus but not running as root"
    command -v apt-get >/dev/null 2>&1 || fail "need the Debian package prometheus but apt-get is not available"
    apt_log="$(mktemp -t telemetry-apt.XXXXXX)"
    log "apt-get install -y --no-install-recommends prometheus (log: $apt_log)"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; } \
        >>"$apt_log" 2>&1; then
        tail -n 20 "$apt_log" >&2 || true
        fail "apt-get install prometheus failed (log: $apt_log)"
    fi
    rm -f "$apt_log"
    # The package starts a system service; the tests run their own server on a free port.
    if command -v systemctl >/dev/null 2>&1; then systemctl stop prometheus >/dev/null 2>&1 || true; fi
fi
command -v prometheus >/dev/null 2>&1 || fail "prometheus installed but not on PATH"

# --- npm: Grafana dashboard schema ------------------------------------------------
NODE_DIR="$DIR/node"
SCHEMA="$DIR/grafana-dashboard.schema.json"
if [ ! -s "$SCHEMA" ] || [ ! -d "$NODE_DIR/node_modules/ajv" ] ||
    ! grep -q "\"version\": \"$GRAFANA_SCHEMA_VERSION\"" "$NODE_DIR/node_modules/@grafana/schema/package.json" 2>/dev/null; then
    command -v npm >/dev/null 2>&1 || fail "need npm for @grafana/schema"
    mkdir -p "$NODE_DIR"
    [ -f "$NODE_DIR/package.json" ] || printf '{"name":"telltale-telemetry-tools","private":true}\n' >"$NODE_DIR/package.json"
    log "npm install @grafana/schema@$GRAFANA_SCHEMA_VERSION ts-json-schema-generator ajv ajv-formats"
    if ! (cd "$NODE_DIR" && npm install --no-audit --no-fund --silent \
        "@grafana/schema@$GRAFANA_SCHEMA_VERSION" \
        "ts-json-schema-generator@$TS_JSON_SCHEMA_GENERATOR_VERSION" \
        "ajv@$AJV_VERSION" "ajv-formats@$AJV_FORMATS_VERSION") >&2; then
        fail "npm install failed"
    fi
    log "generating the Grafana dashboard JSON Schema from @grafana/schema"
    node "$ROOT/scripts/tools/grafana-schema.mjs" generate "$NODE_DIR" "$SCHEMA.tmp" >&2 ||
        fail "cannot generate the dashboard JSON Schema from @grafana/schema"
    mv "$SCHEMA.tmp" "$SCHEMA"
fi

# --- PyPI: check-jsonschema (Compose Specification schema) ------------------------
VENV="$DIR/venv"
if ! "$VENV/bin/check-jsonschema" --version 2>/dev/null | grep -q "$CHECK_JSONSCHEMA_VERSION"; then
    command -v python3 >/dev/null 2>&1 || fail "need python3 for check-jsonschema"
    python3 -m venv "$VENV" >&2 || fail "cannot create a virtualenv (python3-venv missing?)"
    log "pip install check-jsonschema==$CHECK_JSONSCHEMA_VERSION"
    "$VENV/bin/pip" install -q "check-jsonschema==$CHECK_JSONSCHEMA_VERSION" >&2 || fail "pip install check-jsonschema failed"
fi

cat >"$TOOLS/env.d/telemetry.env" <<ENV
export PROMETHEUS_BIN=$(command -v prometheus)
export PROMTOOL_BIN=$(command -v promtool)
export TELLTALE_GRAFANA_SCHEMA=$SCHEMA
export TELLTALE_NODE_MODULES=$NODE_DIR/node_modules
export TELLTALE_CHECK_JSONSCHEMA=$VENV/bin/check-jsonschema
ENV
log "telemetry tools ready ($TOOLS/env.d/telemetry.env)"
