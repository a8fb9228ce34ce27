#!/usr/bin/env bash
# Configures and builds one flavour of the project into build/<flavour>.
#   scripts/build.sh gcc     release build with debug info (the programs, tests, benchmarks)
#   scripts/build.sh asan    gcc with AddressSanitizer + UndefinedBehaviorSanitizer
#   scripts/build.sh fuzz    clang with libFuzzer harnesses
# Further arguments name targets to build (default: everything).
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-gcc}
shift || true
dir=build/$flavour
case "$flavour" in
  gcc)  args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan) args=(-DCMAKE_BUILD_TYPE=Debug -DSOVDEV_SANITIZE=ON -DSOVDEV_BENCH=OFF) ;;
  fuzz) args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
              -DSOVDEV_FUZZ=ON -DSOVDEV_TESTS=OFF -DSOVDEV_BENCH=OFF) ;;
  *) echo "usage: $0 gcc|asan|fuzz" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$dir" "${targets[@]}"
