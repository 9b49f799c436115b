// The streams one HTTP server carries, by name: a whepserversink's inputs, each WHIP
// publisher that named its stream, later pulled and merged streams. A stream is a set of
// tracks (track.h): each one payloaded RTP stream, made once and handed to every output
// slot that points at it. Viewers attach to slots (output_slot.h), and the registry
// re-points the slots of a stream's audience to another stream at run time (switch_stream,
// take_over), without any renegotiation.
//
// Locks, in the order they may be nested: StreamRegistry::mutex_, Slot::mutex_,
// Stream::mutex_, SlotOutput::mutex_, Track::mutex_ (the whole table is in
// server_element.h). None is held while a packet or event goes into webrtcbin or a keyframe
// request goes upstream.
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gstptr.h"
#include "protocol/layers.h"
#include "protocol/sdp.h"
#include "track.h"

namespace wish {

class Endpoint;
class MetricsText;

class Track;
class Slot;
class SlotTarget;
class Stream;

// Makes a track of another encoding from a track: decoded once, encoded once, for every
// target that needs it (a server element hosts the pipeline).
class Transcoder {
public:
  virtual ~Transcoder() = default;
  // The variant of `source` in `encoding` (scaled and at the bitrate of `layer` when given),
  // made on first use; null when it cannot be made.
  virtual std::shared_ptr<Track> variant(const std::shared_ptr<Track> &source, const std::string &encoding,
                                         const VideoLayer *layer = nullptr) = 0;
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
  // The media IDs (msid stream and track ids) of what feeds it, and whether it carries one of
  // `ids` (WHISP grabbing finds the new media so).
  void set_msids(std::vector<std::string> ids);
  bool carries_msid(const std::vector<std::string> &ids) const;
  // How whoever feeds it (a WHIP publisher) is made to stop, delay_ms from now; a grab ends
  // the old publisher of the stream it takes over so.
  using SourceEnder = std::function<void(unsigned delay_ms, const std::string &reason)>;
  void set_source_ender(SourceEnder ender);
  void end_source(unsigned delay_ms, const std::string &reason);

  // The lower video layers its video is also encoded in (each one once, for every viewer
  // who asks for it), largest first; the video track itself is the top layer.
  void set_layers(std::vector<VideoLayer> layers);
  std::vector<VideoLayer> layers() const;

  // Simulcast: the publisher sends its video in several encodings, told apart by rid, each a
  // track of its own that viewers are pointed at as they are (none is re-encoded). The video
  // track of the stream (track("video", 0)) is one of them: the largest with media now.
  void add_simulcast_track(const std::string &rid, std::shared_ptr<Track> track);
  // A publisher sends these encodings now: those of other rids leave (their viewers are to be
  // pointed again). The video track, when it leaves, gives its place to an encoding that
  // stays, or stays the plain video track when none does and rids is empty. True when any left.
  bool keep_simulcast(const std::vector<std::string> &rids);
  std::shared_ptr<Track> simulcast_track(const std::string &rid) const;
  bool simulcast() const;
  std::vector<std::shared_ptr<Track>> simulcast_tracks() const;
  // The encodings as layers, largest first (those whose size is not known yet last, in the
  // publisher's order); empty without simulcast.
  std::vector<VideoLayer> simulcast_layers() const;
  // Makes the largest simulcast track that has media now (received within the last two
  // seconds) the video track; true when it changed (the audience is to be pointed again).
  bool promote_largest_simulcast();

  // Whether viewers can be answered: live, and every track has media, or one has had it for
  // longer than grace_us. So nobody gets a video-only answer because the audio started a
  // moment later, and a track that stays silent is left out in the end.
  bool ready(gint64 grace_us = kTrackGraceUs) const;
  static constexpr gint64 kTrackGraceUs = 3 * G_USEC_PER_SEC;

private:
  const std::string name_, origin_;
  mutable std::mutex mutex_;  // guards tracks_, msids_, ender_, layers_ and simulcast_
  std::vector<std::shared_ptr<Track>> tracks_;
  std::vector<VideoLayer> layers_;
  std::vector<std::pair<std::string, std::shared_ptr<Track>>> simulcast_;  // by rid, as offered
  // The video tracks come from one sender (its encodings): their key frame requests are
  // paced together, as the sender honours them.
  std::shared_ptr<KeyframeRequests> video_keyframes_ = std::make_shared<KeyframeRequests>();
  std::vector<std::string> msids_;
  SourceEnder ender_;
  std::atomic<bool> live_{false};
};

class StreamRegistry {
public:
  // The registry of the HTTP server at key ("address:port"); "" for a registry of one's own.
  static std::shared_ptr<StreamRegistry> acquire(const std::string &key);
  ~StreamRegistry();

  // False when another stream has that name.
  bool add(const std::shared_ptr<Stream> &stream);
  // The stream leaves: switches to it end, and the slots showing it go back to what they
  // asked for.
  void remove(const std::shared_ptr<Stream> &stream);
  std::shared_ptr<Stream> find(const std::string &name) const;
  // The stream whose `kind` track viewers of `name` see: after switch_stream(name, other),
  // other (unless !follow_switches); after take_over(that one, taker), the taker.
  std::shared_ptr<Stream> resolve(const std::string &name, const std::string &kind = "video",
                                  bool follow_switches = true) const;
  std::vector<std::shared_ptr<Stream>> streams() const;

  // Endpoint paths the locators in switch_stream may start with; WHEP ones also give the URL
  // a stream is played at.
  void add_endpoint_path(const std::string &path, bool whep, std::weak_ptr<Endpoint> endpoint = {});
  void remove_endpoint_path(const std::string &path);
  // The WHEP and WHIP endpoints served on this HTTP server (for the OMA front).
  struct EndpointEntry {
    std::string path;
    bool whep = true;
    std::weak_ptr<Endpoint> endpoint;
  };
  std::vector<EndpointEntry> endpoints() const;

  // What each element of the server adds to the server's metrics (any thread, no lock held).
  using MetricsSource = std::function<void(MetricsText &)>;
  int add_metrics_source(MetricsSource source);
  void remove_metrics_source(int id);
  void collect_metrics(MetricsText &out) const;
  // The stream name a locator (URL, path or name) stands for.
  std::string name_of(const std::string &locator) const;
  // Where a stream is played: <first WHEP path>/<name>, the bare name without a WHEP endpoint.
  std::string whep_url(const std::string &name) const;

  // A viewer's slot joins the audience of the stream it asked for and is pointed at what
  // that stream resolves to; leave() when it goes.
  void join(const std::shared_ptr<Slot> &slot);
  // Points a slot again (one of its outputs asks for another layer).
  void repoint(const std::shared_ptr<Slot> &slot);
  // Points every slot again (a stream's tracks changed).
  void repoint_audience();
  void leave(const Slot *slot);
  size_t audience(const std::string &name) const;

  // The tracks a switch applies to.
  enum Kinds { kVideo = 1, kAudio = 2, kAllKinds = 3 };
  static bool has_kind(int kinds, const std::string &kind) { return kinds & (kind == "video" ? kVideo : kAudio); }
  // Every viewer of `from` (and every later one) now sees `to` (for the kinds given); to ==
  // from (or "") ends the switch. Locators are accepted for both. False with *error when a
  // stream is unknown (*error_status 404), or when the codecs differ and transcoding is not
  // there or allowed (409).
  bool switch_stream(const std::string &from, const std::string &to, std::string *error,
                     unsigned *error_status = nullptr, int kinds = kAllKinds);
  // The stream the `kind` track of `from` is switched to, "" when none.
  std::string switched_to(const std::string &from, const std::string &kind) const;

  // A grab: the media of `taker` is shown wherever `name` is, from now on: to its viewers,
  // through the switches to it, and to slots that do not follow switches (the inputs of a
  // merge). taker == name (or "") ends it. False with *error / *error_status (404 unknown,
  // 409 codecs) as switch_stream.
  bool take_over(const std::string &name, const std::string &taker, std::string *error,
                 unsigned *error_status = nullptr);
  // The stream whose media `name` shows after grabs (itself when none), nullptr if unknown.
  std::shared_ptr<Stream> media_of(const std::string &name) const;

  // Who makes tracks of another codec for targets that need them (each element of the server
  // registers its own; the first one works). Without one, or when any of them is not allowed,
  // such targets get nothing and switches between codecs are refused.
  void set_transcoder(Transcoder *transcoder, bool allowed);
  void release_transcoder(Transcoder *transcoder);
  // The track of `stream` a target takes: the one of its kind and order, or its variant in
  // the target's encoding.
  std::shared_ptr<Track> pick(const std::shared_ptr<Stream> &stream, const SlotTarget &target);
  // Points again the slots pointed at tracks whose codec was not known yet, now that it may be
  // (each server element calls it on its worker, a few times a second).
  void settle();
  // Whether the tracks of `a` and `b` can be shown to the same targets (same codec per kind,
  // or transcoding available).
  bool compatible(const std::shared_ptr<Stream> &a, const std::shared_ptr<Stream> &b);
  // Whether tracks may be sent in codecs other than their own (a transcoder, none forbidding).
  bool transcoding() const;

  // WHISP is served: a new WHIP publisher on a live stream name takes the stream over (an
  // implicit grab) instead of being refused.
  void set_grabbing(bool on) { grabbing_ = on; }
  bool grabbing() const { return grabbing_; }

private:
  StreamRegistry() = default;
  std::shared_ptr<Stream> resolve_locked(const std::string &name, const std::string &kind, bool follow_switches) const;
  std::string taken_over_locked(std::string name) const;  // `name` after grabs
  // Whether viewers of `from` may be shown `to` (back: their own stream again): both known
  // (404), codecs they can take (409). No lock held.
  bool may_show(const std::string &from, const std::shared_ptr<Stream> &from_stream, const std::string &to,
                const std::shared_ptr<Stream> &to_stream, bool back, std::string *error, unsigned *error_status);
  // Points a slot's targets at what its request resolves to now (no lock held).
  void point(const std::shared_ptr<Slot> &slot);
  // Points every slot of the audience again, after streams or switches changed.
  void repoint_all();
  Transcoder *transcoder_locked() const;  // the one that works, nullptr when off

  std::string key_;
  // Serializes re-pointing: held from deciding where slots point to having pointed them, so
  // two changes cannot apply out of order. Taken before mutex_.
  std::mutex repoint_mutex_;
  mutable std::mutex mutex_;  // guards everything below but grabbing_
  std::map<std::string, std::shared_ptr<Stream>> streams_;
  std::map<std::string, std::map<std::string, std::string>> routes_;  // requested -> kind -> shown
  std::map<std::string, std::string> takeovers_;  // grabbed name -> the stream showing its media
  std::vector<std::weak_ptr<Slot>> audience_;
  std::vector<std::weak_ptr<Slot>> unsettled_;  // pointed at tracks without caps (settle())
  std::vector<EndpointEntry> endpoint_paths_;
  std::map<int, MetricsSource> metrics_sources_;
  int next_metrics_source_ = 1;
  std::vector<std::pair<Transcoder *, bool>> transcoders_;  // with whether transcoding is allowed
  std::atomic<bool> grabbing_{false};
};

}  // namespace wish
