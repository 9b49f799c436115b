// What a viewer receives from: a slot with one output per negotiated m-line. An output feeds
// the viewer's webrtcbin sink pad from whichever track it points at, with the viewer's own
// payload type and one SSRC, sequence numbers and timestamps that stay continuous when the
// slot is re-pointed to another stream or the stream's source restarts; video resumes on a
// keyframe, asked for at once.
//
// SlotOutput::mutex_ may be held while a Track's is taken (its segment), never the other way
// round, and never while a buffer or event goes into webrtcbin (server_element.h has the
// order of every lock).
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gstptr.h"
#include "protocol/rtp_continuity.h"
#include "track.h"

namespace wish {

// What a slot points at a track: a viewer's output, or the input of something that decodes
// (a merge, a transcoder).
class SlotTarget {
public:
  virtual ~SlotTarget() = default;
  virtual const std::string &kind() const = 0;
  virtual size_t index() const = 0;  // among its slot's targets of its kind: which track it takes
  // The encoding it must receive (H264, VP8, OPUS...), "" when it takes any.
  virtual const std::string &encoding() const = 0;
  // The video layer (rid) it asks for, "" for the stream's own track.
  virtual std::string layer() const { return ""; }
  virtual void set_source(const std::shared_ptr<Track> &track) = 0;
  virtual std::shared_ptr<Track> source() const = 0;
  virtual void close() = 0;
};

class SlotOutput : public TrackSink, public SlotTarget, public std::enable_shared_from_this<SlotOutput> {
public:
  struct Params {
    GPtr<GstPad> pad;    // the viewer's webrtcbin sink pad
    GPtr<GstCaps> caps;  // what it was negotiated with (payload type, fmtp, ssrc)
    std::string kind, encoding;
    size_t index = 0;    // among the outputs of its kind: which track of a stream it takes
    uint32_t ssrc = 0;
    uint8_t payload_type = 96;
    uint32_t clock_rate = 90000;
  };
  static std::shared_ptr<SlotOutput> create(Params params);
  ~SlotOutput() override;

  const std::string &kind() const override { return params_.kind; }
  size_t index() const override { return params_.index; }
  const std::string &encoding() const override { return params_.encoding; }
  std::string layer() const override;
  // Asks for another layer; takes effect when the slot is pointed again.
  void set_layer(std::string rid);

  // Takes its packets from `track` from now on (null: none); a change of track restarts the
  // stream at the next keyframe, which is requested at once (or when the viewer connects).
  void set_source(const std::shared_ptr<Track> &track) override;
  std::shared_ptr<Track> source() const override;
  void deliver(const std::shared_ptr<Track> &from, GstBuffer *buffer) override;
  // The viewer asked for a keyframe (PLI/FIR turned into an upstream event by webrtcbin).
  void request_keyframe();
  guint64 keyframe_requests() const { return keyframe_requests_; }
  uint32_t ssrc() const { return params_.ssrc; }
  // Packets (and the events before them) go to the pad only once its viewer is connected:
  // until DTLS is up webrtcbin holds back what it is given, and the track's thread, shared by
  // every viewer, would wait there. Meanwhile video keeps its last keyframe and what follows
  // it (bounded), sent at once when enabled; a keyframe is asked for then too.
  void enable();
  // No packet goes to the pad any more; the pad is let go.
  void close() override;

  guint64 packets() const { return packets_; }
  guint64 bytes() const { return bytes_; }

private:
  explicit SlotOutput(Params params);
  // Sticky events the pad must see before the next buffer; empty when it has them.
  std::vector<GstEvent *> priming_locked(const std::shared_ptr<Track> &from);
  void push_locked(const std::shared_ptr<Track> &from, GstBuffer *buffer);  // push_mutex_ held
  void keep_locked(const std::shared_ptr<Track> &from, GstBuffer *buffer);  // push_mutex_ held
  void drop_pending_locked();
  // Whether a packet of `from` is for this output now (mutex_ held).
  bool takes_locked(const std::shared_ptr<Track> &from) const;

  const Params params_;
  const size_t encoding_hash_;  // packets of another codec are never sent
  gulong upstream_probe_ = 0;
  // Serializes what goes to the pad (the track's thread, enable() on the worker) and guards
  // pending_; taken before mutex_. Held while a packet goes into webrtcbin (which does not
  // reach the application from there), never while waiting for anything else.
  std::mutex push_mutex_;
  std::vector<GstBuffer *> pending_;  // a keyframe and what followed it, until enabled
  bool enabled_ = false;              // under push_mutex_
  mutable std::mutex mutex_;  // guards everything below but the atomics
  GPtr<GstPad> pad_;
  std::weak_ptr<Track> source_;
  RtpContinuity rtp_;
  bool started_ = false;        // stream-start and caps went out
  GstSegment sent_segment_{};   // the segment the pad has
  bool segment_sent_ = false;
  gint64 last_keyframe_ask_ = 0;
  bool closed_ = false;
  std::string layer_;
  std::atomic<guint64> packets_{0}, bytes_{0};
  std::atomic<guint64> keyframe_requests_{0};  // from the viewer (PLI/FIR)
};

// What a viewer (or a merge) receives from, and the stream it asked for.
class Slot {
public:
  // A viewer's slot follows switches of the stream it asked for; the inputs of a merge do not
  // (a merge's audience may be switched to the merge itself), only grabs.
  explicit Slot(std::string requested, bool follows_switches = true)
      : requested_(std::move(requested)), follows_switches_(follows_switches) {}
  const std::string &requested() const { return requested_; }
  bool follows_switches() const { return follows_switches_; }
  void add_output(std::shared_ptr<SlotTarget> output) { outputs_.push_back(std::move(output)); }
  const std::vector<std::shared_ptr<SlotTarget>> &outputs() const { return outputs_; }

  // Every output takes the track pick() gives it (or none); `showing` names what it shows.
  using Picker = std::function<std::shared_ptr<Track>(const SlotTarget &)>;
  void point_to(const std::string &showing, const Picker &pick);
  std::string showing() const;  // name of the stream it points at, "" when none
  void close();

private:
  const std::string requested_;
  const bool follows_switches_;
  std::vector<std::shared_ptr<SlotTarget>> outputs_;  // fixed once the slot is joined
  mutable std::mutex mutex_;  // guards showing_
  std::string showing_;
};

}  // namespace wish
