// What every server element (whepserversink, whipserversrc) is made of, below its own media:
// the HTTP settings, an Endpoint served on the shared HTTP server and through the action
// signals, the stream registry of that server, a worker thread, and the sessions: one Peer
// each, created, answered, watched and torn down the same way for every protocol. The
// endpoint owns the sessions; what it holds for each is a handle whose destruction brings
// the session's media down here, on the worker.
//
// Threads: the application's (properties, state changes, action signals), the HTTP server's
// loop, this element's worker (sessions, peers, timers), webrtcbin's threads (signals and
// promises, which only queue work on the worker) and the streaming threads (tracks deliver
// packets to the outputs from the payloaders' threads).
//
// Locks of the server side, in the order they may be nested (a lock is never taken while
// one further down the list is held); none is held while calling into GStreamer code that can
// reach the application (pad-added and other signals, messages, state changes), nor while an
// HTTP reply is sent:
//
// | lock                              | guards                                               |
// |-----------------------------------|------------------------------------------------------|
// | element object lock               | settings: `http`, the subclasses' Settings            |
// | HttpServer::mutex_                | handlers_ and their running counts (not held in calls)|
// | ServerElement::MetricsHook::mutex | whether the element's metrics may be read (held while |
// |                                   |   they are)                                          |
// | Endpoint::mutex_                  | config_, sessions_ (not held while calling media)     |
// | ServerElement::sessions_mutex_    | sessions_, each session's `state`                     |
// | WhepServer::inputs_mutex_,        | the inputs; live publishers and named streams         |
// |   WhipServer::mutex_              |                                                      |
// | StreamRegistry::repoint_mutex_    | order of re-pointing slots (held while applying it)   |
// | StreamRegistry::mutex_            | streams, routes, audience, endpoint paths             |
// | Slot::mutex_                      | the name of the stream it shows                       |
// | Stream::mutex_                    | tracks_                                               |
// | SlotOutput::push_mutex_           | what goes to its pad, in order; the kept keyframe     |
// |   (held while pushing into webrtcbin, which does not reach the application)              |
// | SlotOutput::mutex_                | its pad, source, RTP continuity, priming state        |
// | Track::mutex_                     | source pad, caps, segment, sinks list (copy on write) |
// | MediaOutputs::mutex_              | the output pads and the pads to announce              |
// | HttpServer::Replies::mutex,       | whether replies may still be queued on a loop         |
// |   Dispatcher::mutex_              |                                                      |
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "http_server.h"
#include "loop_thread.h"
#include "media_host.h"
#include "oma_host.h"
#include "peer.h"
#include "protocol/endpoint.h"
#include "protocol/metrics.h"
#include "protocol/whisp.h"
#include "stream_registry.h"
#include "whisp_host.h"

namespace wish {

struct HttpSettings {
  std::string address = "0.0.0.0";
  guint port = 8889;
  std::string path;
  std::string auth_token;
  std::string stun_server;
  std::vector<std::string> turn_servers;
  std::string tls_certificate_file, tls_key_file;
  std::string cors_allowed_origins = "*";
  std::string ice_local_addresses;
  gboolean serve_http = TRUE;
  std::string whisp_path;         // "" : no WHISP
  std::string whisp_pull_allow;   // comma-separated URL prefixes
  guint whisp_pull_timeout = 10;  // seconds
  gboolean transcode = TRUE;
  std::string oma_path;           // "" : no OMA REST WebRTC signalling
  std::string metrics_path;       // "" : no Prometheus metrics
  HttpLimits limits;                      // timeouts, sizes, per-client limits of the HTTP server
  guint max_pending_sessions_per_client = 8;  // 0: no limit
  std::string ice_port_range;             // "min-max", "" : any
  gboolean do_retransmission = TRUE;      // NACK/RTX on every session

  // The endpoint path without trailing slashes, and the STUN/TURN servers to advertise.
  std::string endpoint_path() const;
  std::vector<IceServer> ice_servers() const;
};

// A session of a server element: its webrtcbin and what the element hangs on it.
struct ServerSession {
  virtual ~ServerSession() = default;
  std::string id;
  std::string stream;  // as requested: "" for the element's own
  std::unique_ptr<Peer> peer;  // null for a session adopted with its own media (adopt_session)
  std::shared_ptr<SessionEvents> events;
  SessionCallback pending;  // creation under way
  gint64 created_us = 0;
  bool answered = false;    // the 201/406 went out
  bool connected = false;   // reached "connected" once
  bool ending = false;      // reported ended, waiting for the endpoint to drop it
  std::string state = "new";  // connection state; written under sessions_mutex_
  std::string ice_state = "new";  // ICE connection state (W3C names); written under sessions_mutex_
  // Worker. Monotonic time (us) of the last packet from the peer once it is watched
  // (connected), -1 before: check_liveness ends sessions silent for longer than the timeout.
  virtual gint64 last_heard_us() const;
};

class ServerElement : public MediaBackend {
public:
  ServerElement(GstElement *element, const char *default_path);
  ~ServerElement() override;

  GstElement *element() const { return element_; }
  HttpSettings http;  // guarded by the element's object lock

  // State changes: NULL->READY, READY<->PAUSED, PAUSED->READY, READY->NULL.
  bool start();
  void set_running(bool running) { running_ = running; }
  bool running() const { return running_; }
  void close_sessions();
  void stop();

  // A request from the post/patch/delete action signals; the promise gets "wish-response".
  void handle_signal(const char *method, const GstStructure *request, GstPromise *promise);
  // switch-stream: every viewer of `from` on this HTTP server now sees `to`.
  bool switch_stream(const std::string &from, const std::string &to, std::string *error);
  guint current_port() const;
  std::shared_ptr<StreamRegistry> registry() const { return registry_; }
  std::shared_ptr<Endpoint> endpoint() const { return endpoint_; }

  // A message a child posted (any thread): true when it is the element's own business (an
  // error of a stream WHISP pulls) and goes no further.
  bool handle_child_message(GstMessage *message);

  // MediaBackend
  void create_session(const SessionRequest &request, std::shared_ptr<SessionEvents> events,
                      SessionCallback done) override;

protected:
  // What the subclass adds to the endpoint's configuration (kind, limits, page); the HTTP
  // parts come from `http`.
  virtual void configure_endpoint(EndpointConfig *config) = 0;
  // Before the HTTP server starts / after it stopped (application or worker thread).
  virtual bool on_start(std::string *error) { return true; }
  virtual void on_stop() {}
  // Once the endpoint is served and the registry known (application's thread).
  virtual void on_serving() {}
  // Seconds of silence after which a connected peer counts as gone.
  virtual guint silence_timeout_s() = 0;
  virtual int jitterbuffer_latency_ms() { return -1; }
  // How media the element decodes and encodes again (merges, transcoding) is encoded.
  virtual EncoderSettings encoder_settings() { return {}; }

  // Worker thread. Makes the session with its media set up on session->peer (sink pads,
  // transceivers); false with *refusal to refuse it.
  virtual bool attach_media(ServerSession &session, const SessionRequest &request, MediaResult *refusal) = 0;
  virtual std::shared_ptr<ServerSession> new_session() { return std::make_shared<ServerSession>(); }
  virtual void on_answered(ServerSession &) {}
  // The answer webrtcbin made, as it goes out (what webrtcbin cannot say is added here).
  virtual std::string finish_answer(ServerSession &, const std::string &sdp) { return sdp; }
  // What rewrites the session's answer before webrtcbin applies it (none by default).
  virtual SdpEdit answer_edit(ServerSession &) { return {}; }
  virtual void on_connected(ServerSession &) {}
  // The session goes: nothing is fed into its peer any more (stop_feeding, while the peer
  // still runs: a packet pushed into a webrtcbin on its way down can wait forever in a
  // sink's preroll), its media leaves the peer once the peer is stopped (detach_media), and
  // then the element says so (on_released).
  virtual void stop_feeding(ServerSession &) {}
  // Whether a session's webrtcbin runs (PLAYING) until the session ends instead of following
  // the element between PAUSED and PLAYING.
  virtual bool sessions_run_independently() const { return false; }
  virtual void detach_media(ServerSession &, GstElement *webrtc) {}
  virtual void on_released(ServerSession &, const std::string &reason) {}
  // Streaming thread: a received stream of the session appeared.
  virtual void on_stream(const std::shared_ptr<ServerSession> &, GstPad *, const std::string &kind) {}
  virtual void tick() {}  // every 250 ms on the worker
  // The video layers a session's viewer may choose from, largest first (any thread), and
  // showing it one of them (worker; -1: the server's choice). None without a ladder.
  virtual std::vector<VideoLayer> session_layers(const std::string &) { return {}; }
  virtual MediaResult select_layer(ServerSession &, int) { return MediaResult::failure(404, "no layers"); }
  // The element's part of the server's metrics (HTTP server thread; sessions() and atomics
  // only). The sessions created and ended are added for every element already.
  virtual void collect_metrics(MetricsText &) {}

  LoopThread *worker() const { return worker_.get(); }
  const std::shared_ptr<Dispatcher> &dispatcher() const { return dispatch_; }
  std::shared_ptr<ServerSession> find_session(const std::string &id) const;
  std::string ice_state_of(const std::string &id) const;
  std::vector<std::shared_ptr<ServerSession>> sessions() const;
  // The media side ends a session (replaced, input removed): the endpoint drops it, and the
  // media goes when the endpoint lets go of it, or at once with release_now.
  void end_session(ServerSession &session, const std::string &reason, bool release_now = false);
  // Worker. A session answered without a Peer (whepserversink's shared transport): listed
  // with the others (stats, metrics, messages) until the endpoint drops the handle returned,
  // which wraps `media` and releases the session as the others are released.
  std::unique_ptr<MediaSession> adopt_session(std::shared_ptr<ServerSession> session,
                                              std::unique_ptr<MediaSession> media);

private:
  class Handle;
  class Adopted;
  void on_peer_state(const std::string &id);
  void check_liveness();
  void release(const std::string &id, const std::string &reason);
  void release_all(const std::string &reason);
  bool serve(const HttpSettings &settings, const EndpointConfig &config);
  bool serve_whisp(const HttpSettings &settings);
  bool serve_oma(const HttpSettings &settings);
  bool serve_metrics(const HttpSettings &settings);
  // Serves one of the element's optional APIs (`what`, set by `property`) at `path` on its HTTP
  // server; posts the element error and returns false when it cannot.
  bool mount(const char *what, const char *property, const std::string &path, HttpServer::Handler handler);

  GstElement *element_;
  std::unique_ptr<LoopThread> worker_;
  std::shared_ptr<Dispatcher> dispatch_;
  std::shared_ptr<Endpoint> endpoint_;
  std::shared_ptr<HttpServer> http_server_;
  std::shared_ptr<StreamRegistry> registry_;
  std::string served_path_;
  std::vector<std::string> mounted_;  // paths of WHISP, OMA, metrics on the HTTP server
  int metrics_source_ = 0;  // this element's source in the registry
  // Held while the source reads the element (on the HTTP thread of whichever element serves
  // the metrics); stop() clears `alive` under it, so no read is under way once stop() returns.
  struct MetricsHook {
    std::mutex mutex;
    bool alive = true;
  };
  std::shared_ptr<MetricsHook> metrics_hook_;
  // The OMA front: created in start(), used by the HTTP server's handler (through a weak
  // reference) and the worker's tick, dropped in stop() after both are done with it.
  std::unique_ptr<OmaHost> oma_host_;
  std::shared_ptr<OmaFront> oma_;
  std::unique_ptr<TranscodeHost> transcoder_;
  // Read from any thread by handle_child_message: set and cleared with std::atomic_store.
  std::shared_ptr<WhispHost> whisp_;
  std::shared_ptr<WhispEndpoint> whisp_endpoint_;
  std::vector<std::string> local_addresses_;  // set in start(), read-only afterwards
  PortRange ice_ports_;                       // likewise
  guint tick_source_ = 0;
  std::atomic<bool> running_{false};
  mutable std::mutex sessions_mutex_;
  std::map<std::string, std::shared_ptr<ServerSession>> sessions_;
};

}  // namespace wish
