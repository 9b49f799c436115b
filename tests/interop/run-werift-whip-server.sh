#!/usr/bin/env bash
# Starts the independent werift-based WHIP server (see werift-whip-server.mjs).
#
# Usage: run-werift-whip-server.sh [--port N] [--path /whip] [--max-lifetime SECONDS] [--verbose]
#
# The first line on stdout is WHIP_URL=http://127.0.0.1:<port><path>, printed once
# the server listens. It then runs until it gets SIGTERM/SIGINT (or its parent
# process goes away). Everything else (including npm output) goes to stderr.
# Besides the WHIP endpoint it serves GET <path>/stats (JSON counters of what
# arrived per session) and POST <path>/pli (RTCP PLI to every publisher).
#
# Exit status: 0 after a signal, 1 failure, 77 missing tool (node, npm).
#
# Installs the pinned node modules (npm ci) on first use; this script then execs node,
# so its PID is the server's PID.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "run-werift-whip-server: SKIP $tool not found in PATH" >&2
    exit 77
  fi
done

# npm ci is idempotent but slow-ish; only run it when the installed tree is missing
# or does not match the lock file. Its output must not reach stdout (WHIP_URL first).
installed_lock="$here/node_modules/.package-lock.json"
if [ ! -f "$here/node_modules/werift/package.json" ] || [ ! -f "$installed_lock" ] \
   || [ "$here/package-lock.json" -nt "$installed_lock" ]; then
  echo "run-werift-whip-server: installing node modules (npm ci)" >&2
  (cd "$here" && timeout 600 npm ci --no-audit --no-fund) 1>&2
fi

exec node "$here/werift-whip-server.mjs" "$@"
