// The media side of WHISP for the server element that serves it: streams pulled in (whepsrc
// for WHEP URLs, uridecodebin for other URIs) and merged (compositor and audiomixer by
// template) in sub-bins of the element's bin, switches and grabs through the stream registry.
// Every action posts a "wish-whisp" element message.
//
// Threads: WhispBackend calls come from the HTTP server's thread and post their work to the
// element's worker; tick() and stop() run there; handle_message() runs on whatever thread
// posts an error. mutex_ guards the maps of pulls, switches and merges (and a pull's error);
// it ranks with the element's own mutexes (server_element.h) and is never held while calling
// into GStreamer or the registry.
#pragma once

#include <gst/gst.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gstptr.h"
#include "loop_thread.h"
#include "media_host.h"
#include "protocol/whisp.h"
#include "stream_registry.h"

namespace wish {

class WhispHost : public WhispBackend {
public:
  struct Settings {
    std::vector<std::string> pull_allow;  // URL prefixes a pull may go to; none: no pulling
    guint pull_timeout_s = 10;            // a pull with no media by then fails with 504
    std::string ice_local_addresses;      // for the whepsrc of a pull
    std::string ice_port_range;           // likewise
    EncoderSettings encoder;              // for media decoded on the way (merges, non-WHEP pulls)
  };

  WhispHost(GstElement *element, std::shared_ptr<Dispatcher> dispatch, std::shared_ptr<StreamRegistry> registry,
            Settings settings);
  ~WhispHost() override;

  // WhispBackend
  void pull(const WhispRequest &request, WhispCallback done) override;
  void switch_streams(const WhispRequest &request, WhispCallback done) override;
  void merge(const WhispRequest &request, WhispCallback done) override;
  void grab(const WhispRequest &request, WhispCallback done) override;
  unsigned end(WhispMessage kind, const std::string &id) override;

  void tick();  // worker, every 250 ms
  void stop();  // worker: every pull, switch and merge ends
  // An error from a child of the element: consumed (true) when it comes from a pull, which
  // fails (502) or ends instead of taking the pipeline down.
  bool handle_message(GstMessage *message);

private:
  struct Pull;
  struct Merge;
  struct Switch {
    std::string from, to;
    int kinds;
  };
  // Whether the registry still shows `to` to viewers of `from` (the destination may have ended).
  bool still_switched(const Switch &sw) const;
  // What is running now (the switches taken away when take_switches), for the worker.
  void snapshot(std::vector<std::shared_ptr<Pull>> *pulls, std::vector<std::shared_ptr<Merge>> *merges,
                std::map<std::string, Switch> *switches, bool take_switches);

  void start_pull(const std::shared_ptr<Pull> &p);
  void end_pull(const std::shared_ptr<Pull> &p, const std::string &reason);
  // The requests waiting for the pull get `result`; a refusal ends the pull (`reason`).
  void answer_pull(const std::shared_ptr<Pull> &p, const WhispResult &result, const std::string &reason = "");
  void switch_back(const Switch &sw);
  struct MergeInput {
    std::weak_ptr<Merge> merge;
    bool main;
  };
  void start_merge(const std::shared_ptr<Merge> &m);
  static void on_merge_input(GstElement *decodebin, GstPad *pad, gpointer data);
  void end_merge(const std::shared_ptr<Merge> &m);
  void layout_merge(Merge &m, bool secondary_shown);
  void post_message(const char *action, const std::string &id, GstStructure *fields = nullptr);
  static int kinds_of(const WhispMedia &media);

  GstElement *element_;
  std::shared_ptr<Dispatcher> dispatch_;
  std::shared_ptr<StreamRegistry> registry_;
  const Settings settings_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Pull>> pulls_;  // by id
  std::map<std::string, Switch> switches_;              // by id
  std::map<std::string, std::shared_ptr<Merge>> merges_;  // by id
};

}  // namespace wish
