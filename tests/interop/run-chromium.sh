#!/usr/bin/env bash
# Interop tests with headless Chromium:
#   whep  Chromium plays whepserversink (chromium-whep.mjs);
#   whip  Chromium publishes (WHIP) to a whipserversrc -> whepserversink relay and a
#         second Chromium page plays it (WHEP) (chromium-whip.mjs);
#   switch  a Chromium viewer is switched between two streams by switch-stream
#         (chromium-switch.mjs, with the host program given as third argument);
#   whisp  Chromium pages switch a viewer and grab its stream with WHISP
#         (chromium-whisp.mjs);
#   oma   Chromium pages play, ICE-restart and publish through the OMA RESTful Network API
#         for WebRTC Signaling (oma-path) and play the published stream with WHEP
#         (chromium-oma.mjs);
#   codecs  three Chromium pages, each taking one video codec only (VP8, H.264, VP9), play
#         whepserversink at once (transcoding for the codecs its video is not in), and one is
#         refused with 422 by a server with transcode=false (chromium-codecs.mjs); the codec
#         argument is the server's: h264 feeds it H.264 (x264enc), vp8 raw video encoded to VP8.
#   page  Chromium opens the player page whepserversink serves itself: stats overlay, viewer
#         count and layer selector from the server-sent events, checked on a screenshot
#         (chromium-page.mjs).
#   simulcast  Chromium publishes three-layer simulcast to the relay; whepsrc players and a
#         Chromium viewer each get the layer they ask for, without re-encoding
#         (chromium-simulcast.mjs); the codec argument is the publisher's.
#   keyframes  Chromium publishes (one encoding, then simulcast) to the relay; every late
#         whepsrc viewer gets a key frame of its encoding on request, soon
#         (chromium-keyframes.mjs); the codec argument is the publisher's.
#
# Usage: run-chromium.sh <whep|whip|switch|whisp|oma|codecs|page|simulcast|keyframes> <h264|vp8> [two_streams_server]
# Exit status: 0 pass, 1 fail, 77 skip (chromium not installed), 2 usage error.
#
# Installs the pinned node modules (npm ci) on first use, then runs the test.
# GST_PLUGIN_PATH defaults to ../../build/gst/wish relative to this folder.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kind="${1:-}"
codec="${2:-}"
case "$kind/$codec" in
  whep/h264|whep/vp8|page/h264|page/vp8|simulcast/h264|simulcast/vp8|keyframes/h264|keyframes/vp8|whip/h264|whip/vp8|switch/h264|switch/vp8|whisp/h264|whisp/vp8|oma/h264|oma/vp8|codecs/h264|codecs/vp8) ;;
  *) echo "usage: $0 <whep|whip|switch|whisp|oma|codecs|page|simulcast|keyframes> <h264|vp8> [two_streams_server]" >&2; exit 2 ;;
esac

tag="chromium-$kind $codec"
. "$here/node-env.sh"
chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  echo "$tag: SKIP $chromium not found (install the Debian package \"chromium\")"
  exit 77
fi
require_tools 1 node npm gst-launch-1.0
ensure_node_modules playwright-core

export GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$here/../../build/gst/wish}"
exec node "$here/chromium-$kind.mjs" "$codec" "${3:-}"  # whep: "shared" for shared-transport=true
