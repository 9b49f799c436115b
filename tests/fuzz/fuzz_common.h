// Shared by the fuzz targets: a script of HTTP requests read from the input, fakes for the
// media sides, and a fixed clock. No gstcheck and no GLib main loop here, so every target
// links with libFuzzer and with the standalone runner alike.
//
// Script format (text, so seeds are readable and libFuzzer's mutations stay meaningful):
// requests are separated by a line "%%". Each request is
//   METHOD PATH            ("@loc" at its start: the last Location answered, path only)
//   Name: value            (zero or more headers; the value "@etag" is the last ETag)
//   <empty line>
//   body                   (the rest, verbatim)
// A request whose first line starts with '!' is a command for the harness instead (tick,
// connected, ended, ...): each target documents its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/endpoint.h"
#include "protocol/http.h"

namespace wish::fuzz {

struct ScriptRequest {
  std::string command;  // non-empty: a harness command ("!tick 5000" -> "tick 5000")
  Request req;
};

// Keeps the state a script refers to: the last Location and ETag seen.
struct ScriptState {
  std::string location, etag;
  void saw(const Response &r) {
    if (auto l = r.headers.get("Location")) location = path_of(*l);
    if (auto e = r.headers.get("ETag")) etag = *e;
  }
  // "http://host:1/a/b" -> "/a/b"; a path stays as it is.
  static std::string path_of(const std::string &url) {
    size_t scheme = url.find("://");
    if (scheme == std::string::npos) return url;
    size_t slash = url.find('/', scheme + 3);
    return slash == std::string::npos ? "/" : url.substr(slash);
  }
};

// Bounds what one input may ask for so one execution stays fast.
constexpr size_t kMaxRequests = 24;

inline std::vector<std::string_view> split_script(std::string_view in) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (parts.size() < kMaxRequests) {
    size_t sep = in.find("\n%%\n", start);
    if (sep == std::string_view::npos) {
      parts.push_back(in.substr(start));
      break;
    }
    parts.push_back(in.substr(start, sep - start));
    start = sep + 4;
  }
  return parts;
}

inline ScriptRequest parse_request(std::string_view text, const ScriptState &state) {
  ScriptRequest out;
  size_t eol = text.find('\n');
  std::string_view first = text.substr(0, eol);
  std::string_view rest = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
  if (!first.empty() && first.back() == '\r') first.remove_suffix(1);
  if (!first.empty() && first[0] == '!') {
    out.command = std::string(first.substr(1));
    return out;
  }
  size_t sp = first.find(' ');
  out.req.method = std::string(first.substr(0, sp));
  out.req.path = sp == std::string_view::npos ? "" : std::string(first.substr(sp + 1));
  if (out.req.path.rfind("@loc", 0) == 0) out.req.path.replace(0, 4, state.location);
  out.req.client = "192.0.2.1";
  // Headers up to an empty line; everything after it is the body.
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string value(trim(line.substr(colon + 1)));
    if (value == "@etag") value = state.etag;
    out.req.headers.add(std::string(line.substr(0, colon)), value);
  }
  out.req.body = std::string(rest);
  return out;
}

// Sends one request to a front (Endpoint, WhispEndpoint, OmaFront). Its answer, now or
// later (held media work), updates *state when one is given; true and *out when it came now.
template <class Front>
inline bool send(const std::shared_ptr<Front> &front, const Request &req, Response *out,
                 std::shared_ptr<ScriptState> state = nullptr) {
  auto answer = std::make_shared<std::pair<bool, Response>>();
  front->handle(req, Reply([answer, state](Response r) {
                  if (state) state->saw(r);
                  answer->first = true;
                  answer->second = std::move(r);
                }));
  if (answer->first) *out = answer->second;
  // FUZZ_VERBOSE=1 shows what a seed reaches, for whoever writes one.
  static const bool verbose = std::getenv("FUZZ_VERBOSE") != nullptr;
  if (verbose)
    std::fprintf(stderr, "%s %s -> %u %s\n", req.method.c_str(), req.path.c_str(), answer->first ? out->status : 0,
                 answer->first ? out->body.substr(0, 300).c_str() : "(later)");
  return answer->first;
}

// A number after a command word: "tick 5000" -> 5000 (0 when absent or garbage).
inline int64_t command_arg(const std::string &command) {
  size_t sp = command.find(' ');
  if (sp == std::string::npos) return 0;
  int64_t v = 0;
  for (size_t i = sp + 1; i < command.size() && i < sp + 10; i++) {
    if (command[i] < '0' || command[i] > '9') break;
    v = v * 10 + (command[i] - '0');
  }
  return v;
}

// The media side of an endpoint: completes at once, or when told ("!hold" keeps creations
// and restarts pending until "!release"). Answers are plain SDP so answers that go out are
// realistic.
class FuzzBackend : public MediaBackend {
public:
  Admission admission;
  bool answerable = true, restart_ok = true, hold = false;
  std::vector<std::function<void()>> held;
  std::map<std::string, std::shared_ptr<SessionEvents>> events;

  Admission admit(const std::string &) override { return admission; }
  bool can_answer(const std::string &, const SessionDescription &, std::string *why) override {
    if (!answerable) *why = "no";
    return answerable;
  }
  void create_session(const SessionRequest &request, std::shared_ptr<SessionEvents> ev,
                      SessionCallback done) override;
  void release() {
    auto pending = std::move(held);
    held.clear();
    for (auto &f : pending) f();
  }
};

struct FuzzMedia : MediaSession {
  FuzzBackend *be;
  explicit FuzzMedia(FuzzBackend *b) : be(b) {}
  void add_candidates(const SdpFrag &) override {}
  void restart_ice(const SdpFrag &, MediaCallback done) override {
    bool ok = be->restart_ok;
    auto finish = [ok, done] {
      done(ok ? MediaResult::success("a=ice-ufrag:new1\r\na=ice-pwd:newpasswordnewpassword12\r\n")
              : MediaResult::failure(422, "restart refused"));
    };
    if (be->hold)
      be->held.push_back(finish);
    else
      finish();
  }
  void apply_answer(const std::string &answer, MediaCallback done) override {
    done(answer.empty() ? MediaResult::failure(400, "empty") : MediaResult::success(""));
  }
  std::string ice_connection_state() const override { return "checking"; }
};

inline void FuzzBackend::create_session(const SessionRequest &request, std::shared_ptr<SessionEvents> ev,
                                        SessionCallback done) {
  events[request.id] = ev;
  // The same small SDP serves as answer and as counter-offer: the endpoint passes it on.
  std::string body = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
                     "a=mid:0\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n";
  FuzzBackend *self = this;
  auto finish = [self, body, done] { done(MediaResult::success(body), std::make_unique<FuzzMedia>(self)); };
  if (hold)
    held.push_back(finish);
  else
    finish();
}

}  // namespace wish::fuzz
