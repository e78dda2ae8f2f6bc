#!/usr/bin/env bash
# A standalone crate of the pure `detect` module, for fast iterations on detection: its lib is
# this checkout's src/detect (by #[path]), its examples are bench/detection.rs, bench/nab.rs and
# bench/shifts.rs,
# and its only dependencies are serde, serde_json, statrs and proptest, so a cold release build
# takes about a minute on two cores instead of the full crate's ten and more (datafusion, sqlx).
#
# Usage: bench/detect-alone.sh [DEST]        (default: /tmp/telltale-detect-alone)
#   cd DEST && cargo build --release --example detection --example nab
#   cargo test --lib                          # every detect unit, property and golden test
#   ./target/release/examples/detection --seeds 1-5 --no-speed --breakdown
#   DETECTION_BINARY=DEST/target/release/examples/detection bench/detection-callgrind.sh
# The crate reads the sources in place: edit them here, rebuild there. CI still builds and
# tests the full crate (scripts/test).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:-/tmp/telltale-detect-alone}"
mkdir -p "$dest/src"
cat > "$dest/Cargo.toml" <<TOML
[package]
name = "telltale"
version = "0.1.0"
edition = "2024"
autotests = false

[dependencies]
serde = { version = "1", features = ["derive"] }
serde_json = "1"
statrs = { version = "0.19", default-features = false, features = ["std"] }

[dev-dependencies]
proptest = "1"

[[example]]
name = "detection"
path = "$root/bench/detection.rs"

[[example]]
name = "nab"
path = "$root/bench/nab.rs"

[[example]]
name = "shifts"
path = "$root/bench/shifts.rs"

[profile.release]
debug = "line-tables-only"
TOML
cat > "$dest/src/lib.rs" <<RS
#[path = "$root/src/detect/mod.rs"]
#[allow(dead_code)] // format::{number, percent} serve the full crate only
pub mod detect;
RS
# The golden tests read tests/fixtures/detect under the crate's folder.
ln -sfn "$root/tests" "$dest/tests"
cp "$root/Cargo.lock" "$dest/Cargo.lock"
echo "standalone detect crate in $dest (sources: $root/src/detect)"
