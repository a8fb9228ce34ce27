#!/usr/bin/env bash
# Runs every libFuzzer harness of a fuzz build for a short time, each on a temporary copy of its
# seed corpus (the repository is never written), and stops at the first failure with the path of
# the input that reproduces it.
#
#   tests/fuzz/run.sh <fuzz-build-dir> [seconds-per-harness, default 20] [harness ...]
#
# The build dir comes from:
#   cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
#         -DSOVDEV_FUZZ=ON -DSOVDEV_TESTS=OFF && ninja -C build-fuzz sovdev_fuzz
# Replay a reproducer:  <build>/tests/fuzz/fuzz_<name> <reproducer>
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 <fuzz-build-dir> [seconds-per-harness] [harness ...]" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
seconds=${2:-20}
shift $(($# >= 2 ? 2 : 1))
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin="$build/tests/fuzz"

if [[ $# -gt 0 ]]; then
  harnesses=("$@")
else
  harnesses=()
  for f in "$bin"/fuzz_*; do
    name=$(basename "$f")
    [[ -x $f && $name != fuzz_make_seeds ]] && harnesses+=("$name")
  done
fi
if [[ ${#harnesses[@]} -eq 0 ]]; then
  echo "no fuzz_* harness in $bin: build the sovdev_fuzz target of a SOVDEV_FUZZ=ON build" >&2
  exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sovdev-fuzz.XXXXXX")
# Kept when a harness fails: the reproducer lives there.
trap '[[ -n ${keep:-} ]] || rm -rf "$work"' EXIT

# Seeds: the committed ones plus a fresh generation (valid even if a format changed since).
if [[ -x $bin/fuzz_make_seeds ]]; then
  "$bin/fuzz_make_seeds" "$work/generated" >/dev/null
fi

# Undefined behaviour and leaks are failures too, not warnings.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}

status=0
for name in "${harnesses[@]}"; do
  exe="$bin/$name"
  [[ -x $exe ]] || { echo "$name: not built in $bin" >&2; status=2; break; }
  corpus_name=${name#fuzz_}
  dir="$work/$name"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  for src in "$here/corpus/$corpus_name" "$work/generated/$corpus_name"; do
    [[ -d $src ]] && cp -r "$src/." "$dir/corpus/"
  done
  log="$dir/log.txt"
  set +e
  (cd "$dir" && "$exe" corpus -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
      -artifact_prefix="$dir/artifacts/" -print_final_stats=1 >"$log" 2>&1)
  rc=$?
  set -e

  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")

  if [[ $rc -ne 0 ]]; then
    keep=1
    repro=$(ls -t "$dir/artifacts/"* 2>/dev/null | head -n 1 || true)
    echo "$name: FAILED (exit $rc) after ${runs:-?} runs"
    grep -E 'ERROR:|runtime error|fuzz invariant broken|SUMMARY' "$log" | head -n 5 | sed 's/^/  /'
    echo "  reproducer: ${repro:-none written}"
    echo "  log:        $log"
    echo "  replay:     $exe ${repro:-<input>}"
    status=1
    break
  fi
  printf '%-18s ok  %3ss  %9s runs  %6s exec/s  cov %5s  ft %6s  corpus %4s  rss %4s MB\n' \
    "$name" "$seconds" "${runs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:-?}"
done
exit $status
