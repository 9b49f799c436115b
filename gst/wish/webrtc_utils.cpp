#include "webrtc_utils.h"

#include "dtls_certificate.h"

#include <algorithm>
#include <memory>

#include <gio/gio.h>
#include <nice/agent.h>
#include <nice/interfaces.h>

#include <gst/sdp/sdp.h>

#include "gstptr.h"
#include "protocol/http.h"

// Its own category: this file is linked into the unit tests too, without the plugin's ones.
GST_DEBUG_CATEGORY_STATIC(wish_warm_up_debug);
#define GST_CAT_DEFAULT wish_warm_up_debug

namespace wish {

bool resolve_local_addresses(const std::string &spec, std::vector<std::string> *out,
                             std::string *error) {
  out->clear();
  for (const auto &item : split_list(spec)) {
    g_autoptr(GInetAddress) inet = g_inet_address_new_from_string(item.c_str());
    if (inet) {
      out->push_back(item);
      continue;
    }
    g_autofree gchar *ip = nice_interfaces_get_ip_for_interface(const_cast<gchar *>(item.c_str()));
    if (!ip) {
      *error = "'" + item + "' is neither an IP address nor a network interface with one";
      return false;
    }
    out->push_back(ip);
  }
  return true;
}

bool parse_port_range(const std::string &spec, PortRange *out, std::string *error) {
  *out = {};
  std::string s(trim(spec));
  if (s.empty()) return true;
  unsigned lo = 0, hi = 0;
  char rest = 0;
  if (sscanf(s.c_str(), "%u-%u%c", &lo, &hi, &rest) != 2 || lo == 0 || hi > 65535 || lo > hi) {
    *error = "'" + spec + "' is not a port range min-max (1-65535, min <= max)";
    return false;
  }
  out->min = lo;
  out->max = hi;
  return true;
}

bool set_ice_port_range(GstElement *webrtcbin, const PortRange &range, std::string *error) {
  if (range.any()) return true;
  g_autoptr(GstWebRTCICE) ice = nullptr;
  g_object_get(webrtcbin, "ice-agent", &ice, nullptr);
  if (!ice || !g_object_class_find_property(G_OBJECT_GET_CLASS(ice), "min-rtp-port")) {
    *error = "webrtcbin's ICE agent has no port range";
    return false;
  }
  // Max first: the agent refuses a min above the current max.
  g_object_set(ice, "max-rtp-port", range.max, "min-rtp-port", range.min, nullptr);
  return true;
}

static GPtr<NiceAgent> nice_agent_of(GstElement *webrtcbin) {
  g_autoptr(GstWebRTCICE) ice = nullptr;
  g_object_get(webrtcbin, "ice-agent", &ice, nullptr);
  if (!ice) return {};
  NiceAgent *agent = nullptr;
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(ice), "agent"))
    g_object_get(ice, "agent", &agent, nullptr);
  return GPtr<NiceAgent>::adopt(agent);
}

bool configure_webrtcbin(GstElement *webrtcbin, const std::vector<std::string> &local_addresses,
                         const std::string &stun_server, const std::vector<std::string> &turn_servers,
                         std::string *error) {
  g_object_set(webrtcbin, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, nullptr);
  if (!stun_server.empty()) g_object_set(webrtcbin, "stun-server", stun_server.c_str(), nullptr);
  for (const auto &t : turn_servers) {
    gboolean ok = FALSE;
    g_signal_emit_by_name(webrtcbin, "add-turn-server", t.c_str(), &ok);
    if (!ok) {
      *error = "webrtcbin refused TURN server " + t;
      return false;
    }
  }
  auto agent = nice_agent_of(webrtcbin);
  if (!agent) {
    *error = "webrtcbin has no libnice agent";
    return false;
  }
  // Port mapping requests leave the host; a media server has no use for them.
  g_object_set(agent.get(), "upnp", FALSE, nullptr);
  // Connectivity checks 5 ms apart instead of 20: the first media arrives tens of ms sooner.
  g_object_set(agent.get(), "stun-pacing-timer", 5u, nullptr);
  // Each candidate pair is checked at 0, 0.5, 1.5 and 3.5 s (libnice's default stops after
  // 1.5 s): a session whose first packets the network lost still connects within the few
  // seconds servers wait for it, without a new session.
  g_object_set(agent.get(), "stun-max-retransmissions", 4u, nullptr);
  for (const auto &a : local_addresses) {
    NiceAddress addr;
    nice_address_init(&addr);
    if (!nice_address_set_from_string(&addr, a.c_str()) ||
        !nice_agent_add_local_address(agent.get(), &addr)) {
      *error = "cannot gather ICE candidates on " + a;
      return false;
    }
  }
  return true;
}

// The libnice stream behind the first transceiver; with max-bundle every m-line shares it.
static bool nice_stream_id(GstElement *webrtcbin, guint *stream_id) {
  g_autoptr(GstWebRTCRTPTransceiver) trans = nullptr;
  g_signal_emit_by_name(webrtcbin, "get-transceiver", 0, &trans);
  if (!trans) return false;
  g_autoptr(GstWebRTCRTPSender) sender = nullptr;
  g_object_get(trans, "sender", &sender, nullptr);
  if (!sender) return false;
  g_autoptr(GstWebRTCDTLSTransport) dtls = nullptr;
  g_object_get(sender, "transport", &dtls, nullptr);
  if (!dtls) return false;
  g_autoptr(GstWebRTCICETransport) ice_transport = nullptr;
  g_object_get(dtls, "transport", &ice_transport, nullptr);
  if (!ice_transport || !g_object_class_find_property(G_OBJECT_GET_CLASS(ice_transport), "stream")) return false;
  g_autoptr(GObject) stream = nullptr;
  g_object_get(ice_transport, "stream", &stream, nullptr);
  if (!stream) return false;
  g_object_get(stream, "stream-id", stream_id, nullptr);
  return true;
}

static void add_candidates_to_stream(NiceAgent *agent, guint stream_id,
                                     const std::vector<std::string> &candidates) {
  GSList *list = nullptr;
  for (const auto &c : candidates) {
    std::string line = c.rfind("a=", 0) == 0 ? c : "a=" + c;
    NiceCandidate *cand = nice_agent_parse_remote_candidate_sdp(agent, stream_id, line.c_str());
    if (!cand) continue;  // unusable candidates are dropped silently (RFC 9725 §4.3.1)
    if (cand->component_id != 1) {
      nice_candidate_free(cand);
      continue;  // rtcp-mux: component 1 only
    }
    list = g_slist_append(list, cand);
  }
  if (list) nice_agent_set_remote_candidates(agent, stream_id, 1, list);
  g_slist_free_full(list, reinterpret_cast<GDestroyNotify>(nice_candidate_free));
}

void add_remote_candidates(GstElement *webrtcbin, const std::vector<std::string> &candidates) {
  auto agent = nice_agent_of(webrtcbin);
  guint stream_id = 0;
  if (!agent || !nice_stream_id(webrtcbin, &stream_id)) return;
  add_candidates_to_stream(agent.get(), stream_id, candidates);
}

bool set_remote_ice(GstElement *webrtcbin, const std::string &ufrag, const std::string &pwd,
                    const std::vector<std::string> &candidates) {
  auto agent = nice_agent_of(webrtcbin);
  guint stream_id = 0;
  if (!agent || !nice_stream_id(webrtcbin, &stream_id)) return false;
  if (!nice_agent_set_remote_credentials(agent.get(), stream_id, ufrag.c_str(), pwd.c_str())) return false;
  add_candidates_to_stream(agent.get(), stream_id, candidates);
  return true;
}

bool restart_ice(GstElement *webrtcbin, const std::string &remote_ufrag,
                 const std::string &remote_pwd, const std::vector<std::string> &remote_candidates,
                 LocalIce *local, std::string *error) {
  auto agent = nice_agent_of(webrtcbin);
  guint stream_id = 0;
  if (!agent || !nice_stream_id(webrtcbin, &stream_id)) {
    *error = "no ICE stream to restart";
    return false;
  }
  if (!nice_agent_restart_stream(agent.get(), stream_id)) {
    *error = "libnice refused to restart the ICE stream";
    return false;
  }
  if (!nice_agent_set_remote_credentials(agent.get(), stream_id, remote_ufrag.c_str(),
                                         remote_pwd.c_str())) {
    *error = "libnice refused the new remote ICE credentials";
    return false;
  }
  g_autofree gchar *ufrag = nullptr;
  g_autofree gchar *pwd = nullptr;
  if (!nice_agent_get_local_credentials(agent.get(), stream_id, &ufrag, &pwd)) {
    *error = "no local ICE credentials after the restart";
    return false;
  }
  local->ufrag = ufrag;
  local->pwd = pwd;
  local->candidates.clear();
  GSList *cands = nice_agent_get_local_candidates(agent.get(), stream_id, 1);
  for (GSList *l = cands; l; l = l->next) {
    g_autofree gchar *sdp = nice_agent_generate_local_candidate_sdp(agent.get(), static_cast<NiceCandidate *>(l->data));
    if (sdp) {
      std::string s(sdp);
      if (s.rfind("a=", 0) == 0) s = s.substr(2);
      local->candidates.push_back(s);
    }
  }
  g_slist_free_full(cands, reinterpret_cast<GDestroyNotify>(nice_candidate_free));
  add_candidates_to_stream(agent.get(), stream_id, remote_candidates);
  return true;
}

// Whether the webrtc warm-up has loaded its plugins; the decoders' waits for it.
static GMutex warm_mutex;
static GCond warm_cond;
static bool webrtc_warm = false;

static void init_warm_up_debug() {
  static gsize once = 0;
  if (!g_once_init_enter(&once)) return;
  GST_DEBUG_CATEGORY_INIT(wish_warm_up_debug, "wishwarmup", 0, "wish: what a process loads ahead of its first session");
  g_once_init_leave(&once, 1);
}

void warm_up_webrtc() {
  static gsize once = 0;
  if (!g_once_init_enter(&once)) return;
  init_warm_up_debug();
  // Here, not in the thread: it must come before any DTLS element of the process exists.
  prefer_ecdsa_dtls_certificate();
  GThread *thread = g_thread_new("wish-warm-up", [](gpointer) -> gpointer {
    // Instances, not only factories: the DTLS elements make the process's certificate when
    // the first one is created.
    // rtpstorage and rtpreddec (the rtp plugin) are what webrtcbin adds to the session
    // during negotiation.
    for (const char *factory : {"webrtcbin", "dtlssrtpdec", "dtlssrtpenc", "nicesrc", "nicesink", "rtpbin", "srtpenc",
                                "rtpstorage", "rtpreddec"}) {
      GstElement *e = gst_element_factory_make(factory, nullptr);
      if (e) gst_object_unref(gst_object_ref_sink(e));
    }
    GST_DEBUG("warm-up: webrtc elements loaded");
    g_mutex_lock(&warm_mutex);
    webrtc_warm = true;
    g_cond_broadcast(&warm_cond);
    g_mutex_unlock(&warm_mutex);
    return nullptr;
  }, nullptr);
  g_thread_unref(thread);
  g_once_init_leave(&once, 1);
}

void warm_up_decoders() {
  static gsize once = 0;
  if (!g_once_init_enter(&once)) return;
  init_warm_up_debug();
  GThread *thread = g_thread_new("wish-warm-up-decoders", [](gpointer) -> gpointer {
    // After what the offer needs: GStreamer loads one plugin at a time, and the decoders'
    // (libav's above all, tens of ms) would hold up webrtcbin's ICE and DTLS plugins.
    gint64 until = g_get_monotonic_time() + 2 * G_TIME_SPAN_SECOND;
    g_mutex_lock(&warm_mutex);
    while (!webrtc_warm && g_cond_wait_until(&warm_cond, &warm_mutex, until)) {
    }
    g_mutex_unlock(&warm_mutex);
    for (const char *factory : {"decodebin", "rtph264depay", "h264parse", "rtpvp8depay", "rtpvp9depay",
                                "rtpopusdepay", "videoconvert", "audioconvert", "audioresample"}) {
      GstElement *e = gst_element_factory_make(factory, nullptr);
      if (e) gst_object_unref(gst_object_ref_sink(e));
    }
    // The decoder decodebin would choose for each: the highest ranked one for the caps.
    GList *decoders = gst_element_factory_list_get_elements(GST_ELEMENT_FACTORY_TYPE_DECODER, GST_RANK_MARGINAL);
    decoders = g_list_sort(decoders, gst_plugin_feature_rank_compare_func);
    for (const char *caps_str : {"video/x-h264, stream-format=byte-stream, alignment=au", "video/x-vp8",
                                 "video/x-vp9", "audio/x-opus"}) {
      GstCaps *caps = gst_caps_from_string(caps_str);
      GList *usable = gst_element_factory_list_filter(decoders, caps, GST_PAD_SINK, FALSE);
      if (usable) {
        GstElement *e = gst_element_factory_create(GST_ELEMENT_FACTORY(usable->data), nullptr);
        if (e) gst_object_unref(gst_object_ref_sink(e));
      }
      gst_plugin_feature_list_free(usable);
      gst_caps_unref(caps);
    }
    gst_plugin_feature_list_free(decoders);
    GST_DEBUG("warm-up: decoders loaded");
    return nullptr;
  }, nullptr);
  g_thread_unref(thread);
  g_once_init_leave(&once, 1);
}

void warm_up_http(const std::string &url) {
  static gsize once = 0;
  if (!g_once_init_enter(&once)) return;
  init_warm_up_debug();
  GThread *thread = g_thread_new("wish-warm-up-http", [](gpointer data) -> gpointer {
    std::unique_ptr<std::string> target(static_cast<std::string *>(data));
    // The resolver libsoup uses for every connection; the lookup starts libproxy's own
    // set-up (its configuration), which the first lookup pays for. A URL it cannot parse
    // (an endpoint not set yet) is refused without harm.
    GProxyResolver *resolver = g_proxy_resolver_get_default();
    g_auto(GStrv) proxies = g_proxy_resolver_lookup(resolver, target->c_str(), nullptr, nullptr);
    GST_DEBUG("warm-up: proxy resolver ready");
    return nullptr;
  }, new std::string(url.empty() ? "http://127.0.0.1/" : url));
  g_thread_unref(thread);
  g_once_init_leave(&once, 1);
}

std::string stream_kind(GstPad *webrtc_src_pad) {
  g_autoptr(GstCaps) caps = gst_pad_get_current_caps(webrtc_src_pad);
  if (!caps) caps = gst_pad_query_caps(webrtc_src_pad, nullptr);
  const gchar *media = gst_structure_get_string(gst_caps_get_structure(caps, 0), "media");
  return media ? media : "video";
}

void watch_incoming(GstElement *webrtcbin, std::shared_ptr<std::atomic<gint64>> last_rx) {
  last_rx->store(g_get_monotonic_time());
  GstIterator *it = gst_bin_iterate_recurse(GST_BIN(webrtcbin));
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    GstElement *e = GST_ELEMENT(g_value_get_object(&item));
    GstElementFactory *f = gst_element_get_factory(e);
    if (f && g_str_equal(GST_OBJECT_NAME(f), "nicesrc")) {
      g_autoptr(GstPad) src = gst_element_get_static_pad(e, "src");
      gst_pad_add_probe(src, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                        [](GstPad *, GstPadProbeInfo *, gpointer d) {
                          (*static_cast<std::shared_ptr<std::atomic<gint64>> *>(d))->store(g_get_monotonic_time());
                          return GST_PAD_PROBE_OK;
                        },
                        new std::shared_ptr<std::atomic<gint64>>(last_rx),
                        [](gpointer d) { delete static_cast<std::shared_ptr<std::atomic<gint64>> *>(d); });
    }
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
}

GstPromise *promise_with_callback(PromiseCallback cb) {
  auto *heap = new PromiseCallback(std::move(cb));
  return gst_promise_new_with_change_func(
      [](GstPromise *promise, gpointer data) {
        auto *fn = static_cast<PromiseCallback *>(data);
        GstPromiseResult result = gst_promise_wait(promise);
        const GstStructure *reply = result == GST_PROMISE_RESULT_REPLIED ? gst_promise_get_reply(promise) : nullptr;
        g_autoptr(GError) err = nullptr;
        if (reply && gst_structure_has_field(reply, "error")) gst_structure_get(reply, "error", G_TYPE_ERROR, &err, nullptr);
        if (result != GST_PROMISE_RESULT_REPLIED) {
          (*fn)(false, nullptr, "webrtcbin did not answer");
        } else if (err) {
          (*fn)(false, reply, err->message);
        } else {
          (*fn)(true, reply, "");
        }
      },
      heap, [](gpointer data) { delete static_cast<PromiseCallback *>(data); });
}

static GstWebRTCSessionDescription *description(GstWebRTCSDPType type, const std::string &text) {
  GstSDPMessage *sdp = nullptr;
  if (gst_sdp_message_new_from_text(text.c_str(), &sdp) != GST_SDP_OK) return nullptr;
  return gst_webrtc_session_description_new(type, sdp);
}

static Negotiated refused(unsigned status, std::string error) {
  Negotiated n;
  n.status = status;
  n.error = std::move(error);
  return n;
}

// Applies a description webrtcbin made (from a create-offer/create-answer reply) and reports
// its text once applied.
static void apply_local(GstElement *webrtcbin, const GstStructure *reply, const char *field, NegotiatedCallback done,
                        const SdpEdit &edit = {}) {
  g_autoptr(GstWebRTCSessionDescription) desc = nullptr;
  if (reply) gst_structure_get(reply, field, GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &desc, nullptr);
  if (!desc) {
    done(refused(422, std::string("webrtcbin made no ") + field));
    return;
  }
  g_autofree gchar *text = gst_sdp_message_as_text(desc->sdp);
  std::string sdp = text;
  if (edit) {
    std::string edited = edit(sdp);
    if (edited != sdp) {
      GstWebRTCSessionDescription *replaced = description(desc->type, edited);
      if (!replaced) {
        done(refused(500, std::string("the edited ") + field + " does not parse"));
        return;
      }
      gst_webrtc_session_description_free(desc);
      desc = replaced;
      sdp = edited;
    }
  }
  g_autoptr(GstPromise) set = promise_with_callback([sdp, done](bool ok, const GstStructure *, const std::string &error) {
    if (!ok) {
      done(refused(500, "cannot apply the local description: " + error));
      return;
    }
    Negotiated n;
    n.ok = true;
    n.status = 200;
    n.sdp = with_true_dtls_fingerprint(sdp);  // what the peer checks the certificate against
    done(n);
  });
  g_signal_emit_by_name(webrtcbin, "set-local-description", desc, set);
}

void answer_remote_offer(GstElement *webrtcbin, const std::string &offer, NegotiatedCallback done, SdpEdit edit) {
  g_autoptr(GstWebRTCSessionDescription) desc = description(GST_WEBRTC_SDP_TYPE_OFFER, offer);
  if (!desc) {
    done(refused(400, "unparsable SDP offer"));
    return;
  }
  GPtr<GstElement> webrtc = GPtr<GstElement>::ref(webrtcbin);
  g_autoptr(GstPromise) promise =
      promise_with_callback([webrtc, done, edit](bool ok, const GstStructure *, const std::string &error) {
    if (!ok) {
      done(refused(400, "offer rejected: " + error));
      return;
    }
    g_autoptr(GstPromise) answer =
        promise_with_callback([webrtc, done, edit](bool ok, const GstStructure *reply, const std::string &error) {
          if (!ok)
            done(refused(422, error.empty() ? "webrtcbin made no answer" : error));
          else
            apply_local(webrtc.get(), reply, "answer", done, edit);
        });
    g_signal_emit_by_name(webrtc.get(), "create-answer", nullptr, answer);
  });
  g_signal_emit_by_name(webrtcbin, "set-remote-description", desc, promise);
}

void create_local_offer(GstElement *webrtcbin, NegotiatedCallback done, SdpEdit edit) {
  GPtr<GstElement> webrtc = GPtr<GstElement>::ref(webrtcbin);
  g_autoptr(GstPromise) promise =
      promise_with_callback([webrtc, done, edit](bool ok, const GstStructure *reply, const std::string &error) {
        if (!ok)
          done(refused(500, error.empty() ? "webrtcbin made no offer" : error));
        else
          apply_local(webrtc.get(), reply, "offer", done, edit);
      });
  g_signal_emit_by_name(webrtcbin, "create-offer", nullptr, promise);
}

void apply_remote_answer(GstElement *webrtcbin, const std::string &answer, NegotiatedCallback done) {
  g_autoptr(GstWebRTCSessionDescription) desc = description(GST_WEBRTC_SDP_TYPE_ANSWER, answer);
  if (!desc) {
    done(refused(400, "unparsable SDP answer"));
    return;
  }
  g_autoptr(GstPromise) promise = promise_with_callback([done](bool ok, const GstStructure *, const std::string &error) {
    if (!ok) {
      done(refused(400, "answer rejected: " + error));
      return;
    }
    Negotiated n;
    n.ok = true;
    n.status = 200;
    done(n);
  });
  g_signal_emit_by_name(webrtcbin, "set-remote-description", desc, promise);
}

SendStats send_stats(GstElement *webrtcbin, const std::vector<uint32_t> &ssrcs) {
  SendStats out;
  GstElement *rtpbin = nullptr;
  GstIterator *it = gst_bin_iterate_recurse(GST_BIN(webrtcbin));
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    auto *e = GST_ELEMENT(g_value_get_object(&item));
    GstElementFactory *f = gst_element_get_factory(e);
    const gchar *name = f ? GST_OBJECT_NAME(f) : "";
    if (g_str_equal(name, "rtprtxsend")) {
      guint requests = 0, packets = 0;
      g_object_get(e, "num-rtx-requests", &requests, "num-rtx-packets", &packets, nullptr);
      out.nacks += requests;
      out.retransmitted += packets;
    } else if (g_str_equal(name, "rtpbin") && !rtpbin) {
      rtpbin = GST_ELEMENT(gst_object_ref(e));
    }
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  if (!rtpbin) return out;
  GObject *session = nullptr;
  g_signal_emit_by_name(rtpbin, "get-internal-session", 0u, &session);  // bundled: one session
  double rtt = 0, lost = 0;
  int rtts = 0, reports = 0;
  GstStructure *stats = nullptr;
  if (session) g_object_get(session, "stats", &stats, nullptr);
  const GValue *sources = stats ? gst_structure_get_value(stats, "source-stats") : nullptr;
  // The peer's receiver reports arrive as report blocks of its own (remote) sources; each
  // keeps its last one only, which may be about an SSRC of ours (loss) or about our
  // retransmissions: the round trip holds for either.
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  GValueArray *array = sources && G_VALUE_HOLDS(sources, G_TYPE_VALUE_ARRAY) ? (GValueArray *)g_value_get_boxed(sources) : nullptr;
  for (guint i = 0; array && i < array->n_values; i++) {
    const GstStructure *st = gst_value_get_structure(g_value_array_get_nth(array, i));
    gboolean internal = TRUE, have_rb = FALSE;
    guint rb_ssrc = 0, round_trip = 0, fraction = 0;
    gint packets_lost = 0;
    if (!st || !gst_structure_get_boolean(st, "internal", &internal) || internal) continue;
    if (!gst_structure_get_boolean(st, "have-rb", &have_rb) || !have_rb || !gst_structure_get_uint(st, "rb-ssrc", &rb_ssrc))
      continue;
    if (gst_structure_get_uint(st, "rb-round-trip", &round_trip) && round_trip > 0) {
      rtt += round_trip / 65536.0;  // NTP short format
      rtts++;
    }
    if (std::find(ssrcs.begin(), ssrcs.end(), rb_ssrc) == ssrcs.end()) continue;
    gst_structure_get_uint(st, "rb-fractionlost", &fraction);
    gst_structure_get_int(st, "rb-packetslost", &packets_lost);
    lost += fraction / 256.0;
    out.packets_lost += packets_lost;
    reports++;
  }
  G_GNUC_END_IGNORE_DEPRECATIONS
  if (stats) gst_structure_free(stats);
  if (session) g_object_unref(session);
  gst_object_unref(rtpbin);
  if (rtts) out.rtt_s = rtt / rtts;
  if (reports) out.fraction_lost = lost / reports;
  return out;
}

}  // namespace wish
