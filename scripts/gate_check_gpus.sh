#!/usr/bin/env bash
# The A/B gate's proof (scripts/gate_check.sh) spread over the GPUs of one machine: one gate_check.sh
# per GPU, all at once, each on its own GPU (CUDA_VISIBLE_DEVICES), its own share of the CPU cores
# (taskset), its own copy of the tree under test and its own output folder; each runs its group of
# jobs one after another. A gate job times whole processes, so two jobs never share a GPU. Whether
# jobs on neighbouring GPUs of one host move each other's host-time keys is what A/A jobs on several
# GPUs at once show.
#
# usage, from the repo root on a machine with at least as many GPUs as groups (Hydra carried as
# wheels in .whl/, docs/harness.md "On the GPU machine"):
#   OUT=/some/dir bash scripts/gate_check_gpus.sh "JOB [JOB ...]" ["JOB [JOB ...]" ...]
#     one quoted group of scripts/gate_check.sh jobs per GPU: GPU i runs group i
#   e.g. on an nvidia-h200-x4 (two jobs a group: BUDGET_S=240 keeps each at its first 4 pairs, about
#   300 s for the first job, compiling, and 240 s for the second at git 849ebd2: under 10 minutes):
#     BUDGET_S=240 bash scripts/gate_check_gpus.sh "aa nofast" "aa host:10" "aa plant:5" "nofast host:10"
#   The tree under test is this working tree, copied for each GPU to $TREES/tree-<i> (TREES defaults to
#   /tmp/gate-trees). PAIRS, MAX_PAIRS, BUDGET_S, SWEEP, JUDGE reach every gate_check.sh; SEED (default
#   1) becomes SEED + 100 * i on GPU i, so no two jobs draw the same first order.
# Writes $OUT/gate-check.log (every GPU's summary) and $OUT/gate-check-gpus.tgz (each GPU's folder
# gpu-<i>/: its gate-check.log, gate-check.tgz and output). Exit status 0 when every job's verdict is
# what its kind expects, 2 on bad usage.
set -uo pipefail
: "${OUT:?set OUT to the folder that collects the results}"
if [ $# -lt 1 ]; then
  awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"  # the usage above
  exit 2
fi
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
if [ "$#" -gt "${gpus:-0}" ]; then
  echo "gate_check_gpus.sh: $# groups of jobs need $# GPUs, and this machine shows ${gpus:-0}" >&2
  exit 2
fi
export PYTHONUNBUFFERED=1
source scripts/device_env.sh  # Hydra installed once here: the jobs then find it and install nothing
TREES=${TREES:-/tmp/gate-trees}
SEED=${SEED:-1}
cores=$(nproc)
share=$((cores / $#))
pids=()
for i in $(seq 0 $(($# - 1))); do
  group_index=$((i + 1))
  jobs_of_gpu=${!group_index}
  tree=$TREES/tree-$i
  rm -rf "$tree" "$tree-copy" && mkdir -p "$tree" || exit 2
  tar --exclude=./.git --exclude=./.whl --exclude=./results -cf - . | tar -xf - -C "$tree" || exit 2
  mkdir -p "$OUT/gpu-$i"
  first=$((i * share))
  last=$((share > 0 ? first + share - 1 : first))
  # shellcheck disable=SC2086  # the group is a list of job words
  CUDA_VISIBLE_DEVICES=$i OUT=$OUT/gpu-$i SEED=$((SEED + 100 * i)) \
    taskset -c "$first-$last" bash scripts/gate_check.sh "$tree" $jobs_of_gpu > "$OUT/gpu-$i/stdout.log" 2>&1 &
  pids+=($!)
  echo "GPU $i (cores $first-$last): $jobs_of_gpu"
done
ok=true
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || ok=false
done
{
  for i in "${!pids[@]}"; do
    echo "=== GPU $i"
    sed -n '/^=== gate check summary/,$p' "$OUT/gpu-$i/gate-check.log" 2>/dev/null | tail -n +2 ||
      echo "no summary: see $OUT/gpu-$i/stdout.log"
  done
} | tee "$OUT/gate-check.log"
# One archive for every GPU's files (a device command returns at most 8 files).
(cd "$OUT" && tar czf gate-check-gpus.tgz gpu-*) && rm -rf "$OUT"/gpu-*
$ok
