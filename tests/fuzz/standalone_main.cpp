// Runs a fuzz target without libFuzzer, so every build (g++ too) smoke-tests it: each file
// of the corpus directories, then N seeded random mutations of them. Deterministic: the same
// seed and corpus give the same inputs. Usage: runner [--iterations N] [--seed S] DIR|FILE...
// When a signal kills a run, the input is written to ./fuzz-crash-input first, to replay
// with `runner fuzz-crash-input` (or the libFuzzer build).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

namespace {

const std::string *g_current = nullptr;

// Only async-signal-safe calls: the process is dying.
void on_fatal(int sig) {
  if (g_current) {
    int fd = open("fuzz-crash-input", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ssize_t n = write(fd, g_current->data(), g_current->size());
      (void)n;
      close(fd);
    }
    const char msg[] = "fuzz: input written to fuzz-crash-input\n";
    ssize_t n = write(2, msg, sizeof msg - 1);
    (void)n;
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

std::string read_file(const std::filesystem::path &p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Tokens our formats are made of: mutations that insert them reach deeper than random bytes.
const char *const kTokens[] = {"\r\n", "\n", "%%\n", "a=", "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n", "a=mid:",
                               "a=candidate:", "a=ice-ufrag:", "a=rtpmap:", "a=fmtp:", "\"", "{", "}", "[", "]",
                               ":", ",", ";", "<", ">", "</", "<![CDATA[", "]]>", "@loc", "@etag", "If-Match: ",
                               "W/", "*", "%", "%00", "\\u0000", "0", "-1", "4294967296", "99999999999999999999"};

void mutate(std::string &s, const std::vector<std::string> &corpus, std::mt19937 &rng) {
  auto below = [&rng](size_t n) { return n ? static_cast<size_t>(rng() % n) : 0; };
  int edits = 1 + static_cast<int>(below(8));
  for (int e = 0; e < edits; e++) {
    size_t pos = below(s.size() + 1);
    switch (below(6)) {
      case 0:
        if (!s.empty()) s[below(s.size())] = static_cast<char>(rng());
        break;
      case 1: s.erase(std::min(pos, s.size()), 1 + below(32)); break;
      case 2: s.insert(pos, kTokens[below(std::size(kTokens))]); break;
      case 3: {  // repeat a piece of itself
        size_t from = below(s.size() + 1), len = below(64);
        s.insert(pos, s.substr(from, len));
        break;
      }
      case 4: {  // splice in a piece of another input
        const std::string &o = corpus[below(corpus.size())];
        size_t from = below(o.size() + 1);
        s.insert(pos, o.substr(from, below(256)));
        break;
      }
      default:
        if (!s.empty()) s[below(s.size())] ^= static_cast<char>(1u << below(8));
    }
  }
  if (s.size() > 64 * 1024) s.resize(64 * 1024);
}

}  // namespace

int main(int argc, char **argv) {
  long iterations = 2000;
  unsigned seed = 1;
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--iterations" && i + 1 < argc) iterations = std::atol(argv[++i]);
    else if (a == "--seed" && i + 1 < argc) seed = static_cast<unsigned>(std::atol(argv[++i]));
    else if (std::filesystem::is_directory(a))
      for (const auto &entry : std::filesystem::directory_iterator(a)) files.push_back(entry.path());
    else files.push_back(a);
  }
  std::sort(files.begin(), files.end());  // directory order is not deterministic
  std::vector<std::string> corpus;
  for (const auto &f : files) corpus.push_back(read_file(f));
  if (corpus.empty()) corpus.push_back("");

  for (int sig : {SIGSEGV, SIGABRT, SIGILL, SIGFPE, SIGBUS}) signal(sig, on_fatal);
  auto run = [](const std::string &input) {
    g_current = &input;
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t *>(input.data()), input.size());
  };
  for (const auto &c : corpus) run(c);
  std::mt19937 rng(seed);
  for (long i = 0; i < iterations; i++) {
    std::string s = corpus[rng() % corpus.size()];
    mutate(s, corpus, rng);
    run(s);
  }
  std::printf("%zu corpus inputs and %ld mutations (seed %u): no crash\n", corpus.size(), iterations, seed);
  return 0;
}
