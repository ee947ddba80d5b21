#!/usr/bin/env bash
# The A/B gate's proof on a GPU machine: A/B jobs (runners/ab.py, then reports/ab.py) of a tree
# against a copy of itself (A/A: must PASS) and against copies with a planted slowdown (must FAIL),
# each job's verdict and exit status in one log.
#
# usage, from the repo root (Hydra carried as wheels in .whl/, docs/harness.md "On the GPU machine"):
#   OUT=/some/dir bash scripts/gate_check.sh REF_TREE JOB [JOB ...]
#     REF_TREE: a copy of the repo at the commit under test (git archive HEAD | tar -x -C REF_TREE)
#     JOB: aa (REF_TREE against a copy of itself),
#          plant:K (scripts/plant_slowdown.py: every K-th program of the kernel reads a second tile;
#                   K=5 about 10% slower GPU time on large tensors, K=1 about 1.5x),
#          host:P (scripts/plant_host_slowdown.py --percent P: a busy loop costing about P% of the
#                  op's forward call at the gate's host point, timed against the call itself),
#          nofast (scripts/plant_host_slowdown.py --no-fast-path: the C++ hot path never used),
#          or ab:DIR (DIR as the ref side, REF_TREE as the candidate: e.g. the commit before a change)
#   PAIRS (default 4), MAX_PAIRS (8), BUDGET_S (480): each job runs PAIRS pairs, then two more while
#   a gated key is too noisy to judge, up to MAX_PAIRS and while they fit in BUDGET_S seconds, so a
#   job stays under 10 minutes (on the H200 at git e894a12 a CI process took 47-71 s in the first
#   pair and 22-35 s after: 4 pairs 199-306 s, 8 over the budget); SEED (default 1: job i uses
#   SEED + i) sets the first pair's order; SWEEP (default experiment=ci) the sweep of every process;
#   JUDGE extra key=value for reports.ab.
# Writes $OUT/gate-check.log (every verdict, one line per job at the end) and $OUT/gate-check.tgz
# (each job's ab.json, ab.md and per-process CSVs and logs). Exit status 0 when every job's verdict
# is what its kind expects (aa and ab: PASS; plant, host, nofast: FAIL).
set -uo pipefail
: "${OUT:?set OUT to the folder that collects the results}"
[ $# -ge 2 ] || { awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 2; }  # the usage above
ref=$(cd "$1" && pwd) || exit 2
shift
PAIRS=${PAIRS:-4}
MAX_PAIRS=${MAX_PAIRS:-8}
BUDGET_S=${BUDGET_S:-480}
SEED=${SEED:-1}
SWEEP=${SWEEP:-experiment=ci}
JUDGE=${JUDGE:-}
judge_arg=()  # runners.ab refuses an empty judge= (Hydra reads it as null): pass it only when given
[ -n "$JUDGE" ] && judge_arg=("judge=$JUDGE")
export PYTHONUNBUFFERED=1
source scripts/device_env.sh
log=$OUT/gate-check.log
work=$OUT/gate-check && mkdir -p "$work"
copy=$(dirname "$ref")/$(basename "$ref")-copy  # one path for every copy: its C++ build is reused
summary=()
ok=true
index=0
for job in "$@"; do
  index=$((index + 1))
  rm -rf "$copy" && cp -a "$ref" "$copy"  # -a keeps mtimes: the copy's extension build stays valid
  case $job in
    aa) side_a=$ref side_b=$copy expect=0 ;;
    plant:*) python3 scripts/plant_slowdown.py "$copy" --every "${job#plant:}" | tee -a "$log" || exit 2
             side_a=$ref side_b=$copy expect=1 ;;
    host:*) python3 scripts/plant_host_slowdown.py "$copy" --percent "${job#host:}" | tee -a "$log" || exit 2
            side_a=$ref side_b=$copy expect=1 ;;
    nofast) python3 scripts/plant_host_slowdown.py "$copy" --no-fast-path | tee -a "$log" || exit 2
            side_a=$ref side_b=$copy expect=1 ;;
    ab:*) side_a=$(cd "${job#ab:}" && pwd) side_b=$ref expect=0 ;;
    *) echo "unknown job $job" | tee -a "$log"; exit 2 ;;
  esac
  out=$work/$index-${job//[:\/]/_}
  start=$SECONDS
  echo "=== job $index: $job (ref $side_a, candidate $side_b, $PAIRS pairs, seed $((SEED + index)))" | tee -a "$log"
  python3 -m runners.ab ref_dir="$side_a" candidate="$side_b" pairs="$PAIRS" max_pairs="$MAX_PAIRS" \
    budget_s="$BUDGET_S" seed=$((SEED + index)) out="$out" sweep="$SWEEP" ${judge_arg[@]+"${judge_arg[@]}"} 2>&1 | tee -a "$log"
  python3 -m reports.ab dir="$out" $JUDGE >>"$log" 2>&1
  status=$?
  headline=$(grep -m1 -E '^\*\*' "$out/ab.md")
  keys=$(grep -m1 -E '^Keys: ' "$out/ab.md")
  pairs=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["orders"]))' "$out/ab.json")
  echo "$headline" | tee -a "$log"
  verdict="job $index $job: exit $status (expected $expect), $pairs pairs in $((SECONDS - start)) s; $keys; $headline"
  [ "$status" = "$expect" ] || { ok=false; verdict="$verdict  <-- UNEXPECTED"; }
  summary+=("$verdict")
  rm -rf "$out/trees"
done
rm -rf "$copy"
{ echo "=== gate check summary"; printf '%s\n' "${summary[@]}"; } | tee -a "$log"
(cd "$work" && tar czf "$OUT/gate-check.tgz" .) && rm -rf "$work"
$ok
