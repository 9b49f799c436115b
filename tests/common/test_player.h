// A WHEP player built from webrtcbin in the test process: makes recvonly offers, answers
// counter-offers, decodes what arrives and counts it, and can restart its ICE session.
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

namespace wish_test {

struct PlayerOptions {
  bool video = true, audio = true;
  // Offered codecs in order: video "H264", "VP8", "VP9", "H265"; audio "OPUS", "PCMU",
  // "PCMA", "G722".
  std::vector<std::string> video_codecs = {"H264", "VP8"};
  std::vector<std::string> audio_codecs = {"OPUS"};
  // Points of the picture (fractions of width and height) whose colour is read besides the
  // centre, for color_at().
  std::vector<std::pair<double, double>> sample_points;
};

class TestPlayer {
public:
  explicit TestPlayer(const PlayerOptions &opts = {});
  ~TestPlayer();

  // Full offer: gathered on 127.0.0.1, candidates included. "" on failure.
  std::string create_offer();
  bool set_remote_answer(const std::string &sdp);
  // Counter-offer flow: applies the server's offer and returns the local answer.
  std::string answer_remote_offer(const std::string &sdp);

  bool wait_video_frames(guint64 count, int timeout_ms);
  bool wait_audio_buffers(guint64 count, int timeout_ms);
  guint64 video_frames() const { return video_frames_; }
  guint64 audio_buffers() const { return audio_buffers_; }
  std::string depayloaders() const;  // factory names of the depayloaders used, for codec checks

  // The centre pixel of the last decoded picture, as 8-bit RGB (-1s before the first).
  struct Rgb {
    int r = -1, g = -1, b = -1;
  };
  Rgb center_color() const;
  Rgb color_at(size_t sample_point) const;  // of the last picture, by PlayerOptions::sample_points
  // Waits until the centre pixel matches pred; false after timeout_ms.
  bool wait_color(int timeout_ms, bool (*pred)(const Rgb &));
  // Level of a tone in the last half second of decoded audio (Goertzel, normalized: about
  // the sine's amplitude, 0 when absent); -1 before there is half a second.
  double tone_level(double frequency) const;
  // SSRCs of the video RTP packets received so far, and how many video pads webrtcbin made.
  std::vector<unsigned> video_ssrcs() const;
  int video_pads() const { return video_pads_; }

  // ICE restart on the player side: new local credentials; remote ones applied after.
  bool restart_ice(std::string *ufrag, std::string *pwd, std::vector<std::string> *candidates);
  bool apply_remote_ice(const std::string &ufrag, const std::string &pwd,
                        const std::vector<std::string> &candidates);
  std::string ice_connection_state() const;

  GstElement *webrtcbin() const { return webrtc_; }

private:
  std::string local_description_with_candidates(int timeout_ms);
  static void on_pad_added(GstElement *webrtc, GstPad *pad, TestPlayer *self);
  static void on_decoded_pad(GstElement *decodebin, GstPad *pad, TestPlayer *self);

  GstElement *pipeline_ = nullptr;
  GstElement *webrtc_ = nullptr;
  mutable std::mutex mutex_;
  std::vector<std::string> candidates_;
  std::string video_caps_;
  std::atomic<guint64> video_frames_{0}, audio_buffers_{0};
  std::atomic<int> video_pads_{0};
  Rgb center_;
  std::vector<std::pair<double, double>> points_;
  std::vector<Rgb> at_;  // the colours at points_
  std::vector<unsigned> ssrcs_;
  std::vector<gint16> audio_;  // the last second, 48 kHz mono
};

// Colours of decoded test patterns, for TestPlayer::wait_color.
inline bool is_red(const TestPlayer::Rgb &c) { return c.r > 170 && c.g < 90 && c.b < 90; }
inline bool is_green(const TestPlayer::Rgb &c) { return c.g > 170 && c.r < 90 && c.b < 90; }
inline bool is_blue(const TestPlayer::Rgb &c) { return c.b > 170 && c.r < 90 && c.g < 90; }

}  // namespace wish_test
