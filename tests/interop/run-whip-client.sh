#!/usr/bin/env bash
# Interop test: Debian's simple-whip-client (binary "whip-client") publishes to
# whipserversrc, which must hand out decoded video and audio.
#
# Usage: run-whip-client.sh <vp8|h264>
# Exit status: 0 pass, 1 fail, 77 skip (whip-client, cc or a publisher-side
# GStreamer element is missing), 2 usage error.
#
# Publisher: whip-client with videotestsrc ! vp8enc|x264enc (RTP) + audiotestsrc !
# opusenc (RTP), trickling its candidates with PATCH. Receiver: gst-launch-1.0 with
# whipserversrc (address and ICE on 127.0.0.1 only) whose video_0/audio_0 pads go
# to counting fakesinks. Pass when >= MIN_FRAMES decoded (not corrupted) video frames
# and >= MIN_AUDIO audio buffers arrived, whipserversrc posted wish-publisher-joined
# and, after whip-client was stopped (it then DELETEs its session),
# wish-publisher-left with reason=closed.
#
# whip-client links libsoup-2.4. libnice (pulled in by webrtcbin) has a DT_NEEDED on
# libgupnp-igd-1.0.so.4 -> libgupnp-1.6 -> libsoup-3.0, and libsoup-3's load-time
# check aborts the process ("libsoup2 symbols detected ...") as soon as webrtcbin
# loads. Overriding gupnp functions with LD_PRELOAD cannot help (the abort happens
# while the library is being loaded, before anything is called), so this script
# compiles a stand-in libgupnp-igd-1.0.so.4 (same soname, the symbols libnice uses,
# UPnP IGD just "unavailable", no libgupnp/libsoup-3 behind it) into a temporary
# directory and points only whip-client's LD_LIBRARY_PATH at it. The product is not
# touched; the receiving gst-launch-1.0 uses the real libraries.
#
# Network: whipserversrc gathers on 127.0.0.1 only. whip-client has no option to
# restrict its gathering, so a second LD_PRELOAD wrapper (getifaddrs) shows its
# libnice nothing but 127.0.0.1; the test checks that every candidate it trickles is
# on 127.0.0.1.
#
# Environment:
#   GST_PLUGIN_PATH  where libgstwish.so lives (default ../../build/gst/wish)
#   WHIP_CLIENT      whip-client executable (default: from PATH)
#   MIN_FRAMES       decoded video frames required (default 30)
#   MIN_AUDIO        decoded audio buffers required (default 10)
#   GST_DEBUG        passed to the receiving gst-launch-1.0
#   VERBOSE=1        print the logs also on success
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
codec="${1:-}"
case "$codec" in
  vp8|h264) ;;
  *) echo "usage: $0 <vp8|h264>" >&2; exit 2 ;;
esac
TAG="whip-client $codec"
MIN_FRAMES="${MIN_FRAMES:-30}"
MIN_AUDIO="${MIN_AUDIO:-10}"
HOST=127.0.0.1
SERVER_READY_TIMEOUT=10   # s, receiver HTTP endpoint up
MEDIA_TIMEOUT=25          # s, from whip-client start until enough frames arrived
STOP_TIMEOUT=5            # s, per signal when stopping a process

skip() { echo "$TAG: SKIP $*"; exit 77; }
info() { echo "[$TAG] $*"; }

WHIP_CLIENT="${WHIP_CLIENT:-$(command -v whip-client || true)}"
[ -n "$WHIP_CLIENT" ] && [ -x "$WHIP_CLIENT" ] \
  || skip "whip-client not found (install the Debian package \"simple-whip-client\")"
command -v cc >/dev/null 2>&1 || skip "no C compiler (cc) to build the libgupnp-igd stand-in"
for tool in gst-launch-1.0 gst-inspect-1.0 curl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$TAG: FAIL $tool not found in PATH"; exit 1; }
done

case "$codec" in
  vp8)
    venc="vp8enc deadline=1 keyframe-max-dist=30"
    vpay="rtpvp8pay pt=96 ssrc=2 ! queue ! application/x-rtp,media=video,encoding-name=VP8,payload=96"
    need=(vp8enc rtpvp8pay) ;;
  h264)
    venc="x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! video/x-h264,profile=constrained-baseline"
    vpay="rtph264pay pt=102 ssrc=2 config-interval=-1 ! queue ! application/x-rtp,media=video,encoding-name=H264,payload=102"
    need=(x264enc rtph264pay) ;;
esac
for el in "${need[@]}" videotestsrc audiotestsrc opusenc rtpopuspay webrtcbin; do
  gst-inspect-1.0 "$el" >/dev/null 2>&1 || skip "GStreamer element $el (publisher side) not available"
done
VIDEO_PIPE="videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! videoconvert ! queue ! $venc ! $vpay"
AUDIO_PIPE="audiotestsrc is-live=true wave=red-noise ! audioconvert ! audioresample ! queue ! opusenc ! rtpopuspay pt=100 ssrc=1 ! queue ! application/x-rtp,media=audio,encoding-name=OPUS,payload=100"

export GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$here/../../build/gst/wish}"
gst-inspect-1.0 whipserversrc >/dev/null 2>&1 \
  || { echo "$TAG: FAIL whipserversrc not found (GST_PLUGIN_PATH=$GST_PLUGIN_PATH)"; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/wish-whip-client-XXXXXX")"
recv_pid=""
client_pid=""
failed=0

# Stop one process by PID: SIGINT/SIGTERM, then SIGKILL; returns its exit status.
stop_pid() {
  local pid="$1" first="$2" sig t
  [ -n "$pid" ] || return 0
  for sig in "$first" TERM KILL; do
    kill -0 "$pid" 2>/dev/null || break
    kill -s "$sig" "$pid" 2>/dev/null || break
    for ((t = 0; t < STOP_TIMEOUT * 10; t++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null || { info "pid $pid stopped after SIG$sig"; break; }
  done
  wait "$pid" 2>/dev/null
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$client_pid" ] && stop_pid "$client_pid" TERM
  [ -n "$recv_pid" ] && stop_pid "$recv_pid" INT
  client_pid="" recv_pid=""
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "$TAG: interrupted"; exit 1' INT TERM

failed_checks=""
check() {  # check <name> <ok:0|1> [detail]
  if [ "$2" = 1 ]; then echo "ok   $1${3:+ ($3)}"; else
    echo "FAIL $1${3:+ ($3)}"; failed=1; failed_checks="$failed_checks; $1${3:+ ($3)}"; fi
}

show_logs() {
  echo "--- whip-client output (tail) ---"
  tail -n 80 "$work/client.log" 2>/dev/null
  echo "--- receiver gst-launch-1.0 output without per-buffer lines (tail) ---"
  grep -a -v -e 'last-message' "$work/recv.log" 2>/dev/null | tail -n 150
}

# The libgupnp-igd stand-in for whip-client (see the header comment).
mkdir -p "$work/lib"
cat > "$work/igdstub.c" <<'EOF'
/* Stand-in for libgupnp-igd-1.0.so.4: UPnP IGD is reported unavailable
 * (the constructors return NULL, which libnice checks), no libsoup-3 gets loaded. */
#include <stddef.h>
typedef unsigned long GType;
GType gupnp_simple_igd_get_type(void) { return 20 << 2; /* G_TYPE_OBJECT */ }
GType gupnp_simple_igd_thread_get_type(void) { return 20 << 2; }
void *gupnp_simple_igd_new(void) { return NULL; }
void *gupnp_simple_igd_thread_new(void) { return NULL; }
void gupnp_simple_igd_add_port(void *s, const char *proto, unsigned ext_port, const char *local_ip,
                               unsigned local_port, unsigned lease, const char *desc) {}
void gupnp_simple_igd_remove_port(void *s, const char *proto, unsigned ext_port) {}
void gupnp_simple_igd_remove_port_local(void *s, const char *proto, const char *local_ip,
                                        unsigned local_port) {}
void gupnp_simple_igd_delete_all_mappings(void *s) {}
EOF
if ! cc -shared -fPIC -o "$work/lib/libgupnp-igd-1.0.so.4" -Wl,-soname,libgupnp-igd-1.0.so.4 \
     "$work/igdstub.c" 2>"$work/cc.log"; then
  cat "$work/cc.log"
  echo "$TAG: FAIL could not build the libgupnp-igd stand-in"
  exit 1
fi

# whip-client cannot be told which interfaces ICE may use: an LD_PRELOAD wrapper around
# getifaddrs() hides every address but 127.0.0.1 from its process, so libnice gathers,
# offers and checks loopback only. Entries are blanked rather than unlinked, so
# freeifaddrs() still gets the list it allocated.
cat > "$work/loopback_only.c" <<'EOF2'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
int getifaddrs(struct ifaddrs **list) {
  static int (*real)(struct ifaddrs **);
  if (!real) real = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
  int r = real(list);
  if (r != 0) return r;
  for (struct ifaddrs *i = *list; i; i = i->ifa_next) {
    int keep = i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
               ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
    if (!keep) i->ifa_addr = NULL;
    else i->ifa_flags &= ~IFF_LOOPBACK;  /* libnice skips loopback interfaces otherwise */
  }
  return 0;
}
EOF2
if ! cc -shared -fPIC -o "$work/lib/loopback_only.so" "$work/loopback_only.c" -ldl 2>"$work/cc.log"; then
  cat "$work/cc.log"
  echo "$TAG: FAIL could not build the loopback-only getifaddrs wrapper"
  exit 1
fi

free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
  else
    echo $((20000 + RANDOM % 20000))
  fi
}

# Receiver. -m prints the element messages, -v the fakesinks' per-buffer last-message.
port="$(free_port)"
endpoint="http://$HOST:$port/whip"
info "receiver: gst-launch-1.0 whipserversrc on $endpoint"
gst-launch-1.0 -m -v \
  whipserversrc name=in address=$HOST port="$port" ice-local-addresses=$HOST \
  in.video_0 ! queue ! fakesink name=vsink silent=false sync=false async=false \
  in.audio_0 ! queue ! fakesink name=asink silent=false sync=false async=false \
  >"$work/recv.log" 2>&1 </dev/null &
recv_pid=$!

ready=0
for ((i = 0; i < SERVER_READY_TIMEOUT * 5; i++)); do
  kill -0 "$recv_pid" 2>/dev/null || break
  code="$(curl -s -o /dev/null -m 1 -w '%{http_code}' -X OPTIONS "$endpoint" 2>/dev/null || true)"
  case "$code" in 2??) ready=1; break ;; esac
  sleep 0.2
done
if [ "$ready" != 1 ]; then
  check "receiver endpoint $endpoint up within ${SERVER_READY_TIMEOUT}s" 0 "last OPTIONS status: ${code:-none}"
  show_logs
  echo "$TAG: FAIL"
  exit 1
fi
info "receiver up (OPTIONS $endpoint -> $code)"

# Publisher: own registry (the plugin path differs from the receiver's) and only
# the system plugins; the gupnp-igd stand-in only in its library path.
info "publisher: whip-client -u $endpoint"
env -u GST_PLUGIN_PATH GST_REGISTRY="$work/registry.bin" \
  LD_LIBRARY_PATH="$work/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
  LD_PRELOAD="$work/lib/loopback_only.so" \
  "$WHIP_CLIENT" -o -L -l 5 -u "$endpoint" -V "$VIDEO_PIPE" -A "$AUDIO_PIPE" \
  >"$work/client.log" 2>&1 </dev/null &
client_pid=$!

count_v() { grep -a -c '^/GstPipeline:pipeline0/GstFakeSink:vsink: last-message = chain' "$work/recv.log"; }
count_v_ok() { grep -a '^/GstPipeline:pipeline0/GstFakeSink:vsink: last-message = chain' "$work/recv.log" | grep -a -vc ' corrupted '; }
count_a() { grep -a -c '^/GstPipeline:pipeline0/GstFakeSink:asink: last-message = chain' "$work/recv.log"; }

got=0
start=$SECONDS
while ((SECONDS - start < MEDIA_TIMEOUT)); do
  kill -0 "$client_pid" 2>/dev/null || { info "whip-client exited early"; break; }
  kill -0 "$recv_pid" 2>/dev/null || { info "receiver exited early"; break; }
  if (($(count_v_ok) >= MIN_FRAMES && $(count_a) >= MIN_AUDIO)); then got=1; break; fi
  sleep 0.25
done
elapsed=$((SECONDS - start))
client_alive=0; kill -0 "$client_pid" 2>/dev/null && client_alive=1

# Stop the publisher the normal way (SIGTERM: whip-client DELETEs its session).
stop_pid "$client_pid" TERM
client_rc=$?
client_pid=""
# Give whipserversrc a moment to post wish-publisher-left.
for ((i = 0; i < 30; i++)); do
  grep -a -q 'wish-publisher-left' "$work/recv.log" && break
  sleep 0.1
done
stop_pid "$recv_pid" INT
recv_pid=""

vframes="$(count_v)"; vok="$(count_v_ok)"; abufs="$(count_a)"
# The caps each fakesink got, from the pad's caps notification or the fakesink's
# last-message for the caps event: gst-launch -v now and then misses one of them (seen for
# the pad's caps notification).
sink_caps() {
  { grep -a -m1 -o "GstFakeSink:$1.GstPad:sink: caps = .*" "$work/recv.log" | sed 's/.*caps = //'
    grep -a -m1 -o "($1:sink) E (type: caps ([0-9]*), GstEventCaps, caps=(GstCaps)\"[^\"]*" "$work/recv.log" \
      | sed 's/.*caps=(GstCaps)"//; s/\\//g'
  } | grep -v '^NULL$' | head -n1
}
vcaps="$(sink_caps vsink)"
acaps="$(sink_caps asink)"
case "$codec" in
  vp8) decre='(vp8dec|avdec_vp8)' ;;
  h264) decre='(avdec_h264|openh264dec|vah264dec|nvh264dec|v4l2h264dec|h264dec)' ;;
esac
# The decoder, from its state-changed messages (-m prints every one).
decoder="$(grep -a -oE "from element \"${decre}[0-9-]*\"" "$work/recv.log" | head -n1 | cut -d\" -f2)"
joined="$(grep -a -m1 -o 'wish-publisher-joined[^;]*' "$work/recv.log")"
left="$(grep -a -m1 -o 'wish-publisher-left[^;]*' "$work/recv.log")"
sent="$(grep -a -c 'Sending candidates: candidate' "$work/client.log")"
sent_nonloop="$(grep -a 'Sending candidates: candidate' "$work/client.log" | grep -a -vc ' 127\.0\.0\.1 ')"

info "after ${elapsed}s: video frames $vframes ($vok not corrupted), audio buffers $abufs"
info "whip-client trickled $sent candidates, $sent_nonloop of them not on 127.0.0.1"
check "whip-client offered only 127.0.0.1 candidates" "$([ "$sent_nonloop" = 0 ] && echo 1 || echo 0)" \
  "$sent_nonloop other candidates"

check "whip-client kept running until stopped" "$client_alive"
check "whip-client connected" "$(grep -a -q 'PeerConnection connected' "$work/client.log" && echo 1 || echo 0)"
check "whip-client got a resource URL (201 + Location)" \
  "$(grep -a -q 'Resource URL: http://127.0.0.1:'"$port"'/whip/' "$work/client.log" && echo 1 || echo 0)" \
  "$(grep -a -m1 -o 'Resource URL: .*' "$work/client.log")"
check "wish-publisher-joined posted" "$([ -n "$joined" ] && echo 1 || echo 0)" "$joined"
check ">= $MIN_FRAMES decoded video frames" "$([ "$vok" -ge "$MIN_FRAMES" ] && echo 1 || echo 0)" "$vok ok, $vframes total"
check "video is raw" "$([[ "$vcaps" == video/x-raw* ]] && echo 1 || echo 0)" "${vcaps:0:120}"
check "decoded by a $codec decoder" "$([ -n "$decoder" ] && echo 1 || echo 0)" "${decoder:-none found}"
check ">= $MIN_AUDIO decoded audio buffers" "$([ "$abufs" -ge "$MIN_AUDIO" ] && echo 1 || echo 0)" "$abufs"
check "audio is raw" "$([[ "$acaps" == audio/x-raw* ]] && echo 1 || echo 0)" "${acaps:0:120}"
check "whip-client exited cleanly on SIGTERM" "$([ "$client_rc" = 0 ] && echo 1 || echo 0)" "exit status $client_rc"
check "whip-client sent DELETE" "$(grep -a -q 'Disconnecting from server' "$work/client.log" && echo 1 || echo 0)"
check "wish-publisher-left posted with reason=closed (DELETE)" \
  "$([[ "$left" == *reason=\(string\)closed* ]] && echo 1 || echo 0)" "$left"
if grep -a -q 'libsoup2 symbols detected' "$work/client.log"; then
  check "no libsoup2/libsoup3 clash in whip-client" 0
fi

if [ "$failed" = 1 ] || [ "${VERBOSE:-0}" = 1 ]; then show_logs; fi
if [ "$failed" = 1 ]; then
  # Repeated last: CI logs keep only the tail.
  echo "$TAG: FAIL frames=$vok audio=$abufs; failed:${failed_checks#;}"
  exit 1
fi
echo "$TAG: PASS frames=$vok audio=$abufs"
exit 0
