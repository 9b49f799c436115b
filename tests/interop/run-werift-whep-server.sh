#!/usr/bin/env bash
# Starts the independent werift-based WHEP server (see werift-whep-server.mjs).
#
# Usage: run-werift-whep-server.sh [--port N] [--video h264|vp8|none]
#                                  [--audio opus|none] [--path /whep] [--verbose]
#
# The first line on stdout is WHEP_URL=http://127.0.0.1:<port><path>, printed once
# the server listens and its media source produces RTP. It then runs until it gets
# SIGTERM/SIGINT (or its parent process goes away) and stops its gst-launch-1.0
# child before exiting. Everything else (including npm output) goes to stderr.
#
# Exit status: 0 after a signal, 1 failure, 77 missing tool (node, npm, gst-launch-1.0).
#
# Installs the pinned node modules (npm ci) on first use; this script then execs node,
# so its PID is the server's PID.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

for tool in node npm gst-launch-1.0; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "run-werift-whep-server: SKIP $tool not found in PATH" >&2
    exit 77
  fi
done

# npm ci is idempotent but slow-ish; only run it when the installed tree is missing
# or does not match the lock file. Its output must not reach stdout (WHEP_URL first).
installed_lock="$here/node_modules/.package-lock.json"
if [ ! -f "$here/node_modules/werift/package.json" ] || [ ! -f "$installed_lock" ] \
   || [ "$here/package-lock.json" -nt "$installed_lock" ]; then
  echo "run-werift-whep-server: installing node modules (npm ci)" >&2
  (cd "$here" && timeout 600 npm ci --no-audit --no-fund) 1>&2
fi

exec node "$here/werift-whep-server.mjs" "$@"
