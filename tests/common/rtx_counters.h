// Loss and retransmission counters of every webrtcbin inside a pipeline (the elements' own
// webrtcbins included), and a probe that drops received RTP packets as a lossy network
// would: for the NACK/RTX tests and bench/loss.
#pragma once

#include <gst/gst.h>
#include <gst/rtp/rtp.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <set>
#include <string>

namespace wish_test {

struct RtxCounters {
  guint64 nacks_sent = 0;       // packets asked for again in RTCP NACKs (rtpsession)
  guint64 nacks_received = 0;   // packets the peer asked for again (rtpsession)
  guint64 rtx_sent = 0;         // retransmissions sent (rtprtxsend num-rtx-packets)
  guint64 rtx_received = 0;     // retransmissions received (rtprtxreceive num-rtx-packets)
  guint64 lost = 0;             // packets the jitterbuffers gave up on (num-lost)
  guint64 pushed = 0;           // packets the jitterbuffers passed on (num-pushed)
  guint64 rtx_requested = 0;    // retransmission requests the jitterbuffers made (rtx-count)
  guint64 rtx_recovered = 0;    // of those, answered in time (rtx-success-count)
  guint64 duplicates = 0;       // packets the jitterbuffers had already (num-duplicates)
  guint64 late = 0;             // packets that came after the jitterbuffers gave up on them (num-late)
  guint64 rtx_rtt_ms = 0;       // the jitterbuffers' average wait for a retransmission (rtx-rtt), the largest

  RtxCounters &operator+=(const RtxCounters &o) {
    nacks_sent += o.nacks_sent;
    nacks_received += o.nacks_received;
    rtx_sent += o.rtx_sent;
    rtx_received += o.rtx_received;
    lost += o.lost;
    pushed += o.pushed;
    rtx_requested += o.rtx_requested;
    rtx_recovered += o.rtx_recovered;
    duplicates += o.duplicates;
    late += o.late;
    rtx_rtt_ms = std::max(rtx_rtt_ms, o.rtx_rtt_ms);
    return *this;
  }
  std::string text() const {
    return "nacks-sent=" + std::to_string(nacks_sent) + " nacks-received=" + std::to_string(nacks_received) +
           " rtx-sent=" + std::to_string(rtx_sent) + " rtx-received=" + std::to_string(rtx_received) +
           " jitterbuffer: pushed=" + std::to_string(pushed) + " lost=" + std::to_string(lost) +
           " rtx-requested=" + std::to_string(rtx_requested) + " rtx-recovered=" + std::to_string(rtx_recovered) +
           " duplicates=" + std::to_string(duplicates) + " late=" + std::to_string(late) +
           " rtx-rtt-ms=" + std::to_string(rtx_rtt_ms);
  }
};

inline const char *factory_name(GstElement *e) {
  GstElementFactory *f = gst_element_get_factory(e);
  return f ? GST_OBJECT_NAME(f) : "";
}

// Calls fn for every element inside bin, at any depth.
inline void for_each_element(GstBin *bin, const std::function<void(GstElement *)> &fn) {
  GstIterator *it = gst_bin_iterate_recurse(bin);
  GValue item = G_VALUE_INIT;
  bool done = false;
  while (!done) {
    switch (gst_iterator_next(it, &item)) {
      case GST_ITERATOR_OK:
        fn(GST_ELEMENT(g_value_get_object(&item)));
        g_value_reset(&item);
        break;
      case GST_ITERATOR_RESYNC: gst_iterator_resync(it); break;
      default: done = true; break;
    }
  }
  g_value_unset(&item);
  gst_iterator_free(it);
}

inline guint64 uint_field(const GstStructure *s, const char *name) {
  guint u = 0;
  guint64 u64 = 0;
  if (gst_structure_get_uint(s, name, &u)) return u;
  if (gst_structure_get_uint64(s, name, &u64)) return u64;
  return 0;
}

// The counters of every rtpsession, rtprtxsend, rtprtxreceive and rtpjitterbuffer in bin now.
inline RtxCounters rtx_counters(GstBin *bin) {
  RtxCounters c;
  for_each_element(bin, [&c](GstElement *e) {
    std::string f = factory_name(e);
    if (f == "rtpsession") {
      GstStructure *s = nullptr;
      g_object_get(e, "stats", &s, nullptr);
      if (s) {
        c.nacks_sent += uint_field(s, "sent-nack-count");
        c.nacks_received += uint_field(s, "recv-nack-count");
        gst_structure_free(s);
      }
    } else if (f == "rtprtxsend") {
      guint n = 0;
      g_object_get(e, "num-rtx-packets", &n, nullptr);
      c.rtx_sent += n;
    } else if (f == "rtprtxreceive") {
      guint n = 0;
      g_object_get(e, "num-rtx-packets", &n, nullptr);
      c.rtx_received += n;
    } else if (f == "rtpjitterbuffer") {
      GstStructure *s = nullptr;
      g_object_get(e, "stats", &s, nullptr);
      if (s) {
        c.lost += uint_field(s, "num-lost");
        c.pushed += uint_field(s, "num-pushed");
        c.rtx_requested += uint_field(s, "rtx-count");
        c.rtx_recovered += uint_field(s, "rtx-success-count");
        c.duplicates += uint_field(s, "num-duplicates");
        c.late += uint_field(s, "num-late");
        c.rtx_rtt_ms = std::max(c.rtx_rtt_ms, uint_field(s, "rtx-rtt") / 1000000);
        gst_structure_free(s);
      }
    }
  });
  return c;
}

// The first n packets instead of every `every`-th (RtpDropper): a session whose start the
// network lost. The receiver cannot ask for these again: nothing before them tells it they
// existed.
struct DropFirst {
  unsigned n;
};

// Drops received RTP packets of the given payload types (the media's own, never its rtx
// payload types), as the network would: every `every`-th one (by sequence number) once
// decrypted, in every webrtcbin the pipeline has or gets. Retransmissions come with another
// payload type and SSRC and always pass. The probes outlive the dropper harmlessly (they stop
// dropping when it goes).
class RtpDropper {
public:
  RtpDropper(GstElement *pipeline, std::set<int> payload_types, unsigned every)
      : RtpDropper(pipeline, std::move(payload_types), every, 0) {}
  RtpDropper(GstElement *pipeline, std::set<int> payload_types, DropFirst first)
      : RtpDropper(pipeline, std::move(payload_types), 0, first.n) {}
  ~RtpDropper() {
    state_->active = false;
    g_signal_handler_disconnect(pipeline_, handler_);
  }
  RtpDropper(const RtpDropper &) = delete;
  RtpDropper &operator=(const RtpDropper &) = delete;
  guint64 dropped() const { return state_->dropped; }
  guint64 seen() const { return state_->seen; }
  void set_active(bool on) { state_->active = on; }

private:
  RtpDropper(GstElement *pipeline, std::set<int> payload_types, unsigned every, unsigned first)
      : pipeline_(pipeline), state_(std::make_shared<State>()) {
    state_->payload_types = std::move(payload_types);
    state_->every = every;
    state_->first = first;
    handler_ = g_signal_connect_data(
        pipeline, "deep-element-added",
        G_CALLBACK(+[](GstBin *, GstBin *, GstElement *e, gpointer d) {
          if (g_str_equal(factory_name(e), "dtlssrtpdec")) watch(*static_cast<std::shared_ptr<State> *>(d), e);
        }),
        new std::shared_ptr<State>(state_), [](gpointer d, GClosure *) { delete static_cast<std::shared_ptr<State> *>(d); },
        static_cast<GConnectFlags>(0));
    for_each_element(GST_BIN(pipeline), [this](GstElement *e) {
      if (g_str_equal(factory_name(e), "dtlssrtpdec")) watch(state_, e);
    });
  }
  struct State {
    std::set<int> payload_types;
    unsigned every = 20;
    unsigned first = 0;  // when set: the first `first` packets seen go, and nothing else
    std::atomic<bool> active{true};
    std::atomic<guint64> dropped{0}, seen{0};

    // Whether this packet goes; counted only when count is set.
    bool drop(GstBuffer *buf, bool count) {
      GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
      if (!active || !gst_rtp_buffer_map(buf, GST_MAP_READ, &rtp)) return false;
      int pt = gst_rtp_buffer_get_payload_type(&rtp);
      guint16 seq = gst_rtp_buffer_get_seq(&rtp);
      gst_rtp_buffer_unmap(&rtp);
      if (!payload_types.count(pt)) return false;
      if (first) {
        if (!count) return seen < first;  // a buffer list's first look, before its packets one by one
        return seen++ < first ? (dropped++, true) : false;
      }
      if (count) seen++;
      if (seq % every != every / 2) return false;
      if (count) dropped++;
      return true;
    }
  };

  static void watch(const std::shared_ptr<State> &state, GstElement *dec) {
    GstPad *pad = gst_element_get_static_pad(dec, "rtp_src");
    if (!pad) return;
    gst_pad_add_probe(pad, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                      &RtpDropper::probe, new std::shared_ptr<State>(state),
                      [](gpointer d) { delete static_cast<std::shared_ptr<State> *>(d); });
    gst_object_unref(pad);
  }
  static GstPadProbeReturn probe(GstPad *, GstPadProbeInfo *info, gpointer data) {
    State *st = static_cast<std::shared_ptr<State> *>(data)->get();
    if (info->type & GST_PAD_PROBE_TYPE_BUFFER)
      return st->drop(GST_PAD_PROBE_INFO_BUFFER(info), true) ? GST_PAD_PROBE_DROP : GST_PAD_PROBE_OK;
    GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
    bool any = false;
    for (guint i = 0; i < gst_buffer_list_length(list) && !any; i++) any = st->drop(gst_buffer_list_get(list, i), false);
    if (!any) {
      for (guint i = 0; i < gst_buffer_list_length(list); i++) st->drop(gst_buffer_list_get(list, i), true);
      return GST_PAD_PROBE_OK;
    }
    list = gst_buffer_list_make_writable(list);
    for (guint i = 0; i < gst_buffer_list_length(list);) {
      if (st->drop(gst_buffer_list_get(list, i), true))
        gst_buffer_list_remove(list, i, 1);
      else
        i++;
    }
    GST_PAD_PROBE_INFO_DATA(info) = list;
    return gst_buffer_list_length(list) ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
  }

  GstElement *pipeline_;
  std::shared_ptr<State> state_;
  gulong handler_ = 0;
};

}  // namespace wish_test
