// WebRTC viewers for bench/janus_compare: webrtcbin players (ICE on 127.0.0.1 only) of a Janus
// streaming mountpoint (Janus REST API: the server offers) and of a WHEP endpoint (the player
// offers), in this one process so that what the players cost stays outside the servers
// measured. Players do not decode: they count the RTP packets webrtcbin hands out.
//
//   janus_compare_viewers --janus http://127.0.0.1:8088/janus --mountpoint 1 --whep http://127.0.0.1:8889/whep
//
// Commands, one a line on stdin; each answer ends with a line "ok":
//   add janus|whep|both N [MS]
//                           start N players of each, one (of each) every MS milliseconds (default
//                           0: all at once); their pipelines are ready before the first request
//                           goes out, so a join times signalling and ICE/DTLS only
//   wait SECONDS            until every player added since the last wait has its first RTP packet
//                           (or SECONDS passed); prints "joins <server> <ms>..." (first request
//                           sent -> first RTP packet), "video <server> <ms>..." (-> first video
//                           packet), "parts <server> <signalling>,<player>,<connect>..." (ms:
//                           first request -> the server's answer (WHEP) or offer (Janus); the
//                           player's own work: making its offer before the clock (WHEP) or its
//                           answer (Janus, inside the join); the answer (WHEP) or the last
//                           request (Janus) -> first RTP packet)
//                           and "failed <server> <count> <first error>"
//   stats                   per server: "stats <server> <players> <receiving> <video pkt/s each>",
//                           receiving = players whose video packet count grew since the last stats
//   clear                   ends every player (Janus destroy / WHEP DELETE)
//   quit
#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <nice/agent.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

std::string g_janus, g_whep;
gint64 g_mountpoint = 1;
SoupSession *g_http = nullptr;
GMainLoop *g_loop = nullptr;

void on_main(std::function<void()> fn) {
  auto *f = new std::function<void()>(std::move(fn));
  g_main_context_invoke_full(nullptr, G_PRIORITY_DEFAULT, [](gpointer d) {
        (*static_cast<std::function<void()> *>(d))();
        return G_SOURCE_REMOVE;
      }, f, [](gpointer d) { delete static_cast<std::function<void()> *>(d); });
}

using HttpDone = std::function<void(guint status, const std::string &body, SoupMessage *msg)>;

void http(const char *method, const std::string &url, const char *content_type, const std::string &body,
          HttpDone done) {
  SoupMessage *msg = soup_message_new(method, url.c_str());
  if (!msg) {
    done(0, "bad URL " + url, nullptr);
    return;
  }
  if (content_type) {
    g_autoptr(GBytes) b = g_bytes_new(body.data(), body.size());
    soup_message_set_request_body_from_bytes(msg, content_type, b);
  }
  auto *d = new HttpDone(std::move(done));
  soup_session_send_and_read_async(g_http, msg, G_PRIORITY_DEFAULT, nullptr, [](GObject *src, GAsyncResult *res, gpointer data) {
        std::unique_ptr<HttpDone> done(static_cast<HttpDone *>(data));
        SoupMessage *msg = soup_session_get_async_result_message(SOUP_SESSION(src), res);
        GError *err = nullptr;
        GBytes *bytes = soup_session_send_and_read_finish(SOUP_SESSION(src), res, &err);
        if (!bytes) {
          (*done)(0, err ? err->message : "request failed", msg);
          g_clear_error(&err);
        } else {
          gsize n = 0;
          const char *p = static_cast<const char *>(g_bytes_get_data(bytes, &n));
          (*done)(soup_message_get_status(msg), std::string(p ? p : "", n), msg);
          g_bytes_unref(bytes);
        }
        g_object_unref(msg);
      }, d);
}

// A JSON object member as the given type; 0/"" when missing.
JsonObject *parse_object(JsonParser *parser, const std::string &text) {
  if (!json_parser_load_from_data(parser, text.c_str(), text.size(), nullptr)) return nullptr;
  JsonNode *root = json_parser_get_root(parser);
  return root && JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : nullptr;
}

std::string to_json(JsonBuilder *b) {
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autoptr(JsonGenerator) gen = json_generator_new();
  json_generator_set_root(gen, root);
  g_autofree gchar *s = json_generator_to_data(gen, nullptr);
  return s;
}

enum class Kind { janus, whep };
const char *name_of(Kind k) { return k == Kind::janus ? "janus" : "whep"; }

struct Viewer : std::enable_shared_from_this<Viewer> {
  Kind kind;
  GstElement *pipeline = nullptr, *webrtc = nullptr;
  std::vector<std::pair<guint, std::string>> candidates;  // webrtcbin thread -> main via on_main
  bool gathered = false;
  std::function<void()> after_gathering;
  std::string local_sdp;  // offer (WHEP) ready before the clock starts
  bool prepared = false;
  gint64 t_request = 0;
  gint64 t_prep_start = 0, t_prepared = 0;  // WHEP: the offer, made before the clock
  gint64 t_signalled = 0;                   // the server's answer (WHEP) / offer (Janus) arrived
  gint64 t_last_request = 0;                // WHEP: the POST; Janus: "start" with the answer
  std::atomic<gint64> first_rtp{0}, first_video{0};
  std::atomic<guint64> video_packets{0}, audio_packets{0};
  guint64 seen_video = 0;
  bool closed = false, failed = false;
  std::string error;
  // Janus
  std::string session_url, handle_url;
  guint keepalive = 0;
  int transaction = 0;
  // WHEP
  std::string resource;

  explicit Viewer(Kind k) : kind(k) {}

  void fail(const std::string &why) {
    if (failed || closed) return;
    failed = true;
    error = why;
  }

  std::string next_transaction() { return "t" + std::to_string(++transaction); }

  bool build() {
    pipeline = gst_pipeline_new(nullptr);
    webrtc = gst_element_factory_make("webrtcbin", nullptr);
    if (!webrtc) return false;
    // latency 0: the jitterbuffer hands each packet out as it comes, so first-packet times are
    // arrival times; max-bundle: one ICE/DTLS transport, as Janus and WHEP servers expect.
    g_object_set(webrtc, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, "latency", 0u, nullptr);
    gst_bin_add(GST_BIN(pipeline), webrtc);
    GstWebRTCICE *ice = nullptr;
    g_object_get(webrtc, "ice-agent", &ice, nullptr);
    NiceAgent *agent = nullptr;
    if (ice) g_object_get(ice, "agent", &agent, nullptr);
    if (!agent) return false;
    // UDP host candidates only: Janus (ICE-TCP off) refuses TCP ones.
    // Connectivity checks 5 ms apart (libnice's default 20), as whepsrc has them: the player's
    // pacing is not what a join should time.
    g_object_set(agent, "upnp", FALSE, "ice-tcp", FALSE, "stun-pacing-timer", 5u, nullptr);

    NiceAddress addr;
    nice_address_init(&addr);
    nice_address_set_from_string(&addr, "127.0.0.1");
    bool ok = nice_agent_add_local_address(agent, &addr);
    g_object_unref(agent);
    gst_object_unref(ice);
    if (!ok) return false;

    auto *weak = new std::weak_ptr<Viewer>(shared_from_this());
    auto free_weak = [](gpointer d, GClosure *) { delete static_cast<std::weak_ptr<Viewer> *>(d); };
    g_signal_connect_data(webrtc, "on-ice-candidate", G_CALLBACK(+[](GstElement *, guint mline, gchar *c, gpointer d) {
                            std::string cand = c ? c : "";
                            if (cand.rfind("a=", 0) == 0) cand = cand.substr(2);
                            auto w = *static_cast<std::weak_ptr<Viewer> *>(d);
                            on_main([w, mline, cand] {
                              if (auto v = w.lock()) v->candidates.emplace_back(mline, cand);
                            });
                          }),
                          weak, free_weak, GConnectFlags(0));
    weak = new std::weak_ptr<Viewer>(shared_from_this());
    g_signal_connect_data(webrtc, "notify::ice-gathering-state", G_CALLBACK(+[](GstElement *e, GParamSpec *, gpointer d) {
                            GstWebRTCICEGatheringState st;
                            g_object_get(e, "ice-gathering-state", &st, nullptr);
                            if (st != GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) return;
                            auto w = *static_cast<std::weak_ptr<Viewer> *>(d);
                            // After the candidates already queued to the main context.
                            on_main([w] {
                              if (auto v = w.lock()) v->gathering_done();
                            });
                          }),
                          weak, free_weak, GConnectFlags(0));
    weak = new std::weak_ptr<Viewer>(shared_from_this());
    g_signal_connect_data(webrtc, "pad-added", G_CALLBACK(+[](GstElement *, GstPad *pad, gpointer d) {
                            if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
                            auto v = static_cast<std::weak_ptr<Viewer> *>(d)->lock();
                            if (!v) return;
                            v->count_packets(pad);
                          }),
                          weak, free_weak, GConnectFlags(0));
    return gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE;
  }

  void count_packets(GstPad *pad) {
    g_autoptr(GstCaps) caps = gst_pad_get_current_caps(pad);
    if (!caps) caps = gst_pad_query_caps(pad, nullptr);
    const gchar *media = caps && gst_caps_get_size(caps) ? gst_structure_get_string(gst_caps_get_structure(caps, 0), "media") : nullptr;
    bool video = media && !strcmp(media, "video");
    GstElement *sink = gst_element_factory_make("fakesink", nullptr);
    g_object_set(sink, "sync", FALSE, "async", FALSE, nullptr);
    gst_bin_add(GST_BIN(pipeline), sink);
    GstPad *sinkpad = gst_element_get_static_pad(sink, "sink");
    gst_pad_add_probe(sinkpad, GstPadProbeType(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                      video ? +[](GstPad *, GstPadProbeInfo *info, gpointer d) { static_cast<Viewer *>(d)->packets(info, true); return GST_PAD_PROBE_OK; }
                            : +[](GstPad *, GstPadProbeInfo *info, gpointer d) { static_cast<Viewer *>(d)->packets(info, false); return GST_PAD_PROBE_OK; },
                      this, nullptr);
    gst_pad_link(pad, sinkpad);
    gst_object_unref(sinkpad);
    gst_element_sync_state_with_parent(sink);
  }

  void packets(GstPadProbeInfo *info, bool video) {
    guint n = 1;
    if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER_LIST) n = gst_buffer_list_length(GST_PAD_PROBE_INFO_BUFFER_LIST(info));
    gint64 now = g_get_monotonic_time(), zero = 0;
    first_rtp.compare_exchange_strong(zero, now);
    if (video) {
      zero = 0;
      first_video.compare_exchange_strong(zero, now);
      video_packets += n;
    } else {
      audio_packets += n;
    }
  }

  void gathering_done() {
    if (gathered) return;
    gathered = true;
    if (after_gathering) {
      auto fn = std::move(after_gathering);
      after_gathering = nullptr;
      fn();
    }
  }

  // Runs fn once ICE gathering completed (or after 2 s with what there is).
  void when_gathered(std::function<void()> fn) {
    if (gathered) {
      fn();
      return;
    }
    after_gathering = std::move(fn);
    auto w = new std::weak_ptr<Viewer>(shared_from_this());
    g_timeout_add_full(G_PRIORITY_DEFAULT, 2000, [](gpointer d) {
          if (auto v = static_cast<std::weak_ptr<Viewer> *>(d)->lock()) v->gathering_done();
          return G_SOURCE_REMOVE;
        }, w, [](gpointer d) { delete static_cast<std::weak_ptr<Viewer> *>(d); });
  }

  // The local description with every gathered candidate written in (a non-trickle peer).
  std::string local_description_with_candidates() {
    GstWebRTCSessionDescription *desc = nullptr;
    g_object_get(webrtc, "local-description", &desc, nullptr);
    if (!desc) return "";
    GstSDPMessage *sdp = nullptr;
    gst_sdp_message_copy(desc->sdp, &sdp);
    gst_webrtc_session_description_free(desc);
    for (guint i = 0; i < gst_sdp_message_medias_len(sdp); i++) {
      auto *m = const_cast<GstSDPMedia *>(gst_sdp_message_get_media(sdp, i));
      if (gst_sdp_media_get_attribute_val(m, "candidate")) continue;  // already there
      for (auto &[mline, c] : candidates)
        if (mline == i && c.rfind("candidate:", 0) == 0) gst_sdp_media_add_attribute(m, "candidate", c.c_str() + 10);
      gst_sdp_media_add_attribute(m, "end-of-candidates", nullptr);
    }
    g_autofree gchar *text = gst_sdp_message_as_text(sdp);
    gst_sdp_message_free(sdp);
    return text;
  }

  using Then = std::function<void()>;
  void promise_then(const char *signal, GstWebRTCSessionDescription *desc, Then then) {
    auto w = new std::pair<std::weak_ptr<Viewer>, Then>(shared_from_this(), std::move(then));
    GstPromise *p = gst_promise_new_with_change_func([](GstPromise *p, gpointer d) {
          auto *pair = static_cast<std::pair<std::weak_ptr<Viewer>, Then> *>(d);
          const GstStructure *reply = gst_promise_get_reply(p);
          std::string err;
          if (reply && gst_structure_has_field(reply, "error")) {
            GError *e = nullptr;
            gst_structure_get(reply, "error", G_TYPE_ERROR, &e, nullptr);
            err = e ? e->message : "webrtcbin error";
            g_clear_error(&e);
          }
          auto w = pair->first;
          auto then = pair->second;
          on_main([w, then, err] {
            auto v = w.lock();
            if (!v || v->closed) return;
            if (!err.empty()) v->fail(err);
            else then();
          });
        }, w, [](gpointer d) { delete static_cast<std::pair<std::weak_ptr<Viewer>, Then> *>(d); });
    g_signal_emit_by_name(webrtc, signal, desc, p);
    gst_promise_unref(p);
  }

  void create_then(const char *signal, std::function<void(GstWebRTCSessionDescription *)> then) {
    auto w = new std::pair<std::weak_ptr<Viewer>, std::function<void(GstWebRTCSessionDescription *)>>(shared_from_this(), std::move(then));
    using Pair = std::pair<std::weak_ptr<Viewer>, std::function<void(GstWebRTCSessionDescription *)>>;
    GstPromise *p = gst_promise_new_with_change_func([](GstPromise *p, gpointer d) {
          auto *pair = static_cast<Pair *>(d);
          const GstStructure *reply = gst_promise_get_reply(p);
          GstWebRTCSessionDescription *desc = nullptr;
          const char *field = reply && gst_structure_has_field(reply, "offer") ? "offer" : "answer";
          if (reply) gst_structure_get(reply, field, GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &desc, nullptr);
          auto w = pair->first;
          auto then = pair->second;
          on_main([w, then, desc] {
            auto v = w.lock();
            if (v && !v->closed) {
              if (desc) then(desc);
              else v->fail("webrtcbin made no description");
            }
            if (desc) gst_webrtc_session_description_free(desc);
          });
        }, w, [](gpointer d) { delete static_cast<Pair *>(d); });
    g_signal_emit_by_name(webrtc, signal, nullptr, p);
    gst_promise_unref(p);
  }

  // WHEP: the offer is made and gathered before the clock starts, as a WHEP player has it ready.
  void prepare(Then ready) {
    if (kind == Kind::janus) {
      prepared = true;
      ready();
      return;
    }
    const char *vcaps = "application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000,"
                        "packetization-mode=(string)1,profile-level-id=(string)42e01f,level-asymmetry-allowed=(string)1";
    const char *acaps = "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,encoding-params=(string)2";
    for (const char *c : {vcaps, acaps}) {
      GstCaps *caps = gst_caps_from_string(c);
      GstWebRTCRTPTransceiver *t = nullptr;
      g_signal_emit_by_name(webrtc, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, caps, &t);
      gst_caps_unref(caps);
      if (t) gst_object_unref(t);
    }
    auto self = shared_from_this();
    t_prep_start = g_get_monotonic_time();
    create_then("create-offer", [self, ready](GstWebRTCSessionDescription *offer) {
      self->promise_then("set-local-description", offer, [self, ready] {
        self->when_gathered([self, ready] {
          self->local_sdp = self->local_description_with_candidates();
          self->prepared = true;
          self->t_prepared = g_get_monotonic_time();
          ready();
        });
      });
    });
  }

  void start() {
    t_request = t_last_request = g_get_monotonic_time();
    if (kind == Kind::whep) start_whep();
    else start_janus();
  }

  void start_whep() {
    auto self = shared_from_this();
    http("POST", g_whep, "application/sdp", local_sdp, [self](guint status, const std::string &body, SoupMessage *msg) {
      if (self->closed) return;
      self->t_signalled = g_get_monotonic_time();
      if (status != 201) {
        self->fail("WHEP POST " + std::to_string(status) + " " + body.substr(0, 80));
        return;
      }
      const char *loc = soup_message_headers_get_one(soup_message_get_response_headers(msg), "Location");
      if (loc) {
        g_autofree gchar *abs = g_uri_resolve_relative(g_whep.c_str(), loc, G_URI_FLAGS_NONE, nullptr);
        if (abs) self->resource = abs;
      }
      GstSDPMessage *sdp = nullptr;
      gst_sdp_message_new_from_text(body.c_str(), &sdp);
      GstWebRTCSessionDescription *answer = gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_ANSWER, sdp);
      self->promise_then("set-remote-description", answer, [] {});
      gst_webrtc_session_description_free(answer);
    });
  }

  void janus_post(const std::string &url, JsonBuilder *b, std::function<void(JsonObject *)> then) {
    auto self = shared_from_this();
    http("POST", url, "application/json", to_json(b), [self, then](guint status, const std::string &body, SoupMessage *) {
      if (self->closed) return;
      g_autoptr(JsonParser) parser = json_parser_new();
      JsonObject *o = status == 200 ? parse_object(parser, body) : nullptr;
      const char *janus = o && json_object_has_member(o, "janus") ? json_object_get_string_member(o, "janus") : nullptr;
      if (!janus || !strcmp(janus, "error")) {
        self->fail("Janus: " + std::to_string(status) + " " + body.substr(0, 120));
        return;
      }
      then(o);
    });
  }

  JsonBuilder *janus_request(const char *what) {
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "janus");
    json_builder_add_string_value(b, what);
    json_builder_set_member_name(b, "transaction");
    json_builder_add_string_value(b, next_transaction().c_str());
    return b;
  }

  void start_janus() {
    auto self = shared_from_this();
    g_autoptr(JsonBuilder) create = janus_request("create");
    json_builder_end_object(create);
    janus_post(g_janus, create, [self](JsonObject *o) {
      JsonObject *data = json_object_get_object_member(o, "data");
      self->session_url = g_janus + "/" + std::to_string(json_object_get_int_member(data, "id"));
      self->poll();
      // Janus ends sessions silent for session_timeout (60 s); the long poll alone would do, the
      // keepalive is what Janus's own clients send.
      auto *w = new std::weak_ptr<Viewer>(self);
      self->keepalive = g_timeout_add_seconds_full(G_PRIORITY_DEFAULT, 25, [](gpointer d) -> gboolean {
            auto v = static_cast<std::weak_ptr<Viewer> *>(d)->lock();
            if (!v || v->closed) return G_SOURCE_REMOVE;
            g_autoptr(JsonBuilder) k = v->janus_request("keepalive");
            json_builder_end_object(k);
            v->janus_post(v->session_url, k, [](JsonObject *) {});
            return G_SOURCE_CONTINUE;
          }, w, [](gpointer d) { delete static_cast<std::weak_ptr<Viewer> *>(d); });
      g_autoptr(JsonBuilder) attach = self->janus_request("attach");
      json_builder_set_member_name(attach, "plugin");
      json_builder_add_string_value(attach, "janus.plugin.streaming");
      json_builder_end_object(attach);
      self->janus_post(self->session_url, attach, [self](JsonObject *o) {
        JsonObject *data = json_object_get_object_member(o, "data");
        self->handle_url = self->session_url + "/" + std::to_string(json_object_get_int_member(data, "id"));
        g_autoptr(JsonBuilder) watch = self->janus_request("message");
        json_builder_set_member_name(watch, "body");
        json_builder_begin_object(watch);
        json_builder_set_member_name(watch, "request");
        json_builder_add_string_value(watch, "watch");
        json_builder_set_member_name(watch, "id");
        json_builder_add_int_value(watch, g_mountpoint);
        json_builder_end_object(watch);
        json_builder_end_object(watch);
        self->janus_post(self->handle_url, watch, [](JsonObject *) {});  // "ack"; the offer comes as an event
      });
    });
  }

  // Janus's long poll: events (the offer among them) come as answers to GET <session>.
  void poll() {
    auto self = shared_from_this();
    http("GET", session_url + "?maxev=1", nullptr, "", [self](guint status, const std::string &body, SoupMessage *) {
      if (self->closed) return;
      if (status != 200) {
        self->fail("Janus long poll " + std::to_string(status));
        return;
      }
      g_autoptr(JsonParser) parser = json_parser_new();
      JsonObject *o = parse_object(parser, body);
      if (o && json_object_has_member(o, "jsep")) {
        JsonObject *jsep = json_object_get_object_member(o, "jsep");
        const char *type = json_object_get_string_member(jsep, "type");
        if (type && !strcmp(type, "offer")) self->answer_janus(json_object_get_string_member(jsep, "sdp"));
      }
      const char *janus = o ? json_object_get_string_member(o, "janus") : nullptr;
      if (janus && !strcmp(janus, "hangup")) self->fail("Janus hung up");
      self->poll();
    });
  }

  void answer_janus(const std::string &offer_text) {
    t_signalled = g_get_monotonic_time();
    GstSDPMessage *sdp = nullptr;
    gst_sdp_message_new_from_text(offer_text.c_str(), &sdp);
    GstWebRTCSessionDescription *offer = gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_OFFER, sdp);
    auto self = shared_from_this();
    promise_then("set-remote-description", offer, [self] {
      self->create_then("create-answer", [self](GstWebRTCSessionDescription *answer) {
        self->promise_then("set-local-description", answer, [self] {
          self->when_gathered([self] {
            g_autoptr(JsonBuilder) b = self->janus_request("message");
            json_builder_set_member_name(b, "body");
            json_builder_begin_object(b);
            json_builder_set_member_name(b, "request");
            json_builder_add_string_value(b, "start");
            json_builder_end_object(b);
            json_builder_set_member_name(b, "jsep");
            json_builder_begin_object(b);
            json_builder_set_member_name(b, "type");
            json_builder_add_string_value(b, "answer");
            json_builder_set_member_name(b, "sdp");
            json_builder_add_string_value(b, self->local_description_with_candidates().c_str());
            // Every candidate is in the answer: Janus need not wait for trickled ones.
            json_builder_set_member_name(b, "trickle");
            json_builder_add_boolean_value(b, FALSE);
            json_builder_end_object(b);
            json_builder_end_object(b);
            self->t_last_request = g_get_monotonic_time();
            self->janus_post(self->handle_url, b, [](JsonObject *) {});
          });
        });
      });
    });
    gst_webrtc_session_description_free(offer);
  }

  void close() {
    if (closed) return;
    closed = true;
    if (keepalive) g_source_remove(keepalive);
    keepalive = 0;
    if (kind == Kind::janus && !session_url.empty()) {
      g_autoptr(JsonBuilder) b = janus_request("destroy");
      json_builder_end_object(b);
      http("POST", session_url, "application/json", to_json(b), [](guint, const std::string &, SoupMessage *) {});
    } else if (kind == Kind::whep && !resource.empty()) {
      http("DELETE", resource, nullptr, "", [](guint, const std::string &, SoupMessage *) {});
    }
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(pipeline);
    pipeline = webrtc = nullptr;
  }
};

std::vector<std::shared_ptr<Viewer>> g_viewers;
size_t g_waited = 0;  // viewers before this index were reported by an earlier wait

void reply(const std::string &s) {
  fputs(s.c_str(), stdout);
  fputs("\n", stdout);
  fflush(stdout);
}

void cmd_add(const std::string &which, int n, guint spacing_ms) {
  std::vector<std::shared_ptr<Viewer>> added;
  for (int i = 0; i < n; i++)
    for (Kind k : {Kind::janus, Kind::whep})
      if (which == "both" || which == name_of(k)) {
        auto v = std::make_shared<Viewer>(k);
        if (!v->build()) {
          reply("error cannot build a webrtcbin player");
          continue;
        }
        added.push_back(v);
        g_viewers.push_back(v);
      }
  // Requests go out once every player is ready, a Janus and a WHEP player at the same moment.
  auto pending = std::make_shared<size_t>(added.size());
  size_t per_step = which == "both" ? 2 : 1;
  auto go = [added, per_step, spacing_ms] {
    for (size_t i = 0; i < added.size(); i += per_step) {
      std::vector<std::shared_ptr<Viewer>> group(added.begin() + i, added.begin() + std::min(added.size(), i + per_step));
      if (spacing_ms == 0 || i == 0) {
        for (auto &v : group) v->start();
        continue;
      }
      auto *g = new std::vector<std::shared_ptr<Viewer>>(group);
      g_timeout_add_full(G_PRIORITY_DEFAULT, spacing_ms * (i / per_step), [](gpointer d) -> gboolean {
            for (auto &v : *static_cast<std::vector<std::shared_ptr<Viewer>> *>(d))
              if (!v->closed) v->start();
            return G_SOURCE_REMOVE;
          }, g, [](gpointer d) { delete static_cast<std::vector<std::shared_ptr<Viewer>> *>(d); });
    }
    reply("ok");
  };
  if (added.empty()) {
    reply("ok");
    return;
  }
  for (auto &v : added)
    v->prepare([pending, go] {
      if (--*pending == 0) go();
    });
}

void cmd_wait(double seconds) {
  gint64 deadline = g_get_monotonic_time() + static_cast<gint64>(seconds * G_USEC_PER_SEC);
  auto *d = new gint64(deadline);
  g_timeout_add_full(G_PRIORITY_DEFAULT, 20, [](gpointer p) -> gboolean {
        gint64 deadline = *static_cast<gint64 *>(p);
        bool all = true;
        for (size_t i = g_waited; i < g_viewers.size(); i++)
          if (!g_viewers[i]->first_rtp.load() && !g_viewers[i]->failed) all = false;
        if (!all && g_get_monotonic_time() < deadline) return G_SOURCE_CONTINUE;
        for (Kind k : {Kind::janus, Kind::whep}) {
          std::string joins = std::string("joins ") + name_of(k), video = std::string("video ") + name_of(k), error;
          std::string parts = std::string("parts ") + name_of(k);
          int failed = 0;
          for (size_t i = g_waited; i < g_viewers.size(); i++) {
            auto &v = g_viewers[i];
            if (v->kind != k) continue;
            gint64 f = v->first_rtp.load(), fv = v->first_video.load();
            if (f) joins += " " + std::to_string((f - v->t_request) / 1000.0);
            if (fv) video += " " + std::to_string((fv - v->t_request) / 1000.0);
            if (f && v->t_signalled) {
              gint64 player = k == Kind::whep ? v->t_prepared - v->t_prep_start : v->t_last_request - v->t_signalled;
              char part[96];
              gint64 connect_from = k == Kind::whep ? v->t_signalled : v->t_last_request;
              snprintf(part, sizeof part, " %.1f,%.1f,%.1f", (v->t_signalled - v->t_request) / 1000.0, player / 1000.0,
                       (f - connect_from) / 1000.0);
              parts += part;
            }
            if (!f) {
              failed++;
              if (error.empty()) error = v->failed ? v->error : "no RTP";
            }
          }
          reply(joins);
          reply(video);
          reply(parts);
          reply("failed " + std::string(name_of(k)) + " " + std::to_string(failed) + " " + error);
        }
        g_waited = g_viewers.size();
        reply("ok");
        return G_SOURCE_REMOVE;
      }, d, [](gpointer p) { delete static_cast<gint64 *>(p); });
}

gint64 g_last_stats = 0;

void cmd_stats() {
  gint64 now = g_get_monotonic_time();
  double secs = g_last_stats ? (now - g_last_stats) / 1e6 : 0;
  g_last_stats = now;
  for (Kind k : {Kind::janus, Kind::whep}) {
    int players = 0, receiving = 0;
    guint64 grown = 0;
    for (auto &v : g_viewers) {
      if (v->kind != k || v->closed) continue;
      players++;
      guint64 c = v->video_packets.load();
      if (c > v->seen_video) receiving++;
      grown += c - v->seen_video;
      v->seen_video = c;
    }
    char line[160];
    snprintf(line, sizeof line, "stats %s %d %d %.1f", name_of(k), players, receiving,
             secs > 0 && receiving ? grown / secs / receiving : 0.0);
    reply(line);
  }
  reply("ok");
}

void cmd_clear() {
  for (auto &v : g_viewers) v->close();
  g_viewers.clear();
  g_waited = 0;
  // The DELETE/destroy requests are on their way; a moment for them to leave.
  g_timeout_add(500, [](gpointer) {
        reply("ok");
        return G_SOURCE_REMOVE;
      }, nullptr);
}

gboolean on_stdin(GIOChannel *ch, GIOCondition cond, gpointer) {
  gchar *line = nullptr;
  gsize len = 0;
  GIOStatus st = g_io_channel_read_line(ch, &line, &len, nullptr, nullptr);
  if (st == G_IO_STATUS_EOF || st == G_IO_STATUS_ERROR) {
    g_main_loop_quit(g_loop);
    return G_SOURCE_REMOVE;
  }
  if (!line) return G_SOURCE_CONTINUE;
  g_autofree gchar *owned = line;
  g_strstrip(line);
  g_auto(GStrv) w = g_strsplit(line, " ", 4);
  std::string c = w[0] ? w[0] : "";
  if (c == "add" && w[1] && w[2]) cmd_add(w[1], atoi(w[2]), w[3] ? atoi(w[3]) : 0);
  else if (c == "wait" && w[1]) cmd_wait(g_ascii_strtod(w[1], nullptr));
  else if (c == "stats") cmd_stats();
  else if (c == "clear") cmd_clear();
  else if (c == "quit") {
    for (auto &v : g_viewers) v->close();
    g_viewers.clear();
    g_timeout_add(300, [](gpointer) {
          g_main_loop_quit(g_loop);
          return G_SOURCE_REMOVE;
        }, nullptr);
  } else if (!c.empty()) reply("error unknown command " + c);
  return G_SOURCE_CONTINUE;
}

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--janus") g_janus = argv[i + 1];
    else if (a == "--whep") g_whep = argv[i + 1];
    else if (a == "--mountpoint") g_mountpoint = g_ascii_strtoll(argv[i + 1], nullptr, 10);
  }
  if (g_janus.empty() || g_whep.empty()) {
    fprintf(stderr, "usage: %s --janus URL --mountpoint ID --whep URL\n", argv[0]);
    return 2;
  }
  // GStreamer 1.22 makes one DTLS certificate per process, with the first DTLS element: made
  // here, so that no player's join pays for it.
  if (GstElement *dtls = gst_element_factory_make("dtlsdec", nullptr)) gst_object_unref(gst_object_ref_sink(dtls));
  // Players all come from here: no per-host connection limit (each Janus player holds a long poll).
  g_http = soup_session_new_with_options("max-conns", 4096, "max-conns-per-host", 4096, "timeout", 0, nullptr);
  g_loop = g_main_loop_new(nullptr, FALSE);
  GIOChannel *in = g_io_channel_unix_new(0);
  g_io_add_watch(in, GIOCondition(G_IO_IN | G_IO_HUP | G_IO_ERR), on_stdin, nullptr);
  reply("ready");
  g_main_loop_run(g_loop);
  g_io_channel_unref(in);
  g_object_unref(g_http);
  return 0;
}
