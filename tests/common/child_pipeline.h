// A pipeline in a process of its own (tests/tools/report_pipeline), optionally inside a
// network namespace: what it reports on standard output is collected line by line for the
// test to wait on (frames, element messages, errors; see report_pipeline.cpp). Killed at
// teardown if the test fails before stopping it.
#pragma once

#include <gst/gst.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "teardown.h"

class ChildPipeline {
public:
  // argv_prefix: what runs report_pipeline, e.g. {"ip", "netns", "exec", "ns1"} (empty: itself).
  ChildPipeline(const std::string &description, const std::vector<std::string> &argv_prefix = {}) {
    std::vector<std::string> args = argv_prefix;
    args.push_back(REPORT_PIPELINE);
    args.push_back(description);
    std::vector<gchar *> argv;
    for (auto &a : args) argv.push_back(const_cast<gchar *>(a.c_str()));
    argv.push_back(nullptr);
    GError *err = nullptr;
    gint in = -1, out = -1;
    ok_ = g_spawn_async_with_pipes(nullptr, argv.data(), nullptr,
                                   static_cast<GSpawnFlags>(G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD), nullptr,
                                   nullptr, &pid_, &in, &out, nullptr, &err);
    if (!ok_) {
      error_ = err ? err->message : "spawn failed";
      g_clear_error(&err);
      return;
    }
    wish_test::kill_at_teardown(pid_);
    in_ = in;
    reader_ = std::thread([this, out] {
      FILE *f = fdopen(out, "r");
      char buf[4096];
      while (f && fgets(buf, sizeof buf, f)) {
        std::string line(buf);
        while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
        std::lock_guard<std::mutex> lock(mutex_);
        lines_.push_back(line);
        cond_.notify_all();
      }
      if (f) fclose(f);
      std::lock_guard<std::mutex> lock(mutex_);
      ended_ = true;
      cond_.notify_all();
    });
  }
  ~ChildPipeline() { kill_now(); }

  bool started() const { return ok_; }
  const std::string &spawn_error() const { return error_; }
  GPid pid() const { return pid_; }

  // SIGKILL: no goodbye to anyone.
  void kill_now() {
    if (pid_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      g_spawn_close_pid(pid_);
      wish_test::forget_process(pid_);
      pid_ = 0;
    }
    if (in_ >= 0) close(in_);
    in_ = -1;
    if (reader_.joinable()) reader_.join();
  }

  // The first line from index `from` on that `match` accepts, within ms; "" if none. *index
  // gets its index.
  std::string wait_line(const std::function<bool(const std::string &)> &match, int ms, size_t from = 0,
                        size_t *index = nullptr) {
    std::unique_lock<std::mutex> lock(mutex_);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    size_t i = from;
    while (true) {
      for (; i < lines_.size(); i++) {
        if (match(lines_[i])) {
          if (index) *index = i;
          return lines_[i];
        }
      }
      if (ended_ || cond_.wait_until(lock, deadline) == std::cv_status::timeout) {
        for (; i < lines_.size(); i++)
          if (match(lines_[i])) {
            if (index) *index = i;
            return lines_[i];
          }
        return "";
      }
    }
  }
  std::string wait_prefix(const std::string &prefix, int ms, size_t from = 0, size_t *index = nullptr) {
    return wait_line([&](const std::string &l) { return l.rfind(prefix, 0) == 0; }, ms, from, index);
  }
  size_t line_count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_.size();
  }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }
  // Every line starting with prefix, joined.
  std::string grep(const std::string &prefix) {
    std::string all;
    for (const auto &l : lines())
      if (l.rfind(prefix, 0) == 0) all += l + "\n";
    return all;
  }

  // The time (µs, monotonic) a reported line carries after its first word.
  static gint64 time_of(const std::string &line) {
    size_t sp = line.find(' ');
    return sp == std::string::npos ? 0 : g_ascii_strtoll(line.c_str() + sp + 1, nullptr, 10);
  }

private:
  bool ok_ = false;
  std::string error_;
  GPid pid_ = 0;
  int in_ = -1;
  std::thread reader_;
  std::mutex mutex_;
  std::condition_variable cond_;
  std::vector<std::string> lines_;
  bool ended_ = false;
};
