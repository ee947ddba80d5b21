set -o pipefail; export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
python3 -c "
import time, torch; t=time.time()
from kernels import fast_path
m = fast_path.module(); print('extension', m, round(time.time()-t, 1), 's')" 2>&1 | tail -20 | tee $OUT/build.log
timeout 240 python3 -m pytest -q -x -p no:cacheprovider tests/test_gpu.py tests/test_fast_path.py 2>&1 | tail -30 | tee $OUT/gpu-tests-fast.log
for label in before after-python after; do
  case $label in before) a="--kernels-from .before";; *) a="";; esac
  if [ $label = after-python ]; then export SEEDED_DROPOUT_CPP=0; else unset SEEDED_DROPOUT_CPP; fi
  timeout 150 python3 scripts/ab_probe.py --label $label $a 2>&1 | grep -v "^('event\|^('cuda_graph" | tail -12
done
timeout 200 bash scripts/gpu_tests.sh 2>&1 | tail -15
