#!/usr/bin/env bash
# Builds the given targets of one preset while holding a machine-wide lock, so that several
# developers (or agents) sharing this 2-core machine never run two builds at once.
#   scripts/dev-build.sh [--preset release|debug|asan-ubsan|tsan] target...
set -euo pipefail
cd "$(dirname "$0")/.."
preset=release
if [[ "${1:-}" == "--preset" ]]; then preset=$2; shift 2; fi
exec 9>/tmp/sabot-build.lock
flock 9
if [[ ! -f build/$preset/build.ninja ]]; then cmake --preset "$preset" >/dev/null; fi
if (($# > 0)); then
  targets=()
  for t in "$@"; do targets+=(--target "$t"); done
  cmake --build "build/$preset" -j 2 "${targets[@]}"
else
  cmake --build "build/$preset" -j 2
fi
