// OmaFront's subscriptions and the notifications they get (oma_front.h).
#include <algorithm>

#include "ice_servers.h"
#include "oma_front.h"

namespace wish {

namespace {
constexpr size_t kQueueMax = 100;  // notifications waiting for one callback; the oldest go
}  // namespace

void OmaFront::create_subscription(const Route &where, const std::shared_ptr<Call> &call) {
  OmaSubscriptionRequest request;
  OmaError error;
  if (!read_subscription_request(call->body, &request, &error)) return call->refuse(error);
  OmaNode root;
  Headers h;
  unsigned status = 201;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const Subscription *same = nullptr;
    for (const auto &kv : subscriptions_)
      if (!request.correlator.empty() && kv.second.user == where.user && kv.second.correlator == request.correlator)
        same = &kv.second;
    if (same) {
      status = 200;  // the same client asking again
      root = oma_subscription_node(view_locked(*same));
    } else if (subscriptions_.size() >= config_.max_subscriptions) {
      error = oma_error(503, "SVC2001", "too many subscriptions");
    } else {
      Subscription sub;
      sub.id = random_hex(8);
      sub.user = where.user;
      sub.notify_url = request.notify_url;
      sub.callback_data = request.callback_data;
      sub.correlator = request.correlator;
      sub.base = call->base;
      sub.asked_format = request.format;
      sub.format = request.format.value_or(call->in);
      long long duration = !request.duration_s       ? config_.subscription_max_s
                           : *request.duration_s == 0 ? config_.subscription_default_s
                                                      : std::min<long long>(*request.duration_s, config_.subscription_max_s);
      sub.expires = now() + duration * 1000;
      root = oma_subscription_node(view_locked(sub));
      h.set("Location", subscription_url(sub));
      subscriptions_[sub.id] = std::move(sub);
    }
  }
  if (!error.message_id.empty()) return call->refuse(error);
  call->send(status, &root, std::move(h));
}

void OmaFront::subscription_part(const Route &where, const std::shared_ptr<Call> &call) {
  std::optional<OmaNode> root;
  bool found = true;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (where.resource == Resource::Subscriptions) {
      root = OmaNode("wrtcsSubscriptionList");
      for (const auto &kv : subscriptions_)
        if (kv.second.user == where.user) {
          OmaNode n = oma_subscription_node(view_locked(kv.second));
          n.list = true;
          root->children.push_back(std::move(n));
        }
      root->add("resourceURL", call->base + "/" + oma_percent_encode(where.user) + "/subscriptions");
    } else {
      auto it = subscriptions_.find(where.id);
      found = it != subscriptions_.end() && it->second.user == where.user;
      if (found && call->req.method == "DELETE")
        subscriptions_.erase(it);
      else if (found)
        root = oma_subscription_node(view_locked(it->second));
    }
  }
  if (!found) return call->refuse(oma_error(404, "SVC0002", "subscriptionId: no such subscription"));
  call->send(root ? 200 : 204, root ? &*root : nullptr);
}

void OmaFront::notify_user(const std::string &user, const std::string &root, const std::vector<OmaNode> &body,
                           const std::string &session_url, const std::string &offer_url) {
  std::vector<std::string> start;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto &kv : subscriptions_) {
      Subscription &sub = kv.second;
      if (sub.user != user) continue;
      std::vector<std::pair<std::string, std::string>> links = {{"WrtcsSession", session_url}};
      if (!offer_url.empty()) links.emplace_back("WrtcsOffer", offer_url);
      links.emplace_back("WrtcsNotificationSubscription", subscription_url(sub));
      enqueue_locked(sub, oma_notification(root, sub.callback_data, body, links));
      if (!sub.sending) {
        sub.sending = true;
        start.push_back(sub.id);
      }
    }
  }
  for (const auto &id : start) send_next(id);
}

void OmaFront::enqueue_locked(Subscription &sub, const OmaNode &notification) {
  if (sub.queue.size() >= kQueueMax) sub.queue.pop_front();
  sub.queue.push_back(write_oma_body(notification, sub.format));
}

void OmaFront::send_next(const std::string &sub_id) {
  std::string url, body;
  OmaFormat format;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = subscriptions_.find(sub_id);
    if (it == subscriptions_.end()) return;
    Subscription &sub = it->second;
    if (sub.queue.empty()) {
      sub.sending = false;
      return;
    }
    body = std::move(sub.queue.front());
    sub.queue.pop_front();
    url = sub.notify_url;
    format = sub.format;
  }
  std::weak_ptr<OmaFront> weak = weak_from_this();
  backend_->notify(url, oma_content_type(format), body, [weak, sub_id](bool ok) {
    auto self = weak.lock();
    if (!self) return;
    bool cancel = false;
    {
      std::lock_guard<std::mutex> lock(self->mutex_);
      auto it = self->subscriptions_.find(sub_id);
      if (it == self->subscriptions_.end()) return;
      it->second.failures = ok ? 0 : it->second.failures + 1;
      cancel = it->second.failures >= self->config_.failures_to_cancel;
      if (cancel) self->cancel_locked(sub_id, "SVC2001");
    }
    if (!cancel) self->send_next(sub_id);
  });
}

// Ends a subscription with its cancellation notification (sent once, whatever comes of it).
void OmaFront::cancel_locked(const std::string &sub_id, const char *reason_id) {
  auto it = subscriptions_.find(sub_id);
  if (it == subscriptions_.end()) return;
  Subscription sub = std::move(it->second);
  subscriptions_.erase(it);
  std::vector<OmaNode> body;
  if (reason_id) body.push_back(oma_reason(reason_id, "the notifications to this callback fail"));
  OmaNode n = oma_notification("wrtcsSubscriptionCancellationNotification", sub.callback_data, body,
                               {{"WrtcsNotificationSubscription", subscription_url(sub)}});
  // The backend only queues the request: safe under the lock.
  backend_->notify(sub.notify_url, oma_content_type(sub.format), write_oma_body(n, sub.format), [](bool) {});
}

}  // namespace wish
