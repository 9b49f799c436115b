// Fakes for the protocol tests: a media side that completes at once (or when told), so an
// endpoint's HTTP rules can be checked alone, and one request helper for every front.
#pragma once

#include <gst/check/gstcheck.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "protocol/endpoint.h"

namespace wish {

// A player's offer for one recvonly VP8 video m-line with a loopback candidate.
inline const char *const kVideoOnlyOffer =
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=ice-ufrag:u1\r\n"
    "a=ice-pwd:p1p1p1p1p1p1p1p1p1p1p1p1\r\na=rtpmap:96 VP8/90000\r\n"
    "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n";
inline const std::map<std::string, std::string> kSdpType = {{"Content-Type", "application/sdp"}};

struct FakeMedia;
class FakeBackend : public MediaBackend {
public:
  Admission admission;
  bool answerable = true;
  bool restart_ok = true;
  std::vector<std::string> closed;  // "<id> <reason>" of every media handle dropped
  size_t candidates = 0;
  std::vector<std::string> streams;  // the stream of each session created
  std::map<std::string, std::shared_ptr<SessionEvents>> events;
  bool hold = false;  // keep creations pending in `held`
  std::vector<std::function<void()>> held;
  std::string restart_body = "a=ice-ufrag:new\r\n";  // the server's side of an ICE restart
  bool hold_restarts = false;                          // keep restarts pending in `held_restarts`
  std::vector<std::function<void()>> held_restarts;
  std::string ice_state;  // what every session reports as its ICE connection state
  std::string answer_body = "v=0\r\nanswer\r\n";
  std::vector<VideoLayer> layers;  // what every session may choose from
  std::vector<int> selected;       // every select_layer() call
  Admission admit(const std::string &) override { return admission; }
  bool can_answer(const std::string &, const SessionDescription &, std::string *) override { return answerable; }
  void create_session(const SessionRequest &request, std::shared_ptr<SessionEvents> ev, SessionCallback done) override;
};

struct FakeMedia : MediaSession {
  FakeBackend *be;
  std::string id;
  FakeMedia(FakeBackend *b, std::string i) : be(b), id(std::move(i)) {}
  ~FakeMedia() override { be->closed.push_back(id + " " + end_reason); }
  void add_candidates(const SdpFrag &f) override { be->candidates += f.candidate_count(); }
  void restart_ice(const SdpFrag &, MediaCallback done) override {
    FakeBackend *b = be;
    auto finish = [b, done] {
      done(b->restart_ok ? MediaResult::success(b->restart_body) : MediaResult::failure(422, "no"));
    };
    if (be->hold_restarts)
      be->held_restarts.push_back(finish);
    else
      finish();
  }
  std::string ice_connection_state() const override { return be->ice_state; }
  void apply_answer(const std::string &, MediaCallback done) override { done(MediaResult::success("")); }
  std::vector<VideoLayer> layers() const override { return be->layers; }
  void select_layer(int layer, MediaCallback done) override {
    be->selected.push_back(layer);
    done(MediaResult::success(""));
  }
};

inline void FakeBackend::create_session(const SessionRequest &request, std::shared_ptr<SessionEvents> ev, SessionCallback done) {
  streams.push_back(request.stream);
  events[request.id] = ev;
  std::string body = request.counter_offer ? "v=0\r\noffer\r\n" : answer_body;
  auto finish = [this, id = request.id, body, done] {
    done(MediaResult::success(body), std::make_unique<FakeMedia>(this, id));
  };
  if (hold)
    held.push_back(finish);
  else
    finish();
}

// A request to a WHEP or WHISP endpoint, answered exactly once.
template <class Front>
inline Response call(const std::shared_ptr<Front> &ep, const std::string &method, const std::string &path,
                     std::map<std::string, std::string> headers = {}, const std::string &body = "") {
  Request req;
  req.method = method;
  req.path = path;
  for (auto &kv : headers) req.headers.add(kv.first, kv.second);
  req.body = body;
  Response out;
  int called = 0;
  ep->handle(req, Reply([&](Response r) {
               out = std::move(r);
               called++;
             }));
  fail_unless_equals_int(called, 1);
  return out;
}

}  // namespace wish
