// What a test starts and must stop even when it fails. The tests run without fork, and a
// failed assertion leaves the test through longjmp, past the C++ destructors that would stop
// its pipelines and helper processes; left running, those hang the next test or the exit.
// Tests record them here and the suites' checked teardown stops whatever is left.
#pragma once

#include <gst/gst.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <mutex>
#include <vector>

namespace wish_test {

struct Leftovers {
  std::mutex mutex;
  std::vector<GstElement *> pipelines;  // not owned: dropped from the list when finalized
  std::vector<GPid> pids;
};

inline Leftovers &leftovers() {
  static Leftovers instance;
  return instance;
}

// The pipeline is set to NULL at teardown if it still exists then.
inline void stop_at_teardown(GstElement *pipeline) {
  Leftovers &l = leftovers();
  {
    std::lock_guard<std::mutex> lock(l.mutex);
    l.pipelines.push_back(pipeline);
  }
  g_object_weak_ref(
      G_OBJECT(pipeline),
      [](gpointer, GObject *gone) {
        Leftovers &l = leftovers();
        std::lock_guard<std::mutex> lock(l.mutex);
        l.pipelines.erase(std::remove(l.pipelines.begin(), l.pipelines.end(), reinterpret_cast<GstElement *>(gone)),
                          l.pipelines.end());
      },
      nullptr);
}

// The process is killed at teardown unless forget_process() was called after stopping it.
inline void kill_at_teardown(GPid pid) {
  Leftovers &l = leftovers();
  std::lock_guard<std::mutex> lock(l.mutex);
  l.pids.push_back(pid);
}

inline void forget_process(GPid pid) {
  Leftovers &l = leftovers();
  std::lock_guard<std::mutex> lock(l.mutex);
  l.pids.erase(std::remove(l.pids.begin(), l.pids.end(), pid), l.pids.end());
}

// The suites' checked teardown (it runs after a failed test too).
inline void stop_leftovers() {
  Leftovers &l = leftovers();
  std::vector<GstElement *> pipelines;
  std::vector<GPid> pids;
  {
    std::lock_guard<std::mutex> lock(l.mutex);
    for (GstElement *p : l.pipelines) pipelines.push_back(GST_ELEMENT(gst_object_ref(p)));
    pids.swap(l.pids);
  }
  for (GstElement *p : pipelines) {
    GstState state = GST_STATE_NULL;
    gst_element_get_state(p, &state, nullptr, 0);
    if (state != GST_STATE_NULL) {
      g_printerr("teardown: stopping %s, left running by the test\n", GST_ELEMENT_NAME(p));
      gst_element_set_state(p, GST_STATE_NULL);
    }
    gst_object_unref(p);
  }
  for (GPid pid : pids) {
    g_printerr("teardown: killing process %d, left running by the test\n", static_cast<int>(pid));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
}

}  // namespace wish_test
