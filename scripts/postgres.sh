# shellcheck shell=bash
# A throwaway PostgreSQL server for the integration tests.
#
# Meant to be sourced by bash scripts (it works under `set -euo pipefail`):
#
#   source scripts/postgres.sh
#   start_test_postgres        # exports DATABASE_URL=postgres://postgres@127.0.0.1:<port>/postgres
#   test_postgres_psql -c 'SELECT 1'   # psql on that database (see the function)
#
# start_test_postgres initialises a fresh cluster in a temporary directory, starts
# it on a free loopback port and stops and deletes it when the calling shell exits
# (an EXIT trap that runs first and then runs whatever EXIT trap was already set; a
# caller that sets its own EXIT trap afterwards must keep ours the same way). Nothing
# outside the temporary directory is used, so parallel runs do not interfere.
#
# Environment:
#   DATABASE_URL  if already set, that database is used and nothing is started;
#                 this also makes a second call in the same shell a no-op.
#   PG_BINDIR     directory holding initdb and pg_ctl; when set, only it is
#                 searched. If they are not there the script behaves as if
#                 PostgreSQL were not installed: as root it installs Debian's
#                 `postgresql` package and searches the standard places; otherwise
#                 it says what to install and fails. PG_BINDIR=/nonexistent
#                 therefore exercises that branch on a machine that has PostgreSQL.
#
# PostgreSQL refuses to run as root, so as root the server runs as the `postgres`
# system user (created if missing); otherwise it runs as the current user.

# Prints the directory holding initdb and pg_ctl, or fails.
_test_postgres_find_bindir() {
  local candidates=() dir initdb
  if [[ -n ${PG_BINDIR:-} && ${1:-} != --ignore-override ]]; then
    candidates=("$PG_BINDIR")
  else
    # pg_config knows where its installation keeps the server binaries, but it also
    # comes with libpq-dev alone, hence the checks below.
    if command -v pg_config >/dev/null 2>&1; then
      candidates+=("$(pg_config --bindir 2>/dev/null || true)")
    fi
    # Debian keeps each major version in its own directory, off PATH; prefer the newest.
    while IFS= read -r dir; do
      candidates+=("$dir")
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV)
    if initdb=$(command -v initdb 2>/dev/null); then
      candidates+=("$(dirname "$(readlink -f "$initdb")")")
    fi
  fi
  for dir in "${candidates[@]}"; do
    # Take initdb and pg_ctl from the same directory so their versions match.
    if [[ -n $dir && -x $dir/initdb && -x $dir/pg_ctl ]]; then
      printf '%s\n' "$dir"
      return 0
    fi
  done
  return 1
}

# Installs Debian's PostgreSQL server (root only).
_test_postgres_install() {
  local install_hint='apt-get update && apt-get install -y --no-install-recommends postgresql'
  if ((EUID != 0)); then
    echo "PostgreSQL server binaries (initdb, pg_ctl) were not found; the integration tests need them." >&2
    echo "Install them as root, e.g.:  sudo sh -c '$install_hint'" >&2
    echo "(or point PG_BINDIR at a directory holding initdb and pg_ctl, or set DATABASE_URL)" >&2
    return 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "PostgreSQL server binaries (initdb, pg_ctl) were not found and apt-get is not available;" >&2
    echo "install a PostgreSQL server, or set PG_BINDIR or DATABASE_URL." >&2
    return 1
  fi
  echo "PostgreSQL server binaries not found; installing Debian's postgresql package"

  # The package would create (and, where services run, start) a default "main"
  # cluster on port 5432. We never use it, so ask postgresql-common not to create it.
  # Only done on a machine without postgresql-common, so no existing configuration is
  # edited; UCF_FORCE_CONFFOLD makes the package keep this file rather than prompt.
  local createcluster_conf=/etc/postgresql-common/createcluster.conf
  if [[ ! -e $createcluster_conf ]]; then
    if ! mkdir -p "$(dirname "$createcluster_conf")" ||
      ! printf '%s\n' '# Written by scripts/postgres.sh: the tests use throwaway clusters of their own.' \
        'create_main_cluster = false' >"$createcluster_conf"; then
      return 1
    fi
  fi
  # Clusters already running before the install are none of our business ...
  local online_before=''
  if command -v pg_lsclusters >/dev/null 2>&1; then
    online_before=$(pg_lsclusters -h 2>/dev/null | awk '$4 == "online" { print $1 "/" $2 }' || true)
  fi

  apt-get update -q || return 1
  DEBIAN_FRONTEND=noninteractive UCF_FORCE_CONFFOLD=1 \
    apt-get install -y -q --no-install-recommends postgresql || return 1

  # ... but a default cluster that the install created and started anyway (e.g. when
  # postgresql-common was already configured) is stopped: it only wastes resources.
  local version name port status _
  if command -v pg_lsclusters >/dev/null 2>&1; then
    while read -r version name port status _; do
      if [[ $status == online ]] && ! grep -qxF "$version/$name" <<<"$online_before"; then
        echo "Stopping the default cluster $version/$name (port $port) created by the package install"
        pg_ctlcluster "$version" "$name" stop || true
      fi
    done < <(pg_lsclusters -h 2>/dev/null || true)
  fi
}

# Runs a command as the user the server runs as, from the cluster's directory
# (the caller's working directory may not be readable by that user).
_test_postgres_as_server_user() {
  local dir=$1
  shift
  if ((EUID == 0)); then
    (cd "$dir" && runuser -u postgres -- "$@")
  else
    (cd "$dir" && "$@")
  fi
}

# Prints a free TCP port on 127.0.0.1. Another process may still take it before the
# server binds it; start_test_postgres retries with a new port when that happens.
_test_postgres_free_port() {
  if command -v python3 >/dev/null 2>&1; then
    # Binding port 0 lets the kernel choose an unused port.
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' &&
      return 0
  fi
  local port attempt
  for ((attempt = 0; attempt < 100; attempt++)); do
    port=$((20000 + RANDOM % 40000))
    # A refused connection means nothing listens there.
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      printf '%s\n' "$port"
      return 0
    fi
  done
  echo "could not find a free TCP port on 127.0.0.1" >&2
  return 1
}

# Stops the cluster in $2 (immediately: its data is thrown away) and deletes $2.
# Never fails: it runs from an EXIT trap, where a failure under `set -e` would skip
# the traps chained after it and change the script's exit status.
_test_postgres_cleanup() {
  local bindir=$1 dir=$2
  [[ -d $dir ]] || return 0
  if [[ -f $dir/data/postmaster.pid ]]; then
    _test_postgres_as_server_user "$dir" "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop \
      >/dev/null 2>&1 || true
  fi
  rm -rf -- "$dir" || true
}

# Prints what the server and initdb logged, then deletes the cluster.
_test_postgres_fail() {
  local bindir=$1 dir=$2 message=$3 log
  echo "start_test_postgres: $message" >&2
  for log in "$dir/initdb.log" "$dir/server.log"; do
    # initdb's log matters only if the server never got as far as writing its own.
    if [[ -s $log && ! ($log == */initdb.log && -s $dir/server.log) ]]; then
      echo "---- last lines of $(basename "$log") ----" >&2
      tail -n 40 "$log" >&2 || true
    fi
  done
  _test_postgres_cleanup "$bindir" "$dir"
  return 1
}

start_test_postgres() {
  if [[ -n ${DATABASE_URL:-} ]]; then
    # Hide a password, if any, from the log.
    echo "DATABASE_URL is already set; using that database ($(sed -E 's#(//[^:/@]*):[^@]*@#\1:***@#' <<<"$DATABASE_URL"))"
    return 0
  fi

  local bindir
  if ! bindir=$(_test_postgres_find_bindir); then
    _test_postgres_install || return 1
    # The package installs to the standard places, which PG_BINDIR may have hidden.
    if ! bindir=$(_test_postgres_find_bindir --ignore-override); then
      echo "start_test_postgres: initdb and pg_ctl are still missing after installing postgresql" >&2
      return 1
    fi
  fi

  local tmp_parent=${TMPDIR:-/tmp}
  if ((EUID == 0)); then
    if ! id -u postgres >/dev/null 2>&1; then
      useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin postgres || return 1
    fi
    # The postgres user must be able to reach the directory, and TMPDIR may point
    # into root's home.
    tmp_parent=/tmp
  fi
  local dir
  dir=$(mktemp -d "$tmp_parent/test-postgres.XXXXXX") || return 1
  # Remove the cluster however the caller's shell ends from here on, keeping (and
  # running after ours) whatever EXIT trap was there before.
  local previous_trap
  previous_trap=$(trap -p EXIT)
  if [[ -n $previous_trap ]]; then
    # `trap -p` prints `trap -- '<command>' EXIT`, quoted for re-use by the shell.
    eval "set -- $previous_trap"
    previous_trap=$3
  fi
  # shellcheck disable=SC2064 # expand the paths now, they are local variables
  trap -- "_test_postgres_cleanup $(printf '%q %q' "$bindir" "$dir") || true${previous_trap:+; $previous_trap}" EXIT

  if ((EUID == 0)); then
    chown postgres: "$dir" || {
      _test_postgres_fail "$bindir" "$dir" "could not hand $dir to the postgres user"
      return 1
    }
  fi

  # trust auth: the server listens on loopback only and lives as long as the tests.
  # --no-sync: the data is thrown away, and skipping the fsyncs saves seconds.
  local locale
  for locale in C.UTF-8 C; do # C.UTF-8 may be missing on minimal systems.
    rm -rf -- "$dir/data"
    if _test_postgres_as_server_user "$dir" "$bindir/initdb" -D "$dir/data" --auth=trust -U postgres \
      -E UTF8 --no-sync --locale="$locale" >"$dir/initdb.log" 2>&1; then
      break
    fi
    if [[ $locale == C ]]; then
      _test_postgres_fail "$bindir" "$dir" "initdb failed"
      return 1
    fi
  done

  # Durability settings are off: the data is thrown away, and the tests run faster.
  local port attempt started=''
  for ((attempt = 1; attempt <= 5; attempt++)); do
    port=$(_test_postgres_free_port) || {
      _test_postgres_fail "$bindir" "$dir" "no free port"
      return 1
    }
    # A fresh log per attempt, so that only this attempt's errors are reported.
    rm -f -- "$dir/server.log"
    if _test_postgres_as_server_user "$dir" "$bindir/pg_ctl" -w -D "$dir/data" -l "$dir/server.log" \
      -o "-p $port -k $(printf '%q' "$dir") -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
      start >/dev/null; then
      started=1
      break
    fi
    # Someone else took the port between our check and the server's bind: try another.
    if ! grep -qE 'could not bind|Address already in use|could not create any TCP/IP sockets' "$dir/server.log" 2>/dev/null; then
      break
    fi
    echo "start_test_postgres: port $port was taken; retrying with another one" >&2
  done
  if [[ -z $started ]]; then
    _test_postgres_fail "$bindir" "$dir" "the PostgreSQL server did not start"
    return 1
  fi

  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "Started $("$bindir/postgres" --version 2>/dev/null || echo PostgreSQL) in $dir; DATABASE_URL=$DATABASE_URL"
}

# Runs psql on $DATABASE_URL with the given arguments: no psqlrc, unaligned rows without
# headers or footers, stopping at the first error. psql comes from PATH, else from the
# directory holding the server binaries (it is not always on PATH, e.g. on Debian as root).
test_postgres_psql() {
  local psql bindir
  if ! psql=$(command -v psql 2>/dev/null); then
    if bindir=$(_test_postgres_find_bindir) && [[ -x $bindir/psql ]]; then
      psql=$bindir/psql
    else
      echo "test_postgres_psql: psql was not found (Debian: apt-get install postgresql-client)" >&2
      return 1
    fi
  fi
  "$psql" -X -q -A -t -v ON_ERROR_STOP=1 -d "$DATABASE_URL" "$@"
}

# Starts a second throwaway server that accepts TLS connections only (`hostssl`), with a
# certificate for 127.0.0.1 signed by a CA made here, for the database TLS tests, and exports
#   TLS_DATABASE_URL            postgres://postgres@127.0.0.1:<port>/postgres?sslmode=require
#   TLS_DATABASE_CA_CERT        the CA that signed the server's certificate
#   TLS_DATABASE_WRONG_CA_CERT  another CA, which did not
# Stopped and deleted when the calling shell exits, like start_test_postgres's. Without
# openssl or the server binaries it says so and exports nothing (the tests then skip).
start_tls_test_postgres() {
  local bindir
  if ! command -v openssl >/dev/null 2>&1 || ! bindir=$(_test_postgres_find_bindir); then
    echo "notice: openssl or the PostgreSQL server binaries are missing; the database TLS tests will not connect"
    return 0
  fi
  local tmp_parent=${TMPDIR:-/tmp}
  ((EUID == 0)) && tmp_parent=/tmp
  local dir
  dir=$(mktemp -d "$tmp_parent/test-postgres-tls.XXXXXX") || return 1
  local previous_trap
  previous_trap=$(trap -p EXIT)
  if [[ -n $previous_trap ]]; then
    eval "set -- $previous_trap"
    previous_trap=$3
  fi
  # shellcheck disable=SC2064 # expand the paths now, they are local variables
  trap -- "_test_postgres_cleanup $(printf '%q %q' "$bindir" "$dir") || true${previous_trap:+; $previous_trap}" EXIT

  # Two days are plenty for one run; 2048-bit RSA keeps generation under a second.
  local subject
  for subject in ca wrong-ca; do
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=huckleberry test $subject" \
      -keyout "$dir/$subject.key" -out "$dir/$subject.crt" >/dev/null 2>&1 || {
      _test_postgres_fail "$bindir" "$dir" "openssl could not make the test CA"
      return 1
    }
  done
  printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' 'basicConstraints=CA:FALSE' \
    'keyUsage=digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' >"$dir/server.ext"
  if ! openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$dir/server.key" \
    -out "$dir/server.csr" >/dev/null 2>&1 ||
    ! openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
      -CAcreateserial -days 2 -extfile "$dir/server.ext" -out "$dir/server.crt" >/dev/null 2>&1; then
    _test_postgres_fail "$bindir" "$dir" "openssl could not make the server certificate"
    return 1
  fi
  # The server refuses a key others can read.
  chmod 600 "$dir/server.key"
  if ((EUID == 0)); then
    chown -R postgres: "$dir" || return 1
  fi

  local locale
  for locale in C.UTF-8 C; do
    rm -rf -- "$dir/data"
    if _test_postgres_as_server_user "$dir" "$bindir/initdb" -D "$dir/data" --auth=trust -U postgres \
      -E UTF8 --no-sync --locale="$locale" >"$dir/initdb.log" 2>&1; then
      break
    fi
    if [[ $locale == C ]]; then
      _test_postgres_fail "$bindir" "$dir" "initdb failed"
      return 1
    fi
  done
  # TCP only with TLS: a plain connection finds no line to match and is refused.
  printf '%s\n' 'local all all trust' 'hostssl all all 127.0.0.1/32 trust' \
    'hostssl all all ::1/128 trust' >"$dir/data/pg_hba.conf"

  local port attempt started=''
  for ((attempt = 1; attempt <= 5; attempt++)); do
    port=$(_test_postgres_free_port) || {
      _test_postgres_fail "$bindir" "$dir" "no free port"
      return 1
    }
    rm -f -- "$dir/server.log"
    if _test_postgres_as_server_user "$dir" "$bindir/pg_ctl" -w -D "$dir/data" -l "$dir/server.log" \
      -o "-p $port -k $(printf '%q' "$dir") -c listen_addresses=127.0.0.1 -c fsync=off -c ssl=on -c ssl_cert_file=$(printf '%q' "$dir/server.crt") -c ssl_key_file=$(printf '%q' "$dir/server.key")" \
      start >/dev/null; then
      started=1
      break
    fi
    if ! grep -qE 'could not bind|Address already in use|could not create any TCP/IP sockets' "$dir/server.log" 2>/dev/null; then
      break
    fi
  done
  if [[ -z $started ]]; then
    _test_postgres_fail "$bindir" "$dir" "the TLS PostgreSQL server did not start"
    return 1
  fi
  export TLS_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=require"
  export TLS_DATABASE_CA_CERT=$dir/ca.crt
  export TLS_DATABASE_WRONG_CA_CERT=$dir/wrong-ca.crt
  echo "Started a TLS-only PostgreSQL in $dir; TLS_DATABASE_URL=$TLS_DATABASE_URL"
}
