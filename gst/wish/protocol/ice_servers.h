// STUN/TURN servers: GStreamer's URL form (stun://host:port, turn://user:pass@host:port) and
// the RFC 9725 Link header form (<turn:host:port?transport=udp>; rel="ice-server"; ...).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wish {

struct IceServer {
  std::string scheme;  // "stun", "turn", "turns"
  std::string host;    // IPv6 literals keep their brackets
  unsigned port = 0;   // 0: scheme default
  std::string transport;  // "", "udp", "tcp"
  std::string username, credential;

  // "turn:host:port?transport=udp" (RFC 7065 URI, no credentials)
  std::string uri() const;
  // "turn://user:pass@host:port?transport=udp", what webrtcbin's stun-server/add-turn-server take
  std::string gst_url() const;
  // One Link header value with rel="ice-server"
  std::string link_value() const;
};

// Parses GStreamer-style URLs ("stun://h:p", "turn://u:p@h:p?transport=tcp") and plain URIs
// ("stun:h:p"). nullopt on anything else.
std::optional<IceServer> parse_ice_server_url(std::string_view url);

// A Link header parsed into its target and parameters (names lower-cased, values unquoted).
struct LinkValue {
  std::string target;
  std::vector<std::pair<std::string, std::string>> params;
  std::string param(std::string_view name) const;
};
// Splits one Link header value that may hold several comma-joined links; lenient about
// quoting and a missing ';' between parameters.
std::vector<LinkValue> parse_link_header(std::string_view value);

// The ICE servers among parsed Link values (rel="ice-server").
std::vector<IceServer> ice_servers_from_links(const std::vector<LinkValue> &links);

// Hex string of n bytes from the kernel's CSPRNG.
std::string random_hex(size_t n_bytes);

}  // namespace wish
