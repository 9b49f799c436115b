# Sourced by the run-*.sh wrappers of this folder: checks for the tools a driver needs and
# installs the pinned node modules. Expects $here (this folder) and $tag (for messages).

# require_tools <exit status when one is missing> <tool>...
require_tools() {
  local status="$1" tool word
  shift
  word=FAIL
  [ "$status" = 77 ] && word=SKIP
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "$tag: $word $tool not found in PATH" >&2
      exit "$status"
    fi
  done
}

# npm ci is idempotent but slow-ish: it runs only when the installed tree lacks <module>
# or does not match the lock file. Its output goes to stderr (servers print their URL
# first on stdout).
ensure_node_modules() {
  local module="$1" installed_lock="$here/node_modules/.package-lock.json"
  if [ ! -f "$here/node_modules/$module/package.json" ] || [ ! -f "$installed_lock" ] \
     || [ "$here/package-lock.json" -nt "$installed_lock" ]; then
    echo "$tag: installing node modules (npm ci)" >&2
    (cd "$here" && timeout 600 npm ci --no-audit --no-fund) 1>&2
  fi
}
