#!/usr/bin/env bash
# Instructions per point of the detectors under callgrind (independent of machine load):
# ten 2 000-point series of the speed table's warehouse (seed 9), one full replay each,
# counting only inside `telltale::detect::streaming::replay` (judging; explanations are written
# when read), and apart the cost of then writing every verdict's explanation, as
# `telltale detect replay` does (`write_explanations` of the example).
#
# Usage: bench/detection-callgrind.sh [count|continuous|freshness|proportion ...]   (default: all)
# Needs a release build of the example: cargo build --release --example detection
set -euo pipefail
cd "$(dirname "$0")/.."
binary="${DETECTION_BINARY:-target/release/examples/detection}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
classes=("$@")
[ ${#classes[@]} -eq 0 ] && classes=(count continuous freshness proportion)
for class in "${classes[@]}"; do
    valgrind --tool=callgrind --callgrind-out-file="$out/$class.out" \
        --toggle-collect='telltale::detect::streaming::replay*' \
        --toggle-collect='detection::write_explanations*' \
        "$binary" --callgrind "$class" >/dev/null 2>"$out/$class.log"
    both=$(grep -E '^(summary|totals):' "$out/$class.out" | head -1 | awk '{print $2}')
    written=$(callgrind_annotate --inclusive=yes "$out/$class.out" 2>/dev/null |
        awk '/detection::write_explanations/ && !seen { seen = 1; gsub(",", "", $1); print $1 }')
    total=$((both - ${written:-0}))
    echo "$class: $total instructions, $((total / 20000)) per point (10 series x 2 000 points);" \
        "writing every explanation: $((${written:-0} / 20000)) more per point"
done
