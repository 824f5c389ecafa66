#!/usr/bin/env bash
# Checks the Dockerfile as far as a machine without a Docker engine can: runs its build command
# (the one `RUN cargo build` line) and then its start commands, ENTRYPOINT with `migrate` on a
# fresh database and with CMD (`serve`), which must answer /readyz and stop on SIGTERM.
#
#   DOCKERFILE_CHECK=release  the build command exactly as written (a release build: slow)
#   (unset)                   the same command without --release: same sources, features
#                             and lockfile, a debug build (about 3 CPU minutes in CI, where
#                             most dependencies are already built by the tests)
#   DOCKERFILE_CHECK=skip     nothing
# Needs DATABASE_URL (a server it may create a database on), as scripts/test.sh provides.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${DOCKERFILE_CHECK:-debug}
if [[ $mode == skip ]]; then
  echo "DOCKERFILE_CHECK=skip: the Dockerfile is not checked"
  exit 0
fi
: "${DATABASE_URL:?DATABASE_URL must point at a PostgreSQL server (scripts/test.sh sets it)}"

mapfile -t builds < <(sed -n 's/^RUN \(cargo build .*\)$/\1/p' Dockerfile)
if ((${#builds[@]} != 1)); then
  echo "error: the Dockerfile must have exactly one 'RUN cargo build ...' line (found ${#builds[@]})" >&2
  exit 1
fi
read -r -a build <<<"${builds[0]}"
profile=release
if [[ $mode != release ]]; then
  kept=()
  for word in "${build[@]}"; do [[ $word == --release ]] || kept+=("$word"); done
  build=("${kept[@]}")
  profile=debug
fi
echo "+ ${build[*]}"
"${build[@]}"

# ENTRYPOINT ["/usr/local/bin/huckleberry"] and CMD ["serve"]: exec form, one word each.
entrypoint=$(sed -n 's/^ENTRYPOINT \["\([^"]*\)"\]$/\1/p' Dockerfile)
cmd=$(sed -n 's/^CMD \["\([^"]*\)"\]$/\1/p' Dockerfile)
if [[ -z $entrypoint || -z $cmd ]]; then
  echo "error: the Dockerfile needs ENTRYPOINT [\"...\"] and CMD [\"...\"] in exec form" >&2
  exit 1
fi
binary=${CARGO_TARGET_DIR:-target}/$profile/$(basename "$entrypoint")
[[ -x $binary ]] || {
  echo "error: $binary was not built by the build command" >&2
  exit 1
}

# shellcheck source=scripts/postgres.sh
source scripts/postgres.sh
database=dockerfile_check_$$_$RANDOM
admin_url=$DATABASE_URL
test_postgres_psql -c "CREATE DATABASE $database" >/dev/null
server_pid=''
cleanup() {
  [[ -n $server_pid ]] && kill -KILL "$server_pid" 2>/dev/null
  DATABASE_URL=$admin_url test_postgres_psql -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null || true
}
trap cleanup EXIT
app_url=${admin_url%/*}/$database
port=$(_test_postgres_free_port)

echo "+ $binary migrate"
DATABASE_URL=$app_url INNGEST_DEV=1 "$binary" migrate

echo "+ $binary $cmd (port $port)"
DATABASE_URL=$app_url INNGEST_DEV=1 PORT=$port SHUTDOWN_GRACE_SECS=5 "$binary" "$cmd" &
server_pid=$!
ready=''
# Whether GET /readyz on port $1 answers 200 (bash's /dev/tcp: nothing else to install).
readyz_ok() (
  exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
  printf 'GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  IFS= read -r -t 2 status_line <&3 || exit 1
  [[ $status_line =~ ^HTTP/1\.[01]\ 200 ]]
)
for ((i = 0; i < 100; i++)); do
  if readyz_ok "$port" 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.2
done
if [[ -z $ready ]]; then
  echo "error: '$cmd' did not answer /readyz with 200 within 20 s" >&2
  exit 1
fi
kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=''
if ((status != 0)); then
  echo "error: '$cmd' exited with status $status after SIGTERM" >&2
  exit 1
fi
echo "the Dockerfile's build command builds the binary; 'migrate' and '$cmd' run, /readyz answers, SIGTERM stops it"
