// One webrtcbin and its whole life, for every element of the plugin: made and configured (ICE
// addresses, STUN/TURN, max-bundle, UPnP off), its signals turned into calls on the owner's
// worker thread, offer/answer, candidate gathering, ICE restart through libnice, connection
// state, liveness, and teardown.
//
// Threads: every method is called on the worker thread (the LoopThread behind `dispatch`),
// and every callback arrives there, except Callbacks::on_stream, which webrtcbin calls on a
// streaming thread when it exposes a received stream. No callback runs after close().
#pragma once

#include <gst/gst.h>
#include <gst/webrtc/webrtc.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gstptr.h"
#include "loop_thread.h"
#include "webrtc_utils.h"

namespace wish {

class Peer {
public:
  struct Settings {
    std::vector<std::string> local_addresses;  // gather only there (all when empty)
    PortRange ports;                           // gather only on these UDP ports (any when empty)
    std::string stun_server;
    std::vector<std::string> turn_servers;
    int latency_ms = -1;  // jitterbuffer; -1 keeps webrtcbin's
    GstWebRTCICETransportPolicy ice_transport_policy = GST_WEBRTC_ICE_TRANSPORT_POLICY_ALL;
    // NACK and RTX (RFC 4588) on every transceiver, whichever side makes it: offers carry
    // `a=rtcp-fb:<pt> nack` and an rtx payload type, answers keep the offer's, a receiver
    // asks for lost packets and a sender retransmits them.
    bool retransmission = true;
  };
  struct Callbacks {
    std::function<void(const std::string &candidate)> on_candidate;  // "candidate:..." (no "a=")
    std::function<void()> on_gathering_done;
    std::function<void()> on_state;  // connection or ICE connection state changed
    // Streaming thread: a received stream appeared (kind "video" or "audio").
    std::function<void(GstPad *pad, const std::string &kind)> on_stream;
  };
  using Completed = std::function<void(Negotiated)>;

  Peer(GstBin *bin, LoopThread *worker, std::shared_ptr<Dispatcher> dispatch)
      : bin_(bin), worker_(worker), dispatch_(std::move(dispatch)) {}
  ~Peer() { close(); }
  Peer(const Peer &) = delete;
  Peer &operator=(const Peer &) = delete;

  // Makes the webrtcbin (in the bin, not started yet); false with *error when it cannot.
  bool create(const std::string &name, const Settings &settings, Callbacks callbacks, std::string *error);
  // Brings it to the bin's state, once its pads and transceivers are set up. Independent:
  // to PLAYING, and no longer following the bin's state changes (close() stops it).
  void start(bool independent = false);
  GstElement *webrtcbin() const { return webrtc_.get(); }

  // Negotiation; done runs on the worker with the local description webrtcbin applied.
  void answer(const std::string &offer, Completed done, SdpEdit edit = {});
  void offer(Completed done);
  void apply_answer(const std::string &answer, Completed done);
  // Server side (no trickle towards the client): answers, or offers, then waits until
  // gathering completed or timeout_ms passed; the SDP in done carries every candidate.
  void answer_with_candidates(const std::string &offer, guint timeout_ms, Completed done, SdpEdit edit = {});
  void offer_with_candidates(guint timeout_ms, Completed done);

  const std::vector<std::string> &candidates() const { return candidates_; }
  bool gathered() const { return gathered_; }

  // The peer's trickled candidates ("candidate:..."), also after an ICE restart.
  void add_remote_candidates(const std::vector<std::string> &candidates);
  // A restart the peer asked for: new local credentials and candidates in *local.
  bool restart_ice(const std::string &remote_ufrag, const std::string &remote_pwd,
                   const std::vector<std::string> &remote_candidates, LocalIce *local, std::string *error);
  // A restart of ours: new local credentials now, the peer's ones later with set_remote_ice.
  bool restart_ice_locally(LocalIce *local, std::string *error);
  bool set_remote_ice(const std::string &ufrag, const std::string &pwd, const std::vector<std::string> &candidates);
  // mid of the first m-line, for sdpfrags.
  std::string first_mid() const;

  GstWebRTCPeerConnectionState connection_state() const;
  GstWebRTCICEConnectionState ice_state() const;
  static const char *state_name(GstWebRTCPeerConnectionState state);
  static const char *state_name(GstWebRTCICEConnectionState state);  // W3C names: "checking", ...

  // From now on last_rx() moves with every packet the peer sends (RTP, RTCP, DTLS, STUN).
  void watch_incoming();
  bool watching() const { return watching_; }
  gint64 last_rx() const { return last_rx_->load(); }

  // Stops and removes the webrtcbin. before_remove runs once it is stopped (no streaming
  // thread in its pads any more), before it leaves the bin. Idempotent.
  void close(const std::function<void(GstElement *)> &before_remove = {});

private:
  // What the webrtcbin's signal handlers hold: they outlive neither the callbacks nor the
  // dispatcher, and stop calling back once `alive` is gone.
  struct Link {
    std::shared_ptr<Dispatcher> dispatch;
    std::weak_ptr<bool> alive;
    Peer *peer;
    Callbacks callbacks;
  };
  // Runs fn on the worker if this Peer is still open then.
  static void later(const std::shared_ptr<Link> &link, std::function<void(Peer *)> fn);
  void wait_for_gathering(std::string sdp, guint timeout_ms, Completed done);
  void finish_waiters(bool timed_out);

  GstBin *bin_;
  LoopThread *worker_;
  std::shared_ptr<Dispatcher> dispatch_;
  GPtr<GstElement> webrtc_;
  std::shared_ptr<bool> alive_;
  std::shared_ptr<Link> link_;
  std::vector<gulong> handlers_;
  std::vector<std::string> candidates_;
  bool gathered_ = false;
  struct Waiter {
    std::string sdp;
    Completed done;
    guint timeout = 0;
  };
  std::vector<Waiter> waiters_;
  bool watching_ = false;
  bool retransmission_ = true;
  std::shared_ptr<std::atomic<gint64>> last_rx_ = std::make_shared<std::atomic<gint64>>(0);
};

}  // namespace wish
