#!/usr/bin/env bash
# Runs every benchmark against an existing build (bench_sync needs mosquitto, mosquitto_sub,
# mosquitto_pub and ss on PATH) and prints a summary table. Builds nothing.
#   bench/run.sh BUILD_DIR [MODE...]     modes: size throughput memory delta sync apply flood secrets
#                                        rollout images-serve (default: all)
#   (sync = sync-core + sync-fanout: bench_sync's full pull, memory and idle cost, and its fan-out)
# Exit 0 when every bar holds, 1 when one is missed, 2 when a benchmark could not run. A bar that
# needs input this machine lacks (the kube-prometheus corpus beside the repository) prints
# "... SKIPPED": counted and shown, never passed. The last line: "bars: N met, N missed, N skipped".
set -uo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: bench/run.sh BUILD_DIR [MODE...]   modes: size throughput memory delta sync apply flood secrets rollout images-serve (configure with -DSOVDEV_BENCH=ON and build first)" >&2
  exit 2
fi
build=$(cd "$1" && pwd) || exit 2
shift
modes=("$@")
[[ ${#modes[@]} -eq 0 ]] && modes=(size throughput memory delta sync apply flood secrets rollout images-serve)
bench=$build/bench/bench_import
for program in "$bench" "$build/bench/bench_bare" "$build/bench/bench_delta" \
  "$build/bench/bench_sync" "$build/bench/bench_apply" "$build/bench/bench_flood" \
  "$build/bench/bench_secrets" "$build/bench/bench_rollout" "$build/bench/bench_images_serve" \
  "$build/hub/sovdev-hub" "$build/agent/sovdev-agent"; do
  if [[ ! -x $program ]]; then
    echo "bench/run.sh: $program is missing: run cmake --build $build first" >&2
    exit 2
  fi
done

# One folder for all modes, so the 256 MiB bundle is generated once; removed however we leave.
data=$(mktemp -d "${TMPDIR:-/tmp}/sovdev-bench.XXXXXX") || exit 2
trap 'rm -rf "$data"' EXIT

worst=0
summary=()
met=0 missed=0 skipped=0
for mode in "${modes[@]}"; do
  start=$SECONDS
  if [[ $mode == delta ]]; then
    echo "== bench_delta"
    "$build/bench/bench_delta" --data "$data" | tee "$data/$mode.out"
  elif [[ $mode == apply ]]; then
    # Starts tests/fake-kube-apiserver (python3); killed before it exits.
    echo "== bench_apply"
    "$build/bench/bench_apply" --build "$build" --data "$data" | tee "$data/$mode.out"
  elif [[ $mode == flood ]]; then
    # Starts its own mosquitto and hub; every child it starts is killed before it exits.
    echo "== bench_flood"
    "$build/bench/bench_flood" --build "$build" --data "$data" | tee "$data/$mode.out"
  elif [[ $mode == secrets ]]; then
    # Issue #20: a hub.db of 1,000 enrolled agents, three builds of stacks/sovdev, six applies.
    echo "== bench_secrets"
    "$build/bench/bench_secrets" --build "$build" --data "$data" | tee "$data/$mode.out"
  elif [[ $mode == rollout ]]; then
    # Issue #21: catalog size and gate CPU in process, then its own mosquitto, a real serve and
    # 1,000 lite agents (three runs); every child it starts is killed before it exits.
    echo "== bench_rollout"
    "$build/bench/bench_rollout" --build "$build" --data "$data" | tee "$data/$mode.out"
  elif [[ $mode == images-serve ]]; then
    # Issue #22: the loopback registry serving a 200 MiB layer to curl (its child is killed
    # before it exits); about 5 s.
    echo "== bench_images_serve"
    "$build/bench/bench_images_serve" --data "$data" | tee "$data/$mode.out"
  elif [[ $mode == sync || $mode == sync-core || $mode == sync-fanout ]]; then
    # Starts its own mosquitto; every child it starts is killed before it exits.
    parts=()
    [[ $mode == sync-core ]] && parts=(full memory idle)
    [[ $mode == sync-fanout ]] && parts=(fanout)
    echo "== bench_sync ${parts[*]}"
    "$build/bench/bench_sync" "${parts[@]}" --build "$build" --data "$data" | tee "$data/$mode.out"
  else
    echo "== bench_import $mode"
    "$bench" "$mode" --build "$build" --data "$data" | tee "$data/$mode.out"
  fi
  rc=${PIPESTATUS[0]}
  echo "   ($mode: exit $rc, $((SECONDS - start)) s)"
  ((rc > worst)) && worst=$rc
  if ((rc > 1)); then
    summary+=("$(printf '%-10s %-7s %-36s %s' "$mode" ERROR "the benchmark did not run" \
      "see its output above")")
  fi
  # Verdict lines read "<what>: <figures> <bar> OK|MISSED", or "<what>: <why> SKIPPED".
  while IFS= read -r line; do
    result=${line##* }
    body=${line% *}
    summary+=("$(printf '%-10s %-7s %-36s %s' "$mode" "$result" "${body%%: *}" "${body#*: }")")
    case $result in
      OK) met=$((met + 1)) ;;
      MISSED) missed=$((missed + 1)) ;;
      SKIPPED) skipped=$((skipped + 1)) ;;
    esac
  done < <(grep -E ' (OK|MISSED|SKIPPED)$' "$data/$mode.out")
done

echo
echo "== summary ($SECONDS s)"
printf '%-10s %-7s %-36s %s\n' bench result measure "figure (baseline) bar"
printf '%s\n' "${summary[@]}"
echo "bars: $met met, $missed missed, $skipped skipped"
exit "$worst"
