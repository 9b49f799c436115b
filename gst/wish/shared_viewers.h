// whepserversink's viewers on the shared viewer transport (shared-transport=true): every such
// viewer on one libnice agent and one thread (transport/viewer_transport.h) instead of a
// webrtcbin each. A viewer's slot outputs hand the tracks' payloaded packets to its
// ViewerConnection, which rewrites the header, protects and sends them.
//
// Not yet on this path (such offers go to webrtcbin): counter-offers, transcoding, video
// layers and simulcast. WHEP events and OMA do not see these viewers, nor do the element's
// stats and viewer metrics; max-viewers does (the endpoint counts its sessions).
//
// Threads: serve() runs on the element's worker; packets come on the tracks' streaming
// threads (ViewerConnection::send never waits for the agent's thread); the agent's thread
// runs the connection's callbacks, which only post to the worker or ask tracks for keyframes.
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "protocol/endpoint.h"
#include "stream_registry.h"
#include "transport/viewer_transport.h"

namespace wish {

class Dispatcher;

class SharedViewers {
public:
  // The planned tracks of one viewer: the track and its index among the stream's tracks of its kind.
  struct Planned {
    std::shared_ptr<Track> track;
    size_t index;
  };

  // Starts the agent; null with *error when it cannot.
  static std::unique_ptr<SharedViewers> create(GstElement *element, const IceConfig &ice,
                                               std::shared_ptr<Dispatcher> dispatch, std::string *error);
  ~SharedViewers();

  // Worker. Whether the shared path can serve this offer (else webrtcbin does).
  static bool can_serve(const SessionRequest &request, std::string *why);
  // Worker. Answers the viewer (done called) and returns true, or returns false without
  // calling done when the offer is not one it can serve after all.
  bool serve(const SessionRequest &request, const std::string &stream, const std::vector<Planned> &planned,
             const std::shared_ptr<StreamRegistry> &registry, std::shared_ptr<SessionEvents> events,
             SessionCallback &done);
  // Worker, every tick: viewers silent for longer than timeout_s end.
  void check_silence(guint timeout_s);
  size_t viewer_count() const;

  struct Viewer;  // shared_viewers.cpp

private:
  SharedViewers() = default;
  GstElement *element_ = nullptr;
  std::shared_ptr<Dispatcher> dispatch_;
  std::shared_ptr<SharedIceAgent> agent_;  // each viewer holds it too: it outlives their connections
  mutable std::mutex mutex_;  // guards viewers_; taken alone
  std::vector<std::weak_ptr<Viewer>> viewers_;
};

}  // namespace wish
