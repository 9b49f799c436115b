// A track: one payloaded RTP stream, made once (the source is a payloader's src pad) and
// handed packet by packet to every sink pointed at it, whatever their number.
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gstptr.h"
#include "protocol/keyframe_pacer.h"
#include "protocol/rate_meter.h"
#include "protocol/sdp.h"

namespace wish {

class Track;

// The key frame requests of the video tracks one sender feeds (its simulcast encodings, or
// its one video), paced together by a KeyframePacer; a clock timer sends those that wait.
class KeyframeRequests : public std::enable_shared_from_this<KeyframeRequests> {
public:
  KeyframeRequests();
  ~KeyframeRequests();
  KeyframeRequests(const KeyframeRequests &) = delete;
  KeyframeRequests &operator=(const KeyframeRequests &) = delete;
  // A track of the sender: its index for the calls below.
  int join(const std::shared_ptr<Track> &track);
  // own_encoder: the track is encoded here (raw input), by an encoder that honours every
  // request; its requests are paced only to bound what a burst of joins costs (200 ms, not
  // the 500 ms a publisher's encoder needs).
  void want(int index, bool own_encoder = false);
  // Called for each packet of the track: true while it should look for a key frame.
  bool wanted(int index) const;
  void keyframe(int index);

private:
  std::vector<std::shared_ptr<Track>> tracks_locked(const std::vector<int> &indexes) const;
  void schedule_locked(gint64 now_us);
  static gboolean on_timer(GstClock *clock, GstClockTime time, GstClockID id, gpointer data);

  mutable std::mutex mutex_;
  KeyframePacer pacer_;
  std::vector<std::weak_ptr<Track>> tracks_;  // by index
  GstClock *clock_;
  GstClockID timer_ = nullptr;
  gint64 timer_due_us_ = -1;
};

// Takes what a track sends.
class TrackSink {
public:
  virtual ~TrackSink() = default;
  // On the track source's streaming thread: one RTP packet, ownership passed.
  virtual void deliver(const std::shared_ptr<Track> &from, GstBuffer *buffer) = 0;
};

class Track : public std::enable_shared_from_this<Track> {
public:
  explicit Track(std::string kind) : kind_(std::move(kind)) {}
  ~Track();
  const std::string &kind() const { return kind_; }

  // The payloader's src pad the track's RTP leaves from. The pad stays unlinked: a probe
  // hands each packet to the sinks, so no sink can make the shared chain renegotiate, block
  // or flush. Replaces an earlier source.
  void set_source(GstPad *payloader_src);
  void clear_source();
  // A tee of the raw media the track is encoded from, when the element has it: encodings in
  // other codecs start from there instead of decoding the track.
  void set_raw_source(GstElement *tee);
  GPtr<GstElement> raw_source() const;

  bool has_caps() const;
  GPtr<GstCaps> caps() const;  // the payloader's RTP caps; null until it negotiated
  SendCodec codec() const;
  // std::hash of the encoding name (H264, VP8, OPUS, ...): a cheap check for every packet.
  size_t encoding_hash() const { return encoding_hash_; }
  GstSegment segment() const;  // the source's last segment (a default TIME one until then)
  gint64 first_caps_us() const { return first_caps_us_; }
  // The picture size of a video track as its source last told it (0x0 while unknown): set by
  // the element that feeds it.
  void set_picture_size(int width, int height) {
    width_ = width;
    height_ = height;
  }
  int width() const { return width_; }
  int height() const { return height_; }
  // The RTP bytes its publisher sends (counted by the element that feeds it), per second over
  // the last two seconds: a simulcast layer's bitrate.
  void count_received(size_t bytes) { received_.add(g_get_monotonic_time(), bytes); }
  uint64_t received_bps() const { return received_.bits_per_second(g_get_monotonic_time()); }

  void add_sink(const std::shared_ptr<TrackSink> &sink);
  void remove_sink(const TrackSink *sink);
  // A sink leaves `from` for `to` (either may be null).
  static void move_sink(const std::shared_ptr<Track> &from, const std::shared_ptr<Track> &to,
                        const std::shared_ptr<TrackSink> &sink);
  size_t sink_count() const;

  // Asks the source for a keyframe (video only; the request goes upstream asynchronously),
  // paced with the requests of the other tracks of its sender (KeyframePacer): none is
  // dropped, those that come close together are sent as one.
  void request_keyframe();
  // The tracks of one sender share their pacing; a track on its own gets its own.
  void share_keyframe_requests(const std::shared_ptr<KeyframeRequests> &requests);

private:
  friend class KeyframeRequests;
  static GstPadProbeReturn on_source(GstPad *pad, GstPadProbeInfo *info, gpointer data);
  void on_caps(GstCaps *caps);
  std::shared_ptr<KeyframeRequests> keyframe_requests(int *index);
  void watch_keyframe(GstBuffer *buffer);
  void send_keyframe_request();  // the upstream event, now

  const std::string kind_;
  mutable std::mutex mutex_;  // guards everything below but the atomics
  GPtr<GstPad> source_;
  GPtr<GstElement> raw_source_;
  gulong probe_ = 0;
  GPtr<GstCaps> caps_;
  SendCodec codec_;
  GstSegment segment_{};
  bool have_segment_ = false;
  // Copy on write: the streaming thread takes a reference and delivers without the lock.
  std::shared_ptr<const std::vector<std::shared_ptr<TrackSink>>> sinks_ =
      std::make_shared<const std::vector<std::shared_ptr<TrackSink>>>();
  std::atomic<gint64> first_caps_us_{0};
  std::atomic<size_t> encoding_hash_{0};
  std::shared_ptr<KeyframeRequests> keyframe_requests_;  // under mutex_, with the index there
  int keyframe_index_ = -1;
  std::atomic<guint> keyframe_count_{0};  // requests so far (the FIR sequence follows it)
  std::atomic<int> width_{0}, height_{0};
  RateMeter received_;
};

}  // namespace wish
