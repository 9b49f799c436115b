#!/usr/bin/env bash
# Installs what the project needs on Debian bookworm (idempotent) and builds it into build/.
# Usage: scripts/setup.sh [--for-tests] [--for-fuzzing] [--for-bench]   (--for-tests also installs
# what the interop tests drive: Chromium, Node.js, simple-whip-client; --for-fuzzing clang and its
# sanitizer and libFuzzer runtimes, for bench/fuzz and scripts/sanitize.sh; --for-bench Debian's
# Janus, perf and unshare/ip, for bench/janus_compare)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(meson ninja-build pkg-config gcc g++ git bc
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  libnice-dev gstreamer1.0-nice libsoup-3.0-dev libjson-glib-dev glib-networking
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-x openssl libssl-dev libsrtp2-dev curl)
for arg in "$@"; do
  case "$arg" in
    --for-tests | --with-browser)
      packages+=(chromium nodejs npm simple-whip-client python3-prometheus-client)
      # bench/loss, the link-loss and loss tests: namespaces, loss (nftables), delay/jitter (NFQUEUE)
      packages+=(iproute2 nftables iptables libnetfilter-queue-dev) ;;
    --for-fuzzing) packages+=(clang libclang-rt-14-dev) ;;  # libclang_rt.fuzzer/asan/ubsan
    --for-bench) packages+=(janus linux-perf util-linux iproute2 python3) ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  # nodejs/npm may come from outside Debian on some machines: a working binary is enough
  if [[ "$p" == nodejs ]] && command -v node >/dev/null; then continue; fi
  if [[ "$p" == npm ]] && command -v npm >/dev/null; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "Installing: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "Run as root (or with sudo) to install missing packages." >&2
    exit 1
  fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [[ ! -f build/build.ninja ]]; then
  meson setup build
fi
ninja -C build
