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
    signal(SIGSEGV, on_fatal_signal);
    signal(SIGABRT, on_fatal_signal);
    signal(SIGBUS, on_fatal_signal);
  }
} install;
}  // namespace
