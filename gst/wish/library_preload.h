// Loading a plugin's shared libraries ahead of time, one library at a time.
//
// Why: gst-libav's plugin pulls in about 170 libraries (libavcodec, libavformat, libavfilter
// and theirs). One dlopen() of it takes ~100 ms, and for all that time glibc holds the lock
// every new thread needs for its TLS: a fresh player's webrtcbin cannot start its ICE and
// DTLS threads until the decoder is loaded. Loaded one by one, dependencies first, each
// dlopen() holds that lock for a few ms only, and the plugin's own load later finds them all
// there.
#pragma once

#include <set>
#include <string>
#include <vector>

namespace wish {

// What an ELF shared object's dynamic section names: the libraries it needs (DT_NEEDED, in
// order) and where it says to look for them (DT_RUNPATH, or DT_RPATH when it has none;
// ':'-separated, as written). False with *error for a file that is not an ELF object of this
// process's class and machine.
struct ElfDependencies {
  std::vector<std::string> needed;
  std::string runpath;
};
bool read_elf_dependencies(const std::string &path, ElfDependencies *out, std::string *error);

// The libraries `path` needs, directly or not, each after every library it needs itself, as
// sonames to dlopen() (`path` itself not included). Those in `loaded` (sonames) and what
// they need are left out. Sonames are found in `dirs` (and the
// needing object's runpath) only to read what they need; one not found is kept, without what
// it needs.
std::vector<std::string> library_load_order(const std::string &path, const std::vector<std::string> &dirs,
                                            const std::set<std::string> &loaded);

// The file names of the libraries in this process (what the loader found for each soname,
// which on Debian is the soname itself).
std::set<std::string> loaded_library_names();

// Where this process's dynamic loader looks: LD_LIBRARY_PATH, /etc/ld.so.conf (and its
// includes), then the default directories.
std::vector<std::string> library_search_dirs();

// Loads the libraries `plugin_path` needs, one dlopen() each (RTLD_LAZY | RTLD_LOCAL, as the
// plugin loader would), without loading the plugin. Returns how many it loaded. Blocking: call
// it from a thread of its own.
size_t preload_libraries_of(const std::string &plugin_path);

}  // namespace wish
