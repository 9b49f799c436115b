// WHISP (draft-liu-webrtc-http-interactive-protocol-00): the HTTP+JSON control plane that pulls,
// switches, merges and grabs the streams of a server. The draft's figures are not valid JSON
// and leave responses undefined: requests are read leniently (the well-formed readings of
// the figures), responses are written in one strict shape (docs/whisp.md). The media work is
// a WhispBackend's.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "http.h"

namespace wish {

// A media object: "media ID" (msid track filters) and "URL" (which stream).
struct WhispMedia {
  std::string url;
  std::vector<std::string> amsid, vmsid;  // empty: every track of that kind
  bool has_media_id = false;
};

enum class WhispMessage { Pulling, Switching, Merging, Grabbing };

struct WhispRequest {
  WhispMessage message = WhispMessage::Pulling;
  WhispMedia media;        // pulling: "media"; switching: "source media"; merging: "main media";
                           // grabbing: "new media"
  WhispMedia other;        // switching: "destination media"; merging: "secondary media"
  std::string template_id;  // merging: "01", "02", "03"
  int error_code = -1;      // grabbing: 0, 1 or 2
};

// Parses a request body for the message (json-glib); false with *error saying what is wrong.
// Lenient: "media ID" as an object or an array of one-key objects (or absent), msids as a
// string or an array, "merge template id" as a string, number or one-element array,
// "error_code" as 0..2 or "0x0".."0x2". Unknown members are ignored.
bool parse_whisp_request(WhispMessage message, const std::string &body, WhispRequest *out, std::string *error);

// The strict JSON shapes the server writes.
std::string whisp_media_json(const WhispMedia &media);  // {"media ID":{...},"URL":"..."}
std::string whisp_pulling_response(const std::string &stream_url, const std::string &stream_name);
std::string whisp_merging_response(const std::string &stream_url, const std::string &stream_name);
std::string whisp_templates_json();

struct WhispTemplate {
  std::string id, name, description;
};
const std::vector<WhispTemplate> &whisp_templates();

// What a WHISP action gave: the resource it made (a pull, a switch, a merge) and the stream
// it concerns, or an HTTP status and a reason.
struct WhispResult {
  unsigned status = 500;
  std::string error;
  std::string resource;  // id of what DELETE ends; "" for none
  std::string stream;    // pulling, merging: the stream made; switching: ""
  std::string url;       // pulling, merging: the stream's WHEP URL (path)
  bool existing = false;  // pulling: the URL was pulled already
  static WhispResult ok(unsigned status = 200) {
    WhispResult r;
    r.status = status;
    return r;
  }
  static WhispResult refused(unsigned status, std::string error) {
    WhispResult r;
    r.status = status;
    r.error = std::move(error);
    return r;
  }
};
using WhispCallback = std::function<void(WhispResult)>;

// The media side. Callbacks may come from any thread, once.
class WhispBackend {
public:
  virtual ~WhispBackend() = default;
  virtual void pull(const WhispRequest &request, WhispCallback done) = 0;
  virtual void switch_streams(const WhispRequest &request, WhispCallback done) = 0;
  virtual void merge(const WhispRequest &request, WhispCallback done) = 0;
  virtual void grab(const WhispRequest &request, WhispCallback done) = 0;
  // DELETE of a pull, switch or merge: 200, or 404 when there is no such one.
  virtual unsigned end(WhispMessage kind, const std::string &id) = 0;
};

struct WhispConfig {
  std::string path = "/whisp";
  std::string auth_token;
  std::string cors_allowed_origins = "*";
  size_t max_body_size = 64 * 1024;
};

// Routes, authorizes and answers WHISP requests:
//   POST <path>/pulling/endpoint, DELETE <path>/pulling/<id>
//   POST <path>/switching/endpoint, DELETE <path>/switching/<id>
//   POST <path>/merging/endpoint, DELETE <path>/merging/<id>, GET <path>/merging/templates
//   POST <path>/grabbing/endpoint
// and OPTIONS (CORS preflight without auth) on all of them.
class WhispEndpoint : public std::enable_shared_from_this<WhispEndpoint> {
public:
  WhispEndpoint(WhispConfig config, WhispBackend *backend) : config_(std::move(config)), backend_(backend) {}
  void handle(const Request &req, Reply reply);
  const WhispConfig &config() const { return config_; }

private:
  Response decorate(const Request &req, Response r) const;
  void post(const Request &req, WhispMessage message, Reply reply);

  const WhispConfig config_;
  WhispBackend *backend_;
};

}  // namespace wish
