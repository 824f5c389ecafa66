#!/usr/bin/env bash
# Instructions per request, in process, counted by callgrind: the SDK's own cost for each
# benchmark workload, a figure a shared machine's noise barely moves (BENCHMARKS.md).
#
#   bash scripts/bench-instructions.sh          by hand: a release build, every workload
#   bash scripts/bench-instructions.sh --short  the test command's run: a debug build, two workloads
#
# For each workload, `bench_server repeat <workload> N` handles the request N times through the
# SDK's handler (no HTTP, no kernel), under `valgrind --tool=callgrind`, then 3N times; the
# difference divided by 2N cancels start-up. The count covers the handler, the function and
# building the request; valgrind hides the CPU's SHA extensions, so step-id hashing counts more
# than it costs on the machine. Compare two commits with the same build and valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "bench-instructions: $*"; }
case "${1:-}" in
  --short) profile=debug workloads=(first-step:20 memoized-100:4) ;;
  "")
    profile=release
    workloads=(first-step:400 memoized-1:400 memoized-10:200 memoized-100:40 memoized-1000:4
      100-steps-of-1kb:20 4mb-state:2 signed-first-step:400)
    ;;
  *) echo "usage: scripts/bench-instructions.sh [--short]" >&2; exit 2 ;;
esac
# shellcheck source=scripts/lib/debian.sh
source scripts/lib/debian.sh
if ! ensure_tool valgrind valgrind; then
  echo "notice: valgrind is not installed and could not be (apt-get install valgrind as root); skipping the instruction counts"
  exit 0
fi

target=${CARGO_TARGET_DIR:-target}
if [[ $profile == release ]]; then
  cargo build --quiet --release --locked -p inngest-sdk --example bench_server
else
  # The test command's features, so nothing is rebuilt after `cargo test`.
  cargo build --quiet --locked --workspace --all-features --example bench_server
fi
bench_bin="$target/$profile/examples/bench_server"

# Instructions callgrind counted for `bench_server repeat $1 $2`.
instructions() {
  local log
  log=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bench_bin" repeat "$1" "$2" 2>&1) || {
    echo "$log" >&2
    say "error: bench_server repeat $1 $2 failed under valgrind"
    exit 1
  }
  awk '/Collected :/ {print $NF}' <<<"$log"
}

say "$profile build, $(valgrind --version)"
echo
echo "| workload | instructions per request |"
echo "|---|--:|"
for entry in "${workloads[@]}"; do
  workload=${entry%%:*} count=${entry#*:}
  once=$(instructions "$workload" "$count")
  thrice=$(instructions "$workload" $((3 * count)))
  [[ -n $once && -n $thrice ]] || { say "error: callgrind printed no count for $workload"; exit 1; }
  awk -v w="$workload" -v a="$once" -v b="$thrice" -v n="$count" \
    'BEGIN { printf "| %s | %d |\n", w, (b - a) / (2 * n) }'
done
