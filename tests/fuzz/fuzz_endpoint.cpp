// The HTTP side of WHEP and WHIP endpoints as a whole: a script of requests (fuzz_common.h)
// goes to one WHEP endpoint (/whep) and one WHIP endpoint (/whip) over fake media, with the
// Location and ETag they answered available to later requests (@loc, @etag), so PATCH with
// If-Match and DELETE reach real sessions. Commands:
//   !tick N       advance the clock N ms        !expire   expire_stale()
//   !connected    every session's media connects  !ended  every session's media ends
//   !hold/!release  keep media work pending / complete it
//   !refuse N     admission answers N (0: admit)  !unanswerable  can_answer() says no
//   !restart-fail ICE restarts fail               !counter always|never|needed
//   !close        close_all()
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "fuzz_common.h"

using namespace wish;
using namespace wish::fuzz;

namespace {

EndpointConfig config(EndpointKind kind) {
  EndpointConfig c;
  c.kind = kind;
  c.path = kind == EndpointKind::Whep ? "/whep" : "/whip";
  c.auth_token = "tok";
  c.cors_allowed_origins = "https://a.example, https://b.example";
  c.ice_servers.push_back(*parse_ice_server_url("turn://user:pass@turn.example:3478?transport=udp"));
  c.max_sessions = 6;
  c.max_pending_per_client = 4;
  c.max_media_sections = 8;
  c.max_candidates = 16;
  c.max_body_size = 16 * 1024;
  c.player_page = "<html></html>";
  return c;
}

void command(const std::string &cmd, FuzzBackend &be, Endpoint &ep, int64_t *clock_ms) {
  if (cmd.rfind("tick", 0) == 0) *clock_ms += command_arg(cmd);
  else if (cmd == "expire") ep.expire_stale();
  else if (cmd == "connected" || cmd == "ended") {
    auto events = be.events;  // a callback may add to it
    for (auto &[id, ev] : events) cmd == "ended" ? ev->ended("ice-failed") : ev->connected();
  } else if (cmd == "hold") be.hold = true;
  else if (cmd == "release") {
    be.hold = false;
    be.release();
  } else if (cmd.rfind("refuse", 0) == 0) be.admission.status = static_cast<unsigned>(command_arg(cmd) % 600);
  else if (cmd == "unanswerable") be.answerable = false;
  else if (cmd == "restart-fail") be.restart_ok = false;
  else if (cmd.rfind("counter", 0) == 0) {
    EndpointConfig c = ep.config();
    c.counter_offer = cmd.find("always") != std::string::npos  ? CounterOfferMode::Always
                      : cmd.find("never") != std::string::npos ? CounterOfferMode::Never
                                                               : CounterOfferMode::WhenNeeded;
    ep.set_config(c);
  } else if (cmd == "close") ep.close_all();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view input(reinterpret_cast<const char *>(data), size);
  int64_t clock_ms = 1700000000000;
  FuzzBackend whep_media, whip_media;
  {
    auto clock = [&clock_ms] { return clock_ms; };
    auto whep = std::make_shared<Endpoint>(config(EndpointKind::Whep), &whep_media, clock);
    auto whip = std::make_shared<Endpoint>(config(EndpointKind::Whip), &whip_media, clock);
    auto state = std::make_shared<ScriptState>();
    bool to_whip = false;  // commands go to the endpoint the last request went to
    for (std::string_view part : split_script(input)) {
      ScriptRequest r = parse_request(part, *state);
      auto &ep = to_whip ? whip : whep;
      auto &be = to_whip ? whip_media : whep_media;
      if (!r.command.empty()) {
        command(r.command, be, *ep, &clock_ms);
        continue;
      }
      to_whip = r.req.path.rfind("/whip", 0) == 0;
      Response resp;
      send(to_whip ? whip : whep, r.req, &resp, state);
      for (const auto &s : (to_whip ? whip : whep)->sessions()) {
        (to_whip ? whip : whep)->session_url(s.id);
        (to_whip ? whip : whep)->ice_connection_state(s.id);
      }
    }
    // Whatever is pending completes, then everything is torn down as an element stopping.
    for (FuzzBackend *be : {&whep_media, &whip_media}) {
      be->hold = false;
      be->release();
    }
    clock_ms += 120000;
    whep->expire_stale();
    whip->expire_stale();
    whep->close_all();
    whip->close_all();
  }
  // Media events after the endpoints are gone must do nothing.
  for (FuzzBackend *be : {&whep_media, &whip_media})
    for (auto &[id, ev] : be->events) ev->connected();
  return 0;
}
