#!/usr/bin/env bash
# Runs the libFuzzer targets built by the `fuzz` preset (fuzz/CMakeLists.txt), one after another,
# each for SECONDS (default 300), starting from the seed corpus in fuzz/corpus/<name>/. New inputs
# go to build/fuzz/corpus/<name>/ (not committed), crashes to build/fuzz/artifacts/<name>/, the
# output to build/fuzz/logs/<name>.log. Exits 1 when any target found a crash, leak or timeout.
# SABOT_FUZZ_SMOKE=1 (make test's fuzz-smoke step) makes a run repeatable: a fixed seed and only
# the committed seed corpus (grown in a scratch directory that is emptied first), so that CI on a
# fresh clone explores what this machine explored, not what earlier local runs accumulated.
#   scripts/fuzz.sh [SECONDS] [name...]     names: json_decoder csv_decoder msgpack_decoder
#                                            ipc_reader snapshot_reader flags (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}
shift || true
names=("$@")
if ((${#names[@]} == 0)); then names=(json_decoder csv_decoder msgpack_decoder ipc_reader snapshot_reader flags); fi

failed=()
for name in "${names[@]}"; do
  bin=build/fuzz/fuzz/${name}_fuzzer
  if [[ ! -x $bin ]]; then
    echo "fuzz: $bin is not built (make fuzz builds it)" >&2
    exit 2
  fi
  corpus=build/fuzz/corpus/$name
  seed=()
  if [[ ${SABOT_FUZZ_SMOKE:-0} == 1 ]]; then
    corpus=build/fuzz/smoke-corpus/$name
    rm -rf "$corpus"
    seed=(-seed=1)
  fi
  mkdir -p "$corpus" "build/fuzz/artifacts/$name" build/fuzz/logs
  log=build/fuzz/logs/$name.log
  # -timeout: one input taking longer is a finding; -rss_limit_mb: so is a memory blow-up.
  if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       "${seed[@]}" -artifact_prefix="build/fuzz/artifacts/$name/" \
       "$corpus" "fuzz/corpus/$name" >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    echo "fuzz: $name: ${seconds} s, $runs inputs, no finding"
  else
    echo "fuzz: $name: FOUND A PROBLEM; see $log and build/fuzz/artifacts/$name/" >&2
    grep -m 20 -E 'ERROR|SUMMARY|Check failed|runtime error|==[0-9]+==' "$log" >&2 || tail -20 "$log" >&2
    failed+=("$name")
  fi
done
echo "fuzz: $((${#names[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
if ((${#failed[@]} > 0)); then
  echo "fuzz: findings in ${failed[*]}" >&2
  exit 1
fi
