#!/usr/bin/env bash
# The project's one test command (README, CI): formatting, lints, every test, a short fuzz.
# Installs what the tests need by itself: the TypeScript SDK and encryption middleware
# fixtures (npm) and, when no DATABASE_URL is given, a throwaway PostgreSQL cluster (Debian
# packages if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "TypeScript SDK fixture for the differential tests (npm ci)"
if ! command -v node >/dev/null 2>&1; then
  echo "node is required for the differential tests against the TypeScript SDK" >&2
  exit 1
fi
npm ci --prefix inngest-sdk/tests/ts-fixture --no-audit --no-fund --loglevel=error

step "Official encryption middleware fixture for the encryption differential test (npm ci)"
# Optional: without it tests/encryption.rs prints a notice and skips the comparison.
if ! npm ci --prefix inngest-sdk/tests/encryption-fixture --no-audit --no-fund --loglevel=error; then
  echo "notice: could not install @inngest/middleware-encryption; the encryption differential test is skipped"
fi

step "Official Python encryption middleware for the encryption differential test (pip)"
# Optional: without it tests/encryption.rs prints a notice and skips the Python comparison.
py_fixture=inngest-sdk/tests/encryption-fixture-py
if ! { command -v python3 >/dev/null 2>&1 &&
  python3 -m venv "$py_fixture/.venv" >/dev/null 2>&1 &&
  "$py_fixture/.venv/bin/pip" install -q --disable-pip-version-check \
    -r "$py_fixture/requirements.txt"; }; then
  rm -rf -- "$py_fixture/.venv"
  echo "notice: could not install inngest-encryption (PyPI); the Python encryption differential test is skipped"
fi

step "Chromium and playwright-core for the dev console's browser test (tests/browser)"
# Debian's Chromium, driven by the pinned playwright-core (which never downloads a browser).
# When either cannot be installed, the browser test prints a notice and skips.
if [[ ! -x /usr/bin/chromium ]] && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium (apt-get)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
    >/dev/null 2>&1 || true
fi
if [[ ! -x /usr/bin/chromium ]]; then
  echo "notice: /usr/bin/chromium is missing and could not be installed; the browser test will skip"
elif ! PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/browser --no-audit --no-fund \
  --loglevel=error; then
  echo "notice: npm ci in tests/browser failed; the browser test will skip"
fi

step "PostgreSQL for the integration tests"
# Starts a throwaway server (stopped when this script exits) and exports DATABASE_URL,
# unless DATABASE_URL is already set.
# shellcheck source=scripts/postgres.sh
source scripts/postgres.sh
start_test_postgres
# A second one that takes TLS connections only, for the database TLS tests.
start_tls_test_postgres
# The databases already there (DATABASE_URL may be a developer's server): the checks after
# the tests judge only what this run added.
databases_before=$(test_postgres_psql -c 'SELECT datname FROM pg_database' | sort)

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
# A failure is reported after the database check below, which matters most when tests fail.
tests_status=0
cargo test --workspace --all-features --locked || tests_status=$?

step "Load, short (scripts/load.sh 10; the README's numbers come from 60 s by hand)"
# Its own database, created and dropped by the driver (huckleberry_load_*).
load_status=0
bash scripts/load.sh 10 || load_status=$?

step "Benchmark harness, short (scripts/bench.sh --short; BENCHMARKS.md has a full run by hand)"
# Our SDK, a bare axum ceiling and the official Go and TypeScript SDKs, each answer checked
# before it is measured; a peer that cannot be installed is skipped with a notice.
bench_status=0
bash scripts/bench.sh --short || bench_status=$?

step "Instructions per request, short (scripts/bench-instructions.sh --short)"
# Counted by callgrind in process; without valgrind it prints a notice and passes.
bash scripts/bench-instructions.sh --short || bench_status=$?

step "Dockerfile: its build command, then migrate and serve (scripts/dockerfile-check.sh)"
# No Docker engine here: the script runs the Dockerfile's commands on this machine.
bash scripts/dockerfile-check.sh || tests_status=$?

step "Test databases dropped"
# Each integration test copies a migrated template database (tests/integration/util/database.rs)
# and drops its copy when it ends, also when it fails. A copy still here is a bug (or, on a
# shared server, a test of another run still going: this cannot tell the two apart).
databases_added=$(comm -13 <(printf '%s\n' "$databases_before") \
  <(test_postgres_psql -c 'SELECT datname FROM pg_database' | sort))
# Templates this run built go too; older ones on a developer's server may serve other runs.
# The lock is the tests' advisory lock on that template (TEMPLATE_LOCK): no copy is under way.
for template in $(grep '^huckleberry_tpl_' <<<"$databases_added" || true); do
  test_postgres_psql -c "SELECT pg_advisory_lock(1752523627, hashtext('$template'))" \
    -c "ALTER DATABASE \"$template\" IS_TEMPLATE false" -c "DROP DATABASE \"$template\"" >/dev/null
  echo "dropped the template database $template"
done
if left=$(grep '^test_' <<<"$databases_added"); then
  echo "error: the tests left $(wc -l <<<"$left") database(s) on the server; each test must drop its own:" >&2
  while read -r database; do echo "  $database" >&2; done <<<"$left"
  exit 1
fi
if older=$(grep -c '^test_' <<<"$databases_before"); then
  echo "notice: $older test_* database(s) from earlier runs were already on the server; left alone"
fi
echo "no test database left"

step "Fuzzing the SDK's targets, ${FUZZ_SECONDS:-10} s each (scripts/fuzz.sh)"
# Short here, and only the targets that do not build the whole app again (the webhook ones are
# replayed over their corpus by `cargo test` above); README "Fuzzing" says how to run them all
# longer by hand. Without nightly Rust or cargo-fuzz it prints a notice and passes.
fuzz_status=0
FUZZ_SECONDS=${FUZZ_SECONDS:-10} FUZZ_SET=${FUZZ_SET:-sdk} bash scripts/fuzz.sh || fuzz_status=$?
for status in "$tests_status" "$load_status" "$bench_status" "$fuzz_status"; do
  if ((status != 0)); then
    exit "$status"
  fi
done
