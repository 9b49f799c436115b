// Loading a plugin's libraries one at a time (library_preload.h): what is read from ELF files
// against binutils' readelf, the order (each library after those it needs), bad files refused,
// and a real preload of a plugin this process has not loaded.

// The C++ headers before gstcheck.h: its `fail` macro breaks <fstream>.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gst/check/gstcheck.h>
#include <glib/gstdio.h>
#include <gst/gst.h>
#include <link.h>
#include <unistd.h>

#include "library_preload.h"

namespace {

std::string plugin_file(const char *plugin_name) {
  GstPlugin *plugin = gst_registry_find_plugin(gst_registry_get(), plugin_name);
  if (!plugin) return "";
  std::string file = gst_plugin_get_filename(plugin) ? gst_plugin_get_filename(plugin) : "";
  gst_object_unref(plugin);
  return file;
}

// The NEEDED entries `readelf -d` lists for `path`.
std::vector<std::string> readelf_needed(const std::string &path) {
  std::vector<std::string> needed;
  std::string cmd = "readelf -d '" + path + "' 2>/dev/null";
  FILE *p = popen(cmd.c_str(), "r");
  if (!p) return needed;
  char line[1024];
  while (fgets(line, sizeof line, p)) {
    std::string s(line);
    size_t open = s.find("Shared library: [");
    if (open == std::string::npos) continue;
    open += strlen("Shared library: [");
    needed.push_back(s.substr(open, s.find(']', open) - open));
  }
  pclose(p);
  return needed;
}

std::string write_file(const std::string &name, const std::string &bytes) {
  std::string path = std::string(g_get_tmp_dir()) + "/wish-preload-" + std::to_string(getpid()) + "-" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

std::string read_file(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

GST_START_TEST(test_reads_needed_like_readelf) {
  std::string wish = plugin_file("wish");
  fail_if(wish.empty(), "the wish plugin is not in the registry");
  std::vector<std::string> expected = readelf_needed(wish);
  fail_unless(!expected.empty(), "readelf gave nothing for %s", wish.c_str());
  wish::ElfDependencies deps;
  std::string error;
  fail_unless(wish::read_elf_dependencies(wish, &deps, &error), "%s", error.c_str());
  fail_unless(deps.needed == expected, "read %zu needed libraries, readelf %zu", deps.needed.size(), expected.size());
  fail_unless(std::find(deps.needed.begin(), deps.needed.end(), "libgstreamer-1.0.so.0") != deps.needed.end());
}
GST_END_TEST;

GST_START_TEST(test_refuses_what_is_not_a_library) {
  wish::ElfDependencies deps;
  std::string error;
  fail_if(wish::read_elf_dependencies("/nonexistent/libnothing.so", &deps, &error));
  std::string text = write_file("text", "not an ELF file at all, only text long enough for a header............");
  fail_if(wish::read_elf_dependencies(text, &deps, &error));
  fail_unless(error.find("not an ELF") != std::string::npos, "%s", error.c_str());

  std::string real = read_file(plugin_file("wish"));
  fail_unless(real.size() > 4096);
  // Cut after the ELF header: the program headers are missing.
  std::string cut = write_file("cut", real.substr(0, sizeof(ElfW(Ehdr))));
  fail_if(wish::read_elf_dependencies(cut, &deps, &error));
  fail_unless(error.find("program headers") != std::string::npos, "%s", error.c_str());
  // Program headers said to be far beyond the end.
  std::string far = real;
  reinterpret_cast<ElfW(Ehdr) *>(&far[0])->e_phoff = 1ull << 40;
  std::string far_path = write_file("far", far);
  fail_if(wish::read_elf_dependencies(far_path, &deps, &error));
  // Another machine's library is not one this process could load.
  std::string other = real;
  reinterpret_cast<ElfW(Ehdr) *>(&other[0])->e_machine ^= 0x5a;
  std::string other_path = write_file("other", other);
  fail_if(wish::read_elf_dependencies(other_path, &deps, &error));
  fail_unless(error.find("machine") != std::string::npos, "%s", error.c_str());
  // The dynamic section's string table moved out of the file.
  std::string strings = real;
  auto *eh = reinterpret_cast<ElfW(Ehdr) *>(&strings[0]);
  auto *ph = reinterpret_cast<ElfW(Phdr) *>(&strings[eh->e_phoff]);
  for (int i = 0; i < eh->e_phnum; i++) {
    if (ph[i].p_type != PT_DYNAMIC) continue;
    auto *dyn = reinterpret_cast<ElfW(Dyn) *>(&strings[ph[i].p_offset]);
    for (; dyn->d_tag != DT_NULL; dyn++)
      if (dyn->d_tag == DT_STRSZ) dyn->d_un.d_val = 1ull << 40;
  }
  std::string strings_path = write_file("strings", strings);
  fail_if(wish::read_elf_dependencies(strings_path, &deps, &error));
  fail_unless(error.find("string table") != std::string::npos, "%s", error.c_str());
  for (const std::string &p : {text, cut, far_path, other_path, strings_path}) g_unlink(p.c_str());
}
GST_END_TEST;

// Every library comes after each library it needs, once; what is loaded already is left out.
GST_START_TEST(test_order_puts_dependencies_first) {
  std::string wish = plugin_file("wish");
  std::vector<std::string> dirs = wish::library_search_dirs();
  std::vector<std::string> order = wish::library_load_order(wish, dirs, {});
  fail_unless(order.size() > 20, "only %zu libraries", order.size());
  std::map<std::string, size_t> position;
  for (size_t i = 0; i < order.size(); i++) fail_unless(position.emplace(order[i], i).second, "%s twice", order[i].c_str());
  size_t checked = 0;
  for (size_t i = 0; i < order.size(); i++) {
    for (const std::string &dir : dirs) {
      wish::ElfDependencies deps;
      if (!wish::read_elf_dependencies(dir + "/" + order[i], &deps, nullptr)) continue;
      for (const std::string &needed : deps.needed) {
        auto at = position.find(needed);
        fail_unless(at != position.end(), "%s needs %s, not in the order", order[i].c_str(), needed.c_str());
        fail_unless(at->second < i, "%s comes before %s, which it needs", order[i].c_str(), needed.c_str());
      }
      checked++;
      break;
    }
  }
  fail_unless(checked > order.size() / 2, "only %zu of %zu libraries found to check", checked, order.size());
  fail_unless(position.count("libc.so.6") && position.count("libglib-2.0.so.0"));

  std::set<std::string> loaded = wish::loaded_library_names();
  fail_unless(loaded.count("libc.so.6") && loaded.count("libgstreamer-1.0.so.0"));
  std::vector<std::string> left = wish::library_load_order(wish, dirs, loaded);
  fail_unless(left.size() < order.size());
  for (const std::string &soname : left) fail_if(loaded.count(soname), "%s is loaded already", soname.c_str());
}
GST_END_TEST;

// The opus plugin's libopus, not in this process before, is after the preload; the plugin is not.
GST_START_TEST(test_preload_loads_libraries_not_the_plugin) {
  std::string opus = plugin_file("opus");
  fail_if(opus.empty(), "no opus plugin (gstreamer1.0-plugins-base) in the registry");
  std::set<std::string> before = wish::loaded_library_names();
  fail_if(before.count("libopus.so.0"), "libopus is loaded already: nothing to check");
  size_t loaded = wish::preload_libraries_of(opus);
  std::set<std::string> after = wish::loaded_library_names();
  fail_unless(loaded >= 1 && after.count("libopus.so.0"), "%zu loaded, libopus %s", loaded,
              after.count("libopus.so.0") ? "there" : "missing");
  std::string plugin_name = opus.substr(opus.rfind('/') + 1);
  fail_if(after.count(plugin_name), "the plugin itself was loaded");
  fail_unless(wish::preload_libraries_of(opus) == 0, "a second preload loaded something");
}
GST_END_TEST;

static Suite *library_preload_suite() {
  Suite *s = suite_create("library-preload");
  TCase *tc = tcase_create("general");
  tcase_add_test(tc, test_reads_needed_like_readelf);
  tcase_add_test(tc, test_refuses_what_is_not_a_library);
  tcase_add_test(tc, test_order_puts_dependencies_first);
  tcase_add_test(tc, test_preload_loads_libraries_not_the_plugin);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(library_preload);
