#!/usr/bin/env bash
# One device command for a performance change (issue 6): the before/after probe side by side, then
# the full sweep of every dtype with the code after, then the CI sweep; all results in one archive.
#
# usage, from the repo root on the GPU machine (Hydra carried as wheels in .whl/, see shared/GPU.md):
#   OUT=/some/dir GIT_SHA=<sha> [PROBE=kernel_ab] bash scripts/gpu_perf_round.sh "LABEL:ARGS" ["LABEL:ARGS" ...]
#     each "LABEL:ARGS" is one process of scripts/$PROBE.py (default ab_probe: host, graph and event
#     figures; kernel_ab: the kernels' device time over sizes and dtypes), e.g.
#       "before:--kernels-from .before"    (an export of the previous commit's kernels/)
#       "tiles-off:--set _PROGRAMS_PER_SM=0"  "after:"
# Writes $OUT/round.tgz: ab.csv, the sweep CSVs (results/<gpu>/...), the CI candidate, the logs.
# Each step has its own time limit, cut shorter when the whole round would pass ROUND_S seconds
# (default 560, under the device's 600 s a command), so the archive is always made.
set -uo pipefail
: "${OUT:?set OUT}"
PROBE=${PROBE:-ab_probe}
deadline=$((SECONDS + ${ROUND_S:-560}))
limit() {  # limit WANTED: WANTED seconds, or what is left before the deadline less 20 s for the archive
  local left=$((deadline - SECONDS - 20))
  echo $(($1 < left ? $1 : (left > 1 ? left : 1)))
}
export PYTHONUNBUFFERED=1
if [ -d .whl ] && ! python3 -c "import hydra" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 2
fi
export PYTHONPATH=/tmp/site:$PWD
work=$OUT/round && mkdir -p "$work"
python3 -c "from kernels import fast_path; print('C++ hot path:', fast_path.module())" 2>&1 | tail -2 | tee "$work/build.log"
for spec in "$@"; do
  label=${spec%%:*} args=${spec#*:}
  OUT=$work timeout "$(limit 150)" python3 "scripts/$PROBE.py" --label "$label" $args > "$work/ab-$label.log" 2>&1
  echo "probe $label: exit $?"; grep "^('host" "$work/ab-$label.log" | head -8
done
OUT=$work LOG=$work/bench-default.log timeout "$(limit 240)" bash scripts/gpu_bench.sh all > /dev/null 2>&1; echo "default sweep: exit $?"
OUT=$work LOG=$work/bench-elementwise.log timeout "$(limit 100)" bash scripts/gpu_bench.sh all shape=elementwise > /dev/null 2>&1
echo "element-wise sweep: exit $?"
OUT=$work LOG=$work/bench-channel.log timeout "$(limit 90)" bash scripts/gpu_bench.sh fp16,fp32 shape=channel > /dev/null 2>&1
echo "channel sweep: exit $?"
timeout "$(limit 50)" make bench-ci PY=python3 ARGS="git_sha=${GIT_SHA:-unknown}" > "$work/bench-ci.log" 2>&1; echo "CI sweep: exit $?"
cp results/ci/candidate*.csv "$work/" 2>/dev/null
tail -4 "$work/bench-default.log"
(cd "$work" && tar czf "$OUT/round.tgz" .) && rm -rf "$work" && ls -la "$OUT"
