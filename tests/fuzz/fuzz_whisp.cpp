// WHISP: the four request bodies (the whole input, and each request's body) and a
// WhispEndpoint answering a script of requests (fuzz_common.h) over a fake backend that
// makes a resource for every action, so DELETE @loc ends real ones. Command: !fail N makes
// the backend refuse with status N.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "fuzz_common.h"
#include "protocol/whisp.h"

using namespace wish;
using namespace wish::fuzz;

namespace {

class FuzzWhisp : public WhispBackend {
public:
  unsigned fail = 0;
  std::set<std::string> live;
  void pull(const WhispRequest &r, WhispCallback done) override { answer(r, "pull", done); }
  void switch_streams(const WhispRequest &r, WhispCallback done) override { answer(r, "switch", done); }
  void merge(const WhispRequest &r, WhispCallback done) override { answer(r, "merge", done); }
  void grab(const WhispRequest &, WhispCallback done) override { done(WhispResult::ok(200)); }
  unsigned end(WhispMessage, const std::string &id) override { return live.erase(id) ? 200 : 404; }

private:
  void answer(const WhispRequest &r, const char *kind, WhispCallback done) {
    if (fail) return done(WhispResult::refused(fail, "refused"));
    WhispResult res = WhispResult::ok(201);
    res.resource = std::string(kind) + std::to_string(live.size());
    live.insert(res.resource);
    if (std::string(kind) != "switch") {
      res.stream = res.resource;
      res.url = "/whep/" + res.stream;
      res.existing = r.media.url.size() % 2;
    }
    done(res);
  }
};

void parse_all(const std::string &body) {
  for (WhispMessage m : {WhispMessage::Pulling, WhispMessage::Switching, WhispMessage::Merging, WhispMessage::Grabbing}) {
    WhispRequest req;
    std::string error;
    if (parse_whisp_request(m, body, &req, &error)) {
      whisp_media_json(req.media);
      whisp_media_json(req.other);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view input(reinterpret_cast<const char *>(data), size);
  parse_all(std::string(input));
  FuzzWhisp backend;
  WhispConfig cfg;
  cfg.auth_token = "tok";
  cfg.cors_allowed_origins = "https://a.example";
  cfg.max_body_size = 16 * 1024;
  auto ep = std::make_shared<WhispEndpoint>(cfg, &backend);
  auto state = std::make_shared<ScriptState>();
  for (std::string_view part : split_script(input)) {
    ScriptRequest r = parse_request(part, *state);
    if (!r.command.empty()) {
      if (r.command.rfind("fail", 0) == 0) {
        static const unsigned statuses[] = {0, 400, 404, 409, 500, 503};  // what the real backend answers
        backend.fail = statuses[command_arg(r.command) % 6];
      }
      continue;
    }
    if (part.size() != input.size()) parse_all(r.req.body);
    Response resp;
    send(ep, r.req, &resp, state);
  }
  return 0;
}
