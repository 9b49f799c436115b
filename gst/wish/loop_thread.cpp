#include "loop_thread.h"

#include <mutex>
#include <condition_variable>

namespace wish {

LoopThread::LoopThread(const char *name) {
  context_ = g_main_context_new();
  loop_ = g_main_loop_new(context_, FALSE);
  thread_ = g_thread_new(name, &LoopThread::run, this);
  // Make sure the loop owns the context before anyone asks is_current() or invokes.
  invoke_sync([] {});
}

gpointer LoopThread::run(gpointer data) {
  auto *self = static_cast<LoopThread *>(data);
  g_main_context_push_thread_default(self->context_);
  g_main_loop_run(self->loop_);
  // Let pending sources (replies to finish, unrefs) run once before the context goes.
  while (g_main_context_iteration(self->context_, FALSE)) {
  }
  g_main_context_pop_thread_default(self->context_);
  return nullptr;
}

LoopThread::~LoopThread() {
  g_main_loop_quit(loop_);
  g_thread_join(thread_);
  g_main_loop_unref(loop_);
  g_main_context_unref(context_);
}

void LoopThread::invoke(std::function<void()> fn) {
  auto *heap = new std::function<void()>(std::move(fn));
  g_main_context_invoke_full(
      context_, G_PRIORITY_DEFAULT,
      [](gpointer d) -> gboolean {
        (*static_cast<std::function<void()> *>(d))();
        return G_SOURCE_REMOVE;
      },
      heap, [](gpointer d) { delete static_cast<std::function<void()> *>(d); });
}

void LoopThread::post(std::function<void()> fn) {
  auto *heap = new std::function<void()>(std::move(fn));
  GSource *source = g_idle_source_new();
  g_source_set_priority(source, G_PRIORITY_DEFAULT);
  g_source_set_callback(
      source,
      [](gpointer d) -> gboolean {
        (*static_cast<std::function<void()> *>(d))();
        return G_SOURCE_REMOVE;
      },
      heap, [](gpointer d) { delete static_cast<std::function<void()> *>(d); });
  g_source_attach(source, context_);
  g_source_unref(source);
}

static guint attach_timeout(GMainContext *context, guint ms, std::function<bool()> fn) {
  auto *heap = new std::function<bool()>(std::move(fn));
  GSource *source = g_timeout_source_new(ms);
  g_source_set_callback(
      source,
      [](gpointer d) -> gboolean {
        return (*static_cast<std::function<bool()> *>(d))() ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
      },
      heap, [](gpointer d) { delete static_cast<std::function<bool()> *>(d); });
  guint id = g_source_attach(source, context);
  g_source_unref(source);
  return id;
}

guint LoopThread::add_timeout(guint ms, std::function<void()> fn) {
  return attach_timeout(context_, ms, [fn = std::move(fn)] {
    fn();
    return false;
  });
}

guint LoopThread::add_interval(guint ms, std::function<void()> fn) {
  return attach_timeout(context_, ms, [fn = std::move(fn)] {
    fn();
    return true;
  });
}

void LoopThread::cancel(guint id) {
  if (!id) return;
  GSource *source = g_main_context_find_source_by_id(context_, id);
  if (source) g_source_destroy(source);
}

void LoopThread::invoke_sync(std::function<void()> fn) {
  if (g_main_context_is_owner(context_)) {
    fn();
    return;
  }
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  invoke([&] {
    fn();
    std::lock_guard<std::mutex> lock(m);
    done = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(m);
  cv.wait(lock, [&] { return done; });
}

}  // namespace wish
