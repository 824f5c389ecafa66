#!/usr/bin/env bash
# Load: the real service (debug build) on loopback against a fresh database, local fakes of
# Stripe, Clerk and Resend, and a driver playing Inngest (examples/load.rs). Signed Stripe
# webhooks at a sustained rate for the given time, every triggered function executed with
# signed requests; then every purchase must have produced exactly one paid order, payment,
# active pack and active seat. Fails on any error.
#
#   scripts/load.sh [seconds] [purchases per second]     (default 60 s at 10/s)
#
# The debug build, because it is the one `cargo test` has already built (the CI step then
# costs a link, not a release build of every dependency); release numbers would be better.
# DATABASE_URL as for the tests (scripts/postgres.sh starts a throwaway server if unset).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
rate=${2:-10}
if ! [[ $seconds =~ ^[0-9]+$ && $rate =~ ^[0-9]+$ ]] || ((seconds < 1 || seconds > 600 || rate < 1 || rate > 200)); then
  echo "usage: scripts/load.sh [seconds 1-600] [purchases per second 1-200]" >&2
  exit 2
fi

# shellcheck source=scripts/postgres.sh
source scripts/postgres.sh
start_test_postgres

# The same features as `cargo test --workspace --all-features`, so its artifacts are reused.
cargo build --workspace --all-features --locked --bin huckleberry --example load
target=${CARGO_TARGET_DIR:-target}
# The whole run is bounded: the driver gives the backlog two minutes after the last webhook.
timeout $((seconds + 300)) "$target/debug/examples/load" "$target/debug/huckleberry" "$seconds" "$rate"
