// The wish-event messages a whepsrc Player posts (server-sent events, layer answers), read
// from its bus as a test waits.
#pragma once

#include <gst/gst.h>

#include <string>
#include <vector>

#include "whepsrc_player.h"

// The wish-event messages a player posted, read from its bus as the test waits; an error
// there is remembered.
struct EventLog {
  Player &player;
  std::vector<std::string> seen;  // each message as text
  std::string error;

  explicit EventLog(Player &p) : player(p) {}
  // Waits for an event of that type whose message text holds `holding`; seen before counts.
  bool wait(const std::string &type, int ms, const std::string &holding = "", size_t from = 0) {
    // "wish-..." names a message of its own, anything else an event.
    bool message = type.compare(0, 5, "wish-") == 0;
    auto match = [&](const std::string &text) {
      bool kind = message ? text.compare(0, type.size(), type) == 0
                          : text.find("event=(string)" + type + ",") != std::string::npos;
      return kind && text.find(holding) != std::string::npos;
    };
    for (size_t i = from; i < seen.size(); i++)
      if (match(seen[i])) return true;
    GstBus *bus = gst_element_get_bus(player.pipeline);
    gint64 end = g_get_monotonic_time() + static_cast<gint64>(ms) * 1000;
    bool found = false;
    while (!found && g_get_monotonic_time() < end) {
      GstMessage *m = gst_bus_timed_pop_filtered(bus, 50 * GST_MSECOND,
                                                 static_cast<GstMessageType>(GST_MESSAGE_ELEMENT | GST_MESSAGE_ERROR));
      if (!m) continue;
      if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
        GError *err = nullptr;
        gst_message_parse_error(m, &err, nullptr);
        error = err->message;
        g_clear_error(&err);
      } else {
        gchar *text = gst_structure_to_string(gst_message_get_structure(m));
        seen.push_back(text);
        g_free(text);
        found = match(seen.back());
      }
      gst_message_unref(m);
    }
    gst_object_unref(bus);
    return found;
  }
};
