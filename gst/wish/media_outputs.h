// The sometimes pads (video_%u / audio_%u) of a bin that receives WebRTC media: one ghost
// pad per stream, kept across sessions, each given decoded, encoded or RTP data according to
// what downstream accepts when the stream starts.
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

namespace wish {

class MediaOutputs {
public:
  explicit MediaOutputs(GstElement *bin) : bin_(bin) {}

  // The sometimes pad templates video_%u / audio_%u the outputs are made from; for class_init.
  static void add_pad_templates(GstElementClass *klass);

  // For a new webrtcbin src pad (called from its streaming thread): reuses a free output of
  // that kind (a later session continues on the same pad) or adds one, then links it.
  // Downstream's caps, in its order of preference, decide: raw (also when nothing is linked
  // or anything goes) -> decodebin; encoded (video/x-h264, x-vp8, x-vp9, audio/x-opus) ->
  // decodebin stopping at the parsed stream; application/x-rtp -> the RTP pad itself.
  GstPad *attach(GstPad *webrtc_pad, const std::string &kind);
  // The session went: outputs lose their targets and chains but stay, for the next session.
  void detach_all();
  // Removes every output pad from the bin (element stopping).
  void remove_all();
  void push_eos();
  guint64 buffers() const { return buffers_; }

private:
  struct Output {
    std::string kind;
    GstPad *ghost;                // owned by the bin
    GstElement *chain = nullptr;  // decodebin, or null for RTP out
    bool attached = false;
  };
  void on_decoded_pad(GstElement *decodebin, GstPad *pad);

  // Adds the pad to the bin and returns once it is added (downstream links it in pad-added,
  // and what it links to decides the output's mode). Pads are added one at a time and with no
  // lock held (pad-added reaches the application): the thread that finds nobody announcing
  // adds every queued pad; the others wait for theirs.
  void announce(GstPad *ghost);

  GstElement *bin_;
  // Guards outputs_, counter_, to_announce_ and announcing_; never held while calling into
  // GStreamer code that can reach the application.
  std::mutex mutex_;
  std::vector<Output> outputs_;
  // New pads are announced (pad-added) one at a time. Streams arrive on several streaming
  // threads, and gst_parse_launch's delayed links (in.video_0 ! ...) look their pad up by
  // name from every pad-added: two announcements at once made two threads link and
  // disconnect the same delayed link (a GLib critical, and the pad linked twice).
  std::vector<GstPad *> to_announce_;
  bool announcing_ = false;
  std::condition_variable announced_;  // a queued pad was added
  unsigned counter_[2] = {0, 0};
  std::atomic<guint64> buffers_{0};
};

}  // namespace wish
