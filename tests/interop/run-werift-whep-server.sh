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
tag=run-werift-whep-server
. "$here/node-env.sh"
require_tools 77 node npm gst-launch-1.0
ensure_node_modules werift

exec node "$here/werift-whep-server.mjs" "$@"
