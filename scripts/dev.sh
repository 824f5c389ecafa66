#!/usr/bin/env bash
# Runs huckleberry locally in one command: `scripts/dev.sh` (arguments go to `huckleberry dev`,
# e.g. `--env-file .env.local`). `scripts/dev.sh demo` runs the offline walkthrough
# (`huckleberry demo`) on the same local PostgreSQL instead, and exits when it ends.
#
#  1. PostgreSQL: with no DATABASE_URL (in the environment or the env file), a local cluster
#     kept in $HUCKLEBERRY_DEV_DIR/pg (default .dev/pg, git-ignored; the data survives
#     restarts), started on 127.0.0.1 (port kept in .dev/pg/port) and stopped again on exit.
#     Debian's server is installed when missing and this runs as root; otherwise it says what
#     to install. A cluster that is already running (another dev.sh) is used and left running.
#  2. `huckleberry dev` on $PORT (default 3000): creates the database if missing, migrates,
#     loads the demo mentors and products (idempotently) and serves in dev mode.
#  3. The Inngest dev server (npx inngest-cli, pinned below) when npx is there, nothing listens
#     on its port yet and HUCKLEBERRY_NO_INNGEST_DEV is not 1; else one line says why not and
#     gives the command.
#
# Ctrl-C or SIGTERM stops everything this script started; running it twice is safe.
#
# Environment (the first four also from the env file; the environment wins): DATABASE_URL,
# PORT, HUCKLEBERRY_DEV_DIR, HUCKLEBERRY_NO_INNGEST_DEV=1, HUCKLEBERRY_BIN (a built binary to
# run instead of `cargo build`), PG_BINDIR (see postgres.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

INNGEST_CLI_VERSION=1.45.1
INNGEST_DEV_PORT=8288

say() { printf 'dev.sh: %s\n' "$*"; }

# shellcheck source=scripts/postgres.sh
source scripts/postgres.sh

command=dev
if [[ ${1:-} == demo ]]; then
  command=demo
  shift
fi

env_file=.env
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --env-file) env_file=${args[i + 1]:-} ;;
    --env-file=*) env_file=${args[i]#--env-file=} ;;
  esac
done

# The value the env file gives $1, read as the service reads the file: its first assignment
# (`export` and spaces around `=` allowed), quotes removed, and in an unquoted value a ` #`
# comment dropped. Nothing when the file is missing or unreadable. Like the service, a
# variable set in the environment wins over the file.
env_file_value() {
  [[ -r $env_file ]] || return 0
  local line value
  line=$(grep -m 1 -E "^[[:space:]]*(export[[:space:]]+)?$1[[:space:]]*=" "$env_file") || return 0
  value=${line#*=}
  value=${value#"${value%%[![:space:]]*}"}
  case $value in
    \"*) value=${value#\"} value=${value%%\"*} ;;
    \'*) value=${value#\'} value=${value%%\'*} ;;
    *) value=${value%%[[:space:]]#*} value=${value%"${value##*[![:space:]]}"} ;;
  esac
  printf '%s' "$value"
}

port=${PORT:-$(env_file_value PORT)}
port=${port:-3000}
dev_dir=${HUCKLEBERRY_DEV_DIR:-$(env_file_value HUCKLEBERRY_DEV_DIR)}
dev_dir=${dev_dir:-.dev}
no_inngest_dev=${HUCKLEBERRY_NO_INNGEST_DEV:-$(env_file_value HUCKLEBERRY_NO_INNGEST_DEV)}
mkdir -p -- "$dev_dir"
dev_dir=$(cd "$dev_dir" && pwd)

# What this script started, for the cleanup.
service_pid='' inngest_pid='' pg_started='' pg_bindir='' pg_dir=''

# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n $service_pid ]] && kill -0 "$service_pid" 2>/dev/null; then
    kill -TERM "$service_pid" 2>/dev/null || true
    # The service drains requests in flight for up to 30 s.
    for ((i = 0; i < 350; i++)); do
      kill -0 "$service_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$service_pid" 2>/dev/null || true
    wait "$service_pid" 2>/dev/null || true
  fi
  if [[ -n $inngest_pid ]]; then
    # npx and the dev server run in a process group of their own.
    kill -TERM -- "-$inngest_pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      kill -0 -- "-$inngest_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$inngest_pid" 2>/dev/null || true
  fi
  if [[ -n $pg_started ]]; then
    _test_postgres_as_server_user "$pg_dir" "$pg_bindir/pg_ctl" -D "$pg_dir/data" -m fast -w stop \
      >/dev/null 2>&1 || say "could not stop PostgreSQL in $pg_dir (see $pg_dir/server.log)"
  fi
  say "stopped"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

database_url_in_env_file() {
  [[ -f $env_file ]] && grep -Eq '^[[:space:]]*(export[[:space:]]+)?DATABASE_URL=[^[:space:]#]' "$env_file"
}

# Starts (or reuses) the cluster in $dev_dir/pg and exports DATABASE_URL.
start_dev_postgres() {
  pg_dir=$dev_dir/pg
  if ! pg_bindir=$(_test_postgres_find_bindir); then
    if ((EUID != 0)); then
      say "PostgreSQL's server (initdb, pg_ctl) is not installed. Install it, e.g.:"
      say "  sudo apt-get install -y postgresql   (Debian/Ubuntu)"
      say "or set DATABASE_URL to a server of yours."
      return 1
    fi
    _test_postgres_install || return 1
    pg_bindir=$(_test_postgres_find_bindir --ignore-override) || {
      say "initdb and pg_ctl are still missing after installing postgresql"
      return 1
    }
  fi
  mkdir -p -- "$pg_dir"
  if ((EUID == 0)); then
    # PostgreSQL refuses to run as root: the cluster belongs to the postgres user.
    if ! id -u postgres >/dev/null 2>&1; then
      useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin postgres
    fi
    chown postgres: "$pg_dir"
    if ! runuser -u postgres -- test -w "$pg_dir"; then
      say "the postgres user cannot reach $pg_dir (one of its parent folders is closed to it);"
      say "set HUCKLEBERRY_DEV_DIR to a folder it can reach, e.g. /var/tmp/huckleberry-dev"
      return 1
    fi
  fi
  local data=$pg_dir/data port_file=$pg_dir/port pg_port=''
  if [[ ! -f $data/PG_VERSION ]]; then
    say "creating a PostgreSQL cluster in $data"
    local locale
    for locale in C.UTF-8 C; do
      rm -rf -- "$data"
      if _test_postgres_as_server_user "$pg_dir" "$pg_bindir/initdb" -D "$data" --auth=trust \
        -U postgres -E UTF8 --locale="$locale" >"$pg_dir/initdb.log" 2>&1; then
        break
      fi
      if [[ $locale == C ]]; then
        say "initdb failed; see $pg_dir/initdb.log"
        return 1
      fi
    done
  fi
  [[ -f $port_file ]] && pg_port=$(<"$port_file")
  if _test_postgres_as_server_user "$pg_dir" "$pg_bindir/pg_ctl" -D "$data" status >/dev/null 2>&1 &&
    [[ -n $pg_port ]]; then
    say "PostgreSQL is already running in $pg_dir (port $pg_port); using it and leaving it running"
  else
    # The port of the last run when it is free, so DATABASE_URL stays the same.
    if [[ -z $pg_port ]] || (exec 3<>"/dev/tcp/127.0.0.1/$pg_port") 2>/dev/null; then
      pg_port=$(_test_postgres_free_port)
    fi
    if ! _test_postgres_as_server_user "$pg_dir" "$pg_bindir/pg_ctl" -w -D "$data" -l "$pg_dir/server.log" \
      -o "-p $pg_port -k $(printf '%q' "$pg_dir") -c listen_addresses=127.0.0.1" start >/dev/null; then
      say "PostgreSQL did not start; the last lines of $pg_dir/server.log:"
      tail -n 20 "$pg_dir/server.log" >&2 || true
      return 1
    fi
    pg_started=1
    printf '%s\n' "$pg_port" >"$port_file"
    say "PostgreSQL started in $pg_dir on port $pg_port"
  fi
  export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/huckleberry"
  say "DATABASE_URL=$DATABASE_URL"
}

if [[ -n ${DATABASE_URL:-} ]]; then
  say "using DATABASE_URL from the environment"
elif database_url_in_env_file; then
  say "using DATABASE_URL from $env_file"
else
  start_dev_postgres
fi

if [[ -n ${HUCKLEBERRY_BIN:-} ]]; then
  bin=$HUCKLEBERRY_BIN
else
  say "building (cargo build)"
  cargo build --quiet --bin huckleberry
  bin=${CARGO_TARGET_DIR:-target}/debug/huckleberry
fi

if [[ $command == demo ]]; then
  say "running the walkthrough (huckleberry demo)"
  set +e
  "$bin" demo "$@"
  status=$?
  set -e
  exit "$status"
fi

# The Inngest dev server.
if ((port == 3000)); then
  inngest_cmd=(npx --yes "inngest-cli@$INNGEST_CLI_VERSION" dev --config inngest.dev.json)
else
  inngest_cmd=(npx --yes "inngest-cli@$INNGEST_CLI_VERSION" dev --no-discovery
    -u "http://localhost:$port/api/inngest" --port "$INNGEST_DEV_PORT")
fi
inngest_line=$(printf '%q ' "${inngest_cmd[@]}")
inngest_line=${inngest_line% }
if [[ $no_inngest_dev == 1 ]]; then
  say "Inngest dev server not started (HUCKLEBERRY_NO_INNGEST_DEV=1); to start it: $inngest_line"
elif (exec 3<>"/dev/tcp/127.0.0.1/$INNGEST_DEV_PORT") 2>/dev/null; then
  say "Inngest dev server: something already listens on port $INNGEST_DEV_PORT; using it (http://localhost:$INNGEST_DEV_PORT)"
elif ! command -v npx >/dev/null 2>&1; then
  say "Inngest dev server not started (npx not found: install Node.js); to start it: $inngest_line"
else
  log=$dev_dir/inngest.log
  say "starting the Inngest dev server (log: $log); dashboard: http://localhost:$INNGEST_DEV_PORT"
  # Its own process group, so the cleanup stops npx and what it started together. A failure
  # (offline: npx downloads the CLI, which downloads a binary) is reported in one line; being
  # stopped by the cleanup is not a failure.
  # shellcheck disable=SC2016 # expanded by the inner shell
  LOG=$log LINE=$inngest_line setsid bash -c '
    "$@" >"$LOG" 2>&1
    status=$?
    if ((status != 0 && status < 128)); then
      printf "dev.sh: Inngest dev server could not start (offline? see %s); to start it yourself: %s\n" "$LOG" "$LINE"
    fi' inngest "${inngest_cmd[@]}" </dev/null &
  inngest_pid=$!
fi

say "starting huckleberry on http://localhost:$port (Ctrl-C stops everything)"
"$bin" dev "$@" &
service_pid=$!
set +e
wait "$service_pid"
status=$?
set -e
service_pid=''
exit "$status"
