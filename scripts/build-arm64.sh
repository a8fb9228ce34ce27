#!/usr/bin/env bash
# Cross-builds the project for arm64 (aarch64-linux-gnu) into build/arm64 with Debian's
# cross compilers and the ":arm64" library packages (multiarch), using the host's protoc.
#   scripts/build-arm64.sh [targets...]      default: every target but the benchmarks
#   scripts/build-arm64.sh --install-only    only install what the cross build needs
# Installs what is missing first (as root, apt-get); silent when everything is present.
# JOBS sets the parallel jobs (default 2). UNITY=<n> the unity build's batch size (default 16,
# 0: off), as in scripts/build.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian 12: every library the project links, as its arm64 variant. All are Multi-Arch: same,
# so they sit next to the amd64 ones. Header-only packages (nlohmann-json3-dev, libcli11-dev:
# arch all; catch2: headers + CMake files in /usr/lib/cmake) serve both architectures from
# the host. libyaml-cpp-dev is not Multi-Arch: same: only its runtime library is installed
# for arm64, the -dev package is unpacked into build/arm64-deps below.
arm64_libs=(
  libpaho-mqttpp-dev libpaho-mqtt-dev libprotobuf-dev libzstd-dev libsqlite3-dev
  libcurl4-openssl-dev libssl-dev libspdlog-dev libfmt-dev libsodium-dev libtomlplusplus-dev
  libmicrohttpd-dev libyaml-cpp0.7 libhowardhinnant-date-dev
)
host_pkgs=(crossbuild-essential-arm64 qemu-user-static protobuf-compiler cmake ninja-build
  pkg-config nlohmann-json3-dev libcli11-dev catch2 dpkg-dev)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

install_cross() {
  local missing=() p
  for p in "${host_pkgs[@]}"; do installed "$p" || missing+=("$p"); done
  for p in "${arm64_libs[@]}"; do installed "$p:arm64" || missing+=("$p:arm64"); done
  local need_arch=0
  dpkg --print-foreign-architectures | grep -qx arm64 || need_arch=1
  if [ ${#missing[@]} -gt 0 ] || [ $need_arch -eq 1 ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "build-arm64: missing: ${missing[*]} (dpkg architecture arm64 added: $((1 - need_arch)))" >&2
      echo "build-arm64: run as root and try again" >&2
      exit 1
    fi
    echo "build-arm64: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    [ $need_arch -eq 1 ] && dpkg --add-architecture arm64
    apt-get update -qq >/dev/null
    # Installing an arm64 library may upgrade its amd64 twin to the same version (multiarch
    # requires equal versions); nothing is removed.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # libyaml-cpp-dev:arm64, unpacked (not installed) next to the build. The version must be
  # the one of the installed runtime library.
  local version deps=build/arm64-deps
  version=$(dpkg-query -W -f='${Version}' libyaml-cpp0.7:arm64)
  if [ "$(cat "$deps/.version" 2>/dev/null)" != "$version" ]; then
    rm -rf "$deps" && mkdir -p "$deps/debs"
    fetch() { (cd "$deps/debs" && apt-get download -qq "libyaml-cpp-dev:arm64=$1" \
      "libyaml-cpp0.7:arm64=$1" 2>/dev/null); }
    if ! fetch "$version"; then
      # The archive moved on (a security update): follow it, amd64 and arm64 alike.
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >/dev/null
      apt-get install -y -qq --no-install-recommends libyaml-cpp0.7:arm64 >/dev/null
      version=$(dpkg-query -W -f='${Version}' libyaml-cpp0.7:arm64)
      fetch "$version" || {
        echo "build-arm64: cannot download libyaml-cpp-dev:arm64 $version" >&2
        exit 1
      }
    fi
    for deb in "$deps"/debs/*.deb; do dpkg-deb -x "$deb" "$deps/root"; done
    echo "$version" >"$deps/.version"
  fi
}

install_cross
# The generated protobuf code must match the runtime it links: the host's protoc and the arm64
# libprotobuf come from the same Debian source version.
protoc_version=$(dpkg-query -W -f='${Version}' protobuf-compiler)
libprotobuf_version=$(dpkg-query -W -f='${Version}' libprotobuf-dev:arm64)
if [ "$protoc_version" != "$libprotobuf_version" ]; then
  echo "build-arm64: protoc $protoc_version but libprotobuf-dev:arm64 $libprotobuf_version;" \
    "upgrade both to one version (apt-get install protobuf-compiler libprotobuf-dev:arm64)" >&2
  exit 1
fi
[ "${1:-}" = "--install-only" ] && exit 0

dir=build/arm64
unity=${UNITY:-16}
if [ "$unity" -gt 0 ]; then
  unity_args=(-DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE="$unity")
else
  unity_args=(-DCMAKE_UNITY_BUILD=OFF)
fi
# -O2 without -g: the same code as the amd64 RelWithDebInfo build (debug info does not change
# code generation), so stripped sizes compare, at a shorter compile.
cmake -S . -B "$dir" -G Ninja \
  -DCMAKE_TOOLCHAIN_FILE="$PWD/cross/aarch64-linux-gnu.cmake" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" \
  -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
  -Dyaml-cpp_DIR="$PWD/build/arm64-deps/root/usr/lib/aarch64-linux-gnu/cmake/yaml-cpp" \
  -DSOVDEV_BENCH=OFF -DCMAKE_INSTALL_PREFIX=/usr "${unity_args[@]}" >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$dir" -j "${JOBS:-2}" "${targets[@]}"
