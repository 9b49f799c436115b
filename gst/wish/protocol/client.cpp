#include "client.h"

#include <algorithm>
#include <cctype>
#include <ctime>

namespace wish {

namespace {

struct UrlParts {
  std::string scheme, authority, path, query;
  bool has_authority = false;
};

UrlParts split_url(std::string_view u) {
  UrlParts p;
  auto frag = u.find('#');
  u = u.substr(0, frag);
  auto colon = u.find(':');
  auto slash = u.find('/');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon < slash)) {
    p.scheme = std::string(u.substr(0, colon));
    u.remove_prefix(colon + 1);
  }
  if (u.substr(0, 2) == "//") {
    p.has_authority = true;
    u.remove_prefix(2);
    auto end = u.find_first_of("/?");
    p.authority = std::string(u.substr(0, end));
    u = end == std::string_view::npos ? std::string_view() : u.substr(end);
  }
  auto q = u.find('?');
  p.path = std::string(u.substr(0, q));
  if (q != std::string_view::npos) p.query = std::string(u.substr(q));
  return p;
}

std::string remove_dot_segments(const std::string &path) {
  std::vector<std::string> out;
  size_t i = 0;
  bool absolute = !path.empty() && path[0] == '/';
  std::string seg;
  std::vector<std::string> parts;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    parts.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  if (absolute && !parts.empty()) parts.erase(parts.begin());
  for (size_t k = 0; k < parts.size(); k++) {
    const std::string &s = parts[k];
    bool last = k + 1 == parts.size();
    if (s == ".") {
      if (last) out.push_back("");
    } else if (s == "..") {
      if (!out.empty()) out.pop_back();
      if (last) out.push_back("");
    } else {
      out.push_back(s);
    }
  }
  std::string r = absolute ? "/" : "";
  for (size_t k = 0; k < out.size(); k++) {
    if (k) r += "/";
    r += out[k];
  }
  return r;
}

}  // namespace

std::string resolve_url(std::string_view base, std::string_view reference) {
  UrlParts b = split_url(base), r = split_url(reference);
  UrlParts t;
  if (!r.scheme.empty()) {
    t = r;
    t.path = remove_dot_segments(r.path);
  } else {
    t.scheme = b.scheme;
    if (r.has_authority) {
      t.has_authority = true;
      t.authority = r.authority;
      t.path = remove_dot_segments(r.path);
      t.query = r.query;
    } else {
      t.has_authority = b.has_authority;
      t.authority = b.authority;
      if (r.path.empty()) {
        t.path = b.path;
        t.query = r.query.empty() ? b.query : r.query;
      } else {
        if (r.path[0] == '/') {
          t.path = remove_dot_segments(r.path);
        } else {
          std::string merged;
          if (b.has_authority && b.path.empty())
            merged = "/" + r.path;
          else
            merged = b.path.substr(0, b.path.rfind('/') + 1) + r.path;
          t.path = remove_dot_segments(merged);
        }
        t.query = r.query;
      }
    }
  }
  std::string out;
  if (!t.scheme.empty()) out += t.scheme + ":";
  if (t.has_authority) out += "//" + t.authority;
  out += t.path + t.query;
  return out;
}

std::optional<int64_t> parse_http_date(std::string_view date) {
  // "Sun, 06 Nov 1994 08:49:37 GMT"
  static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::string d(trim(date));
  if (d.size() != 29 || d.compare(26, 3, "GMT") != 0) return std::nullopt;
  struct tm tm = {};
  auto num = [&](size_t pos, size_t len, int *out) {
    int v = 0;
    for (size_t i = pos; i < pos + len; i++) {
      if (!std::isdigit(static_cast<unsigned char>(d[i]))) return false;
      v = v * 10 + (d[i] - '0');
    }
    *out = v;
    return true;
  };
  int mon = -1;
  for (int i = 0; i < 12; i++)
    if (d.compare(8, 3, months[i]) == 0) mon = i;
  if (mon < 0 || !num(5, 2, &tm.tm_mday) || !num(12, 4, &tm.tm_year) || !num(17, 2, &tm.tm_hour) ||
      !num(20, 2, &tm.tm_min) || !num(23, 2, &tm.tm_sec))
    return std::nullopt;
  tm.tm_mon = mon;
  tm.tm_year -= 1900;
  return static_cast<int64_t>(timegm(&tm));
}

std::optional<int64_t> parse_retry_after(const std::optional<std::string> &value, int64_t now_unix) {
  if (!value) return std::nullopt;
  std::string_view v = trim(*value);
  if (v.empty()) return std::nullopt;
  if (std::all_of(v.begin(), v.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    if (v.size() > 9) return std::nullopt;
    return std::stoll(std::string(v));
  }
  auto t = parse_http_date(v);
  if (!t) return std::nullopt;
  return std::max<int64_t>(0, *t - now_unix);
}

double Backoff::next(std::optional<int64_t> retry_after) {
  attempt_++;
  // The server knows when it can take the request again: its Retry-After is the wait, not a
  // floor under our doubling (a busy single-publisher endpoint that says 1 s means 1 s).
  if (retry_after) return std::clamp(static_cast<double>(*retry_after), kMinRetryAfter, max_);
  double d = initial_;
  for (unsigned i = 1; i < attempt_ && d < max_; i++) d *= 2;
  return std::min(d, max_);
}

PostDecision decide_post(const std::string &request_url, const Response &resp, int64_t now_unix) {
  PostDecision d;
  auto loc = resp.headers.get("Location");
  if (loc && !trim(*loc).empty()) d.location = resolve_url(request_url, trim(*loc));
  if (auto etag = resp.headers.get("ETag")) d.etag = std::string(trim(*etag));
  std::vector<LinkValue> links;
  for (const auto &l : resp.headers.get_all("Link")) {
    auto parsed = parse_link_header(l);
    links.insert(links.end(), parsed.begin(), parsed.end());
  }
  d.ice_servers = ice_servers_from_links(links);
  std::string type = media_type(resp.headers.get("Content-Type").value_or(""));

  switch (resp.status) {
    case 201:
      if (resp.body.empty()) {
        d.error = "201 Created without an SDP answer";
        return d;
      }
      if (d.location.empty()) {
        d.error = "201 Created without a Location header";
        return d;
      }
      d.outcome = PostOutcome::Answer;
      return d;
    case 406:
      if (type == "application/sdp" && !resp.body.empty()) {
        if (d.location.empty()) {
          d.error = "406 counter-offer without a Location header";
          return d;
        }
        d.outcome = PostOutcome::CounterOffer;
        return d;
      }
      break;
    case 307:
    case 308:
      if (d.location.empty()) {
        d.error = std::to_string(resp.status) + " redirect without a Location header";
        return d;
      }
      d.outcome = PostOutcome::Redirect;
      return d;
    case 409:
    case 503:
      d.outcome = PostOutcome::RetryLater;
      d.retry_after = parse_retry_after(resp.headers.get("Retry-After"), now_unix);
      return d;
    default:
      break;
  }
  d.error = "server answered " + std::to_string(resp.status) + " " + reason_phrase(resp.status);
  std::string body(trim(resp.body).substr(0, 300));
  if (!body.empty()) d.error += ": " + body;
  return d;
}

bool patch_unsupported(unsigned status) {
  return status == 405 || status == 415 || status == 422 || status == 501;
}

void TrickleBuffer::add(const std::string &mid, const std::string &candidate) {
  pending_.emplace_back(mid, candidate);
}

void TrickleBuffer::set_session(std::string etag, std::string ufrag, std::string pwd) {
  etag_ = std::move(etag);
  ufrag_ = std::move(ufrag);
  pwd_ = std::move(pwd);
}

void TrickleBuffer::restart(std::string ufrag, std::string pwd) {
  etag_.clear();
  ufrag_ = std::move(ufrag);
  pwd_ = std::move(pwd);
  pending_.clear();
  ended_ = end_sent_ = false;
  generation_++;
}

std::optional<std::string> TrickleBuffer::take(std::string *if_match) {
  if (!ready()) return std::nullopt;
  bool send_end = ended_ && !end_sent_;
  if (pending_.empty() && !send_end) return std::nullopt;
  SdpFrag frag;
  frag.ice_ufrag = ufrag_;
  frag.ice_pwd = pwd_;
  for (const auto &p : pending_) {
    auto it = std::find_if(frag.media.begin(), frag.media.end(), [&](const SdpFragMedia &m) { return m.mid == p.first; });
    if (it == frag.media.end()) {
      frag.media.push_back({p.first, {}, false});
      it = frag.media.end() - 1;
    }
    it->candidates.push_back(p.second);
  }
  if (send_end) {
    if (frag.media.empty()) frag.media.push_back({"0", {}, false});
    frag.media.back().end_of_candidates = true;
    end_sent_ = true;
  }
  pending_.clear();
  *if_match = etag_;
  return build_sdpfrag(frag);
}

ClientFailure client_failure(unsigned status) {
  if (status == 0) return ClientFailure::Unreachable;
  if (status == 401 || status == 403 || status == 407) return ClientFailure::NotAuthorized;
  if (status == 404 || status == 410) return ClientFailure::NotFound;
  if (status == 409 || status == 429 || status == 503) return ClientFailure::Busy;
  if (status >= 400 && status < 500) return ClientFailure::Refused;
  return ClientFailure::Other;
}

}  // namespace wish
