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
tag=run-werift-whip-server
. "$here/node-env.sh"
require_tools 77 node npm
ensure_node_modules werift

exec node "$here/werift-whip-server.mjs" "$@"
