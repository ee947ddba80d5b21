#!/usr/bin/env bash
# Proof of the CI regression gate on the GPU machine, in one command:
#   1. make bench-ci                                    -> the baseline, kept as
#                                                          $OUT/results/nvidia-h200/ci-baseline.csv (+ samples)
#   2. make bench-ci again (same code)                  -> compare with 1: expect exit 0 (no false alarm)
#   3. make bench-ci, SEEDED_DROPOUT_PLANT_SLOWDOWN=1   -> compare with 1: expect exit 1 (slowdown caught)
# $OUT receives 8 files (the device tool's limit): the three CSVs and their samples files, gate_check.md
# (both comparison tables) and gate_check.log. The script exits 0 only when both expectations hold.
#
# usage, from the repo root (Hydra carried as wheels in .whl/, see shared/GPU.md):
#   OUT=/some/dir bash scripts/ci_gate_check.sh
#   BASELINE=results/nvidia-h200/ci-baseline.csv bash scripts/ci_gate_check.sh   # reuse a baseline: skip step 1
set -uo pipefail

: "${OUT:?set OUT to the folder that collects the results}"
PY=${PY:-python3}
export PYTHONUNBUFFERED=1
SWEEP_OUTPUT=results/ci/candidate  # where `make bench-ci` (experiment=ci) writes, without .csv
LOG=$OUT/gate_check.log
REPORT=$OUT/gate_check.md
mkdir -p "$OUT/ci" "$OUT/results/nvidia-h200"

if [ -d .whl ] && ! "$PY" -c "import hydra" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 2
  export PYTHONPATH=/tmp/site:$PWD
fi

# bench_ci DEST: a fresh `make bench-ci`, its CSV and samples copied to DEST.csv and DEST.samples.csv
bench_ci() {
  local dest=$1 start=$SECONDS
  rm -f "$SWEEP_OUTPUT.csv" "$SWEEP_OUTPUT.samples.csv"  # the writer merges into an existing file
  echo "=== make bench-ci -> $dest.csv (SEEDED_DROPOUT_PLANT_SLOWDOWN=${SEEDED_DROPOUT_PLANT_SLOWDOWN:-})" | tee -a "$LOG"
  if ! make bench-ci PY="$PY" 2>&1 | tee -a "$LOG"; then
    echo "=== bench-ci FAILED after $((SECONDS - start)) s" | tee -a "$LOG"
    return 1
  fi
  echo "=== bench-ci took $((SECONDS - start)) s" | tee -a "$LOG"
  cp "$SWEEP_OUTPUT.csv" "$dest.csv" && cp "$SWEEP_OUTPUT.samples.csv" "$dest.samples.csv"
}

# compare_run NAME EXPECTED: compare $OUT/ci/NAME.csv with the baseline; true when the exit status is EXPECTED
compare_run() {
  local name=$1 expected=$2 status
  "$PY" -m reports.compare baseline="$BASELINE" candidate="$OUT/ci/$name.csv" markdown="/tmp/$name.compare.md" \
    2>&1 | tee -a "$LOG"
  status=${PIPESTATUS[0]}
  cat "/tmp/$name.compare.md" >>"$REPORT" 2>/dev/null
  echo "=== $name vs baseline: compare exit $status (expected $expected)" | tee -a "$LOG"
  RESULTS+=("$name: exit $status, expected $expected")
  [ "$status" = "$expected" ]
}

RESULTS=()
ok=true
if [ -z "${BASELINE:-}" ]; then
  BASELINE=$OUT/results/nvidia-h200/ci-baseline.csv
  bench_ci "${BASELINE%.csv}" || exit 2
fi
bench_ci "$OUT/ci/repeat" && compare_run repeat 0 || ok=false
export SEEDED_DROPOUT_PLANT_SLOWDOWN=1
bench_ci "$OUT/ci/planted" && compare_run planted 1 || ok=false
unset SEEDED_DROPOUT_PLANT_SLOWDOWN

echo
echo "=== gate check (baseline $BASELINE):"
printf '  %s\n' "${RESULTS[@]}"
grep -hE '^\*\*|\| (regressed|noisy|improved) \|' "$REPORT" 2>/dev/null | cut -c1-200
$ok && echo "=== PASS: a repeat run is not flagged; the planted slowdown is" || echo "=== FAIL: see above"
$ok
