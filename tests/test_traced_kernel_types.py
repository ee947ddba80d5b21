"""The kernels as torch.compile builds them: every launch the package hands Inductor (through
`torch.library.wrap_triton`) compiles for an sm_90 GPU with the argument types Inductor gives it,
and computes in float32 unless its inputs are float64. No GPU needed: tests/compile_traced_launches.py
records the launches and compiles them in a process without Triton's interpreter.

Why: Inductor types a Python float argument as float64 where Triton's own launch types it float32;
a kernel that adds such an argument to its float32 values computes in float64 under torch.compile
(slower, silently) or fails to compile (a loop-carried value that changes type).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAUNCHES = 14  # 6 of the dropout kernel, 4 forward and 4 backward of the fused kernels


@pytest.mark.slow  # a process that compiles 14 Triton kernels: about 9 s
def test_every_traced_launch_compiles_with_inductors_argument_types(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(PYTHONPATH=str(ROOT), TRITON_CACHE_DIR=str(tmp_path / "triton-cache"))
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "compile_traced_launches.py")], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(results) == LAUNCHES, done.stdout
    assert [r["launch"] for r in results if not r["compiled"]] == [], done.stdout
    in_float64 = [r["launch"] for r in results if r["float64_tensors"] and not r["compute_f64"]]
    assert in_float64 == [], f"computes in float64 under torch.compile: {in_float64}"
