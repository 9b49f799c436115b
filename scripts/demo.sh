#!/usr/bin/env bash
# The main job: a WHEP server streaming a live test pattern with a tone.
# Usage: scripts/demo.sh [port]      (default 8889)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
port="${1:-8889}"
export GST_PLUGIN_PATH="$PWD/build/gst/wish${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"

host=$(hostname -I 2>/dev/null | awk '{print $1}')
cat <<MSG

WHEP endpoint: http://${host:-127.0.0.1}:${port}/whep
  Play it in a browser: open that URL (the element serves a player page there).
  Play it with GStreamer:
    GST_PLUGIN_PATH=$GST_PLUGIN_PATH gst-play-1.0 whep://${host:-127.0.0.1}:${port}/whep
    GST_PLUGIN_PATH=$GST_PLUGIN_PATH gst-launch-1.0 whepsrc whep-endpoint=http://${host:-127.0.0.1}:${port}/whep name=w \\
      w. ! queue ! videoconvert ! autovideosink w. ! queue ! audioconvert ! autoaudiosink
  From another machine on the network, use its address instead of ${host:-127.0.0.1}.
  Stop with Ctrl-C.

MSG
exec gst-launch-1.0 -e whepserversink name=whep port="$port" \
  videotestsrc is-live=true pattern=ball ! video/x-raw,width=1280,height=720,framerate=30/1 ! \
    timeoverlay font-desc="Sans 24" ! whep. \
  audiotestsrc is-live=true wave=sine freq=440 volume=0.2 ! whep.
