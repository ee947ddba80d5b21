set -o pipefail; export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
timeout 120 python3 -X faulthandler scripts/.diag.py 2>&1 | grep -v "^  File \"/opt\|^Extension modules" | tail -40
timeout 240 python3 -m pytest -v -x -p no:cacheprovider tests/test_gpu.py tests/test_fast_path.py > $OUT/gpu-tests-fast.log 2>&1; echo rc $?
grep -v "^  File \"/opt" $OUT/gpu-tests-fast.log | grep -v "^Extension" | tail -40
