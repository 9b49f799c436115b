// The streams one HTTP server carries, by name: a whepserversink's inputs, each WHIP
// publisher that named its stream, later pulled and merged streams. A stream is a set of
// tracks; a track is one payloaded RTP stream, made once and handed to every output slot
// that points at it. Viewers attach to slots (output_slot.h), and the registry re-points the
// slots of a stream's audience to another stream at run time (switch_stream), without any
// renegotiation.
//
// Locks, in the order they may be nested: StreamRegistry::mutex_, Slot::mutex_,
// Stream::mutex_, SlotOutput::mutex_, Track::mutex_ (the whole table is in
// server_element.h). None is held while a packet or event goes into webrtcbin or a keyframe
// request goes upstream.
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gstptr.h"
#include "protocol/sdp.h"

namespace wish {

class Track;
class Slot;

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

  bool has_caps() const;
  GPtr<GstCaps> caps() const;  // the payloader's RTP caps; null until it negotiated
  SendCodec codec() const;
  // std::hash of the encoding name (H264, VP8, OPUS, ...): a cheap check for every packet.
  size_t encoding_hash() const { return encoding_hash_; }
  GstSegment segment() const;  // the source's last segment (a default TIME one until then)
  gint64 first_caps_us() const { return first_caps_us_; }

  void add_sink(const std::shared_ptr<TrackSink> &sink);
  void remove_sink(const TrackSink *sink);
  size_t sink_count() const;

  // Asks the source for a keyframe (video only; the request goes upstream asynchronously).
  // Requests within 200 ms of the last one are dropped unless forced.
  void request_keyframe(bool force);

private:
  static GstPadProbeReturn on_source(GstPad *pad, GstPadProbeInfo *info, gpointer data);
  void on_caps(GstCaps *caps);

  const std::string kind_;
  mutable std::mutex mutex_;  // guards everything below but the atomics
  GPtr<GstPad> source_;
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
  std::atomic<gint64> last_keyframe_request_{0};
};

class Stream {
public:
  // origin: who feeds it ("whepserversink s", "whip publisher"), for stats and messages.
  Stream(std::string name, std::string origin) : name_(std::move(name)), origin_(std::move(origin)) {}
  const std::string &name() const { return name_; }
  const std::string &origin() const { return origin_; }

  std::shared_ptr<Track> add_track(const std::string &kind);
  void add_track(std::shared_ptr<Track> track);
  void remove_track(const std::shared_ptr<Track> &track);
  // The index-th track of that kind, null when there is none.
  std::shared_ptr<Track> track(const std::string &kind, size_t index) const;
  std::vector<std::shared_ptr<Track>> tracks() const;

  // Live: something feeds it now (a publisher is connected, the element is playing).
  void set_live(bool live) { live_ = live; }
  bool live() const { return live_; }
  // Whether viewers can be answered: live, and every track has media, or one has had it for
  // longer than grace_us. So nobody gets a video-only answer because the audio started a
  // moment later, and a track that stays silent is left out in the end.
  bool ready(gint64 grace_us = kTrackGraceUs) const;
  static constexpr gint64 kTrackGraceUs = 3 * G_USEC_PER_SEC;

private:
  const std::string name_, origin_;
  mutable std::mutex mutex_;  // guards tracks_
  std::vector<std::shared_ptr<Track>> tracks_;
  std::atomic<bool> live_{false};
};

class StreamRegistry {
public:
  // The registry of the HTTP server at key ("address:port"); "" for a registry of one's own.
  static std::shared_ptr<StreamRegistry> acquire(const std::string &key);
  ~StreamRegistry();

  // False when another stream has that name.
  bool add(const std::shared_ptr<Stream> &stream);
  // The stream leaves: routes to it end, and the slots showing it go back to what they asked for.
  void remove(const std::shared_ptr<Stream> &stream);
  std::shared_ptr<Stream> find(const std::string &name) const;
  // The stream viewers of `name` see: after switch_stream(name, other), other.
  std::shared_ptr<Stream> resolve(const std::string &name) const;
  std::vector<std::shared_ptr<Stream>> streams() const;

  // Endpoint paths (WHEP and WHIP) the locators in switch_stream may start with.
  void add_endpoint_path(const std::string &path);
  void remove_endpoint_path(const std::string &path);
  // The stream name a locator (URL, path or name) stands for.
  std::string name_of(const std::string &locator) const;

  // A viewer's slot joins the audience of the stream it asked for and is pointed at what
  // that stream resolves to; leave() when it goes.
  void join(const std::shared_ptr<Slot> &slot);
  void leave(const Slot *slot);
  size_t audience(const std::string &name) const;

  // Every viewer of `from` (and every later one) now sees `to`; to == from (or "") ends the
  // switch. Locators are accepted for both. False with *error when a stream is unknown.
  bool switch_stream(const std::string &from, const std::string &to, std::string *error);
  std::map<std::string, std::string> routes() const;

private:
  StreamRegistry() = default;
  std::shared_ptr<Stream> resolve_locked(const std::string &name) const;
  // Points each slot at what its request resolves to now (no lock held).
  static void repoint(const std::vector<std::pair<std::shared_ptr<Slot>, std::shared_ptr<Stream>>> &moves);

  std::string key_;
  // Serializes re-pointing: held from deciding where slots point to having pointed them, so
  // two changes cannot apply out of order. Taken before mutex_.
  std::mutex repoint_mutex_;
  mutable std::mutex mutex_;  // guards everything below
  std::map<std::string, std::shared_ptr<Stream>> streams_;
  std::map<std::string, std::string> routes_;  // requested name -> name shown instead
  std::vector<std::weak_ptr<Slot>> audience_;
  std::vector<std::string> endpoint_paths_;
};

}  // namespace wish
