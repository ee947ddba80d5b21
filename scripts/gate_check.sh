#!/usr/bin/env bash
# The A/B gate's proof on a GPU machine: A/B jobs (runners/ab.py, then reports/ab.py) of a tree
# against a copy of itself (A/A: must PASS) and against copies with a planted slowdown
# (scripts/plant_slowdown.py: must FAIL), each job's verdict and exit status in one log.
#
# usage, from the repo root (Hydra carried as wheels in .whl/, docs/harness.md "On the GPU machine"):
#   OUT=/some/dir bash scripts/gate_check.sh REF_TREE JOB [JOB ...]
#     REF_TREE: a copy of the repo at the commit under test (git archive HEAD | tar -x -C REF_TREE)
#     JOB: aa (REF_TREE against a copy of itself), plant:K (the copy with every K-th program reading
#          a second tile: K=5 about 10% slower on large tensors, K=1 about 1.5x), or ab:DIR (DIR as
#          the ref side, REF_TREE as the candidate: e.g. the commit before a change)
#   PAIRS (default 3), SEED (default 1: job i uses SEED + i) set the jobs' pairs and order seeds;
#   SWEEP (default experiment=ci) the sweep of every process, JUDGE extra key=value for reports.ab.
# Writes $OUT/gate-check.log (every verdict, one line per job at the end) and $OUT/gate-check.tgz
# (each job's ab.json, ab.md and per-process CSVs and logs). Exit status 0 when every job's verdict
# is what its kind expects (aa and ab: PASS; plant: FAIL).
set -uo pipefail
: "${OUT:?set OUT to the folder that collects the results}"
[ $# -ge 2 ] || { sed -n '2,16p' "$0"; exit 2; }
ref=$(cd "$1" && pwd) || exit 2
shift
PAIRS=${PAIRS:-3}
SEED=${SEED:-1}
SWEEP=${SWEEP:-experiment=ci}
JUDGE=${JUDGE:-}
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
    ab:*) side_a=$(cd "${job#ab:}" && pwd) side_b=$ref expect=0 ;;
    *) echo "unknown job $job" | tee -a "$log"; exit 2 ;;
  esac
  out=$work/$index-${job//[:\/]/_}
  start=$SECONDS
  echo "=== job $index: $job (ref $side_a, candidate $side_b, $PAIRS pairs, seed $((SEED + index)))" | tee -a "$log"
  python3 -m runners.ab ref_dir="$side_a" candidate="$side_b" pairs="$PAIRS" seed=$((SEED + index)) out="$out" \
    sweep="$SWEEP" 2>&1 | tee -a "$log"
  python3 -m reports.ab dir="$out" $JUDGE >>"$log" 2>&1
  status=$?
  grep -m1 -E '^\*\*' "$out/ab.md" | tee -a "$log"
  verdict="job $index $job: exit $status (expected $expect) in $((SECONDS - start)) s"
  [ "$status" = "$expect" ] || { ok=false; verdict="$verdict  <-- UNEXPECTED"; }
  summary+=("$verdict")
  rm -rf "$out/trees"
done
rm -rf "$copy"
{ echo "=== gate check summary"; printf '%s\n' "${summary[@]}"; } | tee -a "$log"
(cd "$work" && tar czf "$OUT/gate-check.tgz" .) && rm -rf "$work"
$ok
