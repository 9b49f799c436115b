#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer run (clang, build-asan/):
#  1. the fuzz suite's standalone runners with LeakSanitizer and no suppressions at all, and
#     the protocol tests (gst-check programs) with only tests/lsan.supp: GLib's abandoned
#     first quark block, nothing that could be ours;
#  2. element tests with leak detection too, with the same GLib/GStreamer-only
#     tests/lsan.supp (each entry explained there).
# Usage: scripts/sanitize.sh [--protocol-only] [element-test...]
#   default element tests: whepserversink oma-elements. whisp's pulling test starts an
#   uninstrumented gst-launch-1.0 with our instrumented plugin, which cannot load it: it fails
#   here for that reason only.
set -uo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang++ >/dev/null || ! compgen -G "/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a" >/dev/null; then
  echo "clang and its runtimes are missing: scripts/setup.sh --for-fuzzing (as root)" >&2
  exit 1
fi

protocol_only=0
elements=()
for a in "$@"; do
  if [[ "$a" == --protocol-only ]]; then protocol_only=1; else elements+=("$a"); fi
done
((${#elements[@]})) || elements=(whepserversink oma-elements)

if [[ ! -f build-asan/build.ninja ]]; then
  # b_lundef=false: clang's sanitizer runtime is linked into executables only, the plugin
  # resolves it from the test process.
  CC=clang CXX=clang++ meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
    -Ddocs=false || exit 1
fi
# One compile at a time by default: the machine is shared.
ninja -C build-asan -j "${SANITIZE_JOBS:-1}" || exit 1

export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# GLib 2.74 still has its slice allocator: make it plain malloc so ASan sees each block.
export G_SLICE=always-malloc G_DEBUG=gc-friendly
status=0

# fast_unwind_on_malloc=0: GLib has no frame pointers, leak stacks stop at g_malloc without it.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:fast_unwind_on_malloc=0
echo "== fuzz runners (LeakSanitizer, no suppressions)"
export LSAN_OPTIONS=report_objects=1
meson test -C build-asan --num-processes 1 --print-errorlogs --suite fuzz || status=1
echo "== protocol tests (LeakSanitizer, tests/lsan.supp)"
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=1:report_objects=1
meson test -C build-asan --num-processes 1 --print-errorlogs protocol oma oma-body rtcp dtls-srtp || status=1

if ((!protocol_only)); then
  echo "== element tests (LeakSanitizer, tests/lsan.supp)"
  # gst-plugin-scanner has no sanitizer runtime and cannot load the instrumented plugin (it
  # would also be remembered as broken in the registry): the system plugins are registered
  # by the uninstrumented gst-inspect-1.0 first, then the tests scan in-process
  # (GST_REGISTRY_FORK=no), loading only our plugin, and the others when used.
  registry=build-asan/tests/test-registry.bin
  rm -f "$registry"
  env -u GST_PLUGIN_PATH GST_REGISTRY="$registry" ASAN_OPTIONS= gst-inspect-1.0 >/dev/null 2>&1
  export GST_REGISTRY_FORK=no
  # A smaller quarantine for freed memory (default 256 MiB): test_http_hardening checks the
  # server's RSS under a flood, which the default quarantine alone would exceed.
  export ASAN_OPTIONS=$ASAN_OPTIONS:quarantine_size_mb=16
  # Sanitized elements run several times slower: more time for every test.
  meson test -C build-asan --num-processes 1 --print-errorlogs --timeout-multiplier 4 "${elements[@]}" || status=1
fi
exit $status
