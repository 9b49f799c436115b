#include "obs_publisher.h"

#include <gst/rtp/rtp.h>
#include <gst/webrtc/webrtc.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <sstream>

#include "teardown.h"
#include "test_publisher.h"
#include "webrtc_utils.h"

namespace wish_test {

namespace {

constexpr char kMidUri[] = "urn:ietf:params:rtp-hdrext:sdes:mid";
constexpr char kRidUri[] = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";

std::string random_token(size_t n) {
  static const char chars[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string s;
  for (size_t i = 0; i < n; i++) s += chars[g_random_int_range(0, sizeof(chars) - 1)];
  return s;
}

// The value of the first "a=<key>:" line of an SDP text, "" when none.
std::string first_attribute(const std::string &sdp, const std::string &key) {
  std::istringstream in(sdp);
  std::string line, prefix = "a=" + key + ":";
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.compare(0, prefix.size(), prefix) == 0) return line.substr(prefix.size());
  }
  return "";
}

std::vector<std::string> mids_of(const std::string &sdp) {
  std::vector<std::string> mids;
  std::istringstream in(sdp);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.compare(0, 6, "a=mid:") == 0) mids.push_back(line.substr(6));
  }
  return mids;
}

void add_extension(GstElement *payloader, const char *uri, guint id, const char *property, const std::string &value) {
  GstRTPHeaderExtension *ext = gst_rtp_header_extension_create_from_uri(uri);
  if (!ext) return;
  gst_rtp_header_extension_set_id(ext, id);
  g_object_set(ext, property, value.c_str(), nullptr);
  g_signal_emit_by_name(payloader, "add-extension", ext);
  gst_object_unref(ext);
}

}  // namespace

ObsPublisher::ObsPublisher(const ObsPublisherOptions &opts) : opts_(opts) {
  audio_ssrc_ = g_random_int();
  // OBS: layer i (i > 0) is (layers - i) / layers of the output size, even, at one bitrate step less each.
  for (int i = 0; i < opts.layers; i++) {
    Layer l;
    l.rid = i < static_cast<int>(opts.rids.size()) ? opts.rids[i] : std::to_string(i);
    l.width = opts.width / opts.layers * (opts.layers - i);
    l.height = opts.height / opts.layers * (opts.layers - i);
    if (i == 0) l.width = opts.width, l.height = opts.height;
    l.width -= l.width % 2;
    l.height -= l.height % 2;
    l.kbps = opts.kbps - opts.kbps / opts.layers * i;
    l.ssrc = audio_ssrc_ + 1 + static_cast<guint32>(i);
    layers_.push_back(l);
  }
  std::string desc = "webrtcbin name=w bundle-policy=max-bundle "
                     "audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! opusenc ! rtpopuspay pt=111 ssrc=" +
                     std::to_string(audio_ssrc_) +
                     " ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111 ! w. "
                     "videotestsrc is-live=true pattern=" +
                     opts.pattern + " ! video/x-raw,width=" + std::to_string(opts.width) +
                     ",height=" + std::to_string(opts.height) + ",framerate=15/1 ! tee name=t "
                     "rtpfunnel name=f ! application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload=96 ! w. ";
  for (size_t i = 0; i < layers_.size(); i++) {
    const Layer &l = layers_[i];
    std::string n = std::to_string(i);
    desc += "t. ! queue max-size-buffers=2 leaky=downstream ! videoscale ! video/x-raw,width=" + std::to_string(l.width) +
            ",height=" + std::to_string(l.height) + " ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 "
            "bitrate=" + std::to_string(l.kbps) + " ! video/x-h264,profile=constrained-baseline ! "
            "rtph264pay name=pay" + n + " pt=96 mtu=1200 config-interval=-1 aggregate-mode=none ssrc=" +
            std::to_string(l.ssrc) + " ! f. ";
  }
  GError *err = nullptr;
  pipeline_ = gst_parse_launch(desc.c_str(), &err);
  if (!pipeline_) {
    g_printerr("OBS-style publisher pipeline: %s\n", err ? err->message : "?");
    g_clear_error(&err);
    return;
  }
  stop_at_teardown(pipeline_);
  webrtc_ = gst_bin_get_by_name(GST_BIN(pipeline_), "w");
  std::string error;
  wish::configure_webrtcbin(webrtc_, {"127.0.0.1"}, "", {}, &error);
  for (size_t i = 0; i < layers_.size(); i++) {
    GstElement *pay = gst_bin_get_by_name(GST_BIN(pipeline_), ("pay" + std::to_string(i)).c_str());
    add_extension(pay, kMidUri, 1, "mid", "1");
    add_extension(pay, kRidUri, 2, "rid", layers_[i].rid);
    gst_object_unref(pay);
  }
  GArray *transceivers = nullptr;
  g_signal_emit_by_name(webrtc_, "get-transceivers", &transceivers);
  for (guint i = 0; transceivers && i < transceivers->len; i++)
    g_object_set(g_array_index(transceivers, GstWebRTCRTPTransceiver *, i), "direction",
                 GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY, nullptr);
  if (transceivers) g_array_unref(transceivers);
  GstBus *bus = gst_element_get_bus(pipeline_);
  gst_bus_set_sync_handler(
      bus,
      [](GstBus *, GstMessage *m, gpointer) {
        if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
          GError *e = nullptr;
          gst_message_parse_error(m, &e, nullptr);
          g_printerr("OBS-style publisher: %s\n", e ? e->message : "?");
          g_clear_error(&e);
        }
        gst_message_unref(m);
        return GST_BUS_DROP;
      },
      nullptr, nullptr);
  gst_object_unref(bus);
  gst_element_set_state(pipeline_, GST_STATE_PLAYING);
}

ObsPublisher::~ObsPublisher() {
  if (!pipeline_) return;
  gst_element_set_state(pipeline_, GST_STATE_NULL);
  gst_object_unref(webrtc_);
  gst_object_unref(pipeline_);
}

std::string ObsPublisher::create_offer() {
  if (!webrtc_) return "";
  // webrtcbin's offer, applied, for its ICE credentials and DTLS fingerprint; the candidates
  // it gathers are not sent (OBS gathers once answered).
  wish::Negotiated result = offer_once_media_flows(webrtc_, 2, 10 * G_USEC_PER_SEC);
  std::vector<std::string> local_mids = mids_of(result.sdp);
  if (!result.ok || local_mids.size() != 2) {
    g_printerr("OBS-style publisher: no offer (%s)\n%s\n", result.error.c_str(), result.sdp.c_str());
    return "";
  }
  mids_["0"] = local_mids[0];
  mids_["1"] = local_mids[1];
  std::string ufrag = first_attribute(result.sdp, "ice-ufrag"), pwd = first_attribute(result.sdp, "ice-pwd");
  std::string msid = random_token(16), cname = random_token(16);
  std::ostringstream o;
  const char *eol = "\r\n";
  auto transport = [&] { o << "a=setup:actpass" << eol << "a=ice-ufrag:" << ufrag << eol << "a=ice-pwd:" << pwd << eol; };
  o << "v=0" << eol << "o=rtc " << g_random_int() << " 0 IN IP4 127.0.0.1" << eol << "s=-" << eol << "t=0 0" << eol
    << "a=group:BUNDLE 0 1" << eol << "a=group:LS 0 1" << eol << "a=msid-semantic:WMS *" << eol
    << "a=fingerprint:" << first_attribute(result.sdp, "fingerprint") << eol;
  o << "m=audio 9 UDP/TLS/RTP/SAVPF 111" << eol << "c=IN IP4 0.0.0.0" << eol << "a=mid:0" << eol << "a=sendonly" << eol
    << "a=ssrc:" << audio_ssrc_ << " cname:" << cname << eol << "a=ssrc:" << audio_ssrc_ << " msid:" << msid << " "
    << msid << "-audio" << eol << "a=msid:" << msid << " " << msid << "-audio" << eol << "a=rtcp-mux" << eol
    << "a=rtpmap:111 opus/48000/2" << eol
    << "a=fmtp:111 minptime=10;maxaveragebitrate=96000;stereo=1;sprop-stereo=1;useinbandfec=1" << eol;
  transport();
  o << "m=video 9 UDP/TLS/RTP/SAVPF 96" << eol << "c=IN IP4 0.0.0.0" << eol << "a=mid:1" << eol << "a=extmap:1 "
    << kMidUri << eol;
  o << "a=extmap:2 " << kRidUri << eol << "a=sendonly" << eol;
  o << "a=msid:" << msid << " " << msid << "-video" << eol;
  for (const auto &l : layers_) o << "a=rid:" << l.rid << " send" << eol;
  o << "a=simulcast:send ";
  for (size_t i = 0; i < layers_.size(); i++) o << (i ? ";" : "") << layers_[i].rid;
  o << eol << "a=rtcp-mux" << eol << "a=rtpmap:96 H264/90000" << eol << "a=rtcp-fb:96 nack" << eol
    << "a=rtcp-fb:96 nack pli" << eol << "a=rtcp-fb:96 ccm fir" << eol << "a=rtcp-fb:96 goog-remb" << eol
    << "a=fmtp:96 profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1" << eol;
  transport();
  return o.str();
}

// The answer names the offer's mids (0, 1): webrtcbin knows its own.
bool ObsPublisher::set_remote_answer(const std::string &sdp) {
  std::istringstream in(sdp);
  std::string line, mapped;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.compare(0, 6, "a=mid:") == 0 && mids_.count(line.substr(6))) {
      line = "a=mid:" + mids_[line.substr(6)];
    } else if (line.compare(0, 15, "a=group:BUNDLE ") == 0) {
      std::string group = "a=group:BUNDLE";
      std::istringstream ids(line.substr(15));
      std::string id;
      while (ids >> id) group += " " + (mids_.count(id) ? mids_[id] : id);
      line = group;
    }
    mapped += line + "\r\n";
  }
  std::mutex m;
  std::condition_variable cv;
  bool done = false, ok = false;
  wish::apply_remote_answer(webrtc_, mapped, [&](wish::Negotiated n) {
    std::lock_guard<std::mutex> lock(m);
    ok = n.ok;
    done = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(m);
  cv.wait_for(lock, std::chrono::seconds(10), [&] { return done; });
  return ok;
}

}  // namespace wish_test
