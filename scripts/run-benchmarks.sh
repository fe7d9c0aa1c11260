#!/usr/bin/env bash
# Runs every Google Benchmark micro-benchmark of a build and prints one table of items/s and
# bytes/s. Usage: scripts/run-benchmarks.sh [build-dir] [extra google-benchmark flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
shift || true
mapfile -t benches < <(find "$build/src" -type f -executable -name '*_benchmark' | sort)
if ((${#benches[@]} == 0)); then
  echo "no benchmarks found under $build (build with: make build)" >&2
  exit 1
fi
for b in "${benches[@]}"; do
  echo "== $(basename "$b")"
  "$b" --benchmark_min_time=0.2 "$@"
done
