#!/usr/bin/env bash
# Installs every Debian 12 package the build, the tests and the demo need.
# Idempotent: does nothing (and prints nothing) when all packages are already present.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  clang libclang-rt-14-dev
  libpaho-mqttpp-dev libpaho-mqtt-dev
  libprotobuf-dev protobuf-compiler
  libzstd-dev zstd
  libsqlite3-dev sqlite3
  libcurl4-openssl-dev libssl-dev
  libspdlog-dev libfmt-dev
  libsodium-dev
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libtomlplusplus-dev
  catch2
  mosquitto mosquitto-clients libmosquitto-dev
  openssl procps iproute2 nftables
  python3 curl
  lintian systemd dpkg-dev adduser
  libmicrohttpd-dev prometheus
  libhowardhinnant-date-dev tzdata
  docker-registry skopeo umoci containerd zlib1g-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing packages: ${missing[*]}" >&2
  echo "setup: run as root (or install them with apt-get) and try again" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The broker, Prometheus and the image registry are started by the tests and the demo on
# loopback ports of their own; the packaged system services are not wanted. (containerd is left
# alone: the tests run their own, and a machine may need its own one.)
for service in mosquitto prometheus docker-registry; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service" 2>/dev/null; then
    systemctl disable --now "$service" >/dev/null 2>&1 || true
  fi
done
