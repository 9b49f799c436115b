// whepserversink's C++ side: its inputs (one chain each, payloaded once into the stream's
// tracks), its viewers (a slot each, re-pointable) and their figures. whepserversink.cpp has
// the inputs, the sessions' set-up and the GObject glue, whep_viewers.cpp the viewers' life,
// layers, statistics and metrics.
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "gstptr.h"
#include "output_slot.h"
#include "protocol/layer_control.h"
#include "redirect_probe.h"
#include "protocol/ssrc_pool.h"
#include "send_chain.h"
#include "server_element.h"
#include "shared_viewers.h"
#include "whepserversink.h"

namespace wish {

struct Settings {
  guint max_viewers = 0;
  guint max_cpu_load = 0;  // % of one core the process may use before new viewers go elsewhere; 0: no limit
  std::string redirect_endpoints;  // comma-separated WHEP URLs new viewers go to at max_viewers
  GstWishRedirectPolicy redirect_policy = GST_WISH_REDIRECT_ROUND_ROBIN;
  GstWishCounterOffer counter_offer = GST_WISH_COUNTER_OFFER_WHEN_NEEDED;
  EncoderSettings encoder;
  guint viewer_timeout = 10;  // seconds without a packet from a connected viewer
  std::string video_layers;   // lower layers of the video ladder, as parse_video_layers() reads them
  bool shared_transport = true;   // viewers on one shared ICE agent where they can be (shared_viewers.h)
};

// The rid of the stream's own video, the top of a ladder.
constexpr const char *kTopLayer = "h";

// One sink pad: entry queue, encoder/parser/payloader chain, and the track it feeds.
struct Input {
  std::string kind;  // "video" / "audio"
  GstPad *ghost = nullptr;  // owned by the element
  GPtr<GstElement> entry;
  std::vector<GPtr<GstElement>> chain;  // built on the first caps; the payloader last
  std::shared_ptr<Track> track;
  std::atomic<bool> eos{false};
};

// What was sent to viewers and what they asked for, summed by stream for the metrics.
struct SentCounts {
  guint64 packets = 0, bytes = 0, nacks = 0, retransmitted = 0, keyframe_requests = 0, layer_switches = 0;
  SentCounts &operator+=(const SentCounts &o) {
    packets += o.packets;
    bytes += o.bytes;
    nacks += o.nacks;
    retransmitted += o.retransmitted;
    keyframe_requests += o.keyframe_requests;
    layer_switches += o.layer_switches;
    return *this;
  }
};

// A viewer's retransmission SSRCs. webrtcbin draws them itself (g_random_int() in its
// answer), and each would leave its two quarks behind (ssrc_pool.h): pooled ones replace
// them in the answer and in the map rtprtxsend sends with. Shared with the answer edit and
// rtprtxsend's handlers, which run on webrtcbin's threads.
struct RtxSsrcs {
  std::mutex mutex;  // guards lease and map
  SsrcLease lease;
  std::map<uint32_t, uint32_t> map;  // media SSRC -> its retransmission SSRC
  std::string edit(const std::string &answer);
  bool apply(GstElement *rtxsend);  // false while the map is empty
  // Makes the rtprtxsend of webrtcbin send with the SSRCs of the map.
  static void watch(GstElement *webrtcbin, const std::shared_ptr<RtxSsrcs> &rtx);
};

struct Viewer : ServerSession {
  std::shared_ptr<Slot> slot;
  // Set for a viewer on the shared transport (no peer): its figures come from there.
  std::shared_ptr<SharedViewers::Viewer> shared;
  SsrcLease ssrcs;  // its outputs' SSRCs, back to the pool when it is gone (ssrc_pool.h)
  std::shared_ptr<RtxSsrcs> rtx = std::make_shared<RtxSsrcs>();
  SendStats stats;  // sampled on the worker about once a second
  std::atomic<guint64> layer_switches{0};
  // Worker thread: the layer shown (index into the ladder, 0 the top), whether the viewer
  // chose it (else the server does, from its connection).
  int layer = 0;
  bool chosen = false;
  LayerControl control;

  // What its outputs sent and were asked for (any thread).
  SentCounts output_counts() const {
    SentCounts n;
    if (shared) {
      SharedViewers::Figures f = SharedViewers::figures(*shared);
      n.packets = f.packets;
      n.bytes = f.bytes;
      n.keyframe_requests = f.keyframe_requests;
    } else if (slot)
      for (const auto &target : slot->outputs())
        if (auto o = std::dynamic_pointer_cast<SlotOutput>(target)) {
          n.packets += o->packets();
          n.bytes += o->bytes();
          n.keyframe_requests += o->keyframe_requests();
        }
    return n;
  }
  std::pair<guint64, guint64> sent() const {
    SentCounts c = output_counts();
    return {c.packets, c.bytes};
  }
  // With what webrtcbin counted (worker thread: stats).
  SentCounts counts() const {
    SentCounts n = output_counts();
    n.nacks = stats.nacks;
    n.retransmitted = stats.retransmitted;
    n.layer_switches = layer_switches;
    return n;
  }
  gint64 last_heard_us() const override {
    return shared ? SharedViewers::last_heard_us(*shared) : ServerSession::last_heard_us();
  }
  void sample_stats() {
    if (shared) {
      stats = SharedViewers::figures(*shared).rtcp;
      return;
    }
    if (!peer || !peer->webrtcbin() || !slot) return;
    std::vector<uint32_t> ssrcs;
    for (const auto &target : slot->outputs())
      if (auto o = std::dynamic_pointer_cast<SlotOutput>(target)) ssrcs.push_back(o->ssrc());
    stats = send_stats(peer->webrtcbin(), ssrcs);
  }
  // The stream it is shown (after switches), else the one it asked for.
  std::string shown() const { return slot->showing().empty() ? slot->requested() : slot->showing(); }
};

// What one negotiated m-line gets: a track of the stream, with the viewer's payload type.
struct PlannedOutput {
  std::shared_ptr<Track> track;
  size_t index;  // among the stream's tracks of its kind
  int pt;
  std::optional<RtpMap> offered;  // the viewer's rtpmap and fmtp for pt
  std::optional<SendCodec> encoded;  // sent in this codec, encoded for the viewer; none: the track's own
};

class WhepServer : public ServerElement {
public:
  explicit WhepServer(GstElement *element) : ServerElement(element, "/whep") {}
  ~WhepServer() override { stop(); }

  Settings settings;  // guarded by the element's object lock

  GstPad *request_pad(GstPadTemplate *templ, const gchar *name);
  void release_pad(GstPad *pad);
  GstStructure *stats();

  // MediaBackend
  Admission admit(const std::string &stream) override;
  bool overloaded() override;
  bool can_answer(const std::string &stream, const SessionDescription &offer, std::string *why) override;
  void create_session(const SessionRequest &request, std::shared_ptr<SessionEvents> events,
                      SessionCallback done) override;

private:
  void configure_endpoint(EndpointConfig *config) override;
  void on_serving() override;
  void on_stop() override;
  guint silence_timeout_s() override;
  EncoderSettings encoder_settings() override {
    GST_OBJECT_LOCK(element());
    EncoderSettings e = settings.encoder;
    GST_OBJECT_UNLOCK(element());
    return e;
  }
  std::shared_ptr<ServerSession> new_session() override { return std::make_shared<Viewer>(); }
  bool attach_media(ServerSession &session, const SessionRequest &request, MediaResult *refusal) override;
  void on_answered(ServerSession &session) override;
  SdpEdit answer_edit(ServerSession &session) override;
  void on_connected(ServerSession &session) override;
  void stop_feeding(ServerSession &session) override;
  // A viewer's sinks paused with the pipeline would hold the streaming threads that feed
  // them (tracks, other elements' publishers) in preroll.
  bool sessions_run_independently() const override { return true; }
  void on_released(ServerSession &session, const std::string &reason) override;
  void collect_metrics(MetricsText &out) override;
  void tick() override;
  bool on_start(std::string *error) override;
  std::vector<VideoLayer> session_layers(const std::string &id) override;
  MediaResult select_layer(ServerSession &session, int layer) override;
  // Worker: the viewer's video from layers[index] on; why goes in the wish-viewer-layer message.
  void show_layer(Viewer &viewer, const std::vector<VideoLayer> &layers, int index, const char *why);
  void adapt_layer(Viewer &viewer);

  static GstPadProbeReturn on_entry_event(GstPad *pad, GstPadProbeInfo *info, gpointer data);
  bool build_chain(Input *input, GstCaps *caps);
  bool all_inputs_eos();
  // The stream whose `kind` tracks viewers of a request see, after switches; null when none.
  std::shared_ptr<Stream> stream_for(const std::string &requested, const std::string &kind);
  std::vector<std::shared_ptr<Track>> tracks_for(const std::string &requested, const std::string &kind);
  std::string own_name();
  std::vector<PlannedOutput> plan(const SessionRequest &request);
  void post_viewer_message(const char *name, const std::string &id, const char *reason);

  std::mutex inputs_mutex_;  // guards inputs_ and pad_counter_; never held across GStreamer calls
  std::vector<std::unique_ptr<Input>> inputs_;
  unsigned pad_counter_[2] = {0, 0};
  std::shared_ptr<Stream> stream_;  // the inputs' stream while serving; application thread
  std::vector<VideoLayer> layers_;  // video-layers as read at start
  // Packets and bytes sent to viewers that are gone, by the stream they were shown last, and
  // the metrics as the worker saw them last (tick).
  struct Quality {  // summed over the viewers whose receiver reports arrived
    double rtt_s = 0, fraction_lost = 0;
    gint64 packets_lost = 0;
    unsigned timed = 0, reporting = 0;  // viewers with a round trip / with loss figures
  };
  struct Metrics {
    std::map<std::string, guint> viewers;
    std::map<std::string, SentCounts> sent;
    std::map<std::string, Quality> quality;
  };
  std::mutex sent_mutex_;  // guards sent_done_ and metrics_; taken after sessions_mutex_, nothing under it
  std::map<std::string, SentCounts> sent_done_;
  unsigned ticks_ = 0;  // worker
  std::deque<std::pair<gint64, gint64>> cpu_samples_;  // worker: (wall, process CPU) in µs, the last 2 s
  std::atomic<double> cpu_load_{0};  // % of one core over the last 2 s
  Metrics metrics_;
  std::unique_ptr<RedirectProbe> redirect_probe_;  // redirect-policy=least-loaded while serving
  // The shared viewer transport, made for the first viewer it serves; worker thread.
  std::unique_ptr<SharedViewers> shared_;
  // Worker: serves the request on the shared transport; false when it goes to webrtcbin.
  bool serve_shared(const SessionRequest &request, const std::shared_ptr<SessionEvents> &events, SessionCallback &done);
};

WhepServer *whep_server(gpointer element);

}  // namespace wish
