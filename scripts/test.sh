#!/usr/bin/env bash
# The project's one test command (README, CI): formatting, lints, and every test.
# Installs what the tests need by itself: the TypeScript SDK fixture (npm) and, when no
# DATABASE_URL is given, a throwaway PostgreSQL cluster (Debian packages if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "TypeScript SDK fixture for the differential tests (npm ci)"
if ! command -v node >/dev/null 2>&1; then
  echo "node is required for the differential tests against the TypeScript SDK" >&2
  exit 1
fi
npm ci --prefix inngest-sdk/tests/ts-fixture --no-audit --no-fund --loglevel=error

step "PostgreSQL for the integration tests"
# Starts a throwaway server (stopped when this script exits) and exports DATABASE_URL,
# unless DATABASE_URL is already set.
# shellcheck source=scripts/postgres.sh
source scripts/postgres.sh
start_test_postgres

step "cargo fmt --check"
if cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt >/dev/null 2>&1; then
  cargo fmt --all -- --check
else
  echo "notice: rustfmt is not installed and could not be added; skipping the format check"
fi

step "cargo clippy -D warnings"
if cargo clippy --version >/dev/null 2>&1 || rustup component add clippy >/dev/null 2>&1; then
  cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
else
  echo "notice: clippy is not installed and could not be added; skipping lints"
fi

step "cargo test"
cargo test --workspace --all-features --locked
