// Header values a server or client reads from the network: Content-Type, If-Match,
// Authorization, Accept, Retry-After, Location (resolved), comma lists, and a client's reading
// of a whole POST response made of them. The input is split at the first newline: the value,
// and a second string used where two are compared.
#include <cstddef>
#include <cstdint>
#include <string>

#include "protocol/client.h"
#include "protocol/http.h"
#include "protocol/oma_body.h"

using namespace wish;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  size_t nl = text.find('\n');
  std::string value = text.substr(0, nl);
  std::string other = nl == std::string::npos ? std::string("\"abc\"") : text.substr(nl + 1);

  media_type(value);
  IfMatchValue im = parse_if_match(value);
  if_match_accepts(im, other);
  if_match_accepts(parse_if_match(std::nullopt), other);
  bearer_token_matches(value, other);
  bearer_token_matches(value, "");
  for (auto in : {std::optional<OmaFormat>(), std::optional<OmaFormat>(OmaFormat::Json),
                  std::optional<OmaFormat>(OmaFormat::Xml)})
    oma_reply_format(value, in);
  oma_format_of(value);
  split_list(value);
  parse_retry_after(value, 1700000000);
  parse_http_date(value);
  // A Location against the URL the request went to, and the other way round.
  resolve_url("http://a.example:8080/whep/endpoint?x=1", value);
  resolve_url(value, other);
  // A WHIP/WHEP client reading a POST response with these headers.
  static const unsigned statuses[] = {201, 307, 308, 406, 409, 503, 404, 500};
  Response resp;
  resp.status = statuses[size % 8];
  resp.headers.add("Location", value);
  resp.headers.add("ETag", other);
  resp.headers.add("Link", other);
  resp.headers.add("Retry-After", value);
  resp.headers.add("Content-Type", value);
  resp.body = other;
  decide_post("http://a.example:8080/whep/endpoint", resp, 1700000000);
  std::string decoded;
  if (oma_percent_decode(value, &decoded)) {
    std::string again;
    if (!oma_percent_decode(oma_percent_encode(decoded), &again) || again != decoded) __builtin_trap();
  }
  return 0;
}
