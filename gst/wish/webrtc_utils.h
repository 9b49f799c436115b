// webrtcbin plumbing shared by the elements: ICE agent set-up, ICE restart through the
// NiceAgent (webrtcbin 1.22 cannot restart ICE itself), promise helpers.
#pragma once

#include <gst/gst.h>
#include <gst/webrtc/webrtc.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace wish {

// "127.0.0.1, lo, 10.0.0.2" -> IP addresses; interface names are resolved. Empty spec: {}.
bool resolve_local_addresses(const std::string &spec, std::vector<std::string> *out,
                             std::string *error);

// UDP ports ICE gathers on, for firewall rules: "40000-40999"; "" (max 0): any.
struct PortRange {
  unsigned min = 0, max = 0;
  bool any() const { return max == 0; }
};
bool parse_port_range(const std::string &spec, PortRange *out, std::string *error);
// Applies the range to webrtcbin's ICE agent (before any stream is created).
bool set_ice_port_range(GstElement *webrtcbin, const PortRange &range, std::string *error);

// Gather only on the given addresses (all when empty), UPnP off, STUN/TURN servers set.
bool configure_webrtcbin(GstElement *webrtcbin, const std::vector<std::string> &local_addresses,
                         const std::string &stun_server, const std::vector<std::string> &turn_servers,
                         std::string *error);

struct LocalIce {
  std::string ufrag, pwd;
  std::vector<std::string> candidates;  // "candidate:..." values
};

// Restarts the ICE session of the (bundled) transport: new local credentials, the peer's new
// credentials and candidates applied. DTLS and media continue on the same transport.
bool restart_ice(GstElement *webrtcbin, const std::string &remote_ufrag,
                 const std::string &remote_pwd, const std::vector<std::string> &remote_candidates,
                 LocalIce *local, std::string *error);

// Sets the peer's ICE credentials and candidates on the (bundled) ICE stream without a local
// restart: the second half of an ICE restart on the side that started it.
bool set_remote_ice(GstElement *webrtcbin, const std::string &ufrag, const std::string &pwd,
                    const std::vector<std::string> &candidates);

// Adds trickled remote candidates ("candidate:..." values) straight to the ICE stream, so they
// also work after a restart webrtcbin does not know about.
void add_remote_candidates(GstElement *webrtcbin, const std::vector<std::string> &candidates);

// "video" or "audio": the kind of stream on a webrtcbin src pad (pad-added), from the media
// field of its caps (video when it has none).
// Once per process: supplies an ECDSA DTLS certificate in place of GStreamer's RSA one (see
// dtls_certificate.h), then in a thread of its own loads what a webrtcbin session needs (ICE,
// DTLS, SRTP, RTP elements), so the first session of an element does not wait for them.
// Returns at once.
void warm_up_webrtc();

// What a sending webrtcbin's peer reported and asked for: NACKs it sent and the packets sent
// again for them (rtprtxsend), and from its receiver reports on our SSRCs the round-trip time
// and loss (averaged over the reports there are; -1 when there is none yet).
struct SendStats {
  guint64 nacks = 0, retransmitted = 0;
  double rtt_s = -1, fraction_lost = -1;
  gint64 packets_lost = 0;
};
SendStats send_stats(GstElement *webrtcbin, const std::vector<uint32_t> &ssrcs);
// Once per process, in a thread of its own: loads the depayloaders, parsers and the decoders
// decodebin would pick for the codecs WebRTC players receive. Returns at once.
void warm_up_decoders();
// Once per process, in a thread of its own: GIO's proxy resolver, which the first HTTP
// request of a process otherwise sets up on its way out (GIO modules, libproxy: tens of ms
// before the connection is even made), with one lookup of `url`. Returns at once.
void warm_up_http(const std::string &url);

std::string stream_kind(GstPad *webrtc_src_pad);

// Stamps *last_rx with g_get_monotonic_time() whenever anything (RTP, RTCP, DTLS) arrives on
// webrtcbin's ICE transports; the caller decides when silence means the peer is gone.
// webrtcbin 1.22 leaves libnice's consent freshness off, so ICE alone does not notice.
void watch_incoming(GstElement *webrtcbin, std::shared_ptr<std::atomic<gint64>> last_rx);

// Outcome of a negotiation step, delivered on one of webrtcbin's threads.
struct Negotiated {
  bool ok = false;
  unsigned status = 500;  // when !ok: 400 the peer's description was refused, 422 nothing to answer
  std::string sdp;        // the local description webrtcbin applied
  std::string error;
};
using NegotiatedCallback = std::function<void(Negotiated)>;

// edit, when given, rewrites the description webrtcbin made before it is applied (and sent).
using SdpEdit = std::function<std::string(const std::string &)>;
// set-remote-description(offer), create-answer, set-local-description(answer).
void answer_remote_offer(GstElement *webrtcbin, const std::string &offer, NegotiatedCallback done,
                         SdpEdit edit = {});
// create-offer, set-local-description(offer).
void create_local_offer(GstElement *webrtcbin, NegotiatedCallback done, SdpEdit edit = {});
// set-remote-description(answer); sdp is empty in the result.
void apply_remote_answer(GstElement *webrtcbin, const std::string &answer, NegotiatedCallback done);

// Runs cb when the promise is answered. ok is false when it was interrupted or expired, or
// when the reply carries an "error" (then *error says why); reply may be null on success.
using PromiseCallback = std::function<void(bool ok, const GstStructure *reply, const std::string &error)>;
GstPromise *promise_with_callback(PromiseCallback cb);

}  // namespace wish
