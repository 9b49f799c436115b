// Names of the streams a server carries. A stream is named by a path: the element's own
// stream by its endpoint path without the leading slash ("whep"), a WHIP publisher's stream by
// the segment after the WHIP path (/whip/cam1 -> "cam1"), played at <WHEP path>/<name>.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace wish {

// A name a client may give in a URL: one path segment of letters, digits and "._~-", at most
// 64 characters, not "." or "..", and not "sessions" (session URLs live there).
bool valid_stream_name(std::string_view name);

// The stream a locator names: a full URL (scheme and authority dropped), an absolute path or a
// bare name. A path that is one of `endpoint_paths` followed by "/<name>" names <name>; any
// other path names itself without the leading slash. "" when nothing is named.
std::string stream_name_from_locator(std::string_view locator, const std::vector<std::string> &endpoint_paths);

}  // namespace wish
