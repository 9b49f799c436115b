// OMA REST WebRTC signalling: bodies in JSON and XML (what parses is written back and must
// parse again in the same format), then the OmaFront over a WHEP and a WHIP endpoint with
// fake media: the input as the body of a request to every resource of a live session and
// subscription, and, when the input is a script (fuzz_common.h: first line "METHOD /..." or
// "!..."), its requests. Commands: !tick N (clock), !front-tick, !connected, !ended,
// !notify-fail (callbacks answer non-2xx).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "protocol/oma_front.h"

using namespace wish;
using namespace wish::fuzz;

namespace {

const char *kOffer =
    "v=0\\r\\no=- 1 2 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\nm=video 9 UDP/TLS/RTP/SAVPF 96\\r\\n"
    "c=IN IP4 0.0.0.0\\r\\na=mid:0\\r\\na=recvonly\\r\\na=ice-ufrag:u1\\r\\na=ice-pwd:p1p1p1p1p1p1p1p1p1p1p1p1\\r\\n"
    "a=rtpmap:96 VP8/90000\\r\\na=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\\r\\n";

class FuzzOmaBackend : public OmaBackend {
public:
  std::vector<OmaEndpoint> list;
  bool ok = true;
  std::vector<OmaEndpoint> endpoints() override { return list; }
  void notify(const std::string &, const std::string &, const std::string &body, std::function<void(bool)> done) override {
    OmaNode root;
    std::string error;
    parse_oma_body(body, OmaFormat::Json, &root, &error);  // what we send is read by others
    done(ok);
  }
};

void round_trip(std::string_view body) {
  for (OmaFormat f : {OmaFormat::Json, OmaFormat::Xml}) {
    OmaNode root;
    std::string error;
    if (!parse_oma_body(body, f, &root, &error)) continue;
    std::string written = write_oma_body(root, f);
    OmaNode again;
    if (!parse_oma_body(written, f, &again, &error)) __builtin_trap();  // we must read what we write
    write_oma_body(root, f == OmaFormat::Json ? OmaFormat::Xml : OmaFormat::Json);
    std::string sdp;
    oma_read_sdp(root, &sdp, &error);
    oma_bool(root, "clientCorrelator");
  }
}

bool looks_like_script(std::string_view in) {
  if (!in.empty() && in[0] == '!') return true;
  size_t sp = in.find(' ');
  return sp != std::string_view::npos && sp > 0 && sp < 8 && sp + 1 < in.size() && in[sp + 1] == '/';
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view input(reinterpret_cast<const char *>(data), size);
  round_trip(input);

  int64_t clock_ms = 1000000;
  FuzzBackend whep_media, whip_media;
  FuzzOmaBackend oma_backend;
  {
    auto clock = [&clock_ms] { return clock_ms; };
    EndpointConfig wc;
    wc.path = "/whep";
    wc.auth_token = "tok";
    auto whep = std::make_shared<Endpoint>(wc, &whep_media, clock);
    wc.kind = EndpointKind::Whip;
    wc.path = "/whip";
    auto whip = std::make_shared<Endpoint>(wc, &whip_media, clock);
    oma_backend.list = {{"/whep", true, true, whep}, {"/whip", false, true, whip}};
    OmaConfig oc;
    oc.auth_token = "tok";
    oc.max_subscriptions = 8;
    oc.max_body_size = 16 * 1024;
    auto front = std::make_shared<OmaFront>(oc, &oma_backend, clock);

    const std::string user = "/webrtcsignaling/v1/sip%3Aviewer%40example.com";
    auto request = [&](const std::string &method, const std::string &path, const std::string &body,
                       const char *type) {
      Request req;
      req.method = method;
      req.path = path;
      req.client = "192.0.2.1";
      req.headers.add("Authorization", "Bearer tok");
      req.headers.add("Host", "media.example:8889");
      if (type) req.headers.add("Content-Type", type);
      req.body = body;
      Response resp;
      send(front, req, &resp);
      return resp;
    };
    // A live session and subscription, so every resource exists.
    Response session = request("POST", user + "/sessions",
                               std::string(R"({"wrtcsSession":{"tParticipantAddress":"sip:cam1@media.example","offer":{"sdp":")") +
                                   kOffer + "\"}}}",
                               "application/json");
    Response sub = request("POST", user + "/subscriptions",
                           R"({"wrtcsNotificationSubscription":{"callbackReference":{"notifyURL":"http://app/cb"}}})",
                           "application/json");
    std::string s = ScriptState::path_of(session.headers.get("Location").value_or(user + "/sessions/x"));
    std::string b = ScriptState::path_of(sub.headers.get("Location").value_or(user + "/subscriptions/x"));
    // The body's own format, as a client would label it.
    size_t first = input.find_first_not_of(" \t\r\n");
    const char *type = first != std::string_view::npos && input[first] == '<' ? "application/xml" : "application/json";
    std::string body(input);
    const std::pair<const char *, std::string> sweep[] = {
        {"POST", user + "/sessions"}, {"PUT", s + "/status"},   {"PUT", s + "/offer"},     {"PUT", s + "/answer"},
        {"PUT", s + "/update"},       {"PUT", s + "/ice/status"}, {"POST", user + "/subscriptions"}, {"GET", s + "/update"},
        {"DELETE", s + "/update"},    {"GET", b},               {"DELETE", b},             {"DELETE", s}};
    for (const auto &[method, path] : sweep) request(method, path, body, type);

    if (looks_like_script(input)) {
      auto state = std::make_shared<ScriptState>();
      for (std::string_view part : split_script(input)) {
        ScriptRequest r = parse_request(part, *state);
        if (r.command.rfind("tick", 0) == 0) clock_ms += command_arg(r.command);
        else if (r.command == "front-tick") front->tick();
        else if (r.command == "notify-fail") oma_backend.ok = false;
        else if (r.command == "connected" || r.command == "ended")
          for (FuzzBackend *be : {&whep_media, &whip_media}) {
            auto events = be->events;
            for (auto &[id, ev] : events) r.command == "ended" ? ev->ended("ice-failed") : ev->connected();
          }
        if (!r.command.empty()) continue;
        Response resp;
        send(front, r.req, &resp, state);
      }
    }
    clock_ms += 100000000;
    front->tick();
    whep->close_all();
    whip->close_all();
    front->tick();
  }
  return 0;
}
