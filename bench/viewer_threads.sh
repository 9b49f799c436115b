#!/usr/bin/env bash
# Which threads a WHEP viewer adds to the server: the server process's threads by name
# (/proc/PID/task/*/comm, digits folded to #) before and after N viewers join, with the
# server's RSS and CPU per viewer. Viewers are whepsrc elements in one other process, taking
# H.264 and Opus without decoding. Threads inherit the name of the thread that made them
# unless they set one: webrtcbin's own thread and its ICE agent's thread show as the thread
# that created the webrtcbin ("wish-server").
#
# Usage: bench/viewer_threads.sh [--relay] [viewers] [seconds]   (default 10 viewers, 6 s of CPU)
set -uo pipefail
cd "$(dirname "$0")/.."
relay=0
if [[ "${1:-}" == "--relay" ]]; then relay=1; shift; fi
viewers="${1:-10}"
seconds="${2:-6}"
export GST_PLUGIN_PATH="$PWD/build/gst/wish${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
tick=$(getconf CLK_TCK)
scratch=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$scratch"; }
trap cleanup EXIT

. "$(dirname "$0")/viewer_server.sh"
start_viewer_server "$relay" "$port"

names() { cat /proc/"$server"/task/*/comm | sed 's/[0-9]\+/#/g' | sort | uniq -c | awk '{c=$1; $1=""; print substr($0, 2) "\t" c}'; }

names | sort >"$scratch/before"
threads0=$(server_threads)
cpu0=$(server_cpu 2)
rss0=$(server_rss_kb)
desc=""
for ((i = 0; i < viewers; i++)); do
  desc+=" whepsrc name=w$i whep-endpoint=http://127.0.0.1:$port/whep ice-local-addresses=127.0.0.1"
  desc+=" video-codecs=h264 audio-codecs=opus w$i. ! video/x-h264 ! fakesink w$i. ! audio/x-opus ! fakesink"
done
gst-launch-1.0 -q $desc >/dev/null 2>&1 &
pids+=("$!")
sleep 8  # every viewer connected and streaming
names | sort >"$scratch/after"
threadsN=$(server_threads)
cpuN=$(server_cpu 2)
rssN=$(server_rss_kb)
echo "$([[ $relay == 1 ]] && echo "WHIP->WHEP relay" || echo "whepserversink encoding 640x360@30"), $viewers viewers (load $(cut -d' ' -f1 /proc/loadavg)):"
echo "  threads: $threads0 -> $threadsN, $(echo "scale=2; ($threadsN - $threads0) / $viewers" | bc) per viewer"
echo "  RSS:     $((rss0 / 1024)) -> $((rssN / 1024)) MiB, $(((rssN - rss0) / viewers)) KiB per viewer"
echo "  CPU:     $cpu0 -> $cpuN % of a core, $(echo "scale=3; ($cpuN - $cpu0) / $viewers" | bc) % per viewer"
echo "  threads by name (before, after, added):"
join -t $'\t' -a 2 -e 0 -o 0,1.2,2.2 "$scratch/before" "$scratch/after" |
  awk -F'\t' '{printf "    %-18s %4d %4d %+5d\n", $1, $2, $3, $3 - $2}' | sort -k4,4rn -k1,1
