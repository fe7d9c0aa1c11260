#!/usr/bin/env bash
# kill -9 soak of the `sabot` command's exactly-once outputs (not part of `make test`; the short
# version is tests/crash/crash_test.cc). For each job (the fraud demo's --alerts-out at parallelism
# 2, Nexmark q5 (windowed) and q8 (join) --output at parallelism 2) it runs the job once without
# checkpoints as the reference, then starts it with --checkpoint-dir again and again with the same
# flags, killing it with SIGKILL N times: every third kill as soon as the first or second new
# chk-<n> directory of the run appears without MANIFEST (a checkpoint being written), the others
# after a random delay (seeded) up to an uninterrupted checkpointed run's wall time. Whenever a run exits 0 its output is compared with the
# reference as sorted lines (several subtasks feed the files): lines missing are "lost", extra
# lines "duplicated"; the next round starts afresh. Prints one line per job and exits 1 when
# anything was lost or duplicated or a run failed.
#   scripts/crash-test.sh [-n KILLS] [-j fraud,q5,q8] [-s SEED] [-b SABOT] [-r] [-k]
#     -n  kills per job (default 100)   -j  jobs (default fraud,q5,q8)   -s  seed (default 1)
#     -b  the sabot binary (default build/release/tools/sabot/sabot)   -k  keep the work directory
#     -r  every run with --state-backend rocksdb (each run its own --state-dir)
set -euo pipefail
cd "$(dirname "$0")/.."

kills_wanted=100
jobs=fraud,q5,q8
seed=1
sabot=build/release/tools/sabot/sabot
keep=0
rocksdb=0
while getopts "n:j:s:b:rk" opt; do
  case $opt in
    n) kills_wanted=$OPTARG ;;
    j) jobs=$OPTARG ;;
    s) seed=$OPTARG ;;
    b) sabot=$OPTARG ;;
    k) keep=1 ;;
    r) rocksdb=1 ;;
    *) sed -n '2,16p' "$0" >&2; exit 2 ;;
  esac
done
[[ -x $sabot ]] || { echo "crash-test: no sabot binary at '$sabot' (build it first)" >&2; exit 2; }
work=$(mktemp -d /tmp/sabot-crash-test.XXXXXX)
if ((keep)); then echo "crash-test: work directory $work"; else trap 'rm -rf "$work"' EXIT; fi
# A copy, so that a rebuild while the soak runs does not change (or briefly remove) the binary.
cp "$sabot" "$work/sabot"
sabot=$work/sabot
RANDOM=$seed

now_ms() { date +%s%3N; }

# The job's flags for output $1 and checkpoint directory $2 (empty: no checkpoints).
job_args() {
  local job=$1 out=$2 ck=$3
  case $job in
    fraud) args=(demo fraud --input "$work/tx.jsonl" --quiet --parallelism 2 --alerts-out "$out") ;;
    q5) args=(bench nexmark --query q5 --events 3M --rate 20k --parallelism 2 --output "$out") ;;
    q8) args=(bench nexmark --query q8 --events 3M --rate 20k --parallelism 2 --output "$out") ;;
    *) echo "crash-test: unknown job '$job' (fraud, q5, q8)" >&2; exit 2 ;;
  esac
  # 20 ms: these runs last a few hundred ms, and a kill should often find completed checkpoints
  # to restore (at 100 ms an idle machine ends most runs before their second one).
  if [[ -n $ck ]]; then args+=(--checkpoint-dir "$ck" --checkpoint-interval "${CRASH_INTERVAL:-20ms}"); fi
  if ((rocksdb)); then args+=(--state-backend rocksdb --state-dir "$out.state"); fi
}

# The sorted lines of an output: the file itself or its parts <stem>-<i>.jsonl.
sorted_output() {
  local out=$1 stem=${1%.jsonl} files=()
  [[ -e $out ]] && files+=("$out")
  for f in "$stem"-[0-9]*.jsonl; do [[ -e $f ]] && files+=("$f"); done
  if ((${#files[@]})); then cat "${files[@]}" | LC_ALL=C sort; fi
}

"$sabot" fraud generate --transactions 150k --seed 11 --output "$work/tx.jsonl"
failed=0
IFS=, read -r -a job_list <<<"$jobs"
for job in "${job_list[@]}"; do
  mkdir -p "$work/$job"
  job_args "$job" "$work/$job/reference.jsonl" ""
  "$sabot" "${args[@]}" >/dev/null 2>"$work/$job/reference.err" ||
    { echo "$job: the reference run failed: $(cat "$work/$job/reference.err")" >&2; exit 1; }
  sorted_output "$work/$job/reference.jsonl" >"$work/$job/expected.txt"
  # An uninterrupted checkpointed run: its wall time bounds the random kill delays.
  job_args "$job" "$work/$job/once.jsonl" "$work/$job/once-ck"
  start=$(now_ms)
  "$sabot" "${args[@]}" >/dev/null 2>"$work/$job/once.err" ||
    { echo "$job: the uninterrupted run failed: $(cat "$work/$job/once.err")" >&2; exit 1; }
  wall=$(($(now_ms) - start))
  kills=0 ckpt_kills=0 found=0 runs=0 rounds=0 lost=0 dup=0 restored=0 bad_runs=0
  while ((kills < kills_wanted)); do
    round=$work/$job/round$rounds
    mkdir -p "$round/ck"
    job_args "$job" "$round/out.jsonl" "$round/ck"
    while true; do
      before=$(ls "$round/ck")
      "$sabot" "${args[@]}" >/dev/null 2>"$round/err.txt" &
      pid=$!
      runs=$((runs + 1))
      victim=
      if ((kills >= kills_wanted)); then
        :
      elif ((kills % 3 == 2)); then
        # At a checkpoint's write: the first or (at random) second chk-<n> directory of this run
        # that has no MANIFEST yet (the second: one checkpoint of the run completed before it).
        skip=$((RANDOM % 2)) seen=
        while [[ -z $victim ]] && kill -0 "$pid" 2>/dev/null; do
          for d in "$round"/ck/chk-*; do
            name=${d##*/}
            if [[ -d $d && ! -e $d/MANIFEST ]] && ! grep -qx "$name" <<<"$before$seen"; then
              if ((skip > 0)); then
                skip=$((skip - 1)) seen+=$'\n'$name
                continue
              fi
              kill -9 "$pid" 2>/dev/null && victim=$d
              break
            fi
          done
          [[ -n $victim ]] || sleep 0.002
        done
      else
        delay=$((RANDOM * 32768 + RANDOM))
        delay=$((delay % (wall + 1)))
        sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
        kill -9 "$pid" 2>/dev/null || true
      fi
      status=0
      wait "$pid" 2>/dev/null || status=$?
      grep -q "restored from checkpoint" "$round/err.txt" && restored=$((restored + 1))
      if ((status == 137)); then
        kills=$((kills + 1))
        if [[ -n $victim ]]; then
          ckpt_kills=$((ckpt_kills + 1))
          [[ -d $victim && ! -e $victim/MANIFEST ]] && found=$((found + 1))
        fi
        continue
      fi
      if ((status != 0)); then
        echo "$job: a run failed (status $status): $(cat "$round/err.txt")" >&2
        bad_runs=$((bad_runs + 1))
      fi
      break
    done
    rounds=$((rounds + 1))
    sorted_output "$round/out.jsonl" >"$round/got.txt"
    l=$(LC_ALL=C comm -23 "$work/$job/expected.txt" "$round/got.txt" | wc -l)
    d=$(LC_ALL=C comm -13 "$work/$job/expected.txt" "$round/got.txt" | wc -l)
    lost=$((lost + l))
    dup=$((dup + d))
    ((l + d == 0)) && ((keep == 0)) && rm -rf "$round"
  done
  echo "$job: kills $kills ($ckpt_kills at a checkpoint's write, $found of them left a chk-<n>" \
    "without MANIFEST), runs $runs in $rounds rounds ($restored restored), lost $lost," \
    "duplicated $dup, failed runs $bad_runs (of $(wc -l <"$work/$job/expected.txt") lines)"
  ((lost + dup + bad_runs == 0)) || failed=1
done
exit $failed
