#!/usr/bin/env bash
# Device command: the whole test suite against CUDA tensors (run from the repo root on the GPU machine).
#   bash scripts/gpu_tests.sh [pytest arguments]      (writes $OUT/gpu-tests.log when OUT is set)
# With pytest-xdist importable (the device machine's image has it), the tests run in WORKERS
# processes (default 8) on the one GPU, then the tests marked `timing` (they measure GPU time and
# must not share the GPU) run alone; without xdist, or with pytest arguments, everything runs in one
# process. The exit status is that of the worse of the two runs. On the H200 machine (16 cores) the
# parallel part took 308 s with 8 workers (git f48c7da) and 393 s with 12 (git cd40fb3): more
# workers than 8 only contend; the whole suite needs about 450 s of a device call plus the start
# (6205e49: parallel part 327 s, timing part 97 s). The parallel part gives each worker cores /
# workers CPU threads (OMP_NUM_THREADS), where each torch took every core before; not yet timed.
# Hydra and the launchers are installed from carried wheels in .whl/ when the machine lacks Hydra
# (docs/harness.md, "On the GPU machine"). The op is made importable as `seeded_variational_dropout`
# by a link to kernels/ in the interpreter's site-packages, as `make install` (editable) does on a
# development machine: the examples import the package, and their tests run them without PYTHONPATH.
set -o pipefail
export PYTHONUNBUFFERED=1
source scripts/device_env.sh
if ! python3 -c "import seeded_variational_dropout" 2>/dev/null; then
  site=$(python3 -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") &&
    ln -sfn "$PWD/kernels" "$site/seeded_variational_dropout" || exit 2
fi
log="${OUT:-/tmp}/gpu-tests.log"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())" | tee "$log"
if [ $# -eq 0 ] && python3 -c "import xdist" 2>/dev/null; then
  # Each worker's torch would start one CPU thread per core for its CPU ops (the CPU-path tests, the
  # examples and models run on CPU): 8 workers x 16 threads on 16 cores. Here each gets its share.
  workers=${WORKERS:-8}
  threads=$(( $(nproc) / workers )); threads=$(( threads > 0 ? threads : 1 ))
  OMP_NUM_THREADS=${OMP_NUM_THREADS:-$threads} \
    python3 -m pytest -q -p no:cacheprovider -n "$workers" -m "not timing" --durations=15 tests 2>&1 | tee -a "$log"
  parallel=$?
  python3 -m pytest -q -p no:cacheprovider -m timing tests 2>&1 | tee -a "$log"
  alone=$?
  echo "=== parallel run exit $parallel, timing run exit $alone" | tee -a "$log"
  exit $((parallel > alone ? parallel : alone))
fi
python3 -m pytest -q -p no:cacheprovider "${@:-tests}" 2>&1 | tee -a "$log"
