#!/usr/bin/env bash
# Device command: the whole test suite against CUDA tensors (run from the repo root on the GPU machine).
#   bash scripts/gpu_tests.sh      (writes $OUT/gpu-tests.log when OUT is set)
set -o pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
log="${OUT:-/tmp}/gpu-tests.log"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())" | tee "$log"
python3 -m pytest -q -p no:cacheprovider "${@:-tests}" 2>&1 | tee -a "$log"
