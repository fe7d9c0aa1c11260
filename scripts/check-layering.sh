#!/usr/bin/env bash
# Checks the module layering of docs/design.md ("Layering") without building anything:
#  1. Nothing below the API includes it: the library code (not tests or benchmarks) of the modules
#     under `api` (src/<m>/ and include/sabot/<m>/ for m in BELOW_API) includes no sabot/api/ header.
#  2. src/ is private to its module: a file includes another module's internals (a header under
#     src/<m>/, found relative to the file or from src/) only if the file itself lives in src/<m>/.
#     Public headers (include/) and tools, examples, bench, fuzz and tests/ include no src/ header.
# Prints every violation as file:line and exits 1 if there is any. Run by `make check-layering`
# (part of `make test`); `scripts/check-layering.sh --self-test` checks that the checker can fail.
set -euo pipefail
cd "$(dirname "$0")/.."

# The modules that sit below `api` in shared/design/ARCHITECTURE.md.
BELOW_API=(base columnar compute state checkpoint time runtime operators codec connectors observe)

is_test_or_bench() {
  case "$1" in
    *_test.cc | *_test_util.h | *_benchmark.cc) return 0 ;;
    *) return 1 ;;
  esac
}

# The module a path belongs to ("" if none): src/<m>/... or include/sabot/<m>/...
module_of_src() {
  local p="$1"
  [[ "$p" == src/*/* ]] || return 0
  p="${p#src/}"
  echo "${p%%/*}"
}

# Normalizes a relative path with . and .. components (no symlinks, no file system access).
normalize() {
  local IFS=/ part out=()
  for part in $1; do
    case "$part" in
      '' | .) ;;
      ..) ((${#out[@]})) && unset 'out[${#out[@]}-1]' ;;
      *) out+=("$part") ;;
    esac
  done
  echo "${out[*]}"
}

# check_tree ROOT: checks the C++ files under ROOT (a checkout); prints violations, returns 1 on any.
check_tree() {
  local root="$1" failed=0 file line text target dir mod owner m below files
  # Tracked files and new ones not yet added (ignored files, such as build/, are left out).
  files="$(cd "$root" && git ls-files --cached --others --exclude-standard -- \
    '*.cc' '*.h' '*.cpp' '*.hpp' '*.inc')" || {
    echo "check-layering: $root is not a git checkout" >&2
    return 2
  }
  local -A below_api=()
  local include_re='^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^">]+)[">]'
  for m in "${BELOW_API[@]}"; do below_api[$m]=1; done
  while IFS= read -r file; do
    [[ -f "$root/$file" ]] || continue
    case "$file" in src/* | include/* | tools/* | examples/* | bench/* | fuzz/* | tests/*) ;; *) continue ;; esac
    mod="$(module_of_src "$file")"
    # Rule 1: which module's library code is this (by src/<m>/ or include/sabot/<m>/)?
    below=""
    if ! is_test_or_bench "$file"; then
      if [[ -n "$mod" ]]; then
        m="$mod"
      elif [[ "$file" == include/sabot/*/* ]]; then
        m="${file#include/sabot/}"
        m="${m%%/*}"
      else
        m=""
      fi
      [[ -n "$m" && -n "${below_api[$m]:-}" ]] && below="$m"
    fi
    dir="$(dirname "$file")"
    while IFS=: read -r line text; do
      [[ "$text" =~ $include_re ]] || continue
      target="${BASH_REMATCH[1]}"
      if [[ -n "$below" && "$target" == sabot/api/* ]]; then
        echo "$file:$line: module '$below' is below the API and must not include $target" \
          "(move what it needs into a lower module; docs/design.md, Layering)"
        failed=1
      fi
      # Where does the compiler find it? A quoted include first beside the file, then in src/.
      owner=""
      if [[ "$text" == *'"'* && -f "$root/$dir/$target" ]]; then
        owner="$(normalize "$dir/$target")"
      elif [[ -f "$root/src/$target" ]]; then
        owner="$(normalize "src/$target")"
      fi
      [[ "$owner" == src/*/* ]] || continue
      owner="$(module_of_src "$owner")"
      if [[ "$owner" != "$mod" ]]; then
        echo "$file:$line: includes $target, an internal header of module '$owner'" \
          "(src/ is private to its module: move what is shared to include/sabot/$owner/ or into" \
          "the module that uses it; docs/design.md, Layering)"
        failed=1
      fi
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"][^">]+[">]' "$root/$file" || true)
  done <<<"$files"
  return "$failed"
}

# A throwaway checkout with one violation of each kind (and allowed includes), to prove the checker
# fails when it should.
self_test() {
  local t
  t="$(mktemp -d)"
  trap 'rm -rf "$t"' RETURN
  mkdir -p "$t/src/operators" "$t/src/state" "$t/include/sabot/operators" "$t/include/sabot/api" \
    "$t/tools"
  touch "$t/include/sabot/api/record.h" "$t/src/state/internal.h" "$t/src/operators/own.h"
  (cd "$t" && git init -q .)
  echo '#include "operators/own.h"' >"$t/src/operators/ok.cc"
  echo '#include "own.h"' >>"$t/src/operators/ok.cc"
  echo '#include "sabot/api/record.h"' >"$t/src/operators/window_test.cc"
  if ! check_tree "$t" >/dev/null; then
    echo "check-layering self-test: allowed includes were refused" >&2
    return 1
  fi
  local cases=(
    'src/operators/bad.cc|#include "sabot/api/record.h"'
    'include/sabot/operators/bad.h|#include <sabot/api/record.h>'
    'src/operators/bad2.cc|#include "state/internal.h"'
    'src/operators/bad3.cc|#include "../state/internal.h"'
    'tools/bad.cc|#include "operators/own.h"'
    'include/sabot/operators/bad2.h|#include "operators/own.h"'
  )
  local c file out
  for c in "${cases[@]}"; do
    file="${c%%|*}"
    echo "${c#*|}" >"$t/$file"
    out="$(check_tree "$t")" && out=""
    if [[ "$out" != "$file:1: "* ]]; then
      echo "check-layering self-test: '${c#*|}' in $file was not refused" >&2
      return 1
    fi
    rm "$t/$file"
  done
  echo "layering self-test: ok (${#cases[@]} violations refused)"
}

if [[ "${1:-}" == "--self-test" ]]; then
  self_test
  exit
fi
if check_tree .; then
  echo "layering: clean"
else
  echo "layering: violations above (docs/design.md, Layering)" >&2
  exit 1
fi
