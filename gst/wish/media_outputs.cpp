#include "media_outputs.h"

#include <algorithm>

#include "gstptr.h"

GST_DEBUG_CATEGORY_EXTERN(wish_outputs_debug);
#define GST_CAT_DEFAULT wish_outputs_debug

namespace wish {

namespace {

enum class Mode { Raw, Encoded, Rtp };

// Downstream's first acceptable choice among raw, encoded and RTP.
Mode choose_mode(GstPad *ghost, const std::string &kind, GPtr<GstCaps> *wanted_encoded) {
  if (!gst_pad_is_linked(ghost)) return Mode::Raw;
  g_autoptr(GstCaps) peer = gst_pad_peer_query_caps(ghost, nullptr);
  if (!peer || gst_caps_is_any(peer) || gst_caps_is_empty(peer)) return Mode::Raw;
  GST_DEBUG_OBJECT(ghost, "downstream accepts %" GST_PTR_FORMAT, peer);
  g_autoptr(GstCaps) raw = gst_caps_from_string(kind == "video" ? "video/x-raw(ANY)" : "audio/x-raw(ANY)");
  g_autoptr(GstCaps) encoded =
      gst_caps_from_string(kind == "video" ? "video/x-h264; video/x-vp8; video/x-vp9; video/x-h265"
                                           : "audio/x-opus; audio/x-mulaw; audio/x-alaw; audio/G722");
  g_autoptr(GstCaps) rtp = gst_caps_from_string("application/x-rtp");
  for (guint i = 0; i < gst_caps_get_size(peer); i++) {
    g_autoptr(GstCaps) one = gst_caps_copy_nth(peer, i);
    if (gst_caps_can_intersect(one, raw)) return Mode::Raw;
    if (gst_caps_can_intersect(one, encoded)) {
      // Every encoded format downstream takes, so decodebin stops at whichever arrives.
      *wanted_encoded = GPtr<GstCaps>::adopt(gst_caps_intersect(peer, encoded));
      return Mode::Encoded;
    }
    if (gst_caps_can_intersect(one, rtp)) return Mode::Rtp;
  }
  return Mode::Raw;
}

}  // namespace

void MediaOutputs::add_pad_templates(GstElementClass *klass) {
  static GstStaticPadTemplate video = GST_STATIC_PAD_TEMPLATE(
      "video_%u", GST_PAD_SRC, GST_PAD_SOMETIMES,
      GST_STATIC_CAPS("video/x-raw(ANY); video/x-h264; video/x-vp8; video/x-vp9; video/x-h265; "
                      "application/x-rtp, media=video"));
  static GstStaticPadTemplate audio = GST_STATIC_PAD_TEMPLATE(
      "audio_%u", GST_PAD_SRC, GST_PAD_SOMETIMES,
      GST_STATIC_CAPS("audio/x-raw(ANY); audio/x-opus; audio/x-mulaw; audio/x-alaw; audio/G722; "
                      "application/x-rtp, media=audio"));
  gst_element_class_add_static_pad_template(klass, &video);
  gst_element_class_add_static_pad_template(klass, &audio);
}

GstPad *MediaOutputs::attach(GstPad *webrtc_pad, const std::string &kind) {
  GstPad *ghost = nullptr;
  bool is_new = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto &o : outputs_)
      if (o.kind == kind && !o.attached) {
        ghost = o.ghost;
        o.attached = true;
        break;
      }
    if (!ghost) {
      unsigned &n = counter_[kind == "video" ? 0 : 1];
      std::string name = kind + "_" + std::to_string(n++);
      GstPadTemplate *templ =
          gst_element_class_get_pad_template(GST_ELEMENT_GET_CLASS(bin_), kind == "video" ? "video_%u" : "audio_%u");
      ghost = gst_ghost_pad_new_no_target_from_template(name.c_str(), templ);
      // An output nobody linked must not stop the session with not-linked.
      gst_pad_add_probe(ghost, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                        [](GstPad *pad, GstPadProbeInfo *, gpointer d) {
                          static_cast<MediaOutputs *>(d)->buffers_++;
                          return gst_pad_is_linked(pad) ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
                        },
                        this, nullptr);
      outputs_.push_back({kind, ghost, nullptr, true});
      is_new = true;
    }
  }
  if (is_new) {
    gst_pad_set_active(ghost, TRUE);
    announce(ghost);  // downstream links here (gst-launch, applications)
  }

  GPtr<GstCaps> wanted_encoded;
  Mode mode = choose_mode(ghost, kind, &wanted_encoded);
  GST_INFO_OBJECT(bin_, "%s output %s: %s", kind.c_str(), GST_PAD_NAME(ghost),
                  mode == Mode::Raw ? "decoded" : mode == Mode::Encoded ? "encoded" : "RTP");
  if (mode == Mode::Rtp) {
    gst_ghost_pad_set_target(GST_GHOST_PAD(ghost), webrtc_pad);
    return ghost;
  }
  GstElement *decodebin = gst_element_factory_make("decodebin", nullptr);
  if (wanted_encoded) g_object_set(decodebin, "caps", wanted_encoded.get(), nullptr);
  g_signal_connect_data(decodebin, "pad-added", G_CALLBACK(+[](GstElement *bin, GstPad *pad, gpointer d) {
                          static_cast<MediaOutputs *>(d)->on_decoded_pad(bin, pad);
                        }),
                        this, nullptr, static_cast<GConnectFlags>(0));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto &o : outputs_)
      if (o.ghost == ghost) o.chain = decodebin;
  }
  gst_bin_add(GST_BIN(bin_), decodebin);
  gst_element_sync_state_with_parent(decodebin);
  g_autoptr(GstPad) sink = gst_element_get_static_pad(decodebin, "sink");
  gst_pad_link(webrtc_pad, sink);
  return ghost;
}

void MediaOutputs::announce(GstPad *ghost) {
  auto queued = [this](GstPad *pad) {
    return std::find(to_announce_.begin(), to_announce_.end(), pad) != to_announce_.end();
  };
  {
    std::unique_lock<std::mutex> lock(mutex_);
    to_announce_.push_back(ghost);
    if (announcing_) {
      // Another thread is adding pads: it adds this one too.
      announced_.wait(lock, [&] { return !queued(ghost); });
      return;
    }
    announcing_ = true;
  }
  for (;;) {
    GstPad *next;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (to_announce_.empty()) {
        announcing_ = false;
        return;
      }
      next = to_announce_.front();
    }
    gst_element_add_pad(bin_, next);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      to_announce_.erase(to_announce_.begin());
    }
    announced_.notify_all();
  }
}

void MediaOutputs::on_decoded_pad(GstElement *decodebin, GstPad *pad) {
  GstPad *ghost = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto &o : outputs_)
      if (o.chain == decodebin) ghost = o.ghost;
  }
  if (!ghost) {
    GST_WARNING_OBJECT(bin_, "decoded pad %" GST_PTR_FORMAT " of a chain no output has: dropped", pad);
    return;
  }
  g_autoptr(GstPad) current = gst_ghost_pad_get_target(GST_GHOST_PAD(ghost));
  if (current) {  // one stream per output
    GST_WARNING_OBJECT(ghost, "already shows %" GST_PTR_FORMAT ": decoded pad %" GST_PTR_FORMAT " left out", current,
                       pad);
    return;
  }
  if (!gst_ghost_pad_set_target(GST_GHOST_PAD(ghost), pad))
    GST_WARNING_OBJECT(ghost, "could not show decoded pad %" GST_PTR_FORMAT, pad);
  else
    GST_INFO_OBJECT(ghost, "shows decoded pad %" GST_PTR_FORMAT, pad);
}

void MediaOutputs::detach_all() {
  std::vector<GstElement *> chains;
  std::vector<GPtr<GstPad>> ghosts;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto &o : outputs_) {
      ghosts.push_back(GPtr<GstPad>::ref(o.ghost));
      if (o.chain) chains.push_back(o.chain);
      o.chain = nullptr;
      o.attached = false;
    }
  }
  for (const auto &g : ghosts) gst_ghost_pad_set_target(GST_GHOST_PAD(g.get()), nullptr);
  for (GstElement *e : chains) {
    gst_element_set_locked_state(e, TRUE);
    gst_element_set_state(e, GST_STATE_NULL);
    gst_bin_remove(GST_BIN(bin_), e);
  }
}

void MediaOutputs::remove_all() {
  detach_all();
  std::vector<GstPad *> ghosts;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto &o : outputs_) ghosts.push_back(o.ghost);
    outputs_.clear();
    counter_[0] = counter_[1] = 0;
  }
  for (GstPad *g : ghosts) {
    gst_pad_set_active(g, FALSE);
    gst_element_remove_pad(bin_, g);
  }
}

void MediaOutputs::push_eos() {
  std::vector<GPtr<GstPad>> ghosts;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto &o : outputs_) ghosts.push_back(GPtr<GstPad>::ref(o.ghost));
  }
  for (const auto &g : ghosts) gst_pad_push_event(g.get(), gst_event_new_eos());
}

}  // namespace wish
