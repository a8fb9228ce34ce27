#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs, then
#   1. builds with gcc and runs every test,
#   2. builds with ASan+UBSan and runs every test again,
#   3. builds the libFuzzer harnesses with clang and runs each for a short time,
#   4. runs the benchmarks, each against its bar,
#   5. cross-builds for arm64 and runs the tests under qemu-aarch64 (scripts/test-arm64.sh),
#   6. verifies the systemd units, builds, lints, installs and purges the Debian packages.
# Stages can be chosen: scripts/test.sh [gcc] [asan] [fuzz] [bench] [arm64] [packages]
# (default: all).
# FUZZ_SECONDS sets the time per harness (default 20).
# Tests and benchmarks read their inputs from the repository. The kube-prometheus corpus beside it
# (../shared/realworld, or SOVDEV_REALWORLD_DIR) is an extra: the cases and bars that need it run
# when it is there and are counted as skipped, never passed, when it is not. The last line reads
# "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(gcc asan fuzz bench arm64 packages)
want() { local s; for s in "${stages[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

passed=0
failed=0
skipped=0
summary=()
note() { summary+=("$1"); echo "== $1"; }
# Each stage's wall time, for keeping the whole run inside CI's budget.
timings=()
started=$SECONDS
timed() { timings+=("$1 $((SECONDS - started)) s"); started=$SECONDS; }

run_ctest() {  # flavour
  local log=build/$1/ctest.log
  # A failing test is run once more before it counts as failed: the multi-process fault tests
  # (kills, broker restarts) have shown a rare timing flake under heavy load, tracked in the
  # issue notes. A test that fails twice still fails the suite.
  if (cd "build/$1" && ctest -j2 --output-on-failure --timeout 900 --repeat until-pass:2) 2>&1 | tee "$log"; then :; fi
  local line; line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)
  local total ok bad skip
  total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
  bad=$(sed -E 's/.*, ([0-9]+) tests? failed.*/\1/' <<<"$line")
  [ -n "$total" ] || { total=0; bad=1; }
  # ctest counts a skipped test among the passed; it lists it as "<n> - <name> (Skipped)".
  skip=$(grep -cE '^\s+[0-9]+ - .* \(Skipped\)$' "$log" || true)
  ok=$((total - bad - skip))
  passed=$((passed + ok)); failed=$((failed + bad)); skipped=$((skipped + skip))
  note "$1 tests: $ok passed, $bad failed, $skip skipped"
  [ "$skip" -eq 0 ] || note "$1 tests skipped: $(grep -E '^\s+[0-9]+ - .* \(Skipped\)$' "$log" | sed -E 's/^\s+[0-9]+ - (.*) \(Skipped\)$/\1/' | head -8 | tr '\n' ';')"
  # Named in the summary, so a retried pass is never mistaken for a clean one.
  local retried
  retried=$(grep -E 'Test +#[0-9]+: .*\*\*\*(Failed|Timeout|Exception)' "$log" | sed -E 's/.*Test +#[0-9]+: (.*[^ .]) \.+ *\*\*\*.*/\1/' | sort -u | head -5 | tr '\n' ';' || true)
  [ -z "$retried" ] || note "$1 tests that failed a first attempt: $retried"
}

# The guard that keeps a bare clone passing: the [realworld] cases (ctest label `realworld`) run
# once more with the corpus hidden and must all report SKIPPED, none failed or passed. (The test
# "test inputs: ..." checks statically that nothing else reads the corpus.)
guard_bare_clone() {  # flavour
  local empty log=build/$1/ctest-hidden-corpus.log
  empty=$(mktemp -d)
  local listed skip bad
  listed=$(cd "build/$1" && ctest -N -L realworld | sed -nE 's/^Total Tests: ([0-9]+)$/\1/p')
  (cd "build/$1" && SOVDEV_REALWORLD_DIR=$empty ctest -j2 -L realworld --output-on-failure) >"$log" 2>&1 || true
  rmdir "$empty"
  skip=$(grep -cE '^\s+[0-9]+ - .* \(Skipped\)$' "$log" || true)
  bad=$(grep -cE '^\s+[0-9]+ - .* \((Failed|Timeout|Not Run|SEGFAULT|Exception)\)$' "$log" || true)
  if [ "${listed:-0}" -gt 0 ] && [ "$skip" -eq "$listed" ] && [ "$bad" -eq 0 ]; then
    passed=$((passed + 1)); note "$1 bare-clone guard: the $listed [realworld] tests report SKIPPED with the corpus hidden"
  else
    failed=$((failed + 1))
    note "$1 bare-clone guard: with the corpus hidden, $skip of ${listed:-0} [realworld] tests skipped, $bad failed (see $log)"
  fi
}

if want gcc; then
  echo "== building with gcc"; bash scripts/build.sh gcc; run_ctest gcc
  guard_bare_clone gcc
  timed gcc
fi
if want asan; then
  echo "== building with ASan+UBSan"; bash scripts/build.sh asan
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run_ctest asan
  timed asan
fi
if want fuzz; then
  echo "== building fuzz harnesses with clang"; bash scripts/build.sh fuzz sovdev_fuzz
  # A harness keeps one core busy: two halves of the harnesses run side by side, one per core,
  # each harness still for FUZZ_SECONDS (half the stage's wall time, same fuzzing per harness).
  fuzz_half() {  # 0|1: every other harness
    local h=() i=0 f
    for f in build/fuzz/tests/fuzz/fuzz_*; do
      [[ -x $f && $(basename "$f") != fuzz_make_seeds ]] || continue
      [ $((i++ % 2)) -eq "$1" ] && h+=("$(basename "$f")")
    done
    # The first half is empty only when nothing was built: run.sh then says so and fails.
    [ "$1" -eq 1 ] && [ ${#h[@]} -eq 0 ] && return 0
    bash tests/fuzz/run.sh build/fuzz "${FUZZ_SECONDS:-20}" "${h[@]}"
  }
  fuzz_both() {
    fuzz_half 0 >build/fuzz/run-0.log 2>&1 & local a=$!
    fuzz_half 1 >build/fuzz/run-1.log 2>&1 & local b=$!
    local ok=0
    wait "$a" || ok=1
    wait "$b" || ok=1
    cat build/fuzz/run-0.log build/fuzz/run-1.log
    return $ok
  }
  if fuzz_both; then
    passed=$((passed + 1)); note "fuzz: every harness ran ${FUZZ_SECONDS:-20} s without a finding"
  else
    failed=$((failed + 1)); note "fuzz: a harness found a crash (see above)"
  fi
  timed fuzz
fi
# Runs bench/run.sh MODE..., adding the bars it skipped (input this machine lacks) to the count.
bench_run() {
  local log
  log=$(mktemp)
  bash bench/run.sh build/gcc "$@" | tee "$log"
  local rc=${PIPESTATUS[0]} skip
  skip=$(sed -nE 's/^bars: [0-9]+ met, [0-9]+ missed, ([0-9]+) skipped$/\1/p' "$log" | tail -1)
  skipped=$((skipped + ${skip:-0}))
  [ "${skip:-0}" -eq 0 ] || note "benchmarks ($*): ${skip} bars skipped: $(grep -E ' SKIPPED$' "$log" | head -4 | sed -E 's/: .*//' | tr '\n' ';')"
  rm -f "$log"
  return "$rc"
}

if want bench; then
  [ -x build/gcc/agent/sovdev-agent ] || bash scripts/build.sh gcc
  if bench_run size throughput memory delta; then
    passed=$((passed + 1)); note "benchmarks (bundle, import, delta): every bar met"
  else
    failed=$((failed + 1)); note "benchmarks (bundle, import, delta): a bar was missed (see above)"
  fi
  if bench_run sync-core; then
    passed=$((passed + 1)); note "benchmarks (sync: full pull, memory, idle cost): every bar met"
  else
    failed=$((failed + 1)); note "benchmarks (sync: full pull, memory, idle cost): a bar was missed (see above)"
  fi
  if bench_run sync-fanout; then
    passed=$((passed + 1)); note "benchmarks (sync fan-out): bar met"
  else
    failed=$((failed + 1)); note "benchmarks (sync fan-out): bar missed (see above)"
  fi
  if bench_run apply; then
    passed=$((passed + 1)); note "benchmarks (kube apply memory): every bar met"
  else
    failed=$((failed + 1)); note "benchmarks (kube apply memory): a bar was missed (see above)"
  fi
  if bench_run flood secrets rollout images-serve; then
    passed=$((passed + 1)); note "benchmarks (hub under a flood, sealed secrets, rollouts, image registry memory): every bar met"
  else
    failed=$((failed + 1)); note "benchmarks (hub under a flood, sealed secrets, rollouts, image registry memory): a bar was missed (see above)"
  fi
  timed bench
fi

if want arm64; then
  echo "== arm64: cross build, tests under qemu-aarch64"
  if bash scripts/test-arm64.sh; then
    passed=$((passed + 1)); note "arm64: cross build and the tests under qemu passed"
  else
    failed=$((failed + 1)); note "arm64: a test failed under qemu (see above)"
  fi
  timed arm64
fi
if want packages; then
  echo "== systemd units and Debian packages"
  # The gcc stage's build serves for the amd64 packages (CPack strips); alone, build/pkg is built.
  pkg_build=(); want gcc && pkg_build=(build/gcc)
  if bash scripts/test-packages.sh "${pkg_build[@]}"; then
    passed=$((passed + 1)); note "packages: units verified, packages built, lintian clean, installed and purged"
  else
    failed=$((failed + 1)); note "packages: a check failed (see above)"
  fi
  timed packages
fi

echo
printf '%s\n' "${summary[@]}"
echo "stage times: $(IFS=,; echo "${timings[*]}" | sed 's/,/, /g'), setup and all: ${SECONDS} s"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
