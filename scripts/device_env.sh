# Sourced by the device scripts (gpu_bench.sh, gpu_tests.sh, gate_check.sh), from the repo root:
# where the interpreter ($PY, default python3) lacks Hydra, Hydra and the launchers are installed
# from the wheels carried in .whl/ into /tmp/site (docs/harness.md, "On the GPU machine"); then the
# repo root goes on PYTHONPATH. Exits the calling script with status 2 when the install fails.
PY=${PY:-python3}
if [ -d .whl ] && ! "$PY" -c "import hydra" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 2
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
