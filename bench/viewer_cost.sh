#!/usr/bin/env bash
# Cost per viewer of whepserversink: CPU (% of one core) and memory (RSS) the server process
# spends per connected WHEP viewer, on 127.0.0.1. The server encodes 640x360@30 H.264 + Opus
# once; viewers are whepsrc processes taking H.264 without decoding, so they cost the server
# only fan-out, SRTP and ICE.
#
# With --relay the server is the WHIP->WHEP relay (whipserversrc ! whepserversink) fed by a
# whipsink publisher in another process: no encoder in the server at all.
#
# Usage: bench/viewer_cost.sh [--relay] [viewers] [seconds]     (default 20 viewers, 10 s)
set -uo pipefail
cd "$(dirname "$0")/.."
relay=0
if [[ "${1:-}" == "--relay" ]]; then relay=1; shift; fi
viewers="${1:-20}"
seconds="${2:-10}"
export GST_PLUGIN_PATH="$PWD/build/gst/wish${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
tick=$(getconf CLK_TCK)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT

. "$(dirname "$0")/viewer_server.sh"
start_viewer_server "$relay" "$port"
cpu0=$(server_cpu 1)
rss0=$(server_rss_kb)
threads0=$(server_threads)

for ((i = 0; i < viewers; i++)); do
  gst-launch-1.0 -q whepsrc whep-endpoint="http://127.0.0.1:$port/whep" ice-local-addresses=127.0.0.1 \
    video-codecs=h264 audio-codecs=opus name=w w. ! video/x-h264 ! fakesink w. ! audio/x-opus ! fakesink \
    >/dev/null 2>&1 &
  pids+=("$!")
done
sleep 6  # every viewer connected and streaming
connected=$(ss -uanp 2>/dev/null | grep -c "pid=$server,")
cpuN=$(server_cpu 1)
rssN=$(server_rss_kb)
threadsN=$(server_threads)
per_cpu=$(echo "scale=2; ($cpuN - $cpu0) / $viewers" | bc)
per_rss=$(echo "scale=0; ($rssN - $rss0) / $viewers" | bc)
if ((relay)); then what="WHIP->WHEP relay, 640x360@30 H.264 + Opus from whipsink, no re-encoding"; else what="whepserversink, 640x360@30 H.264 + Opus encoded once"; fi
echo "$what, $viewers viewers on 127.0.0.1 ($connected server UDP sockets):"
echo "  server CPU: ${cpu0}% of a core with no viewer, ${cpuN}% with $viewers -> ${per_cpu}% per viewer"
echo "  server RSS: $((rss0 / 1024)) MiB with no viewer, $((rssN / 1024)) MiB with $viewers -> ${per_rss} KiB per viewer"
echo "  server threads: $threads0 with no viewer, $threadsN with $viewers -> $(echo "scale=1; ($threadsN - $threads0) / $viewers" | bc) per viewer"
