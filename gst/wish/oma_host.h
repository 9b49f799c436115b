// What the OMA front (protocol/oma_front.h) needs from the element: the WHEP and WHIP
// endpoints of the HTTP server it is served on (from the stream registry), and a way to POST
// notifications to the applications' callback URLs (a SoupSession on a thread of its own, so
// a slow callback never holds up the element's worker or the HTTP server).
#pragma once

#include <libsoup/soup.h>

#include <atomic>
#include <memory>

#include "loop_thread.h"
#include "protocol/oma_front.h"
#include "stream_registry.h"

namespace wish {

class OmaHost : public OmaBackend {
public:
  OmaHost(std::shared_ptr<StreamRegistry> registry, guint notify_timeout_s);
  // Notifications under way are cancelled; their done callbacks are not called.
  ~OmaHost() override;

  std::vector<OmaEndpoint> endpoints() override;
  void notify(const std::string &url, const std::string &content_type, const std::string &body,
              std::function<void(bool)> done) override;

private:
  std::weak_ptr<StreamRegistry> registry_;
  std::unique_ptr<LoopThread> loop_;
  SoupSession *soup_ = nullptr;           // loop_'s thread only
  GCancellable *cancellable_ = nullptr;   // cancelled on destruction
  std::atomic<bool> closed_{false};
};

}  // namespace wish
