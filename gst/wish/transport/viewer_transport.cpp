#include "transport/viewer_transport.h"

#include <agent.h>
#include <glib.h>

#include <algorithm>

namespace wish {

// The NiceAgent's callbacks, all on the agent's thread.
struct IceCallbacks {
  static void on_recv(NiceAgent *, guint, guint, guint len, gchar *buf, gpointer data) {
    // The connection stays alive while its stream exists (close() removes the stream on this
    // thread first); the reference keeps it alive through a callback that drops the user's.
    auto *raw = static_cast<ViewerConnection *>(data);
    std::shared_ptr<ViewerConnection> self = raw->weak_from_this().lock();
    if (self) self->on_datagram(reinterpret_cast<const uint8_t *>(buf), len);
  }
  static void on_component_state(NiceAgent *, guint stream, guint, guint state, gpointer data) {
    auto *shared = static_cast<SharedIceAgent *>(data);
    std::shared_ptr<ViewerConnection> conn;
    if (ViewerConnection *c = shared->find(stream)) conn = c->weak_from_this().lock();
    if (conn) conn->on_ice_state(state);
  }
  static gboolean on_timer(gpointer data) {
    static_cast<SharedIceAgent *>(data)->poll_dtls_timers();
    return G_SOURCE_CONTINUE;
  }
};

std::unique_ptr<SharedIceAgent> SharedIceAgent::create(const IceConfig &config, std::shared_ptr<DtlsContext> dtls,
                                                       std::string *error) {
  std::unique_ptr<SharedIceAgent> s(new SharedIceAgent);
  s->config_ = config;
  s->dtls_ = std::move(dtls);
  s->ctx_ = g_main_context_new();
  s->loop_ = g_main_loop_new(s->ctx_, FALSE);
  s->agent_ = nice_agent_new(s->ctx_, NICE_COMPATIBILITY_RFC5245);
  // One agent paces the connectivity checks of every viewer together: at libnice's 20 ms, a
  // burst of 50 viewers waited 2.7 s (median) to play, at 5 ms (RFC 8445's floor for Ta) 1.4-1.8 s.
  g_object_set(s->agent_, "controlling-mode", config.controlling, "ice-tcp", FALSE, "upnp", FALSE, "stun-pacing-timer", 5u,
               nullptr);
  for (const std::string &a : config.local_addresses) {
    NiceAddress addr;
    if (!nice_address_set_from_string(&addr, a.c_str()) || !nice_agent_add_local_address(s->agent_, &addr)) {
      if (error) *error = "invalid local address " + a;
      return nullptr;
    }
  }
  g_signal_connect(s->agent_, "component-state-changed", G_CALLBACK(IceCallbacks::on_component_state), s.get());
  // Every viewer's DTLS retransmission timer from one source: a handshake is rare and short.
  s->timer_ = g_timeout_source_new(10);
  g_source_set_callback(s->timer_, IceCallbacks::on_timer, s.get(), nullptr);
  g_source_attach(s->timer_, s->ctx_);
  SharedIceAgent *raw = s.get();
  std::mutex m;
  std::condition_variable cv;
  bool running = false;
  s->thread_ = std::thread([raw, &m, &cv, &running] {
    raw->thread_id_ = std::this_thread::get_id();
    g_main_context_push_thread_default(raw->ctx_);
    {
      std::lock_guard<std::mutex> lock(m);
      running = true;
    }
    cv.notify_all();
    g_main_loop_run(raw->loop_);
    g_main_context_pop_thread_default(raw->ctx_);
  });
  std::unique_lock<std::mutex> lock(m);
  cv.wait(lock, [&] { return running; });
  return s;
}

SharedIceAgent::~SharedIceAgent() {
  if (thread_.joinable()) {
    std::vector<std::shared_ptr<ViewerConnection>> left;
    {
      std::lock_guard<std::mutex> lock(streams_mutex_);
      for (auto &e : streams_)
        if (auto c = e.second->weak_from_this().lock()) left.push_back(c);
    }
    for (auto &c : left) c->close();
    g_main_loop_quit(loop_);
    thread_.join();
  }
  if (timer_) {
    g_source_destroy(timer_);
    g_source_unref(timer_);
  }
  if (agent_) g_object_unref(agent_);
  if (loop_) g_main_loop_unref(loop_);
  if (ctx_) {
    // What libnice left to run after its sockets were closed (its idle sources hold refs).
    while (g_main_context_iteration(ctx_, FALSE)) {
    }
    g_main_context_unref(ctx_);
  }
}

void SharedIceAgent::invoke(const std::function<void()> &fn) {
  if (on_agent_thread()) {
    fn();
    return;
  }
  struct Call {
    const std::function<void()> *fn;
    std::mutex m;  // guards done
    std::condition_variable cv;
    bool done = false;
  } call;
  call.fn = &fn;
  g_main_context_invoke(
      ctx_,
      +[](gpointer d) -> gboolean {
        auto *c = static_cast<Call *>(d);
        (*c->fn)();
        std::lock_guard<std::mutex> lock(c->m);
        c->done = true;
        c->cv.notify_all();
        return G_SOURCE_REMOVE;
      },
      &call);
  std::unique_lock<std::mutex> lock(call.m);
  call.cv.wait(lock, [&] { return call.done; });
}

ViewerConnection *SharedIceAgent::find(unsigned stream) const {
  std::lock_guard<std::mutex> lock(streams_mutex_);
  auto it = streams_.find(stream);
  return it == streams_.end() ? nullptr : it->second;
}

void SharedIceAgent::forget(unsigned stream) {
  std::lock_guard<std::mutex> lock(streams_mutex_);
  streams_.erase(stream);
}

size_t SharedIceAgent::viewer_count() const {
  std::lock_guard<std::mutex> lock(streams_mutex_);
  return streams_.size();
}

void SharedIceAgent::poll_dtls_timers() {
  std::vector<std::shared_ptr<ViewerConnection>> due;
  {
    std::lock_guard<std::mutex> lock(streams_mutex_);
    for (auto &e : streams_) {
      DtlsSession *d = e.second->dtls_.get();
      if (d && d->next_timeout_us() == 0)
        if (auto c = e.second->weak_from_this().lock()) due.push_back(std::move(c));
    }
  }
  // Outside the lock: a state change calls back, and the callback may close().
  for (auto &c : due)
    if (c->dtls_) c->on_dtls_state(c->dtls_->on_timeout());
}

std::shared_ptr<ViewerConnection> SharedIceAgent::add_viewer(const ViewerConfig &config, ViewerCallbacks callbacks,
                                                             std::string *error) {
  std::shared_ptr<ViewerConnection> conn(new ViewerConnection(this, config, std::move(callbacks)));
  std::string why;
  invoke([&] {
    guint stream = nice_agent_add_stream(agent_, 1);
    if (stream == 0) {
      why = "nice_agent_add_stream failed";
      return;
    }
    if (config_.min_port || config_.max_port) nice_agent_set_port_range(agent_, stream, 1, config_.min_port, config_.max_port);
    nice_agent_attach_recv(agent_, stream, 1, ctx_, IceCallbacks::on_recv, conn.get());
    if (!nice_agent_gather_candidates(agent_, stream)) {
      nice_agent_remove_stream(agent_, stream);
      why = "no candidate could be gathered";
      return;
    }
    conn->stream_ = stream;
    ViewerConnection *raw = conn.get();
    conn->dtls_ = std::make_unique<DtlsSession>(dtls_, config.dtls_role, config.peer_fingerprint,
                                                [this, raw](const uint8_t *d, size_t n) {
                                                  if (nice_agent_send(agent_, raw->stream_, 1, static_cast<guint>(n),
                                                                      reinterpret_cast<const gchar *>(d)) < 0 &&
                                                      raw->state() == ViewerConnection::State::New &&
                                                      raw->unsent_dtls_.size() < 16)
                                                    raw->unsent_dtls_.emplace_back(d, d + n);
                                                });
    {
      std::lock_guard<std::mutex> lock(streams_mutex_);
      streams_[stream] = raw;
    }
    if (!conn->dtls_->start()) why = "DTLS: " + conn->dtls_->error();
  });
  if (!why.empty()) {
    if (error) *error = why;
    if (conn->stream_) conn->close();
    conn->closed_ = true;
    return nullptr;
  }
  return conn;
}

// Per outgoing track: its header rewrite, its sender report counters, its history.
struct ViewerConnection::TrackState {
  struct Sent {
    RtpHeader header;  // as this viewer got it
    SharedPacket packet;
  };
  ViewerTrack cfg;
  RtpContinuity continuity;
  std::vector<Sent> history;  // by sequence number modulo its size
  uint16_t rtx_seq = 0;
  uint64_t packets = 0, octets = 0;
  uint32_t last_ts = 0;
  int64_t last_ts_us = 0, last_sr_us = 0;
  int last_fir_seq = -1;  // agent's thread only

  explicit TrackState(const ViewerTrack &t, unsigned history_len)
      : cfg(t), continuity(t.ssrc, t.payload_type, t.clock_rate, t.video), history(t.video ? history_len : 0),
        rtx_seq(static_cast<uint16_t>(g_random_int())) {}
};

ViewerConnection::ViewerConnection(SharedIceAgent *shared, const ViewerConfig &config, ViewerCallbacks callbacks)
    : shared_(shared), config_(config), callbacks_(std::move(callbacks)) {
  for (const ViewerTrack &t : config.tracks) tracks_.emplace_back(t, config.history);
  scratch_.resize(1500 + SrtpSession::kMaxTrailer);
}

ViewerConnection::~ViewerConnection() { close(); }

void ViewerConnection::close() {
  if (closed_.exchange(true)) return;
  shared_->invoke([this] {
    if (dtls_) dtls_->close();
    nice_agent_remove_stream(shared_->agent_, stream_);
    shared_->forget(stream_);
    dtls_.reset();
  });
  std::lock_guard<std::mutex> lock(send_mutex_);
  srtp_ready_ = false;
  state_ = State::Closed;
}

bool ViewerConnection::local_credentials(std::string *ufrag, std::string *pwd) const {
  gchar *u = nullptr, *p = nullptr;
  if (!nice_agent_get_local_credentials(shared_->agent_, stream_, &u, &p)) return false;
  *ufrag = u;
  *pwd = p;
  g_free(u);
  g_free(p);
  return true;
}

std::vector<std::string> ViewerConnection::local_candidates() const {
  std::vector<std::string> out;
  GSList *cands = nice_agent_get_local_candidates(shared_->agent_, stream_, 1);
  for (GSList *l = cands; l; l = l->next) {
    gchar *line = nice_agent_generate_local_candidate_sdp(shared_->agent_, static_cast<NiceCandidate *>(l->data));
    std::string s = line ? line : "";
    g_free(line);
    if (s.rfind("a=", 0) == 0) s = s.substr(2);
    if (!s.empty()) out.push_back(s);
  }
  g_slist_free_full(cands, reinterpret_cast<GDestroyNotify>(nice_candidate_free));
  return out;
}

bool ViewerConnection::set_remote_credentials(const std::string &ufrag, const std::string &pwd) {
  if (closed_) return false;
  return nice_agent_set_remote_credentials(shared_->agent_, stream_, ufrag.c_str(), pwd.c_str());
}

bool ViewerConnection::add_remote_candidate(const std::string &candidate) {
  if (closed_) return false;
  std::string line = candidate.rfind("a=", 0) == 0 ? candidate : "a=" + candidate;
  NiceCandidate *c = nice_agent_parse_remote_candidate_sdp(shared_->agent_, stream_, line.c_str());
  if (!c) return false;
  GSList list = {c, nullptr};
  int added = nice_agent_set_remote_candidates(shared_->agent_, stream_, 1, &list);
  nice_candidate_free(c);
  return added >= 0;
}

bool ViewerConnection::restart_ice() {
  if (closed_) return false;
  return nice_agent_restart_stream(shared_->agent_, stream_);
}

std::string ViewerConnection::error() const {
  std::lock_guard<std::mutex> lock(error_mutex_);
  return error_;
}

ViewerConnection::Stats ViewerConnection::stats() const {
  std::lock_guard<std::mutex> lock(send_mutex_);
  return stats_;
}

void ViewerConnection::set_state(State s, const std::string &error) {
  if (closed_) return;
  if (!error.empty()) {
    std::lock_guard<std::mutex> lock(error_mutex_);
    error_ = error;
  }
  State old = state_.exchange(s, std::memory_order_acq_rel);
  if (old != s && callbacks_.on_state) callbacks_.on_state(s);
}

void ViewerConnection::on_ice_state(unsigned state) {
  if (state == NICE_COMPONENT_STATE_READY && this->state() == State::New) {
    set_state(State::IceConnected);
    for (const auto &d : unsent_dtls_)
      nice_agent_send(shared_->agent_, stream_, 1, static_cast<guint>(d.size()), reinterpret_cast<const gchar *>(d.data()));
    unsent_dtls_.clear();
  }
  // A failed check list may still recover with candidates trickled later: DTLS decides.
  else if (state == NICE_COMPONENT_STATE_FAILED && this->state() == State::New)
    set_state(State::Failed, "ICE failed");
}

void ViewerConnection::on_dtls_state(DtlsSession::State s) {
  if (s == DtlsSession::State::Connected && !srtp_ready_.load(std::memory_order_acquire)) {
    std::string error;
    bool ok;
    {
      std::lock_guard<std::mutex> lock(send_mutex_);
      ok = srtp_.init(dtls_->keys(), &error);
      srtp_profile_ = dtls_->keys().profile;
      srtp_ready_.store(ok, std::memory_order_release);
    }
    if (!ok) {
      set_state(State::Failed, "SRTP: " + error);
      return;
    }
    set_state(State::DtlsConnected);
    // Video that joins mid-stream waits for a keyframe: ask for one now rather than at the
    // encoder's next interval.
    if (callbacks_.on_keyframe_request)
      for (size_t i = 0; i < config_.tracks.size(); i++)
        if (config_.tracks[i].video) callbacks_.on_keyframe_request(i);
  } else if (s == DtlsSession::State::Failed) {
    set_state(State::Failed, "DTLS: " + dtls_->error());
  } else if (s == DtlsSession::State::Closed && state() == State::DtlsConnected) {
    set_state(State::Closed);  // the peer's close_notify
  }
}

void ViewerConnection::on_datagram(const uint8_t *d, size_t n) {
  if (n == 0 || closed_) return;
  if (d[0] >= 20 && d[0] <= 63) {  // DTLS (RFC 7983)
    if (dtls_) on_dtls_state(dtls_->receive(d, n));
    return;
  }
  if (d[0] < 128 || d[0] > 191 || !srtp_ready_.load(std::memory_order_acquire)) return;  // not (S)RTP
  in_buf_.assign(d, d + n);
  if (rtcp::is_rtcp(d, n)) {
    rtcp::Compound c;
    bool ok = srtp_.unprotect_rtcp(&in_buf_) && rtcp::parse_compound(in_buf_.data(), in_buf_.size(), &c);
    {
      std::lock_guard<std::mutex> lock(send_mutex_);
      (ok ? stats_.rtcp_received : stats_.rtcp_rejected)++;
    }
    if (ok) on_rtcp(c);
  } else if (callbacks_.on_rtp && srtp_.unprotect_rtp(&in_buf_)) {
    callbacks_.on_rtp(in_buf_.data(), in_buf_.size());
  }
}

void ViewerConnection::on_rtcp(const rtcp::Compound &c) {
  for (const rtcp::Nack &nack : c.nacks) answer_nack(nack);
  std::vector<bool> keyframe(config_.tracks.size(), false);
  for (size_t i = 0; i < config_.tracks.size(); i++) {
    for (const rtcp::Pli &p : c.plis)
      if (p.media_ssrc == config_.tracks[i].ssrc) keyframe[i] = true;
    for (const rtcp::Fir &f : c.firs)
      for (const rtcp::FirEntry &e : f.entries) {
        // The same sequence number again is the same request (RFC 5104 4.3.1.1).
        int &last = tracks_[i].last_fir_seq;
        if (e.ssrc == config_.tracks[i].ssrc && e.seq != last) {
          last = e.seq;
          keyframe[i] = true;
        }
      }
  }
  if (callbacks_.on_keyframe_request)
    for (size_t i = 0; i < keyframe.size(); i++)
      if (keyframe[i]) callbacks_.on_keyframe_request(i);
  if (callbacks_.on_rtcp) callbacks_.on_rtcp(c);
}

void ViewerConnection::answer_nack(const rtcp::Nack &nack) {
  std::lock_guard<std::mutex> lock(send_mutex_);
  for (TrackState &t : tracks_) {
    if (t.cfg.ssrc != nack.media_ssrc || t.history.empty()) continue;
    for (uint16_t seq : nack.seqs) {
      stats_.nacked++;
      const TrackState::Sent &s = t.history[seq % t.history.size()];
      if (!s.packet || s.header.seq != seq) continue;  // too old, or never sent
      const std::vector<uint8_t> &orig = *s.packet;
      if (orig.size() + SrtpSession::kMaxTrailer > scratch_.size()) continue;
      std::copy(orig.begin(), orig.end(), scratch_.begin());
      write_rtp_header(scratch_.data(), s.header);
      bool sent;
      if (t.cfg.rtx_payload_type >= 0) {
        std::vector<uint8_t> rtx = rtp::build_rtx(scratch_.data(), orig.size(),
                                                  static_cast<uint8_t>(t.cfg.rtx_payload_type), t.cfg.rtx_ssrc, t.rtx_seq++);
        sent = !rtx.empty() && srtp_.protect_rtp(&rtx) &&
               nice_agent_send(shared_->agent_, stream_, 1, static_cast<guint>(rtx.size()),
                               reinterpret_cast<const gchar *>(rtx.data())) > 0;
      } else {
        size_t len = orig.size();
        sent = srtp_.protect_rtp(scratch_.data(), &len, scratch_.size()) &&
               nice_agent_send(shared_->agent_, stream_, 1, static_cast<guint>(len),
                               reinterpret_cast<const gchar *>(scratch_.data())) > 0;
      }
      if (sent) stats_.retransmitted++;
    }
  }
}

bool ViewerConnection::send(size_t track, const SharedPacket &packet) {
  if (!packet || !srtp_ready_.load(std::memory_order_acquire) || closed_) return false;
  std::lock_guard<std::mutex> lock(send_mutex_);
  if (track >= tracks_.size() || !srtp_ready_) return false;
  return send_locked(tracks_[track], packet);
}

bool ViewerConnection::send_locked(TrackState &t, const SharedPacket &packet) {
  const std::vector<uint8_t> &p = *packet;
  RtpHeader in, out;
  if (!parse_rtp_header(p.data(), p.size(), &in) || p.size() + SrtpSession::kMaxTrailer > scratch_.size()) return false;
  bool keyframe = !t.cfg.video || rtp_starts_keyframe(t.cfg.encoding, p.data(), p.size());
  int64_t now = g_get_monotonic_time();
  if (t.continuity.process(in, keyframe, now, &out) == RtpContinuity::Verdict::Drop) return false;
  std::copy(p.begin(), p.end(), scratch_.begin());
  write_rtp_header(scratch_.data(), out);
  if (!t.history.empty()) t.history[out.seq % t.history.size()] = {out, packet};
  size_t len = p.size();
  if (!srtp_.protect_rtp(scratch_.data(), &len, scratch_.size())) return false;
  if (nice_agent_send(shared_->agent_, stream_, 1, static_cast<guint>(len), reinterpret_cast<const gchar *>(scratch_.data())) <= 0)
    return false;
  size_t payload = 0;
  rtp::payload_length(p.data(), p.size(), &payload);
  t.packets++;
  t.octets += payload;
  t.last_ts = out.timestamp;
  t.last_ts_us = now;
  stats_.rtp_sent++;
  stats_.rtp_bytes += len;
  maybe_send_sr_locked(t, now);
  return true;
}

bool ViewerConnection::send_rtcp(const std::vector<uint8_t> &compound) {
  if (!srtp_ready_.load(std::memory_order_acquire) || closed_) return false;
  std::vector<uint8_t> c = compound;
  std::lock_guard<std::mutex> lock(send_mutex_);
  return srtp_ready_ && srtp_.protect_rtcp(&c) &&
         nice_agent_send(shared_->agent_, stream_, 1, static_cast<guint>(c.size()), reinterpret_cast<const gchar *>(c.data())) > 0;
}

void ViewerConnection::maybe_send_sr_locked(TrackState &t, int64_t now_us) {
  if (t.last_sr_us && now_us - t.last_sr_us < config_.sr_interval_us) return;
  t.last_sr_us = now_us;
  rtcp::SenderReport sr;
  sr.ssrc = t.cfg.ssrc;
  sr.ntp_time = rtcp::ntp_from_unix_us(g_get_real_time());
  // The RTP time of now, from the last packet's timestamp and the time since it was sent.
  sr.rtp_time = t.last_ts + static_cast<uint32_t>((now_us - t.last_ts_us) * int64_t(t.cfg.clock_rate) / 1000000);
  sr.packet_count = static_cast<uint32_t>(t.packets);
  sr.octet_count = static_cast<uint32_t>(t.octets);
  std::vector<uint8_t> c = rtcp::build_sender_compound(sr, config_.cname);
  if (srtp_.protect_rtcp(&c) &&
      nice_agent_send(shared_->agent_, stream_, 1, static_cast<guint>(c.size()), reinterpret_cast<const gchar *>(c.data())) > 0)
    stats_.srs_sent++;
}

}  // namespace wish
