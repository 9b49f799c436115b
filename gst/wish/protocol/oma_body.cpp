// Body codec of the OMA RESTful Network API for WebRTC Signaling 1.0: JSON (json-glib) and
// XML (GMarkup) read into, and written from, one OmaNode tree.
#include "oma_body.h"

#include <glib.h>
#include <json-glib/json-glib.h>

#include <algorithm>
#include <memory>

namespace wish {

const OmaNode *OmaNode::child(std::string_view child_name) const {
  for (const OmaNode &c : children) if (c.name == child_name) return &c;
  return nullptr;
}

std::vector<const OmaNode *> OmaNode::all(std::string_view child_name) const {
  std::vector<const OmaNode *> out;
  for (const OmaNode &c : children) if (c.name == child_name) out.push_back(&c);
  return out;
}

std::optional<std::string> OmaNode::value(std::string_view child_name) const {
  const OmaNode *c = child(child_name);
  return c ? std::optional<std::string>(c->text) : std::nullopt;
}

OmaNode &OmaNode::add(std::string child_name, std::string child_text) {
  return children.emplace_back(std::move(child_name), std::move(child_text));
}

namespace {

constexpr const char *kXmlSpace = " \t\r\n";

std::string_view trim(std::string_view s, const char *ws = kXmlSpace) {
  size_t b = s.find_first_not_of(ws);
  return b == std::string_view::npos ? std::string_view() : s.substr(b, s.find_last_not_of(ws) - b + 1);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char &c : out) c = g_ascii_tolower(c);
  return out;
}

bool fail(std::string *error, std::string msg) {
  if (error) *error = std::move(msg);
  return false;
}

// ASCII NCNames only, so that any tree read from JSON can be written as XML and read back.
bool valid_name(std::string_view n) {
  if (n.empty() || !(g_ascii_isalpha(n[0]) || n[0] == '_')) return false;
  for (char c : n)
    if (!(g_ascii_isalnum(c) || c == '_' || c == '-' || c == '.')) return false;
  return true;
}

std::string_view local_name(std::string_view n) {
  size_t colon = n.rfind(':');
  return colon == std::string_view::npos ? n : n.substr(colon + 1);
}

std::string hex(const char *format, unsigned char c) {
  char buf[16];
  g_snprintf(buf, sizeof buf, format, c);
  return buf;
}

std::string too_deep() { return "nesting deeper than " + std::to_string(kOmaMaxDepth) + " elements"; }

// json-glib recurses once per bracket. An element level may take an array and an object,
// hence twice the element limit (plus the outer object); the tree walk checks the real depth.
bool json_too_deep(std::string_view s) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (in_string) {
      in_string = escaped || c != '"';
      escaped = !escaped && c == '\\';
    }
    else if (c == '"') in_string = true;
    else if ((c == '{' || c == '[') && ++depth > 2 * kOmaMaxDepth + 2) return true;
    else if (c == '}' || c == ']') depth--;
  }
  return false;
}

// The shortest text that reads back as the same double (1.5 → "1.5", not "1.5000000000000000"),
// integral values without an exponent (1e3 → "1000").
std::string double_text(double d) {
  if (d == static_cast<double>(static_cast<long long>(d)) && d > -1e15 && d < 1e15)
    return std::to_string(static_cast<long long>(d));
  char buf[G_ASCII_DTOSTR_BUF_SIZE], format[8];
  for (int precision = 1; precision <= 17; precision++) {
    g_snprintf(format, sizeof format, "%%.%dg", precision);
    g_ascii_formatd(buf, sizeof buf, format, d);
    if (g_ascii_strtod(buf, nullptr) == d) break;
  }
  return buf;
}

bool json_to_node(JsonNode *v, OmaNode *node, int depth, std::string *error);

bool json_members(JsonObject *object, OmaNode *node, int depth, std::string *error) {
  GList *members = json_object_get_members(object);  // insertion order
  bool ok = true;
  for (GList *l = members; ok && l; l = l->next) {
    const char *key = static_cast<const char *>(l->data);
    JsonNode *m = json_object_get_member(object, key);
    std::string name(local_name(key));
    if (!valid_name(name)) {
      ok = fail(error, "invalid member name \"" + std::string(key) + "\"");
    } else if (JSON_NODE_HOLDS_ARRAY(m)) {
      // Repeated elements; an empty array is a [0..n] element that does not occur, like null.
      JsonArray *array = json_node_get_array(m);
      for (guint i = 0; ok && i < json_array_get_length(array); i++) {
        JsonNode *e = json_array_get_element(array, i);
        if (JSON_NODE_HOLDS_ARRAY(e) || JSON_NODE_HOLDS_NULL(e))
          ok = fail(error, "\"" + name + "\": arrays may hold only objects and values");
        else {
          OmaNode &c = node->add(name);
          c.list = true;
          ok = json_to_node(e, &c, depth + 1, error);
        }
      }
    } else if (!JSON_NODE_HOLDS_NULL(m)) {  // null: an absent optional element
      ok = json_to_node(m, &node->add(name), depth + 1, error);
    }
  }
  g_list_free(members);
  return ok;
}

// v is an object (a branch; {} is an empty leaf) or a value (a leaf).
bool json_to_node(JsonNode *v, OmaNode *node, int depth, std::string *error) {
  if (depth > kOmaMaxDepth) return fail(error, too_deep());
  if (JSON_NODE_HOLDS_OBJECT(v)) return json_members(json_node_get_object(v), node, depth, error);
  GType type = json_node_get_value_type(v);
  if (type == G_TYPE_STRING) node->text = json_node_get_string(v) ? json_node_get_string(v) : "";
  else if (type == G_TYPE_BOOLEAN) node->text = json_node_get_boolean(v) ? "true" : "false";
  else if (type == G_TYPE_INT64) node->text = std::to_string(json_node_get_int(v));
  else if (type == G_TYPE_DOUBLE) node->text = double_text(json_node_get_double(v));
  // In case json-glib turns a \u escape (a lone surrogate) into bytes that are not UTF-8.
  if (!g_utf8_validate(node->text.data(), node->text.size(), nullptr))
    return fail(error, "\"" + node->name + "\" is not UTF-8");
  return true;
}

bool parse_json(std::string_view body, OmaNode *root, std::string *error) {
  if (json_too_deep(body)) return fail(error, too_deep());
  JsonParser *parser = json_parser_new();
  GError *err = nullptr;
  bool ok = json_parser_load_from_data(parser, body.data(), static_cast<gssize>(body.size()), &err);
  JsonNode *top = ok ? json_parser_get_root(parser) : nullptr;
  JsonObject *object = top && JSON_NODE_HOLDS_OBJECT(top) ? json_node_get_object(top) : nullptr;
  // The outer object is read like any other, as the children of a parent without a name.
  OmaNode parent;
  if (!ok) fail(error, std::string("invalid JSON: ") + err->message);
  else if (!object || json_object_get_size(object) != 1)
    ok = fail(error, "the body is not an object with exactly one member (the root element)");
  else if ((ok = json_members(object, &parent, 0, error)) && (parent.children.size() != 1 || parent.children[0].list))
    ok = fail(error, "the root element is null or an array");
  if (ok) *root = std::move(parent.children[0]);
  g_clear_error(&err);
  g_object_unref(parser);
  return ok;
}

struct XmlReader {
  OmaNode *root;
  bool seen_root = false;
  std::vector<OmaNode *> open;  // the open elements, innermost last
};

void xml_fail(GError **error, const std::string &msg) {
  g_set_error_literal(error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT, msg.c_str());
}

void xml_start(GMarkupParseContext *, const gchar *element, const gchar **attr_names,
               const gchar **attr_values, gpointer data, GError **error) {
  auto *r = static_cast<XmlReader *>(data);
  int depth = static_cast<int>(r->open.size()) + 1;
  std::string name(local_name(element));
  if (r->open.empty() && r->seen_root) return xml_fail(error, "more than one root element");
  if (depth > kOmaMaxDepth) return xml_fail(error, too_deep());
  if (!valid_name(name)) return xml_fail(error, std::string("invalid element name \"") + element + "\"");
  OmaNode *node = r->open.empty() ? r->root : &r->open.back()->add(name);
  node->name = name;
  r->seen_root = true;
  for (size_t i = 0; attr_names[i]; i++) {
    std::string_view an = attr_names[i];
    if (an == "xmlns" || an.substr(0, 6) == "xmlns:") continue;
    std::string local(local_name(an));
    // Attributes are children in the tree, so they count for its depth.
    if (depth == kOmaMaxDepth) return xml_fail(error, too_deep());
    if (!valid_name(local)) return xml_fail(error, "invalid attribute name \"" + std::string(an) + "\"");
    if (node->child(local))  // GMarkup lets duplicates (and two prefixes of one name) through
      return xml_fail(error, "duplicate attribute \"" + local + "\"");
    node->add(local, attr_values[i]).attribute = true;
  }
  r->open.push_back(node);
}

void xml_end(GMarkupParseContext *, const gchar *, gpointer data, GError **) {
  auto *r = static_cast<XmlReader *>(data);
  OmaNode *node = r->open.back();
  // Text between child elements is layout.
  node->text = node->is_leaf() ? std::string(trim(node->text)) : std::string();
  r->open.pop_back();
}

void xml_text(GMarkupParseContext *, const gchar *text, gsize len, gpointer data, GError **error) {
  auto *r = static_cast<XmlReader *>(data);
  if (!r->open.empty()) r->open.back()->text.append(text, len);
  else if (!trim(std::string_view(text, len)).empty()) xml_fail(error, "text outside the root element");
}

// Without G_MARKUP_TREAT_CDATA_AS_TEXT, CDATA comes here (with comments, PIs and the prolog),
// which tells CDATA apart so that the cdata flag survives a round trip.
void xml_passthrough(GMarkupParseContext *, const gchar *text, gsize len, gpointer data, GError **) {
  auto *r = static_cast<XmlReader *>(data);
  std::string_view s(text, len), open = "<![CDATA[", close = "]]>";
  if (r->open.empty() || s.size() < open.size() + close.size() || s.substr(0, open.size()) != open) return;
  r->open.back()->text.append(s.substr(open.size(), s.size() - open.size() - close.size()));
  r->open.back()->cdata = true;
}

bool parse_xml(std::string_view body, OmaNode *root, std::string *error) {
  static const GMarkupParser callbacks = {xml_start, xml_end, xml_text, xml_passthrough, nullptr};
  OmaNode tree;  // *root is left alone on failure
  XmlReader reader{&tree};
  GMarkupParseContext *ctx = g_markup_parse_context_new(&callbacks, G_MARKUP_PREFIX_ERROR_POSITION, &reader, nullptr);
  GError *err = nullptr;
  bool ok = g_markup_parse_context_parse(ctx, body.data(), static_cast<gssize>(body.size()), &err) &&
            g_markup_parse_context_end_parse(ctx, &err);
  g_markup_parse_context_free(ctx);
  if (!ok) fail(error, std::string("invalid XML: ") + (err ? err->message : "parse error"));
  g_clear_error(&err);
  if (ok && !reader.seen_root) ok = fail(error, "no root element");
  if (ok) *root = std::move(tree);
  return ok;
}

// Invalid UTF-8 or NUL (only possible in a tree built by code) would make either output
// unreadable; they become U+FFFD.
std::string utf8(const std::string &s) {
  if (g_utf8_validate_len(s.data(), s.size(), nullptr)) return s;
  std::unique_ptr<gchar, decltype(&g_free)> valid(g_utf8_make_valid(s.data(), static_cast<gssize>(s.size())), g_free);
  return valid.get();
}

void json_string(std::string &out, const std::string &raw) {
  out += '"';
  for (unsigned char c : utf8(raw)) {
    if (c == '"' || c == '\\') out += {'\\', static_cast<char>(c)};
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c >= 0x20) out += static_cast<char>(c);
    else out += hex("\\u%04x", c);
  }
  out += '"';
}

void json_write(const OmaNode &node, int depth, std::string &out) {
  // Children below the depth limit could not be read back; the writer stops there too.
  if (node.children.empty() || depth >= kOmaMaxDepth) return json_string(out, node.text);
  out += '{';
  std::vector<bool> done(node.children.size());
  for (size_t i = 0; i < node.children.size(); i++) {
    if (done[i]) continue;
    std::vector<const OmaNode *> group;  // every child of this name, at its first occurrence
    for (size_t j = i; j < node.children.size(); j++)
      if (node.children[j].name == node.children[i].name) {
        group.push_back(&node.children[j]);
        done[j] = true;
      }
    if (out.back() != '{') out += ',';
    json_string(out, node.children[i].name);
    out += ':';
    bool array = group.size() > 1 || group[0]->list;
    if (array) out += '[';
    for (size_t k = 0; k < group.size(); k++) {
      if (k) out += ',';
      json_write(*group[k], depth + 1, out);
    }
    if (array) out += ']';
  }
  out += '}';
}

// g_markup_escape_text's rules (written out: it may read past the end of invalid UTF-8), and
// CR, plus TAB and LF in attributes, as references because GMarkup normalises them when raw.
void xml_escape(std::string &out, const std::string &raw, bool attribute = false) {
  std::string s = utf8(raw);
  for (size_t i = 0; i < s.size(); i++) {
    unsigned char c = s[i], next = i + 1 < s.size() ? s[i + 1] : 0;
    bool c1 = c == 0xC2 && next >= 0x80 && next <= 0x9F && next != 0x85;  // C1 controls but NEL
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '"') out += "&quot;";
    else if (c == '\'') out += "&apos;";
    else if (!c1 && c != 0x7F && (c >= 0x20 || (!attribute && (c == '\t' || c == '\n'))))
      out += static_cast<char>(c);
    else
      out += hex("&#x%x;", c1 ? s[++i] : c);  // as g_markup_escape_text
  }
}

// XML 1.0 forbids control characters even in CDATA; such text goes out escaped instead.
bool cdata_safe(const std::string &s) {
  for (unsigned char c : s)
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) return false;
  return true;
}

void xml_cdata(std::string &out, const std::string &raw) {
  std::string s = utf8(raw);
  out += "<![CDATA[";
  for (size_t i = 0, end; i <= s.size(); i = end + 3) {  // "]]>" split across two sections
    end = std::min(s.find("]]>", i), s.size());
    out.append(s, i, end - i);
    if (end < s.size()) out += "]]]]><![CDATA[>";
  }
  out += "]]>";
}

void xml_write(const OmaNode &node, const std::string &tag, const std::string &ns, int depth, std::string &out) {
  out += '<' + tag + ns;
  bool below = depth < kOmaMaxDepth, elements = false;  // the reader's limit, as in json_write
  for (const OmaNode &c : node.children) {
    elements = elements || (below && !c.attribute);
    if (below && c.attribute) {
      out += ' ' + c.name + "=\"";
      xml_escape(out, c.text, true);
      out += '"';
    }
  }
  if (!elements && (!node.children.empty() || node.text.empty())) {
    out += "/>";  // attributes only, or an empty leaf
    return;
  }
  out += '>';
  for (const OmaNode &c : node.children)
    if (elements && !c.attribute) xml_write(c, c.name, {}, depth + 1, out);
  if (!elements && node.cdata && cdata_safe(node.text)) xml_cdata(out, node.text);
  else if (!elements) xml_escape(out, node.text);
  out += "</" + tag + '>';
}

}  // namespace

bool parse_oma_body(std::string_view body, OmaFormat format, OmaNode *root, std::string *error) {
  // Both formats are UTF-8; this also rejects NUL bytes before either parser sees them.
  if (!g_utf8_validate_len(body.data(), body.size(), nullptr)) return fail(error, "the body is not UTF-8 text");
  return format == OmaFormat::Json ? parse_json(body, root, error) : parse_xml(body, root, error);
}

std::string write_oma_body(const OmaNode &root, OmaFormat format) {
  std::string out;
  if (format == OmaFormat::Json) {
    out += '{';
    json_string(out, root.name);
    out += ':';
    json_write(root, 1, out);
    return out + '}';
  }
  bool common = root.name == "requestError" || root.name == "resourceReference";
  std::string prefix = common ? "common" : "wrtcs";
  std::string ns = " xmlns:" + prefix + "=\"" + (common ? kOmaCommonNamespace : kOmaNamespace) + "\"";
  out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  xml_write(root, prefix + ":" + root.name, ns, 1, out);
  return out;
}

const char *oma_content_type(OmaFormat format) {
  return format == OmaFormat::Json ? "application/json" : "application/xml";
}

std::optional<OmaFormat> oma_format_of(std::string_view content_type) {
  std::string t = lower(trim(content_type.substr(0, content_type.find(';')), " \t"));
  auto suffixed = [&](std::string_view suffix) {  // application/<something>+json
    return t.size() > 12 + suffix.size() && t.compare(0, 12, "application/") == 0 &&
           t.compare(t.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (t == "application/json" || suffixed("+json")) return OmaFormat::Json;
  if (t == "application/xml" || t == "text/xml" || suffixed("+xml")) return OmaFormat::Xml;
  return std::nullopt;
}

std::optional<OmaFormat> oma_reply_format(const std::optional<std::string> &accept,
                                          std::optional<OmaFormat> request_format) {
  OmaFormat preferred = request_format.value_or(OmaFormat::Json);
  struct Pick {
    double q = -1, order = 0;  // q -1: not named
  } named[2], wildcard, best_pick;
  bool any = false;
  std::string_view rest = accept ? std::string_view(*accept) : std::string_view();
  for (int index = 0; !rest.empty(); index++) {
    size_t comma = rest.find(',');
    std::string_view item = trim(rest.substr(0, comma), " \t");
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (item.empty()) continue;
    any = true;
    double q = 1;
    for (size_t semi = item.find(';'); semi != std::string_view::npos; semi = item.find(';', semi + 1)) {
      std::string param = lower(trim(item.substr(semi + 1, item.find(';', semi + 1) - semi - 1), " \t"));
      if (param.compare(0, 2, "q=") != 0) continue;
      char *end = nullptr;
      q = g_ascii_strtod(param.c_str() + 2, &end);
      if (param.size() == 2 || *end || !(q >= 0 && q <= 1)) q = -1;  // malformed: the item is ignored
      break;  // what follows q is accept-ext
    }
    std::string range = lower(trim(item.substr(0, item.find(';')), " \t"));
    Pick *slot = nullptr;
    if (auto f = oma_format_of(range)) slot = &named[static_cast<int>(*f)];
    else if (range == "*/*" || range == "application/*") slot = &wildcard;
    if (slot && q > slot->q) *slot = Pick{q, static_cast<double>(index)};
  }
  if (!any) return preferred;  // no Accept, or an empty one
  std::optional<OmaFormat> best;
  for (OmaFormat f : {OmaFormat::Json, OmaFormat::Xml}) {
    Pick p = named[static_cast<int>(f)];
    // A wildcard allows both formats, the request's own (or JSON) first; a named type wins.
    if (p.q < 0 && wildcard.q >= 0) p = Pick{wildcard.q, wildcard.order + (f == preferred ? 0 : 0.5)};
    if (p.q > 0 && (!best || p.q > best_pick.q || (p.q == best_pick.q && p.order < best_pick.order))) {
      best = f;
      best_pick = p;
    }
  }
  return best;
}

bool oma_read_sdp(const OmaNode &parent, std::string *sdp, std::string *error) {
  auto plain = parent.all("sdp"), encoded = parent.all("sdpBase64");
  if (plain.empty() && encoded.empty()) return fail(error, parent.name + ": neither sdp nor sdpBase64 is present");
  if (plain.size() + encoded.size() > 1)
    return fail(error, parent.name + ": exactly one of sdp and sdpBase64 is allowed");
  const OmaNode *node = plain.empty() ? encoded[0] : plain[0];
  if (!node->is_leaf()) return fail(error, parent.name + ": " + node->name + " is not text");
  std::string text = node->text;
  if (!encoded.empty()) {
    std::string clean;
    for (char c : text)
      if (g_ascii_isalnum(c) || c == '+' || c == '/' || c == '=') clean += c;
      else if (!trim(std::string_view(&c, 1)).empty()) return fail(error, parent.name + ": sdpBase64 is not base64");
    size_t pad = clean.find('=');  // only at the end, at most two
    if (clean.size() % 4 || (pad != std::string::npos &&
                             (clean.find_first_not_of('=', pad) != std::string::npos || clean.size() - pad > 2)))
      return fail(error, parent.name + ": sdpBase64 is not base64");
    gsize len = 0;
    guchar *raw = g_base64_decode(clean.c_str(), &len);
    text.assign(reinterpret_cast<char *>(raw), len);
    g_free(raw);
    if (!g_utf8_validate_len(text.data(), text.size(), nullptr))  // also rejects NUL
      return fail(error, parent.name + ": sdpBase64 does not decode to UTF-8 text");
  }
  if (trim(text).empty()) return fail(error, parent.name + ": " + node->name + " is empty");
  std::string out;  // CRLF, lone LF and lone CR all end a line
  for (size_t i = 0; i < text.size(); i++) {
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;  // its LF writes the CRLF
    out += text[i] == '\r' || text[i] == '\n' ? std::string("\r\n") : std::string(1, text[i]);
  }
  if (out.compare(out.size() - std::min<size_t>(2, out.size()), 2, "\r\n") != 0) out += "\r\n";
  *sdp = std::move(out);
  return true;
}

std::optional<bool> oma_bool(const OmaNode &parent, std::string_view name) {
  auto v = parent.value(name);
  std::string s = v ? lower(trim(*v)) : "";
  if (s == "true" || s == "1") return true;
  if (s == "false" || s == "0") return false;
  return std::nullopt;
}

bool oma_percent_decode(std::string_view in, std::string *out) {
  std::string s;
  for (size_t i = 0; i < in.size(); i++) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size() || !g_ascii_isxdigit(in[i + 1]) || !g_ascii_isxdigit(in[i + 2])) return false;
      c = static_cast<char>(g_ascii_xdigit_value(in[i + 1]) * 16 + g_ascii_xdigit_value(in[i + 2]));
      i += 2;
    }
    if (c == '\0') return false;
    s += c;
  }
  *out = std::move(s);
  return true;
}

std::string oma_percent_encode(std::string_view in) {
  std::string out;
  for (unsigned char c : in) {
    if (g_ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') out += static_cast<char>(c);
    else out += hex("%%%02X", c);
  }
  return out;
}

}  // namespace wish
