#!/usr/bin/env bash
# Peak private memory (RssAnon, sampled every 20 ms) and peak RSS (VmHWM) of this SDK's and the
# Go SDK's benchmark servers under the harness's load: the "Memory" point of BENCHMARKS.md.
# Run `bash scripts/bench.sh` first (it builds both servers and writes the requests), then
#
#   bash scripts/bench-private-memory.sh [workload ...]     (default: first-step 100-steps-of-1kb)
#
# Each server is pinned to core 0 and wrk (32 connections, 5 s) to core 1, as in the harness.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
work="$target/bench"
bench_bin="$target/release/examples/bench_server"
go_bin="$work/go-server"
[[ -x $bench_bin && -d $work/requests ]] || { echo "run scripts/bench.sh first" >&2; exit 1; }
if (($#)); then workloads=("$@"); else workloads=(first-step 100-steps-of-1kb); fi
port=39611

measure() { # name workload command...
  local name=$1 workload=$2 log peak_file
  shift 2
  log=$(mktemp) peak_file=$(mktemp)
  PORT=$port INNGEST_DEV=1 taskset -c 0 "$@" >"$log" 2>&1 &
  local pid=$!
  for _ in $(seq 200); do grep -qs READY "$log" && break; sleep 0.05; done
  echo 0 >"$peak_file"
  (
    peak=0
    while kill -0 "$pid" 2>/dev/null; do
      anon=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
      if [[ -n $anon ]] && ((anon > peak)); then peak=$anon && echo "$peak" >"$peak_file"; fi
      sleep 0.02
    done
  ) &
  local sampler=$!
  BENCH_REQUEST="$work/requests/$workload" taskset -c 1 \
    wrk -t1 -c32 -d5s -s bench/wrk.lua "http://127.0.0.1:$port$(<"$work/requests/$workload.url-path")" >/dev/null
  local hwm
  hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  printf '%-10s %-18s peak private %6d KiB   peak RSS %6d KiB\n' "$name" "$workload" "$(<"$peak_file")" "$hwm"
  rm -f "$log" "$peak_file"
}

for workload in "${workloads[@]}"; do
  measure rust-sdk "$workload" "$bench_bin" sdk
  [[ -x $go_bin ]] && measure go-sdk "$workload" "$go_bin"
done
