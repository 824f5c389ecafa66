#!/usr/bin/env bash
# Fuzzes the parsers that take hostile input (fuzz/fuzz_targets/), each for a set time:
#
#   scripts/fuzz.sh [seconds-per-target] [target...]
#
# The time defaults to FUZZ_SECONDS, else 300; the targets to all of them, or with
# FUZZ_SET=sdk to the SDK's only (no build of the app crate: what CI runs). Each run starts
# from the committed seeds (fuzz/corpus/<target>) plus what earlier runs found (fuzz/work/,
# not committed), with inputs up to 64 KiB, at most 2 GiB of memory (AddressSanitizer alone
# holds about 500 MB) and 128 MiB in any one allocation: exceeding either, a panic or a hang
# of 10 s fails the run, and libFuzzer saves the input under fuzz/artifacts/<target>/.
#
# Needs nightly Rust and cargo-fuzz, and installs them when it can. When it cannot, it says so
# and exits 0: `cargo test` already replays every seed and thousands of mutations of them
# through the same target code on stable (the `fuzzing` modules of both crates).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-${FUZZ_SECONDS:-300}}
shift $(($# > 0 ? 1 : 0))
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds == 0)); then
  echo "usage: scripts/fuzz.sh [seconds-per-target] [target...]" >&2
  exit 2
fi

skip() {
  echo "notice: $*; skipping fuzzing"
  exit 0
}

command -v rustup >/dev/null 2>&1 || skip "rustup is not installed, so nightly Rust cannot be had"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "installing nightly Rust (minimal profile)"
  rustup toolchain install nightly --profile minimal >/dev/null 2>&1 ||
    skip "nightly Rust is not installed and could not be installed"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install --locked cargo-fuzz >/dev/null 2>&1 ||
    skip "cargo-fuzz is not installed and could not be installed"
fi

# The fuzz crate has its own target directory: its flags (coverage, sanitizer) differ from
# every other build, and cargo-fuzz looks for the binaries there.
unset CARGO_TARGET_DIR
fuzz=(cargo +nightly fuzz)
# The targets that need the app crate (feature `app` of fuzz/Cargo.toml).
app_targets=" stripe_webhook paypal_webhook svix_webhook "
case ${FUZZ_SET:-all} in
  all) features=() ;;
  sdk) features=(--no-default-features) ;;
  *)
    echo "FUZZ_SET is all or sdk, not ${FUZZ_SET}" >&2
    exit 2
    ;;
esac
if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  targets=()
  for target in $("${fuzz[@]}" list); do
    if [[ ${FUZZ_SET:-all} == all || $app_targets != *" $target "* ]]; then
      targets+=("$target")
    fi
  done
fi

echo "building ${#targets[@]} fuzz target(s)"
started=$SECONDS
"${fuzz[@]}" build "${features[@]}"
echo "built in $((SECONDS - started))s"

failed=()
for target in "${targets[@]}"; do
  echo
  echo "==> fuzzing $target for ${seconds}s"
  mkdir -p "fuzz/work/$target"
  log="fuzz/work/$target.log"
  # The first folder receives what libFuzzer finds; the committed seeds are only read.
  if "${fuzz[@]}" run "${features[@]}" "$target" "fuzz/work/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=128 -print_final_stats=1 >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
    echo "ok: ${runs:-?} inputs, ${rate:-?} per second, peak RSS ${rss:-?} MB"
  else
    tail -n 60 "$log"
    saved=$(sed -n 's/.*Test unit written to \([^ ]*\).*/\1/p' "$log" | tail -n 1)
    echo "error: $target failed (full log: $log)" >&2
    if [[ -n $saved ]]; then
      echo "error: the input is saved in fuzz/$saved; reproduce with:" >&2
      echo "  cargo +nightly fuzz run $target fuzz/$saved" >&2
    fi
    failed+=("$target")
  fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "error: ${#failed[@]} fuzz target(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo
echo "every fuzz target ran ${seconds}s without a failure"
