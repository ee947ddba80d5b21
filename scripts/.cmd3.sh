set -o pipefail; export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit
python3 -c "from kernels import fast_path; print('extension', fast_path.module())" 2>&1 | tail -3
for label in before after-python after; do
  case $label in before) a="--kernels-from .before";; *) a="";; esac
  if [ $label = after-python ]; then export SEEDED_DROPOUT_CPP=0; else unset SEEDED_DROPOUT_CPP; fi
  timeout 150 python3 scripts/ab_probe.py --label $label $a > $OUT/ab-$label.log 2>&1; echo "$label rc $?"
  grep "^('host" $OUT/ab-$label.log
done
timeout 330 bash scripts/gpu_tests.sh > /dev/null 2>&1; echo "gpu tests rc $?"; tail -5 $OUT/gpu-tests.log
cd $OUT && tar czf logs.tgz ab-*.log gpu-tests.log && rm ab-*.log
