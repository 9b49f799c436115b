// Link headers a WHIP/WHEP server answers with (rel="ice-server", RFC 9725) and STUN/TURN
// URLs from properties; every server that parses must give back URLs that parse.
#include <cstddef>
#include <cstdint>
#include <string>

#include "protocol/ice_servers.h"

using namespace wish;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  auto links = parse_link_header(text);
  for (const auto &l : links) l.param("rel");
  for (const auto &server : ice_servers_from_links(links)) {
    server.uri();
    server.link_value();
    parse_ice_server_url(server.gst_url());
  }
  if (auto server = parse_ice_server_url(text)) {
    parse_link_header(server->link_value());
    server->uri();
  }
  return 0;
}
