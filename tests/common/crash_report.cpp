// Prints a backtrace when a test process crashes, so flaky crashes in CI leave a trace.
#include <execinfo.h>
#include <signal.h>
#include <unistd.h>

namespace {
void on_fatal_signal(int sig) {
  void *frames[64];
  int n = backtrace(frames, 64);
  const char msg[] = "\n*** fatal signal, backtrace:\n";
  write(STDERR_FILENO, msg, sizeof msg - 1);
  backtrace_symbols_fd(frames, n, STDERR_FILENO);
  signal(sig, SIG_DFL);
  raise(sig);
}

struct Install {
  Install() {
    // backtrace() loads libgcc on its first call, which allocates: done in the handler after
    // malloc found its heap corrupted (it aborts holding its lock), that waited forever and
    // the crash became a test timeout.
    void *warm[1];
    backtrace(warm, 1);
    signal(SIGSEGV, on_fatal_signal);
    signal(SIGABRT, on_fatal_signal);
    signal(SIGBUS, on_fatal_signal);
  }
} install;
}  // namespace
