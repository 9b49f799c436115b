// Pieces of pipeline a server element hosts in its bin for the streams it makes itself
// (pulled, merged, transcoded): taps that hand a track's RTP to a decoding chain, and feeders
// that turn decoded or encoded media into a track.
//
// RtpTap::mutex_ ranks with SlotOutput's (after the Track locks may not be taken under it; it
// is never held while a buffer goes into the appsrc). TranscodeHost::mutex_ guards its list of
// variants and is never held while calling into GStreamer.
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gstptr.h"
#include "loop_thread.h"
#include "output_slot.h"
#include "send_chain.h"
#include "stream_registry.h"

namespace wish {

// Feeds the RTP of whatever track a slot points it at into an appsrc (live, timestamped on
// arrival), for a chain that decodes it.
class RtpTap : public TrackSink, public SlotTarget, public std::enable_shared_from_this<RtpTap> {
public:
  static std::shared_ptr<RtpTap> create(const std::string &kind, size_t index = 0);
  ~RtpTap() override;
  // Its appsrc and a decodebin after it, in `bin`; returns the decodebin (owned by the bin).
  GstElement *decode_in(GstBin *bin);

  const std::string &kind() const override { return kind_; }
  size_t index() const override { return index_; }
  const std::string &encoding() const override { return any_; }  // it decodes whatever comes
  void set_source(const std::shared_ptr<Track> &track) override;
  std::shared_ptr<Track> source() const override;
  void deliver(const std::shared_ptr<Track> &from, GstBuffer *buffer) override;
  void close() override;
  gint64 last_packet_us() const { return last_packet_us_; }

private:
  RtpTap(std::string kind, size_t index);
  const std::string kind_, any_;
  const size_t index_;
  GPtr<GstElement> appsrc_;
  mutable std::mutex mutex_;  // guards source_, closed_, caps_set_
  std::weak_ptr<Track> source_;
  bool closed_ = false, caps_set_ = false;
  std::atomic<gint64> last_packet_us_{0};
};

// Turns what reaches its sink pad (raw or encoded audio or video) into a track: a queue and,
// at the first caps, the encoder/parser/payloader chain make_send_chain picks; the payloader's
// output goes to the track. Its elements live in `bin`.
class TrackFeeder {
public:
  TrackFeeder(GstBin *bin, std::shared_ptr<Track> track, EncoderSettings settings);
  ~TrackFeeder();  // the elements leave the bin
  GstPad *sink_pad() const { return sink_.get(); }
  const std::shared_ptr<Track> &track() const { return track_; }
  // Why the chain could not be built, "" while all is well (a streaming thread sets it).
  std::string error() const;

private:
  static GstPadProbeReturn on_event(GstPad *pad, GstPadProbeInfo *info, gpointer data);
  bool build(GstCaps *caps);

  GstBin *bin_;
  std::shared_ptr<Track> track_;
  const EncoderSettings settings_;
  GPtr<GstElement> queue_;
  GPtr<GstPad> sink_;
  mutable std::mutex mutex_;  // guards chain_ and error_
  std::vector<GPtr<GstElement>> chain_;
  std::string error_;
};

// A sub-bin the element hosts (a pull, a merge, a variant in another codec). It settles its
// children's asynchronous state changes itself (a decodebin waiting for data): otherwise
// adding one takes the element's bin out of PLAYING until that decodebin prerolls, and a
// second one added meanwhile is brought to PAUSED only, where its live source stays idle and
// its decodebin never prerolls.
GstElement *new_hosted_bin(const char *name);
// Adds a hosted sub-bin to the element's bin and brings it to the element's state.
void add_hosted_bin(GstBin *parent, GstElement *child);
// Removes a sub-bin the element hosts: stopped, then out of the element's bin.
void remove_hosted_bin(GstBin *parent, GstElement *child);

// Variants of tracks in other codecs, each decoded and encoded once in the element's bin,
// made on first use and dropped when no target has used them for a few seconds.
class TranscodeHost : public Transcoder {
public:
  TranscodeHost(GstBin *bin, std::shared_ptr<Dispatcher> dispatch) : bin_(bin), dispatch_(std::move(dispatch)) {}
  ~TranscodeHost() override { stop(); }
  // Any thread: the variant's track at once; its pipeline is built on the worker.
  std::shared_ptr<Track> variant(const std::shared_ptr<Track> &source, const std::string &encoding,
                                 const VideoLayer *layer = nullptr) override;
  void tick();  // worker
  void stop();  // worker, or when the worker is gone
  size_t count() const;

  struct Variant {
    std::weak_ptr<Track> source;
    std::string encoding;
    VideoLayer layer;  // rid "" for the source's own size and bitrate
    std::shared_ptr<Track> track;
    std::shared_ptr<RtpTap> tap;  // decoding the source track, or:
    GPtr<GstElement> raw_tee;     // the source's raw media, branched off at its tee
    GPtr<GstPad> tee_pad;
    GPtr<GstElement> bin;
    std::unique_ptr<TrackFeeder> feeder;
    gint64 unused_since = 0;
  };

private:
  void build(const std::shared_ptr<Variant> &v);
  void tear_down(const std::shared_ptr<Variant> &v);

  GstBin *bin_;
  std::shared_ptr<Dispatcher> dispatch_;
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<Variant>> variants_;
};

}  // namespace wish
