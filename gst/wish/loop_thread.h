// A GMainContext with its own thread and loop, so HTTP and teardown work never runs on a
// streaming thread or on the application's main loop.
#pragma once

#include <glib.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace wish {

class LoopThread {
public:
  explicit LoopThread(const char *name);
  ~LoopThread();  // stops the loop and joins the thread
  LoopThread(const LoopThread &) = delete;
  LoopThread &operator=(const LoopThread &) = delete;

  GMainContext *context() const { return context_; }
  // Runs fn on the loop thread: at once when called from it, otherwise queued.
  void invoke(std::function<void()> fn);
  // Queues fn to run on the loop thread in a later iteration, even when called from it.
  void post(std::function<void()> fn);
  // Runs fn once after ms milliseconds on the loop thread; returns an id for cancel().
  guint add_timeout(guint ms, std::function<void()> fn);
  // Runs fn every ms milliseconds until cancel().
  guint add_interval(guint ms, std::function<void()> fn);
  // Removes a timeout or interval that has not fired (0 and stale ids are ignored). Call it
  // on the loop thread.
  void cancel(guint id);
  // Runs fn on the loop thread and waits for it (never call from the loop thread itself
  // for work that can wait on another loop).
  void invoke_sync(std::function<void()> fn);
  bool is_current() const { return g_main_context_is_owner(context_); }

private:
  static gpointer run(gpointer self);
  GMainContext *context_;
  GMainLoop *loop_;
  GThread *thread_;
};

// Lets callbacks on other libraries' threads (webrtcbin signals and promises) queue work on
// a LoopThread that may already be stopping: after close() their work is dropped instead of
// reaching a loop or an object that is gone. Work is always deferred, never run inline.
class Dispatcher {
public:
  explicit Dispatcher(LoopThread *loop) : loop_(loop) {}
  bool post(std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!loop_) return false;
    loop_->post(std::move(fn));
    return true;
  }
  void close() {
    std::lock_guard<std::mutex> lock(mutex_);
    loop_ = nullptr;
  }

private:
  std::mutex mutex_;
  LoopThread *loop_;
};

}  // namespace wish
