// Bodies of the OMA RESTful Network API for WebRTC Signaling 1.0 in both of its formats.
// JSON (the OMA XML-to-JSON rules: {"<root>":{...}}) and XML (root in the
// urn:oma:xml:rest:netapi:webrtcsignaling:1 namespace, children unqualified, SDP in CDATA) are
// read into one tree of named values, and written from it, so the resources are built and
// read once for both. Reading is lenient (leaves as strings, numbers or booleans; a repeated
// element as an object or an array; any namespace prefix); writing is canonical (string
// leaves, arrays for repeated elements, the `wrtcs` prefix).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wish {

enum class OmaFormat { Json, Xml };

// One element of a body: a leaf with text, or a branch with children in document order.
// A list is its element repeated under the same name.
struct OmaNode {
  std::string name;
  std::string text;
  std::vector<OmaNode> children;
  bool attribute = false;  // XML: written as an attribute of its parent (link's rel and href)
  bool list = false;       // JSON: written as an array even when it occurs once
  bool cdata = false;      // XML: text written as CDATA (SDP)

  OmaNode() = default;
  explicit OmaNode(std::string n, std::string t = {}) : name(std::move(n)), text(std::move(t)) {}

  bool is_leaf() const { return children.empty(); }
  // The first child of that name, or null.
  const OmaNode *child(std::string_view child_name) const;
  // Every child of that name.
  std::vector<const OmaNode *> all(std::string_view child_name) const;
  // The text of the first child of that name; nullopt when absent.
  std::optional<std::string> value(std::string_view child_name) const;
  // Appends a child and returns it.
  OmaNode &add(std::string child_name, std::string child_text = {});
};

// Namespaces of the bodies.
constexpr const char *kOmaNamespace = "urn:oma:xml:rest:netapi:webrtcsignaling:1";
constexpr const char *kOmaCommonNamespace = "urn:oma:xml:rest:netapi:common:1";

// Parses a request body into its root element (the root's name without a prefix, e.g.
// "wrtcsSession"). False with a short reason in *error for anything that is not one
// well-formed element: invalid JSON or XML, not exactly one root, nesting deeper than
// kOmaMaxDepth, a JSON null or empty array where a value should be.
constexpr int kOmaMaxDepth = 32;
bool parse_oma_body(std::string_view body, OmaFormat format, OmaNode *root, std::string *error);

// Writes a root element. XML: the root is prefixed `wrtcs:` and declares the WebRTC
// signalling namespace, except the roots of the common namespace (requestError,
// resourceReference), prefixed `common:`.
std::string write_oma_body(const OmaNode &root, OmaFormat format);

// Content types.
const char *oma_content_type(OmaFormat format);  // "application/json" / "application/xml"
// The format of a request body's Content-Type (application/json, application/xml, text/xml,
// +json/+xml suffixes); nullopt for anything else.
std::optional<OmaFormat> oma_format_of(std::string_view content_type);
// The format to answer in: the first of JSON or XML that Accept allows (*/* and
// application/* allow the request's own format, or JSON without one); nullopt when Accept
// allows neither (406). No Accept: the request's format, else JSON.
std::optional<OmaFormat> oma_reply_format(const std::optional<std::string> &accept,
                                          std::optional<OmaFormat> request_format);

// SDP as carried in a body: "sdp" (LF or CRLF line ends) or "sdpBase64", exactly one; the
// result has CRLF line ends. False with *error otherwise.
bool oma_read_sdp(const OmaNode &parent, std::string *sdp, std::string *error);

// Reads a boolean leaf ("true"/"false", any case, or 1/0); nullopt when absent or not one.
std::optional<bool> oma_bool(const OmaNode &parent, std::string_view name);

// Percent-decoding of a path segment. '+' stays '+' (tel:+1...). False on a bad escape or
// a decoded NUL.
bool oma_percent_decode(std::string_view in, std::string *out);
// Percent-encoding of a path segment: everything but unreserved characters (RFC 3986).
std::string oma_percent_encode(std::string_view in);

}  // namespace wish
