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

chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  echo "chromium-whip $codec: SKIP $chromium not found (install the Debian package \"chromium\")"
  exit 77
fi
for tool in node npm gst-launch-1.0; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "chromium-whip $codec: FAIL $tool not found in PATH" >&2
    exit 1
  fi
done

# npm ci is idempotent but slow-ish; only run it when the installed tree is missing
# or does not match the lock file.
installed_lock="$here/node_modules/.package-lock.json"
if [ ! -f "$here/node_modules/playwright-core/package.json" ] || [ ! -f "$installed_lock" ] \
   || [ "$here/package-lock.json" -nt "$installed_lock" ]; then
  echo "chromium-whip $codec: installing node modules (npm ci)"
  (cd "$here" && npm ci --no-audit --no-fund)
fi

export GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$here/../../build/gst/wish}"
exec node "$here/chromium-whip.mjs" "$codec"
