// whepserversink's viewers on the shared viewer transport (shared_viewers.h).
#include "shared_viewers.h"

#include <algorithm>
#include <cstring>

#include "dtls_certificate.h"
#include "loop_thread.h"
#include "output_slot.h"
#include "protocol/answer.h"
#include "protocol/sdpfrag.h"
#include "protocol/ssrc_pool.h"
#include "track.h"

GST_DEBUG_CATEGORY_EXTERN(whepserversink_debug);
#define GST_CAT_DEFAULT whepserversink_debug

namespace wish {

namespace {

// The packet as a SharedPacket, one copy for every viewer of the track: the track hands the
// same buffer to each of its sinks in turn on its streaming thread, so the last copy made on
// this thread is reused when its bytes are the buffer's (a pooled buffer may come back with
// other bytes at the same address).
SharedPacket shared_copy(GstBuffer *buffer) {
  thread_local SharedPacket last;
  GstMapInfo map;
  if (!gst_buffer_map(buffer, &map, GST_MAP_READ)) return nullptr;
  if (!last || last->size() != map.size || memcmp(last->data(), map.data, map.size) != 0)
    last = std::make_shared<const std::vector<uint8_t>>(map.data, map.data + map.size);
  gst_buffer_unmap(buffer, &map);
  return last;
}

// One m-line of a shared viewer: a slot target that takes its track's packets and sends them
// on the viewer's connection (track's streaming thread; send() does not block).
class SharedOutput : public TrackSink, public SlotTarget, public std::enable_shared_from_this<SharedOutput> {
public:
  SharedOutput(std::string kind, std::string encoding, size_t index, size_t conn_track)
      : kind_(std::move(kind)), encoding_(std::move(encoding)), index_(index), conn_track_(conn_track) {}
  const std::string &kind() const override { return kind_; }
  size_t index() const override { return index_; }
  const std::string &encoding() const override { return encoding_; }
  void set_connection(std::weak_ptr<ViewerConnection> conn) {
    std::lock_guard<std::mutex> lock(mutex_);
    conn_ = std::move(conn);
  }
  void set_source(const std::shared_ptr<Track> &track) override {
    std::shared_ptr<Track> old;
    std::shared_ptr<ViewerConnection> conn;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (closed_) return;
      old = source_.lock();
      source_ = track;
      conn = conn_.lock();
    }
    if (old != track) Track::move_sink(old, track, shared_from_this());
    // A connected viewer re-pointed (switch-stream) needs a key frame of its new source now.
    // Not before DTLS is up: that key frame could not be sent, and the one asked for when
    // DTLS connects would wait out the pacing interval behind it.
    bool connected = conn && conn->state() == ViewerConnection::State::DtlsConnected;
    if (track && old != track && connected) track->request_keyframe();
  }
  std::shared_ptr<Track> source() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return source_.lock();
  }
  void close() override {
    std::shared_ptr<Track> old;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closed_ = true;
      old = source_.lock();
      source_.reset();
    }
    if (old) old->remove_sink(this);
  }
  void deliver(const std::shared_ptr<Track> &from, GstBuffer *buffer) override {
    std::shared_ptr<ViewerConnection> conn;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!closed_ && from == source_.lock()) conn = conn_.lock();
    }
    SharedPacket packet = conn ? shared_copy(buffer) : nullptr;
    if (packet) {
      if (conn->send(conn_track_, packet)) {
        packets_++;
        bytes_ += packet->size();
      }
    }
    gst_buffer_unref(buffer);
  }
  size_t conn_track() const { return conn_track_; }
  std::atomic<guint64> packets_{0}, bytes_{0};

private:
  const std::string kind_, encoding_;
  const size_t index_, conn_track_;
  mutable std::mutex mutex_;  // guards source_, conn_, closed_; never held in a Track call
  std::weak_ptr<Track> source_;
  std::weak_ptr<ViewerConnection> conn_;
  bool closed_ = false;
};

std::string offer_attribute(const std::string &offer, const char *key) {
  std::string needle = std::string("a=") + key + ":";
  size_t at = offer.find(needle);
  if (at == std::string::npos) return "";
  size_t end = offer.find_first_of("\r\n", at);
  return offer.substr(at + needle.size(), end == std::string::npos ? std::string::npos : end - at - needle.size());
}

}  // namespace

struct SharedViewers::Viewer {
  std::shared_ptr<SharedIceAgent> agent;  // first: goes after conn
  std::string id;
  std::shared_ptr<SessionEvents> events;
  std::shared_ptr<StreamRegistry> registry;
  std::shared_ptr<Slot> slot;
  std::vector<std::shared_ptr<SharedOutput>> outputs;  // by connection track
  std::shared_ptr<ViewerConnection> conn;
  SsrcLease ssrcs;
  std::atomic<gint64> heard_us{0};  // last SRTCP from the viewer (agent's thread)
  std::atomic<bool> connected{false}, ended{false};
  // What its RTCP said, for the element's stats and metrics: written on the agent's thread.
  std::vector<uint32_t> media_ssrcs;  // by connection track; set before the connection exists
  std::atomic<guint64> keyframe_requests{0};
  struct Report {
    double fraction_lost = -1, rtt_s = -1;
    gint64 packets_lost = 0;
  };
  mutable std::mutex reports_mutex;  // guards reports; taken alone
  std::vector<Report> reports;       // by connection track
};

namespace {

// Agent's thread: the viewer's receiver reports (loss, and the round trip when they echo one
// of our sender reports, RFC 3550 6.4.1) and its keyframe requests, about its own SSRCs only.
void note_rtcp(SharedViewers::Viewer &v, const rtcp::Compound &c) {
  auto ours = [&](uint32_t ssrc) {
    return std::find(v.media_ssrcs.begin(), v.media_ssrcs.end(), ssrc) != v.media_ssrcs.end();
  };
  guint64 keyframes = 0;
  for (const auto &pli : c.plis) keyframes += ours(pli.media_ssrc);
  for (const auto &fir : c.firs)
    for (const auto &e : fir.entries) keyframes += ours(e.ssrc);
  v.keyframe_requests += keyframes;
  // The middle 32 bits of the NTP time, the clock of our sender reports (viewer_transport.cpp).
  uint32_t now = static_cast<uint32_t>(rtcp::ntp_from_unix_us(g_get_real_time()) >> 16);
  std::lock_guard<std::mutex> lock(v.reports_mutex);
  auto note = [&](const std::vector<rtcp::ReportBlock> &blocks) {
    for (const auto &b : blocks)
      for (size_t i = 0; i < v.media_ssrcs.size() && i < v.reports.size(); i++) {
        if (b.ssrc != v.media_ssrcs[i]) continue;
        SharedViewers::Viewer::Report &r = v.reports[i];
        r.fraction_lost = b.fraction_lost / 256.0;
        r.packets_lost = b.cumulative_lost;
        uint32_t rtt = now - b.last_sr - b.delay_since_sr;
        if (b.last_sr && rtt < 60u * 65536u) r.rtt_s = rtt / 65536.0;  // else a clock step or a bogus echo
      }
  };
  for (const auto &rr : c.receiver_reports) note(rr.blocks);
  for (const auto &sr : c.sender_reports) note(sr.blocks);
}

void take_down(const std::shared_ptr<SharedViewers::Viewer> &v) {
  if (v->registry) v->registry->leave(v->slot.get());
  v->slot->close();
  v->conn->close();  // waits for the agent's thread, briefly; no callback after it
}

// The endpoint's handle: dropping it (DELETE, timeout, stop) takes the viewer down, on the
// element's worker as webrtcbin viewers are (at once when the worker is gone).
class SharedSession : public MediaSession {
public:
  SharedSession(std::shared_ptr<SharedViewers::Viewer> v, std::shared_ptr<Dispatcher> dispatch)
      : v_(std::move(v)), dispatch_(std::move(dispatch)) {}
  ~SharedSession() override {
    auto v = v_;
    if (!dispatch_ || !dispatch_->post([v] { take_down(v); })) take_down(v);
  }
  void add_candidates(const SdpFrag &frag) override {
    for (const auto &m : frag.media)
      for (const auto &c : m.candidates) v_->conn->add_remote_candidate(c);
  }
  void restart_ice(const SdpFrag &frag, MediaCallback done) override {
    if (frag.ice_ufrag.empty() || !v_->conn->restart_ice() ||
        !v_->conn->set_remote_credentials(frag.ice_ufrag, frag.ice_pwd)) {
      done(MediaResult::failure(400, "ICE restart failed"));
      return;
    }
    add_candidates(frag);
    SdpFrag ours;
    v_->conn->local_credentials(&ours.ice_ufrag, &ours.ice_pwd);
    SdpFragMedia m;
    m.mid = frag.media.empty() ? "0" : frag.media[0].mid;
    m.candidates = v_->conn->local_candidates();
    m.end_of_candidates = true;
    ours.media.push_back(m);
    ours.end_of_candidates = true;
    done(MediaResult::success(build_sdpfrag(ours)));
  }
  void apply_answer(const std::string &, MediaCallback done) override {
    done(MediaResult::failure(400, "no counter-offer on this session"));
  }
  std::string ice_connection_state() const override {
    switch (v_->conn->state()) {
      case ViewerConnection::State::New: return "checking";
      case ViewerConnection::State::IceConnected:
      case ViewerConnection::State::DtlsConnected: return "connected";
      case ViewerConnection::State::Failed: return "failed";
      case ViewerConnection::State::Closed: return "closed";
    }
    return "";
  }

private:
  std::shared_ptr<SharedViewers::Viewer> v_;
  std::shared_ptr<Dispatcher> dispatch_;
};

}  // namespace

std::unique_ptr<SharedViewers> SharedViewers::create(GstElement *element, const IceConfig &ice,
                                                     std::shared_ptr<Dispatcher> dispatch, std::string *error) {
  auto dtls = DtlsContext::create(make_ecdsa_certificate_pem(), {SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmSha1_80},
                                  error);
  if (!dtls) return nullptr;
  std::unique_ptr<SharedViewers> s(new SharedViewers());
  s->element_ = element;
  s->dispatch_ = std::move(dispatch);
  s->agent_ = SharedIceAgent::create(ice, dtls, error);
  if (!s->agent_) return nullptr;
  return s;
}

SharedViewers::~SharedViewers() = default;

bool SharedViewers::can_serve(const SessionRequest &request, std::string *why) {
  if (request.counter_offer) {
    *why = "counter-offer";
    return false;
  }
  std::string fp = offer_attribute(request.offer, "fingerprint");
  if (fp.rfind("sha-256 ", 0) != 0) {
    *why = "no sha-256 fingerprint";
    return false;
  }
  if (offer_attribute(request.offer, "setup") == "passive") {
    *why = "the offer is a=setup:passive";
    return false;
  }
  for (const auto &m : request.parsed.media)
    if (!m.rids.empty() || !m.simulcast.empty()) {
      *why = "simulcast offer";
      return false;
    }
  return true;
}

bool SharedViewers::serve(const SessionRequest &request, const std::string &stream, const std::vector<Planned> &planned,
                          bool retransmission, const std::shared_ptr<StreamRegistry> &registry,
                          std::shared_ptr<SessionEvents> events, SessionCallback &done) {
  auto v = std::make_shared<Viewer>();
  v->agent = agent_;
  v->id = request.id;
  v->events = events;
  v->registry = registry;
  std::vector<AnswerTrack> tracks;
  for (const auto &p : planned) {
    AnswerTrack t;
    t.codec = p.track->codec();
    t.ssrc = v->ssrcs.take();
    t.rtx_ssrc = retransmission && t.codec.kind == "video" ? v->ssrcs.take() : 0;
    t.nack = retransmission;
    tracks.push_back(t);
  }
  std::string error;
  auto chosen = match_offer(request.offer, tracks, &error);
  if (!chosen) {
    GST_INFO_OBJECT(element_, "viewer %s goes to webrtcbin: %s", request.id.c_str(), error.c_str());
    return false;
  }
  ViewerConfig config;
  config.peer_fingerprint = offer_attribute(request.offer, "fingerprint");
  if (!retransmission) config.history = 0;
  GST_LOG_OBJECT(element_, "viewer %s offer:\n%s", request.id.c_str(), request.offer.c_str());
  std::vector<std::pair<size_t, const AnsweredMedia *>> used;  // planned index, its m-line
  for (const auto &m : *chosen) {
    if (m.track < 0) continue;
    const AnswerTrack &t = tracks[m.track];
    ViewerTrack vt;
    vt.encoding = t.codec.encoding;
    vt.clock_rate = t.codec.clock_rate ? t.codec.clock_rate : 90000;
    vt.payload_type = static_cast<uint8_t>(m.payload_type);
    vt.ssrc = t.ssrc;
    vt.rtx_payload_type = m.rtx_payload_type;
    vt.rtx_ssrc = t.rtx_ssrc;
    vt.video = m.video;
    config.tracks.push_back(vt);
    used.emplace_back(static_cast<size_t>(m.track), &m);
  }
  if (used.empty()) return false;
  for (const auto &t : config.tracks) v->media_ssrcs.push_back(t.ssrc);
  v->reports.resize(config.tracks.size());
  v->slot = std::make_shared<Slot>(stream);
  for (size_t i = 0; i < used.size(); i++) {
    const Planned &p = planned[used[i].first];
    auto out = std::make_shared<SharedOutput>(p.track->kind(), p.track->codec().encoding, p.index, i);
    v->outputs.push_back(out);
    v->slot->add_output(out);
  }
  // The callbacks hold the viewer weakly: the endpoint's handle owns it.
  std::weak_ptr<Viewer> weak = v;
  std::shared_ptr<Dispatcher> dispatch = dispatch_;
  ViewerCallbacks cb;
  GstElement *element = element_;
  cb.on_state = [weak, dispatch, element](ViewerCallbacks::State s) {
    auto v = weak.lock();
    if (!v) return;
    GST_DEBUG_OBJECT(element, "shared viewer %s: state %d %s", v->id.c_str(), int(s), v->conn ? v->conn->error().c_str() : "");
    if (s == ViewerCallbacks::State::DtlsConnected && !v->connected.exchange(true)) {
      v->heard_us = g_get_monotonic_time();
      v->events->connected();
    } else if ((s == ViewerCallbacks::State::Failed || s == ViewerCallbacks::State::Closed) &&
               !v->ended.exchange(true)) {
      // ICE or DTLS failed, or the peer closed DTLS: named as for a webrtcbin viewer. Not
      // here: ending drops the handle, whose close() waits for this thread.
      auto events = v->events;
      dispatch->post([events] { events->ended("connection-lost"); });
    }
  };
  cb.on_rtcp = [weak](const rtcp::Compound &c) {
    auto v = weak.lock();
    if (!v) return;
    v->heard_us = g_get_monotonic_time();
    note_rtcp(*v, c);
  };
  cb.on_keyframe_request = [weak](size_t track) {
    auto v = weak.lock();
    if (!v || track >= v->outputs.size()) return;
    if (auto t = v->outputs[track]->source()) t->request_keyframe();  // asynchronous upstream
  };
  v->conn = agent_->add_viewer(config, cb, &error);
  if (!v->conn) {
    done(MediaResult::failure(500, "shared transport: " + error), nullptr);
    return true;
  }
  for (const auto &m : request.parsed.media)
    if (!m.rejected() && !m.ice_ufrag.empty()) {
      v->conn->set_remote_credentials(m.ice_ufrag, m.ice_pwd);
      for (const auto &c : m.candidates) v->conn->add_remote_candidate(c);
      break;
    }
  AnswerTransport transport;
  v->conn->local_credentials(&transport.ice_ufrag, &transport.ice_pwd);
  transport.fingerprint = agent_->dtls_context()->fingerprint();
  transport.candidates = v->conn->local_candidates();
  auto answer = write_answer(request.offer, tracks, transport, &error);
  if (!answer) {
    v->conn->close();
    done(MediaResult::failure(422, error), nullptr);
    return true;
  }
  for (const auto &o : v->outputs) o->set_connection(v->conn);
  if (registry) registry->join(v->slot);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    viewers_.erase(std::remove_if(viewers_.begin(), viewers_.end(), [](const auto &w) { return w.expired(); }),
                   viewers_.end());
    viewers_.push_back(v);
  }
  GST_INFO_OBJECT(element_, "viewer %s on the shared transport (%zu tracks)", request.id.c_str(), used.size());
  done(MediaResult::success(answer->sdp), std::make_unique<SharedSession>(v, dispatch_));
  return true;
}

gint64 SharedViewers::last_heard_us(const Viewer &v) {
  gint64 heard = v.heard_us.load();  // 0 for a moment after connected is set
  return v.connected && !v.ended && heard > 0 ? heard : -1;
}

std::shared_ptr<SharedViewers::Viewer> SharedViewers::find(const std::string &id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto &w : viewers_)
    if (auto v = w.lock())
      if (v->id == id) return v;
  return nullptr;
}

const std::shared_ptr<Slot> &SharedViewers::slot(const Viewer &v) { return v.slot; }

SharedViewers::Figures SharedViewers::figures(const Viewer &v) {
  Figures f;
  for (const auto &o : v.outputs) {
    f.packets += o->packets_;
    f.bytes += o->bytes_;
  }
  f.keyframe_requests = v.keyframe_requests;
  if (v.conn) {
    ViewerConnection::Stats s = v.conn->stats();
    f.rtcp.nacks = s.nacked;
    f.rtcp.retransmitted = s.retransmitted;
    switch (v.conn->state()) {
      case ViewerConnection::State::New:
      case ViewerConnection::State::IceConnected: f.state = "connecting"; break;
      case ViewerConnection::State::DtlsConnected: f.state = "connected"; break;
      case ViewerConnection::State::Failed: f.state = "failed"; break;
      case ViewerConnection::State::Closed: f.state = "closed"; break;
    }
  }
  // Means over its tracks, as send_stats() gives them for a webrtcbin.
  double rtt = 0, lost = 0;
  unsigned timed = 0, reporting = 0;
  std::lock_guard<std::mutex> lock(v.reports_mutex);
  for (const auto &r : v.reports) {
    if (r.rtt_s >= 0) {
      rtt += r.rtt_s;
      timed++;
    }
    if (r.fraction_lost >= 0) {
      lost += r.fraction_lost;
      f.rtcp.packets_lost += r.packets_lost;
      reporting++;
    }
  }
  if (timed) f.rtcp.rtt_s = rtt / timed;
  if (reporting) f.rtcp.fraction_lost = lost / reporting;
  return f;
}

size_t SharedViewers::viewer_count() const { return agent_ ? agent_->viewer_count() : 0; }

}  // namespace wish
