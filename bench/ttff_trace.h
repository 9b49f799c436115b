// Milestones of the way to the first frame (bench/ttff --trace), stamped with
// g_get_monotonic_time(): CLOCK_MONOTONIC, the same clock in the server process and in every
// player process, so their stamps line up.
#pragma once

#include <gst/gst.h>

#include <string>
#include <vector>

namespace ttff_trace {

struct Event {
  std::string name;
  gint64 us;
};

// Logs of the wish categories that mark a milestone are recorded (nothing is printed).
void enable_logs();
// The first time of `name` since the last take(); later ones are ignored.
void mark(const std::string &name, gint64 us = g_get_monotonic_time());
std::vector<Event> take();

// Player side: webrtcbin's ICE and connection states, first packets through nicesrc, srtpdec,
// the jitterbuffer and the decoder, inside `pipeline`.
void watch_player(GstElement *pipeline);
// Server side: every keyframe an encoder inside `pipeline` makes (the first after a
// viewer's POST is the one it waits for).
void watch_server(GstElement *pipeline);

// Prints, for each milestone, its median and range in ms after the player's PLAYING.
void print_summary(const std::vector<std::vector<Event>> &runs);

}  // namespace ttff_trace
