#!/usr/bin/env bash
# The benchmark sweep on the GPU machine, in one device command: `make bench` for the dtypes asked,
# rows written straight under $OUT (so a command cut off at its time limit still returns every
# finished row), then a listing of what was written.
#
# usage, from the repo root (Hydra carried as wheels in .whl/, see docs/harness.md "On the GPU machine"):
#   OUT=/some/dir bash scripts/gpu_bench.sh [DTYPES] [hydra overrides...]
#     DTYPES: all (default), one dtype, or a comma list: fp16,bf16
#   e.g. bash scripts/gpu_bench.sh fp32 shape=seed_sweep      # quick check of every GPU code path
#        bash scripts/gpu_bench.sh fp32 passes=3              # the sweep in 3 processes, rounds pooled
#        bash scripts/gpu_bench.sh fp16,bf16                  # the default sweep, two dtypes
# Environment: PY (default python3), GIT_SHA (provenance where the copy has no .git),
#   LOG (default $OUT/bench.log; with all four dtypes /tmp/bench.log, since 8 data files are
#   already the most a device command returns: the output tail still shows the summary),
#   RESUME=1: first copy results/<gpu-slug>/<dtype>.csv (+ samples) of the dtypes asked under $OUT,
#   so the sweep skips the keys they hold (after a call cut off at its time limit: copy what came
#   back into results/<gpu-slug>/, then run the same command with RESUME=1). With passes=N each pass
#   resumes from its own files under $OUT/.passes, which a fresh machine does not have: RESUME=1 does
#   not apply there.
# Results: $OUT/<gpu-slug>/<dtype>.csv and <dtype>.samples.csv; copy them into results/<gpu-slug>/.
set -uo pipefail

: "${OUT:?set OUT to the folder that collects the results}"
mkdir -p "$OUT" || exit 2  # a folder under $OUT (OUT=$OUT/run1) does not exist yet: the log is written there
PY=${PY:-python3}
DTYPES=${1:-all}
shift $(($# > 0 ? 1 : 0))
export PYTHONUNBUFFERED=1

one='(fp16|bf16|fp32|fp64)'
if ! [[ $DTYPES =~ ^(all|$one(,$one)*)$ ]]; then
  echo "DTYPES=$DTYPES: give all, or dtypes of fp16, bf16, fp32, fp64 joined by commas (fp16,bf16)" >&2
  exit 2
fi

# Each argument for make's ARGS, quoted as one shell word: make hands ARGS to runners/make_command.py,
# which splits it as shell words (no expansion), so every argument arrives as given.
quote() {
  local arg
  for arg in "$@"; do printf "'%s' " "${arg//\'/\'\\\'\'}"; done
}

source scripts/device_env.sh
set -f  # from here on no glob expansion: an argument is used as given, whatever files lie here

if [ "$DTYPES" = all ]; then
  dtype_list="fp16 bf16 fp32 fp64"
  dtype_args="dtype=all"
else
  dtype_list=$(tr ',' ' ' <<<"$DTYPES")
  dtype_args="dtype=all dtype.names=[$DTYPES]"  # one process: compiled kernels are reused
fi
count=$(wc -w <<<"$dtype_list")
if [ -z "${LOG:-}" ]; then
  if [ "$count" -ge 4 ]; then LOG=/tmp/bench.log; else LOG=$OUT/bench.log; fi
fi

args="$dtype_args $(quote "results_dir=$OUT" ${GIT_SHA:+"git_sha=$GIT_SHA"} "$@")"
{
  echo "=== $(date -u +%FT%TZ) make bench ARGS=\"$args\""
  nvidia-smi --query-gpu=name,uuid,pci.bus_id,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
} | tee "$LOG"
if [ "${RESUME:-0}" = 1 ]; then
  slug=$("$PY" -c "import torch; from runners.rows import gpu_slug; print(gpu_slug(torch.cuda.get_device_name()))") ||
    { echo "RESUME=1: no GPU name, nothing to resume from" | tee -a "$LOG"; slug=none; }
  for dtype in $dtype_list; do
    for f in "results/$slug/$dtype.csv" "results/$slug/$dtype.samples.csv"; do
      if [ -f "$f" ]; then mkdir -p "$OUT/$slug" && cp "$f" "$OUT/$slug/" && echo "resuming from $f" | tee -a "$LOG"; fi
    done
  done
fi

start=$SECONDS
make bench DTYPE=all PY="$PY" ARGS="$args" 2>&1 | tee -a "$LOG"
status=${PIPESTATUS[0]}
# The writers' lock files (.<dtype>.csv.lock) are empty and of no use once the sweep has ended; a
# device command returns at most 8 files, so they go.
find "$OUT" -type f -name '.*.lock' -delete
# A sweep in passes (passes=N) keeps each pass's files under $OUT/.passes; the pooled rows hold every
# sample, so the passes travel back as one archive.
if [ -d "$OUT/.passes" ]; then
  tar czf "$OUT/passes.tgz" -C "$OUT" .passes && rm -rf "$OUT/.passes"
fi
echo "=== make bench exit $status after $((SECONDS - start)) s; under $OUT:" | tee -a "$LOG"
find "$OUT" -type f -name '*.csv' -printf '%P %s bytes\n' | sort | tee -a "$LOG"
exit "$status"
