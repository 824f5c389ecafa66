# Sourced by the scripts that need a Debian package for a tool: `ensure_tool <command> <package>`
# installs the package when the command is missing and this is a root shell with apt-get, and
# returns whether the command is there now (the caller prints its own notice and skips if not).
ensure_tool() {
  local command=$1 package=$2
  command -v "$command" >/dev/null 2>&1 && return 0
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $package (Debian package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null 2>&1; } || true
  fi
  command -v "$command" >/dev/null 2>&1
}
