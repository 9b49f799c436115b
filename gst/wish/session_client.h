// The HTTP/ICE session of a WHIP or WHEP client element (whepsrc, whipsink): POST the offer,
// 201/406/307/308/409/503 handling, trickle with If-Match, ICE restart, new sessions with
// backoff, DELETE at the end. What flows (received streams or sent inputs) is the element's
// MediaSide; this class never knows whether it plays or publishes.
#pragma once

#include <gst/gst.h>
#include <gst/webrtc/webrtc.h>
#include <libsoup/soup.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "event_subscriber.h"
#include "http_request.h"
#include "loop_thread.h"
#include "peer.h"
#include "protocol/client.h"

namespace wish {

struct ClientSettings {
  std::string endpoint;
  std::string auth_token;
  std::string stun_server;
  std::vector<std::string> turn_servers;
  gboolean use_link_headers = TRUE;
  GstWebRTCICETransportPolicy ice_transport_policy = GST_WEBRTC_ICE_TRANSPORT_POLICY_ALL;
  guint latency = 50;
  guint timeout = 10;
  gint max_reconnects = 10;
  guint retry_max_delay = 30;
  gboolean trickle = TRUE;
  std::string ice_local_addresses;
  std::string ice_port_range;
  // Server-sent events asked for when the server offers them (WHEP); empty: none.
  std::string events;
  // The video layer (rid) asked for when the server offers layers (WHEP); "": its choice.
  std::string video_layer;
  gboolean do_retransmission = TRUE;
};

// The element's side of a session.
class MediaSide {
public:
  virtual ~MediaSide() = default;
  // A new webrtcbin (worker thread, before the offer): add transceivers or link inputs.
  virtual bool attach(GstElement *webrtcbin, std::string *error) = 0;
  // webrtcbin exposed a received stream (streaming thread).
  virtual void on_stream(GstPad *pad, const std::string &kind) {}
  // The session's webrtcbin is about to go (worker thread).
  virtual void detach(GstElement *webrtcbin) = 0;
  // The element stops: output pads go.
  virtual void stop() {}
  // EOS towards downstream (receiving elements).
  virtual void eos() {}
  virtual guint64 buffers() const { return 0; }
};

enum class ClientProtocol { Whep, Whip };

class SessionClient {
public:
  SessionClient(GstElement *element, ClientProtocol protocol, MediaSide *media)
      : element_(element), protocol_(protocol), media_(media) {}
  ~SessionClient() { stop(); }

  ClientSettings settings;  // guarded by the element's object lock

  // Threads and HTTP session; false after posting an element error.
  bool prepare();
  // Starts the first session (any thread; the work happens on the client's thread).
  void begin();
  bool start() { return prepare() && (begin(), true); }
  void stop();
  // EOS: DELETE without blocking the caller, then EOS on the media side's outputs.
  void send_eos();
  // DELETEs the session on the client's thread without waiting, then runs done there
  // (sending elements at EOS: never block the streaming thread on HTTP).
  void finish_async(std::function<void()> done);
  void request_ice_restart();
  // Asks the server for settings.video_layer now (it changed while playing).
  void request_layer();
  GstStructure *stats();
  std::string session_url();

private:
  enum class Phase { Idle, Offering, Posting, CounterOffer, Connected, Restarting, Waiting, Failed, Stopped };
  static const char *phase_name(Phase p);

  ClientSettings snapshot();
  const char *name() const { return protocol_ == ClientProtocol::Whep ? "WHEP" : "WHIP"; }
  void start_session();
  bool create_webrtcbin(bool with_media, std::string *error);
  void destroy_webrtcbin();
  void on_offer_created(unsigned gen, std::string sdp);
  void post_offer();
  void on_post_response(unsigned gen, std::string url, Response resp, std::string transport_error);
  void handle_counter_offer(const PostDecision &d, const std::string &sdp);
  void send_counter_answer(unsigned gen, std::string sdp);
  void on_candidate(unsigned gen, const std::string &candidate);
  void on_gathering_done(unsigned gen);
  void flush_trickle();
  void on_ice_state(unsigned gen);
  // The session has been answered: a new one if it is not connected within kConnectMs.
  void expect_connection();
  void check_liveness();
  void restart_ice();
  // A new session after backoff; `since` is when the failed attempt began (0: now), so an
  // attempt that itself waited long (a connection that never came) is not waited for twice.
  void reconnect(const std::string &reason, gint64 since = 0);
  void schedule(double seconds, std::function<void()> fn);
  // Posts the element error; an HTTP status (0: no answer) picks the code and goes in its
  // details, kNoHttp for failures that have none.
  static constexpr unsigned kNoHttp = G_MAXUINT;
  void fail(const std::string &summary, const std::string &detail, unsigned http_status = kNoHttp);
  void post_message(GstStructure *s);
  void delete_session_sync();
  void apply_ice_servers(const std::vector<IceServer> &servers);
  // Subscribes to the server-sent events a 201 offers, if the element asks for any.
  void subscribe_events(const Response &resp);
  void on_server_event(unsigned gen, const ServerEvent &event);
  // The server asked the player to move (reconnect event): a new session at url ("": the
  // endpoint), the old one DELETEd.
  void move_to(unsigned gen, const std::string &url);
  void post_layer_request();

  using HttpCallback = std::function<void(Response resp, std::string transport_error)>;
  void http(const char *method, const std::string &url, const std::vector<std::pair<std::string, std::string>> &headers,
            const std::string &content_type, const std::string &body, HttpCallback cb,
            const RequestLimits &limits = {});

  GstElement *element_;
  ClientProtocol protocol_;
  MediaSide *media_;
  std::unique_ptr<LoopThread> worker_;
  std::shared_ptr<Dispatcher> dispatch_;  // how webrtcbin's threads queue work on worker_
  SoupSession *soup_ = nullptr;  // worker thread only
  GCancellable *cancellable_ = nullptr;

  // Worker-thread state.
  Phase phase_ = Phase::Idle;
  unsigned gen_ = 0;  // bumps with every webrtcbin; callbacks of older ones are ignored
  bool probing_ = false;  // a probe of the session is under way (check_liveness)
  gint64 last_probe_ = 0;  // when the last one went
  std::unique_ptr<Peer> peer_;
  std::vector<std::string> local_addresses_;
  PortRange ice_ports_;
  std::string offer_, local_ufrag_, local_pwd_;
  std::vector<std::string> gathered_;
  bool gathering_done_ = false;
  std::string post_url_, session_url_, etag_;
  int redirects_ = 0;
  bool trickle_ok_ = true;
  TrickleBuffer trickle_;
  Backoff retry_backoff_{1, 30};
  // 0.5 s, 1 s, then every 1.5 s: a server that comes back (restarted, network back) has a
  // session again within about 1.5 s of answering, media within 2 s; a refused connection
  // costs nothing.
  Backoff reconnect_backoff_{0.5, 1.5};
  int reconnects_ = 0;  // new sessions after a loss, over the element's life (stats, messages)
  int attempts_ = 0;    // of the reconnection under way; max-reconnects bounds it
  gint64 lost_since_ = 0;  // when the reconnection under way began (0: none)
  gint64 attempt_began_ = 0;  // when the last POST of a reconnection went
  unsigned ice_restarts_ = 0;
  guint timer_ = 0, liveness_timer_ = 0, connect_timer_ = 0;
  gint64 disconnected_since_ = 0;

  std::mutex pads_mutex_;  // guards the copies below, read by property getters
  std::string session_url_copy_;  // for the property, under pads_mutex_
  std::string phase_copy_ = "idle";
  std::string link_ice_servers_;  // what Link headers announced, for stats
  bool patch_in_flight_ = false;
  std::vector<IceServer> link_servers_;  // from the last 201, used by later sessions from the start
  std::unique_ptr<EventSubscriber> events_;  // the session's server-sent events (worker thread)
  std::string layer_url_;  // the session's layer resource, "" when the server offers none
};


}  // namespace wish
