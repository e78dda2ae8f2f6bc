#!/bin/sh
# Tracing overhead per check run in executed instructions (valgrind callgrind), which, unlike
# wall or CPU time, barely moves when other work shares the machine. Method: docs/benchmarks.md
# ("Telemetry"). Runs the `telemetry` example four times under callgrind: configuration A (no
# traces) and B (OTLP exporter, every span; the collector is a child process, not instrumented)
# with N1 and N2 check runs each, so setup, warm-up and shutdown cancel out:
#   per-run(X) = (Ir(X, N2) - Ir(X, N1)) / (N2 - N1),   overhead = per-run(B) / per-run(A) - 1
#
#   cargo build --release --example telemetry && bench/telemetry-callgrind.sh
#   TABLES=100 N1=1 N2=5 bench/telemetry-callgrind.sh
#   ARGS="--postgres postgres://u@127.0.0.1:5432/db" bench/telemetry-callgrind.sh   # tables on PostgreSQL
#   ARGS="--protocol grpc" bench/telemetry-callgrind.sh   # OTLP/gRPC instead of http/protobuf (the default)
#   N1=2 N2=12 bench/telemetry-callgrind.sh   # more runs: per-run counts move by ~2% with thread timing
set -eu
BIN=${BIN:-target/release/examples/telemetry}
TABLES=${TABLES:-100}
N1=${N1:-1}
N2=${N2:-5}
ARGS=${ARGS:-}

count() {
    # shellcheck disable=SC2086  # ARGS is split into words on purpose
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" --tables "$TABLES" --mode "$1" --runs "$2" $ARGS 2>&1 \
        | sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' | tail -n 1
}

a1=$(count a "$N1")
a2=$(count a "$N2")
b1=$(count b "$N1")
b2=$(count b "$N2")
echo "instructions (Ir): A x$N1 = $a1, A x$N2 = $a2, B x$N1 = $b1, B x$N2 = $b2"
awk -v a1="$a1" -v a2="$a2" -v b1="$b1" -v b2="$b2" -v n1="$N1" -v n2="$N2" -v t="$TABLES" 'BEGIN {
    a = (a2 - a1) / (n2 - n1); b = (b2 - b1) / (n2 - n1);
    printf "per check run (%d tables): A %.1f M instructions, B %.1f M instructions\n", t, a / 1e6, b / 1e6;
    printf "tracing overhead: %+.2f%% (%+.0f instructions per asset job)\n", (b / a - 1) * 100, (b - a) / t;
    printf "target <= 5%%: %s\n", (b / a - 1 <= 0.05) ? "met" : "MISSED";
}'
