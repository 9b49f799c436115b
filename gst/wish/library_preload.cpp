#include "library_preload.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <glob.h>
#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

namespace wish {

namespace {

// The ELF header of the C library as mapped in this process: its class is ours by
// construction, its machine the one every library we load must have.
const ElfW(Ehdr) *own_elf_header() {
  static const ElfW(Ehdr) *header = [] {
    Dl_info info{};
    if (!dladdr(reinterpret_cast<void *>(&dlopen), &info) || !info.dli_fbase) return static_cast<const ElfW(Ehdr) *>(nullptr);
    return static_cast<const ElfW(Ehdr) *>(info.dli_fbase);
  }();
  return header;
}

// A file read in small pieces where they are needed (mapping whole libraries of tens of MB
// costs more than the few hundred bytes read from each).
class FileReader {
public:
  explicit FileReader(const std::string &path) : fd_(open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    struct stat st {};
    if (fd_ >= 0 && fstat(fd_, &st) == 0 && S_ISREG(st.st_mode)) size_ = static_cast<uint64_t>(st.st_size);
  }
  ~FileReader() {
    if (fd_ >= 0) close(fd_);
  }
  FileReader(const FileReader &) = delete;
  FileReader &operator=(const FileReader &) = delete;

  // The `count` objects of type T at `offset`; false when they are not all in the file.
  template <typename T>
  bool read(uint64_t offset, uint64_t count, std::vector<T> *out) const {
    if (offset > size_ || count > (size_ - offset) / sizeof(T) || count > (1u << 20)) return false;
    out->resize(count);
    size_t bytes = count * sizeof(T);
    return pread(fd_, out->data(), bytes, static_cast<off_t>(offset)) == static_cast<ssize_t>(bytes);
  }

private:
  int fd_;
  uint64_t size_ = 0;
};

std::string dir_of(const std::string &path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::vector<std::string> split(const std::string &s, char sep) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, sep))
    if (!item.empty()) out.push_back(item);
  return out;
}

// A runpath entry with $ORIGIN (or ${ORIGIN}) replaced by the directory of the object naming it.
std::string expand_origin(std::string entry, const std::string &origin) {
  for (const char *token : {"${ORIGIN}", "$ORIGIN"}) {
    size_t at;
    while ((at = entry.find(token)) != std::string::npos) entry.replace(at, strlen(token), origin);
  }
  return entry;
}

void read_ld_so_conf(const std::string &path, int depth, std::vector<std::string> *dirs) {
  if (depth > 4) return;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    line = line.substr(0, line.find('#'));
    std::istringstream words(line);
    std::string first;
    if (!(words >> first)) continue;
    if (first == "include") {
      std::string pattern;
      while (words >> pattern) {
        if (pattern[0] != '/') pattern = dir_of(path) + "/" + pattern;
        glob_t g{};
        if (glob(pattern.c_str(), 0, nullptr, &g) == 0)
          for (size_t i = 0; i < g.gl_pathc; i++) read_ld_so_conf(g.gl_pathv[i], depth + 1, dirs);
        globfree(&g);
      }
    } else if (first[0] == '/') {
      dirs->push_back(first);
    }
  }
}

}  // namespace

bool read_elf_dependencies(const std::string &path, ElfDependencies *out, std::string *error) {
  *out = ElfDependencies{};
  auto fail = [&](const char *why) {
    if (error) *error = path + ": " + why;
    return false;
  };
  FileReader file(path);
  std::vector<ElfW(Ehdr)> ehs;
  if (!file.read(0, 1, &ehs)) return fail("not readable, or too short for an ELF header");
  const ElfW(Ehdr) *eh = &ehs[0];
  const ElfW(Ehdr) *own = own_elf_header();
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0) return fail("not an ELF file");
  if (!own || eh->e_ident[EI_CLASS] != own->e_ident[EI_CLASS] || eh->e_ident[EI_DATA] != own->e_ident[EI_DATA] ||
      eh->e_machine != own->e_machine)
    return fail("an ELF object of another class or machine");
  if (eh->e_type != ET_DYN) return fail("not a shared object");
  if (eh->e_phentsize != sizeof(ElfW(Phdr))) return fail("unexpected program header size");
  std::vector<ElfW(Phdr)> ph;
  if (!file.read(eh->e_phoff, eh->e_phnum, &ph)) return fail("program headers outside the file");

  const ElfW(Phdr) *dynamic = nullptr;
  for (const ElfW(Phdr) &p : ph)
    if (p.p_type == PT_DYNAMIC) dynamic = &p;
  if (!dynamic) return true;  // statically linked: needs nothing
  // Where the loaded image's address `vaddr` is in the file.
  auto file_offset = [&](uint64_t vaddr, uint64_t *offset) {
    for (const ElfW(Phdr) &p : ph) {
      if (p.p_type == PT_LOAD && vaddr >= p.p_vaddr && vaddr - p.p_vaddr < p.p_filesz) {
        *offset = vaddr - p.p_vaddr + p.p_offset;
        return true;
      }
    }
    return false;
  };
  std::vector<ElfW(Dyn)> dyn;
  if (!file.read(dynamic->p_offset, dynamic->p_filesz / sizeof(ElfW(Dyn)), &dyn)) return fail("dynamic section outside the file");
  uint64_t strtab = 0, strsz = 0;
  bool have_strtab = false, have_runpath = false, have_rpath = false;
  uint64_t runpath = 0, rpath = 0;
  std::vector<uint64_t> needed;
  for (size_t i = 0; i < dyn.size() && dyn[i].d_tag != DT_NULL; i++) {
    switch (dyn[i].d_tag) {
      case DT_NEEDED: needed.push_back(dyn[i].d_un.d_val); break;
      case DT_STRTAB: strtab = dyn[i].d_un.d_ptr; have_strtab = true; break;
      case DT_STRSZ: strsz = dyn[i].d_un.d_val; break;
      case DT_RUNPATH: runpath = dyn[i].d_un.d_val; have_runpath = true; break;
      case DT_RPATH: rpath = dyn[i].d_un.d_val; have_rpath = true; break;
      default: break;
    }
  }
  if (needed.empty() && !have_runpath && !have_rpath) return true;
  uint64_t strings_at = 0;
  if (!have_strtab || !file_offset(strtab, &strings_at)) return fail("string table outside the file");
  // The whole string table at once: one read, not one per name.
  std::vector<char> strings;
  if (strsz > (1u << 24) || !file.read(strings_at, strsz, &strings)) return fail("string table outside the file");
  auto string_at = [&](uint64_t offset, std::string *s) {
    if (offset >= strings.size()) return false;
    const void *end = memchr(strings.data() + offset, '\0', strings.size() - offset);
    if (!end) return false;
    s->assign(strings.data() + offset, static_cast<const char *>(end) - (strings.data() + offset));
    return true;
  };
  for (uint64_t offset : needed) {
    std::string name;
    if (!string_at(offset, &name)) return fail("a needed library's name outside the string table");
    out->needed.push_back(name);
  }
  if ((have_runpath && !string_at(runpath, &out->runpath)) || (!have_runpath && have_rpath && !string_at(rpath, &out->runpath)))
    return fail("runpath outside the string table");
  return true;
}

std::vector<std::string> library_load_order(const std::string &path, const std::vector<std::string> &dirs,
                                            const std::set<std::string> &loaded) {
  std::vector<std::string> order;
  std::set<std::string> seen;
  // Depth first, each library after what it needs; `depth` bounds a pathological chain.
  // False when `object_path` is not a library of ours to read (missing, another machine's).
  std::function<bool(const std::string &, int)> visit = [&](const std::string &object_path, int depth) {
    ElfDependencies deps;
    if (depth > 64 || !read_elf_dependencies(object_path, &deps, nullptr)) return false;
    std::vector<std::string> search;
    for (const std::string &entry : split(deps.runpath, ':')) search.push_back(expand_origin(entry, dir_of(object_path)));
    search.insert(search.end(), dirs.begin(), dirs.end());
    for (const std::string &soname : deps.needed) {
      if (!seen.insert(soname).second) continue;
      if (loaded.count(soname)) continue;
      if (soname.find('/') != std::string::npos) {
        visit(soname, depth + 1);
      } else {
        for (const std::string &dir : search) {
          std::string candidate = dir + "/" + soname;
          if (visit(candidate, depth + 1)) break;
        }
      }
      order.push_back(soname);
    }
    return true;
  };
  visit(path, 0);
  return order;
}

std::vector<std::string> library_search_dirs() {
  std::vector<std::string> dirs;
  if (const char *env = getenv("LD_LIBRARY_PATH")) dirs = split(env, ':');
  read_ld_so_conf("/etc/ld.so.conf", 0, &dirs);
  // The C library's directory (a multiarch one on Debian), then the usual defaults.
  Dl_info info{};
  if (dladdr(reinterpret_cast<void *>(&dlopen), &info) && info.dli_fname) {
    std::string libc_dir = dir_of(info.dli_fname);
    dirs.push_back(libc_dir);
    if (libc_dir.rfind("/lib", 0) == 0) dirs.push_back("/usr" + libc_dir);
  }
  for (const char *d : {"/lib64", "/usr/lib64", "/lib", "/usr/lib"}) dirs.push_back(d);
  std::vector<std::string> unique;
  std::set<std::string> seen;
  for (const std::string &d : dirs)
    if (seen.insert(d).second) unique.push_back(d);
  return unique;
}

std::set<std::string> loaded_library_names() {
  std::set<std::string> names;
  dl_iterate_phdr(
      [](struct dl_phdr_info *info, size_t, void *data) {
        std::string path = info->dlpi_name ? info->dlpi_name : "";
        size_t slash = path.rfind('/');
        if (!path.empty()) static_cast<std::set<std::string> *>(data)->insert(slash == std::string::npos ? path : path.substr(slash + 1));
        return 0;
      },
      &names);
  return names;
}

size_t preload_libraries_of(const std::string &plugin_path) {
  size_t count = 0;
  // Kept open for the life of the process, as the plugin that needs them will be.
  for (const std::string &soname : library_load_order(plugin_path, library_search_dirs(), loaded_library_names()))
    if (dlopen(soname.c_str(), RTLD_LAZY | RTLD_LOCAL)) count++;
  return count;
}

}  // namespace wish
