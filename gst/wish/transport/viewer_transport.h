// The shared viewer transport: every viewer of a process on one libnice agent, one GLib main
// context and one thread, instead of a webrtcbin (and its seven threads) per viewer. Media is
// payloaded once per track; per viewer only the RTP header is rewritten, SRTP applied and the
// datagram sent. DTLS (dtls_srtp.h) and RTCP (rtcp.h) run on the agent's thread.
//
// Threads: the agent's thread runs libnice, every DTLS session, SRTCP unprotect and the
// callbacks. ViewerConnection::send() runs on whichever thread has media (one per track is
// fine); it never waits for the agent's thread. add_viewer() and close() wait for the agent's
// thread: never call them while holding a lock a callback takes.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "protocol/rtcp.h"
#include "protocol/rtp_continuity.h"
#include "transport/dtls_srtp.h"

typedef struct _NiceAgent NiceAgent;
typedef struct _GMainContext GMainContext;
typedef struct _GMainLoop GMainLoop;
typedef struct _GSource GSource;

namespace wish {

struct IceConfig {
  // Addresses to gather host candidates on ("127.0.0.1"); empty: every interface.
  std::vector<std::string> local_addresses;
  unsigned min_port = 0, max_port = 0;  // 0, 0: any port
  bool controlling = false;             // a server answering offers is controlled
};

// One outgoing track of a viewer as its SDP answer negotiated it.
struct ViewerTrack {
  std::string encoding;  // "VP8", "H264", "OPUS", ... (rtp_starts_keyframe's names)
  unsigned clock_rate = 90000;
  uint8_t payload_type = 96;
  uint32_t ssrc = 0;
  int rtx_payload_type = -1;  // -1: NACKs answered by sending the packet again as it was
  uint32_t rtx_ssrc = 0;
  bool video = true;  // waits for a keyframe before its first packet; keeps a history for NACK
};

struct ViewerConfig {
  DtlsSession::Role dtls_role = DtlsSession::Role::Server;  // the answerer is a=setup:passive
  std::string peer_fingerprint;                             // "sha-256 AB:CD:..."
  std::string cname = "wish";
  std::vector<ViewerTrack> tracks;
  unsigned history = 512;          // packets kept per video track to answer NACKs (0: NACKs go unanswered)
  int64_t sr_interval_us = 1000000;
};

class ViewerConnection;

// Called on the agent's thread.
struct ViewerCallbacks {
  enum class State { New, IceConnected, DtlsConnected, Failed, Closed };
  std::function<void(State)> on_state;
  // Every SRTCP packet that authenticated and parsed (receiver reports, NACK, PLI, FIR, REMB).
  std::function<void(const rtcp::Compound &)> on_rtcp;
  // A PLI or a new FIR for one of the viewer's tracks, or a video track waiting for its first
  // keyframe once DTLS connects: the payloader's encoder should send one.
  std::function<void(size_t track)> on_keyframe_request;
  // SRTP media the peer sends (only a peer that is itself a receiver sends none).
  std::function<void(const uint8_t *rtp, size_t len)> on_rtp;
};

// A packet of a track, payloaded once and shared by every viewer's history.
using SharedPacket = std::shared_ptr<const std::vector<uint8_t>>;

class SharedIceAgent {
public:
  // Starts the agent's thread. Null with *error when an address does not parse.
  static std::unique_ptr<SharedIceAgent> create(const IceConfig &config, std::shared_ptr<DtlsContext> dtls,
                                                std::string *error);
  // Closes what is still connected and stops the thread.
  ~SharedIceAgent();
  SharedIceAgent(const SharedIceAgent &) = delete;
  SharedIceAgent &operator=(const SharedIceAgent &) = delete;

  // A stream for a new viewer, its host candidates gathered. Null with *error on failure.
  std::shared_ptr<ViewerConnection> add_viewer(const ViewerConfig &config, ViewerCallbacks callbacks,
                                               std::string *error);

  size_t viewer_count() const;
  const std::shared_ptr<DtlsContext> &dtls_context() const { return dtls_; }
  NiceAgent *agent() const { return agent_; }
  bool on_agent_thread() const { return std::this_thread::get_id() == thread_id_.load(); }
  // Runs fn on the agent's thread and returns when it ran (at once when called there).
  void invoke(const std::function<void()> &fn);

private:
  friend class ViewerConnection;
  friend struct IceCallbacks;
  SharedIceAgent() = default;
  ViewerConnection *find(unsigned stream) const;
  void forget(unsigned stream);
  void poll_dtls_timers();

  IceConfig config_;
  std::shared_ptr<DtlsContext> dtls_;
  GMainContext *ctx_ = nullptr;
  GMainLoop *loop_ = nullptr;
  GSource *timer_ = nullptr;
  NiceAgent *agent_ = nullptr;
  std::thread thread_;
  std::atomic<std::thread::id> thread_id_{};
  // Guards streams_ (stream id -> connection, which stays alive while listed: close()
  // removes it on the agent's thread before the connection can go). Taken alone.
  mutable std::mutex streams_mutex_;
  std::map<unsigned, ViewerConnection *> streams_;
};

class ViewerConnection : public std::enable_shared_from_this<ViewerConnection> {
public:
  using State = ViewerCallbacks::State;
  ~ViewerConnection();  // close()s
  ViewerConnection(const ViewerConnection &) = delete;
  ViewerConnection &operator=(const ViewerConnection &) = delete;

  // For the SDP answer.
  unsigned stream_id() const { return stream_; }
  bool local_credentials(std::string *ufrag, std::string *pwd) const;
  std::vector<std::string> local_candidates() const;  // "candidate:..." values
  // The peer's ICE credentials (from its offer; again after an ICE restart).
  bool set_remote_credentials(const std::string &ufrag, const std::string &pwd);
  // One trickled candidate ("candidate:..." or "a=candidate:..."); false when it does not parse.
  bool add_remote_candidate(const std::string &candidate);
  // ICE restart (RFC 8445 9): new local credentials; DTLS and SRTP stay. Then
  // set_remote_credentials() with the peer's new ones.
  bool restart_ice();

  // Header rewrite, SRTP, send: from the track's media thread. False when not sent (not
  // connected yet, waiting for a keyframe, not RTP, send failed).
  bool send(size_t track, const SharedPacket &packet);

  // An RTCP compound (rtcp.h builders) SRTCP-protected and sent; false when not connected.
  bool send_rtcp(const std::vector<uint8_t> &compound);

  // DTLS close_notify, stream removed from the agent. Waits for the agent's thread; no
  // callback comes after it returns.
  void close();

  State state() const { return state_.load(std::memory_order_acquire); }
  std::string error() const;
  SrtpProfile srtp_profile() const { return srtp_profile_; }
  struct Stats {
    uint64_t rtp_sent = 0, rtp_bytes = 0, srs_sent = 0, nacked = 0, retransmitted = 0, rtcp_received = 0,
             rtcp_rejected = 0;
  };
  Stats stats() const;

private:
  friend class SharedIceAgent;
  friend struct IceCallbacks;
  struct TrackState;
  ViewerConnection(SharedIceAgent *shared, const ViewerConfig &config, ViewerCallbacks callbacks);
  void on_datagram(const uint8_t *data, size_t len);
  void on_ice_state(unsigned state);
  void on_dtls_state(DtlsSession::State s);
  void on_rtcp(const rtcp::Compound &c);
  void answer_nack(const rtcp::Nack &nack);
  void set_state(State s, const std::string &error = "");
  bool send_locked(TrackState &t, const SharedPacket &packet);
  void maybe_send_sr_locked(TrackState &t, int64_t now_us);

  SharedIceAgent *shared_;
  const ViewerConfig config_;
  const ViewerCallbacks callbacks_;
  unsigned stream_ = 0;
  std::atomic<State> state_{State::New};
  std::atomic<bool> srtp_ready_{false};
  std::atomic<bool> closed_{false};
  SrtpProfile srtp_profile_ = SrtpProfile::None;  // written before srtp_ready_ is set

  // Agent's thread only: the DTLS session, SRTCP unprotect (libsrtp's inbound context).
  std::unique_ptr<DtlsSession> dtls_;
  std::vector<uint8_t> in_buf_;
  // Agent's thread only: DTLS datagrams libnice could not send yet (no pair selected on our
  // side while the peer, whose checks succeeded first, already sent its ClientHello), sent
  // when ICE connects instead of at the DTLS retransmission timer a second later.
  std::vector<std::vector<uint8_t>> unsent_dtls_;

  // Lock order: send_mutex_ before error_mutex_; streams_mutex_ is never held with either.
  // Guards the outbound side: SrtpSession (its outbound context; init), tracks_, scratch_,
  // stats_. Held per packet by send() and by NACK answers on the agent's thread: short.
  mutable std::mutex send_mutex_;
  SrtpSession srtp_;
  std::vector<TrackState> tracks_;
  std::vector<uint8_t> scratch_;
  Stats stats_;
  mutable std::mutex error_mutex_;  // guards error_
  std::string error_;
};

}  // namespace wish
