# Sourced by viewer_cost.sh and viewer_threads.sh. start_viewer_server <relay 0|1> <port> starts
# the server measured (whepserversink encoding 640x360@30 H.264 + Opus, or with relay the
# WHIP->WHEP relay fed by a whipsink), sets $server to its PID and adds every PID to pids.
# SINK_PROPS adds properties to the whepserversink (e.g. SINK_PROPS=shared-transport=false: a
# webrtcbin per viewer, what the figures of README.md's viewer_cost and viewer_threads lines are).
start_viewer_server() {
  local relay="$1" port="$2"
  if ((relay)); then
    gst-launch-1.0 -q whipserversrc name=in address=127.0.0.1 port="$port" ice-local-addresses=127.0.0.1 \
      whepserversink name=out address=127.0.0.1 port="$port" ice-local-addresses=127.0.0.1 \
      in.video_0 ! queue ! out.video_0 in.audio_0 ! queue ! out.audio_0 >/dev/null 2>&1 &
    server=$!
    pids+=("$server")
    sleep 1
    gst-launch-1.0 -q whipsink name=w whip-endpoint="http://127.0.0.1:$port/whip" ice-local-addresses=127.0.0.1 \
      videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=30/1 ! w. \
      audiotestsrc is-live=true ! w. >/dev/null 2>&1 &
    pids+=("$!")
  else
    # shellcheck disable=SC2086
    gst-launch-1.0 -q whepserversink name=s address=127.0.0.1 port="$port" ice-local-addresses=127.0.0.1 ${SINK_PROPS:-} \
      videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=30/1 ! s. \
      audiotestsrc is-live=true ! s. >/dev/null 2>&1 &
    server=$!
    pids+=("$server")
  fi
  sleep 4
}

# What the server started above costs now (they read $server; server_cpu also $tick, and
# $seconds to measure over): CPU ticks, RSS in KiB, threads, and CPU in % of one core over
# $seconds with <scale> decimals.
server_cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
server_rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
server_threads() { ls "/proc/$server/task" | wc -l; }
server_cpu() {
  local a b
  a=$(server_cpu_ticks)
  sleep "$seconds"
  b=$(server_cpu_ticks)
  echo "scale=$1; ($b - $a) * 100 / $tick / $seconds" | bc
}
