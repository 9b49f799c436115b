// whepserversink's viewers on the shared viewer transport (shared-transport=true): every such
// viewer on one libnice agent and one thread (transport/viewer_transport.h) instead of a
// webrtcbin each. A viewer's slot outputs hand the tracks' payloaded packets to its
// ViewerConnection, which rewrites the header, protects and sends them.
//
// Not yet on this path (such offers go to webrtcbin): counter-offers, transcoding, video
// layers and simulcast. The element lists these viewers with its webrtcbin ones once they are
// answered (WhepServer::serve_shared, ServerElement::adopt_session), so its stats, metrics
// and messages count them, reading figures(); WHEP events, OMA and max-viewers see them as
// sessions of the endpoint.
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
#include "webrtc_utils.h"

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
  // calling done when the offer is not one it can serve after all. retransmission is
  // do-retransmission: false answers no nack and no rtx, and NACKs go unanswered.
  bool serve(const SessionRequest &request, const std::string &stream, const std::vector<Planned> &planned,
             bool retransmission, const std::shared_ptr<StreamRegistry> &registry,
             std::shared_ptr<SessionEvents> events, SessionCallback &done);
  size_t viewer_count() const;

  struct Viewer;  // shared_viewers.cpp
  // Worker. The viewer of session `id` once serve() answered it; null when none.
  std::shared_ptr<Viewer> find(const std::string &id) const;
  // Any thread: when the viewer's last SRTCP came, once DTLS connected; -1 before, or once it
  // ended (the element's liveness check ends the silent ones, as it does webrtcbin viewers).
  static gint64 last_heard_us(const Viewer &v);
  // Any thread: what a viewer was sent and what its RTCP said, as the element reports it for
  // webrtcbin viewers (their connection-state names).
  struct Figures {
    guint64 packets = 0, bytes = 0, keyframe_requests = 0;
    SendStats rtcp;  // NACKs, retransmissions, RTT and loss from its receiver reports
    const char *state = "new";
  };
  static Figures figures(const Viewer &viewer);
  static const std::shared_ptr<Slot> &slot(const Viewer &viewer);

private:
  SharedViewers() = default;
  GstElement *element_ = nullptr;
  std::shared_ptr<Dispatcher> dispatch_;
  std::shared_ptr<SharedIceAgent> agent_;  // each viewer holds it too: it outlives their connections
  mutable std::mutex mutex_;  // guards viewers_; taken alone
  std::vector<std::weak_ptr<Viewer>> viewers_;
};

}  // namespace wish
