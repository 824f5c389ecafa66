#!/usr/bin/env bash
# The benchmark harness (issue 12; BENCHMARKS.md has a full run and how to read it).
#
#   bash scripts/bench.sh            full run by hand: release build, 3 rounds, 5 s per measurement
#   bash scripts/bench.sh --short    the test command's run: a debug build, 3 workloads, 1 round
#
# The same function (step "first", N memoized "middle" steps, step "final") served by our SDK
# (axum), a bare axum handler answering our exact bytes (the ceiling), the official Go SDK
# (net/http) and the official TypeScript SDK (inngest/node, checkpointing off and on). Each
# workload's request bytes are written once (bench/rust/workloads.rs) and sent by wrk, the
# server pinned to one core and wrk to the other. Before each measurement the server's answer
# is checked (status and opcode); a wrong answer or any non-2xx fails the run. Reported per
# workload and server, medians over the rounds: requests/s, p50/p99, CPU µs per request
# (utime+stime from /proc/<pid>/stat over the measurement), peak RSS (VmHWM) and peak private
# memory (RssAnon, sampled every 10 ms from the load generator's core).
#
# Settings (environment): BENCH_ROUNDS, BENCH_SECONDS (per measurement), BENCH_WARMUP_SECONDS,
# BENCH_CONNECTIONS (32), BENCH_WORKLOADS and BENCH_SERVERS (space-separated names),
# BENCH_SERVER_CPU (0) and BENCH_LOAD_CPU (1), BENCH_PROFILE (debug or release).
# A peer that cannot be installed or built (no node, no go) is skipped with a notice.
set -euo pipefail
cd "$(dirname "$0")/.."

short=0 servers=""
case "${1:-}" in
  --short) short=1 ;;
  "") ;;
  *) echo "usage: scripts/bench.sh [--short]" >&2; exit 2 ;;
esac
if ((short)); then
  rounds=${BENCH_ROUNDS:-1} seconds=${BENCH_SECONDS:-1} warmup=${BENCH_WARMUP_SECONDS:-1}
  workloads=${BENCH_WORKLOADS:-first-step memoized-100 signed-first-step}
  # Checkpointing TypeScript runs the whole function, with a call to the API per step, in each
  # request: too slow for a one-second measurement on a busy machine.
  servers=${BENCH_SERVERS:-rust-sdk bare-axum go-sdk ts-sdk}
  # The test command has just built the workspace in debug with every feature: no new build.
  profile=${BENCH_PROFILE:-debug}
else
  rounds=${BENCH_ROUNDS:-3} seconds=${BENCH_SECONDS:-5} warmup=${BENCH_WARMUP_SECONDS:-2}
  workloads=${BENCH_WORKLOADS:-first-step memoized-1 memoized-10 memoized-100 memoized-1000 100-steps-of-1kb 4mb-state signed-first-step}
  profile=${BENCH_PROFILE:-release}
fi
servers=${servers:-${BENCH_SERVERS:-rust-sdk bare-axum go-sdk ts-sdk ts-sdk-checkpointing}}
connections=${BENCH_CONNECTIONS:-32}
server_cpu=${BENCH_SERVER_CPU:-0} load_cpu=${BENCH_LOAD_CPU:-1}
target=${CARGO_TARGET_DIR:-target}
mkdir -p "$target"
work="$(cd "$target" && pwd)/bench"
rm -rf "$work" && mkdir -p "$work/captures" "$work/logs"

say() { printf 'bench: %s\n' "$*"; }
notice() { printf 'notice: %s\n' "$*"; }
fail() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }
drop_server() { servers=$(tr ' ' '\n' <<<"$servers" | grep -vx "$1" | tr '\n' ' '); }

# --- tools -----------------------------------------------------------------------------------
# shellcheck source=scripts/lib/debian.sh
source scripts/lib/debian.sh
if ! ensure_tool wrk wrk; then
  notice "wrk is not installed and could not be (apt-get install wrk as root); skipping the benchmark"
  exit 0
fi
pin_server=() pin_load=()
if command -v taskset >/dev/null 2>&1 && (($(nproc) >= 2)); then
  pin_server=(taskset -c "$server_cpu") pin_load=(taskset -c "$load_cpu")
else
  notice "taskset or a second core is missing: server and load generator are not pinned"
fi

# --- the servers -----------------------------------------------------------------------------
if [[ $profile == release ]]; then
  say "building our server (release)"
  cargo build --quiet --release --locked -p inngest-sdk --example bench_server
else
  # The same workspace-wide features as `cargo test --workspace --all-features`, so nothing
  # is rebuilt after it.
  say "building our server (debug: these numbers only show that the harness works)"
  cargo build --quiet --locked --workspace --all-features --example bench_server
fi
bench_bin="$target/$profile/examples/bench_server"

if [[ " $servers " == *" ts-sdk"* ]]; then
  # npm ci (which starts from an empty node_modules) only when the lock file changed.
  installed=bench/ts/node_modules/.package-lock.json
  if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
    { [[ $installed -nt bench/ts/package-lock.json ]] ||
      npm ci --prefix bench/ts --no-audit --no-fund --loglevel=error >"$work/logs/npm.log" 2>&1; }; then
    say "TypeScript SDK: inngest@$(node -p 'require("./bench/ts/node_modules/inngest/package.json").version'), node $(node --version)"
  else
    notice "the TypeScript SDK could not be installed (node, npm ci: $work/logs/npm.log); skipping its servers"
    drop_server ts-sdk
    drop_server ts-sdk-checkpointing
  fi
fi
go_bin="$work/go-server"
if [[ " $servers " == *" go-sdk "* ]]; then
  if command -v go >/dev/null 2>&1 &&
    (cd bench/go && GOFLAGS=-mod=readonly go build -o "$go_bin" .) >"$work/logs/go-build.log" 2>&1; then
    say "Go SDK: inngestgo $(awk '$1 == "require" && $2 ~ /inngestgo$/ {print $3}' bench/go/go.mod), $(go version | cut -d' ' -f3)"
  else
    notice "the Go SDK could not be built (go, modules: $work/logs/go-build.log); skipping its server"
    drop_server go-sdk
  fi
fi

signing_key=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
requests="$work/requests"
"$bench_bin" requests "$requests"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
# Below the kernel's default range for outgoing connections (32768 and up), whose ports the
# client sockets of other processes hold at any moment; a port taken anyway is skipped.
next_port=$((10000 + RANDOM % 15000))

# Starts `$1` for workload `$2` on a fresh port; sets server_pid and server_url.
start_server() {
  local attempt
  for attempt in 1 2 3 4 5; do
    start_server_once "$@" && return 0
    grep -qs "Address already in use" "$server_log" || break
    say "port taken, trying the next one (attempt $attempt)"
  done
  fail "$1 did not start for $2: $(tail -n 5 "$server_log")"
}

start_server_once() {
  # A log of its own: a reused one could still hold the READY of the previous start.
  local name=$1 workload=$2 port=$((next_port++))
  local log="$work/logs/$name-$workload-$port.log"
  local env=(PORT="$port")
  [[ -e "$requests/$workload.signed" ]] && env+=(INNGEST_SIGNING_KEY="$signing_key")
  local command
  case $name in
    rust-sdk) command=("$bench_bin" sdk) ;;
    bare-axum) command=("$bench_bin" bare "$work/captures/$workload") ;;
    go-sdk) command=("$go_bin") ;;
    ts-sdk) command=(node bench/ts/server.mjs) ;;
    ts-sdk-checkpointing)
      env+=(BENCH_CHECKPOINTING=1 INNGEST_BASE_URL="http://127.0.0.1:$api_port")
      command=(node bench/ts/server.mjs) ;;
    *) fail "no server named $name" ;;
  esac
  # env and taskset exec, so $! is the server's own pid: the one /proc is read for.
  env "${env[@]}" "${pin_server[@]}" "${command[@]}" >"$log" 2>&1 &
  server_pid=$! server_url="http://127.0.0.1:$port" server_log=$log
  pids+=("$server_pid")
  for _ in $(seq 400); do # up to 20 s: Node starts slowly on a busy machine
    grep -qs READY "$log" && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  stop_server
  return 1
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
}

cpu_ticks() { # utime + stime of pid $1, in clock ticks
  local stat
  stat=$(<"/proc/$1/stat") || { echo "bench: error: the server (pid $1) has exited" >&2; return 1; }
  read -r -a fields <<<"${stat##*) }"
  echo $((fields[11] + fields[12]))
}

check() { # server workload [check options]
  "$bench_bin" check "$server_url" "$requests" "$2" "${@:3}" || fail "$1 gave a wrong answer to $2"
}

# The fake Inngest API the TypeScript SDK checkpoints to, on the load generator's core.
if [[ " $servers " == *" ts-sdk-checkpointing "* ]]; then
  api_port=$((next_port++))
  PORT=$api_port "${pin_load[@]}" "$bench_bin" fake-api >"$work/logs/fake-api.log" 2>&1 &
  pids+=($!)
fi

# Our answers, which the bare server replays; this is also our first check.
"$bench_bin" sign "$requests" "$signing_key"
for workload in $workloads; do
  start_server rust-sdk "$workload"
  check rust-sdk "$workload" --capture "$work/captures/$workload"
  stop_server
done

ticks_per_second=$(getconf CLK_TCK)
results="$work/results.tsv"
printf 'round\tworkload\tserver\trps\tp50_us\tp99_us\tcpu_us_per_request\tpeak_rss_kib\tconnections\tpeak_private_kib\n' >"$results"
# Waits until the server has used no more than one clock tick in 0.2 s (at most 60 s): requests
# wrk abandoned when it stopped must not be counted in the next window.
wait_idle() {
  local last now
  last=$(cpu_ticks "$server_pid") || fail "$server exited on $workload: $(tail -n 5 "$server_log")"
  for _ in $(seq 300); do
    sleep 0.2
    now=$(cpu_ticks "$server_pid") || fail "$server exited on $workload: $(tail -n 5 "$server_log")"
    ((now - last <= 1)) && return 0
    last=$now
  done
}

# One window of wrk at $1 connections for $2 seconds; sets the BENCH fields and ticks.
window() {
  local before after line pair
  wait_idle
  before=$(cpu_ticks "$server_pid") || fail "$server exited on $workload"
  line=$(BENCH_REQUEST="$requests/$workload" "${pin_load[@]}" \
    wrk -t1 -c"$1" --timeout 60s -d"$2s" -s bench/wrk.lua "$url" | grep '^BENCH ') ||
    fail "wrk gave no result for $server on $workload"
  after=$(cpu_ticks "$server_pid") || fail "$server exited on $workload: $(tail -n 5 "$server_log")"
  ticks=$((after - before))
  for pair in ${line#BENCH }; do
    printf -v "${pair%%=*}" '%s' "${pair#*=}"
  done
  ((non2xx == 0 && socket_errors == 0)) ||
    fail "$server on $workload: $answered answers, $non2xx non-2xx, $socket_errors socket errors"
}

measure() { # round server workload [connections]
  local round=$1 server=$2 workload=$3 options=() used=${4:-$connections}
  local answered=0 duration_us=0 p50_us=0 p99_us=0 non2xx=0 socket_errors=0 ticks=0
  [[ $server == ts-sdk-checkpointing ]] && options=(--checkpointing)
  # Inngest refuses a signature older than 5 minutes, and a round takes longer: sign now.
  [[ -e "$requests/$workload.signed" ]] && "$bench_bin" sign "$requests" "$signing_key"
  start_server "$server" "$workload"
  # Sampling from the load generator's core: the server's own core does only its work.
  local private_file="$work/logs/private-$server-$workload"
  "${pin_load[@]}" "$bench_bin" peak-private "$server_pid" >"$private_file" &
  local sampler=$!
  pids+=("$sampler")
  check "$server" "$workload" "${options[@]}"
  local url
  url="$server_url$(<"$requests/$workload.url-path")"
  BENCH_REQUEST="$requests/$workload" "${pin_load[@]}" \
    wrk -t1 -c"$used" --timeout 60s -d"${warmup}s" -s bench/wrk.lua "$url" >/dev/null
  window "$used" "$seconds"
  # Too few answers to count: the CPU of the requests still in flight at the end of the window
  # would weigh on too few. Such a server (TypeScript at 1000 steps) is measured again with one
  # connection, twice as long; its req/s and latencies are then those of one connection.
  if ((used > 1 && answered < 4 * used)); then
    used=1 one_connection=1
    window 1 $((2 * seconds))
  fi
  ((answered > 0)) || fail "$server on $workload: no answer in $((2 * seconds)) s"
  local rss private
  rss=$(awk '/^VmHWM/ {print $2}' "/proc/$server_pid/status")
  stop_server
  wait "$sampler" || fail "the memory sampler failed on $server $workload"
  private=$(<"$private_file")
  awk -v r="$round" -v w="$workload" -v s="$server" -v n="$answered" -v d="$duration_us" \
    -v p50="$p50_us" -v p99="$p99_us" -v ticks="$ticks" -v hz="$ticks_per_second" \
    -v rss="$rss" -v c="$used" -v private="$private" 'BEGIN { printf "%s\t%s\t%s\t%.1f\t%d\t%d\t%.2f\t%d\t%d\t%d\n",
      r, w, s, n / (d / 1e6), p50, p99, ticks * 1e6 / hz / n, rss, c, private }' >>"$results"
  say "round $round $workload $server: $(tail -n 1 "$results" | cut -f4- | tr '\t' ' ')"
}

read -r -a server_list <<<"$servers"
say "$rounds round(s) of ${seconds}s per measurement (after ${warmup}s warm-up), $connections connections; servers: ${server_list[*]}"
for round in $(seq "$rounds"); do
  for workload in $workloads; do
    # Interleaved: each round starts with the next server, so no server always goes first.
    count=${#server_list[@]}
    one_connection=0
    for i in $(seq 0 $((count - 1))); do
      measure "$round" "${server_list[$(((i + round - 1) % count))]}" "$workload"
    done
    # A peer measured with one connection is compared with ours at one connection too: with 32
    # connections, 32 bodies share the caches, and at 4 MB that alone costs ours a third more
    # CPU per request (BENCHMARKS.md). Memory is compared so as well.
    if ((one_connection && connections > 1)); then
      for server in rust-sdk bare-axum; do
        [[ " ${server_list[*]} " == *" $server "* ]] && measure "$round" "$server" "$workload" 1
      done
    fi
  done
done

"$bench_bin" report "$results" | tee "$work/report.md"
say "results: $results; table: $work/report.md"
