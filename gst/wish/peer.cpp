#include "peer.h"

#include "protocol/sdp.h"

GST_DEBUG_CATEGORY_EXTERN(wish_peer_debug);
#define GST_CAT_DEFAULT wish_peer_debug

namespace wish {

void Peer::later(const std::shared_ptr<Link> &link, std::function<void(Peer *)> fn) {
  std::weak_ptr<bool> alive = link->alive;
  Peer *peer = link->peer;
  link->dispatch->post([alive, peer, fn = std::move(fn)] {
    if (alive.lock()) fn(peer);
  });
}

// RTCP, NACKs included, goes out at the pace RFC 4585 allows for the session's RTCP
// bandwidth, by default 5 % of 64 kbit/s: a report every half second and an early NACK no
// more often, so lost packets are asked for too late for the jitterbuffer latency a live
// player uses. 20 kbit/s of RTCP (5 % of a 400 kbit/s session, less than video takes), half
// for the sender and half for the receiver, gives a report about every 80 ms each way and lets
// a receiver send a NACK that soon after a packet goes missing.
static void allow_prompt_nacks(GstElement *webrtc) {
  GstElement *rtpbin = gst_bin_get_by_name(GST_BIN(webrtc), "rtpbin");
  if (!rtpbin) return;
  g_signal_connect(rtpbin, "element-added", G_CALLBACK(+[](GstBin *, GstElement *e, gpointer) {
                     GstElementFactory *f = gst_element_get_factory(e);
                     if (f && g_str_equal(GST_OBJECT_NAME(f), "rtpsession"))
                       g_object_set(e, "rtcp-rs-bandwidth", 10000, "rtcp-rr-bandwidth", 10000, nullptr);
                   }),
                   nullptr);
  // NACK gaps only: by default the jitterbuffer also asks for the packet after the last one
  // when it is late, and on a jittery link most such requests fetch packets already under way.
  g_signal_connect(rtpbin, "new-jitterbuffer", G_CALLBACK(+[](GstElement *, GstElement *jb, guint, guint, gpointer) {
                     g_object_set(jb, "rtx-next-seqnum", FALSE, nullptr);
                   }),
                   nullptr);
  gst_object_unref(rtpbin);
}

// A jitterbuffer holds a stream's first packet for its whole latency before anything goes
// out (so a packet that comes earlier in the sequence, but later, still makes it): a player's
// first frame waited that long (50 ms by default in whepsrc, 200 ms in webrtcbin). A few
// packets in a row at the start show that the stream begins there: it starts at once. A
// keyframe is many packets sent together; audio has them every 20 ms.
constexpr guint kFastStartPackets = 2;

static void start_jitterbuffers_early(GstElement *webrtc) {
  GstElement *rtpbin = gst_bin_get_by_name(GST_BIN(webrtc), "rtpbin");
  if (!rtpbin) return;
  g_signal_connect(rtpbin, "new-jitterbuffer", G_CALLBACK(+[](GstElement *, GstElement *jb, guint, guint, gpointer) {
                     g_object_set(jb, "faststart-min-packets", kFastStartPackets, nullptr);
                   }),
                   nullptr);
  gst_object_unref(rtpbin);
}

// webrtcbin keeps the last 500 packets of each sent stream for retransmission (rtprtxsend),
// per peer: seconds of video at a few Mbit/s. A NACK comes within a round trip and the
// receiver's jitterbuffer latency of the loss, so one second of history is enough to answer
// it, and a server with many viewers keeps less.
constexpr guint64 kRetransmissionHistoryMs = 1000;

static void bound_retransmission_history(GstElement *webrtc) {
  GstElement *rtpbin = gst_bin_get_by_name(GST_BIN(webrtc), "rtpbin");
  if (!rtpbin) return;
  g_signal_connect(rtpbin, "deep-element-added", G_CALLBACK(+[](GstBin *, GstBin *, GstElement *e, gpointer) {
                     GstElementFactory *f = gst_element_get_factory(e);
                     if (f && g_str_equal(GST_OBJECT_NAME(f), "rtprtxsend"))
                       g_object_set(e, "max-size-time", static_cast<guint>(kRetransmissionHistoryMs), nullptr);
                   }),
                   nullptr);
  gst_object_unref(rtpbin);
}

bool Peer::create(const std::string &name, const Settings &s, Callbacks callbacks, std::string *error) {
  GstElement *webrtc = gst_element_factory_make("webrtcbin", name.empty() ? nullptr : name.c_str());
  if (!webrtc) {
    *error = "webrtcbin is not available";
    return false;
  }
  webrtc_ = GPtr<GstElement>::sink(webrtc);
  retransmission_ = s.retransmission;
  if (s.latency_ms >= 0) g_object_set(webrtc, "latency", static_cast<guint>(s.latency_ms), nullptr);
  g_object_set(webrtc, "ice-transport-policy", s.ice_transport_policy, nullptr);
  if (!configure_webrtcbin(webrtc, s.local_addresses, s.stun_server, s.turn_servers, error) ||
      !set_ice_port_range(webrtc, s.ports, error)) {
    webrtc_.reset();
    return false;
  }
  alive_ = std::make_shared<bool>(true);
  link_ = std::make_shared<Link>(Link{dispatch_, alive_, this, std::move(callbacks)});

  // Each handler holds its own reference to the link, dropped with the handler.
  auto connect = [&](const char *signal, GCallback cb) {
    handlers_.push_back(g_signal_connect_data(webrtc, signal, cb, new std::shared_ptr<Link>(link_),
                                              [](gpointer d, GClosure *) { delete static_cast<std::shared_ptr<Link> *>(d); },
                                              static_cast<GConnectFlags>(0)));
  };
  connect("on-ice-candidate", G_CALLBACK(+[](GstElement *, guint, gchar *cand, gpointer d) {
            std::string candidate = cand ? cand : "";
            if (candidate.rfind("a=", 0) == 0) candidate = candidate.substr(2);
            if (candidate.empty()) return;
            later(*static_cast<std::shared_ptr<Link> *>(d), [candidate](Peer *p) {
              p->candidates_.push_back(candidate);
              if (p->link_->callbacks.on_candidate) p->link_->callbacks.on_candidate(candidate);
            });
          }));
  connect("notify::ice-gathering-state", G_CALLBACK(+[](GstElement *w, GParamSpec *, gpointer d) {
            GstWebRTCICEGatheringState st;
            g_object_get(w, "ice-gathering-state", &st, nullptr);
            if (st != GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) return;
            later(*static_cast<std::shared_ptr<Link> *>(d), [](Peer *p) {
              if (p->gathered_) return;
              p->gathered_ = true;
              p->finish_waiters(false);
              if (p->alive_ && p->link_->callbacks.on_gathering_done) p->link_->callbacks.on_gathering_done();
            });
          }));
  auto state_changed = G_CALLBACK(+[](GstElement *, GParamSpec *, gpointer d) {
    later(*static_cast<std::shared_ptr<Link> *>(d), [](Peer *p) {
      if (p->link_->callbacks.on_state) p->link_->callbacks.on_state();
    });
  });
  connect("notify::connection-state", state_changed);
  connect("notify::ice-connection-state", state_changed);
  connect("pad-added", G_CALLBACK(+[](GstElement *, GstPad *pad, gpointer d) {
            if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
            auto &link = *static_cast<std::shared_ptr<Link> *>(d);
            if (link->alive.lock() && link->callbacks.on_stream) link->callbacks.on_stream(pad, stream_kind(pad));
          }));
  // Every transceiver, also those webrtcbin makes itself for a remote offer (a counter-offer
  // answered, a WHIP offer), gets NACK/RTX before the first description that mentions it.
  handlers_.push_back(g_signal_connect(webrtc, "on-new-transceiver",
                                       G_CALLBACK(+[](GstElement *, GObject *trans, gpointer on) {
                                         g_object_set(trans, "do-nack", GPOINTER_TO_INT(on) ? TRUE : FALSE, nullptr);
                                       }),
                                       GINT_TO_POINTER(s.retransmission ? 1 : 0)));
  if (s.retransmission) allow_prompt_nacks(webrtc);
  start_jitterbuffers_early(webrtc);
  bound_retransmission_history(webrtc);
  gst_bin_add(bin_, webrtc);  // the bin takes a reference of its own
  GST_DEBUG_OBJECT(webrtc, "created");
  return true;
}

void Peer::start(bool independent) {
  if (!webrtc_) return;
  if (!independent) {
    gst_element_sync_state_with_parent(webrtc_.get());
    return;
  }
  gst_element_set_locked_state(webrtc_.get(), TRUE);
  gst_element_set_state(webrtc_.get(), GST_STATE_PLAYING);
}

// webrtcbin answers promises on its own threads: everything comes back through the worker,
// and only while this Peer is open.
static Peer::Completed on_worker(const std::shared_ptr<Dispatcher> &dispatch, std::weak_ptr<bool> alive,
                                 Peer::Completed done) {
  return [dispatch, alive, done](Negotiated n) {
    dispatch->post([alive, done, n] {
      if (alive.lock()) done(n);
    });
  };
}

void Peer::answer(const std::string &offer, Completed done, SdpEdit edit) {
  answer_remote_offer(webrtc_.get(), offer, on_worker(dispatch_, alive_, std::move(done)), std::move(edit));
}

void Peer::offer(Completed done) {
  // webrtcbin 1.22 offers rtx for the first codec of an m-line only.
  SdpEdit edit;
  if (retransmission_) edit = [](const std::string &sdp) { return add_rtx_for_every_codec(sdp); };
  create_local_offer(webrtc_.get(), on_worker(dispatch_, alive_, std::move(done)), edit);
}

void Peer::apply_answer(const std::string &answer, Completed done) {
  apply_remote_answer(webrtc_.get(), answer, on_worker(dispatch_, alive_, std::move(done)));
}

void Peer::answer_with_candidates(const std::string &offer, guint timeout_ms, Completed done, SdpEdit edit) {
  answer(
      offer,
      [this, timeout_ms, done](Negotiated n) {
        if (!n.ok)
          done(n);
        else
          wait_for_gathering(n.sdp, timeout_ms, done);
      },
      std::move(edit));
}

void Peer::offer_with_candidates(guint timeout_ms, Completed done) {
  offer([this, timeout_ms, done](Negotiated n) {
    if (!n.ok)
      done(n);
    else
      wait_for_gathering(n.sdp, timeout_ms, done);
  });
}

void Peer::wait_for_gathering(std::string sdp, guint timeout_ms, Completed done) {
  Waiter w{std::move(sdp), std::move(done), 0};
  if (!gathered_) {
    std::weak_ptr<bool> alive = alive_;
    w.timeout = worker_->add_timeout(timeout_ms, [this, alive] {
      if (!alive.lock()) return;
      GST_WARNING_OBJECT(webrtc_.get(), "ICE gathering did not complete in time: answering with what there is");
      finish_waiters(true);
    });
  }
  waiters_.push_back(std::move(w));
  if (gathered_) finish_waiters(false);
}

void Peer::finish_waiters(bool timed_out) {
  std::vector<Waiter> waiters;
  waiters.swap(waiters_);
  for (auto &w : waiters) {
    if (!timed_out) worker_->cancel(w.timeout);
    Negotiated n;
    n.ok = true;
    n.status = 200;
    n.sdp = finish_local_sdp(w.sdp, candidates_);
    w.done(n);
  }
}

void Peer::add_remote_candidates(const std::vector<std::string> &candidates) {
  if (webrtc_ && !candidates.empty()) wish::add_remote_candidates(webrtc_.get(), candidates);
}

bool Peer::restart_ice(const std::string &remote_ufrag, const std::string &remote_pwd,
                       const std::vector<std::string> &remote_candidates, LocalIce *local, std::string *error) {
  if (!webrtc_) {
    *error = "no WebRTC session";
    return false;
  }
  if (!wish::restart_ice(webrtc_.get(), remote_ufrag, remote_pwd, remote_candidates, local, error)) return false;
  last_rx_->store(g_get_monotonic_time());  // a fresh ICE session gets a fresh silence allowance
  return true;
}

bool Peer::restart_ice_locally(LocalIce *local, std::string *error) {
  // The peer's new credentials come later (set_remote_ice): placeholders until then.
  return restart_ice("placeholder", "placeholderplaceholder00", {}, local, error);
}

bool Peer::set_remote_ice(const std::string &ufrag, const std::string &pwd, const std::vector<std::string> &candidates) {
  if (!webrtc_ || !wish::set_remote_ice(webrtc_.get(), ufrag, pwd, candidates)) return false;
  last_rx_->store(g_get_monotonic_time());
  return true;
}

std::string Peer::first_mid() const {
  std::string mid = "0";
  if (!webrtc_) return mid;
  GstWebRTCRTPTransceiver *trans = nullptr;
  g_signal_emit_by_name(webrtc_.get(), "get-transceiver", 0, &trans);
  if (!trans) return mid;
  g_autofree gchar *m = nullptr;
  g_object_get(trans, "mid", &m, nullptr);
  if (m) mid = m;
  gst_object_unref(trans);
  return mid;
}

GstWebRTCPeerConnectionState Peer::connection_state() const {
  GstWebRTCPeerConnectionState st = GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED;
  if (webrtc_) g_object_get(webrtc_.get(), "connection-state", &st, nullptr);
  return st;
}

GstWebRTCICEConnectionState Peer::ice_state() const {
  GstWebRTCICEConnectionState st = GST_WEBRTC_ICE_CONNECTION_STATE_CLOSED;
  if (webrtc_) g_object_get(webrtc_.get(), "ice-connection-state", &st, nullptr);
  return st;
}

const char *Peer::state_name(GstWebRTCPeerConnectionState state) {
  static const char *names[] = {"new", "connecting", "connected", "disconnected", "failed", "closed"};
  return state <= GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED ? names[state] : "unknown";
}

const char *Peer::state_name(GstWebRTCICEConnectionState state) {
  static const char *names[] = {"new", "checking", "connected", "completed", "failed", "disconnected", "closed"};
  return state <= GST_WEBRTC_ICE_CONNECTION_STATE_CLOSED ? names[state] : "unknown";
}

void Peer::watch_incoming() {
  if (watching_ || !webrtc_) return;
  watching_ = true;
  wish::watch_incoming(webrtc_.get(), last_rx_);
}

void Peer::close(const std::function<void(GstElement *)> &before_remove) {
  if (!webrtc_) return;
  GstElement *webrtc = webrtc_.get();
  alive_.reset();  // queued callbacks are dropped from here on
  for (auto &w : waiters_) worker_->cancel(w.timeout);
  waiters_.clear();
  for (gulong h : handlers_) g_signal_handler_disconnect(webrtc, h);
  handlers_.clear();
  // The bin's own state changes must not bring it back up while it goes. Stopping it flushes
  // its pads, which releases any streaming thread inside them.
  gst_element_set_locked_state(webrtc, TRUE);
  gst_element_set_state(webrtc, GST_STATE_NULL);
  if (before_remove) before_remove(webrtc);
  if (GST_OBJECT_PARENT(webrtc) == GST_OBJECT(bin_)) gst_bin_remove(bin_, webrtc);
  GST_DEBUG_OBJECT(webrtc, "closed");
  webrtc_.reset();
  link_.reset();
}

}  // namespace wish
