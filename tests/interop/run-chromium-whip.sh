#!/usr/bin/env bash
# Interop test: headless Chromium publishes (WHIP) to a whipserversrc -> whepserversink
# relay and a second Chromium page plays it (WHEP); see chromium-whip.mjs.
#
# Usage: run-chromium-whip.sh [vp8|h264]
# Exit status: 0 pass, 1 fail, 77 skip (chromium not installed).
#
# Installs the pinned node modules (npm ci) on first use, then runs the test.
# GST_PLUGIN_PATH defaults to ../../build/gst/wish relative to this folder.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
codec="${1:-vp8}"
case "$codec" in
  vp8|h264) ;;
  *) echo "usage: $0 [vp8|h264]" >&2; exit 2 ;;
esac

tag="chromium-whip $codec"
. "$here/node-env.sh"
chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  echo "$tag: SKIP $chromium not found (install the Debian package \"chromium\")"
  exit 77
fi
require_tools 1 node npm gst-launch-1.0
ensure_node_modules playwright-core

export GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$here/../../build/gst/wish}"
exec node "$here/chromium-whip.mjs" "$codec"
