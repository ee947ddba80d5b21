"""The shell wrappers: `make` hands its variables to the entry points through the environment
(runners/make_command.py), so no shell reads them again (no command runs, no glob expands), and
scripts/gpu_bench.sh takes only dtypes as its first argument and passes every other one as given."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runners.make_command import expand

ROOT = Path(__file__).resolve().parents[1]


def make(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`make -f <repo>/Makefile ARGS...` run in `tmp_path` with this interpreter (no .venv made)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = ["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), *args, f"PY={sys.executable}"]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_make_variables_never_run_as_commands(tmp_path):
    done = make(tmp_path, "compare", f"BASELINE=x; touch {tmp_path}/a", f"CANDIDATE=$$(touch {tmp_path}/b)",
                f"ARGS=alpha=0.01 $$(touch {tmp_path}/c) `touch {tmp_path}/d` $(shell touch {tmp_path}/e)")  # fmt: skip
    assert done.returncode != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [], done.stdout + done.stderr


def test_make_args_are_split_as_shell_words_without_glob_expansion(tmp_path):
    (tmp_path / "candidate=cx.csv").touch()  # `candidate=c[xy].csv` would glob to it in a shell
    baseline = ROOT / "tests" / "fixtures" / "compare" / "baseline.csv"
    done = make(tmp_path, "compare", f"BASELINE={baseline}", "ARGS='markdown=x y.md' candidate=c[xy].csv")
    assert "candidate file not found: c[xy].csv" in done.stderr, done.stderr


def test_one_value_stays_one_argument_and_an_empty_one_is_left_out():
    environ = {"DTYPE": "fp32; echo X", "ARGS": "'p=[0.1, 0.5]' mode=fwd $(touch f) *", "LAUNCHER": ""}
    args = expand(["dtype={DTYPE}", "launcher={LAUNCHER}", "{ARGS...}", "gpus=1"], environ)
    assert args == ["dtype=fp32; echo X", "p=[0.1, 0.5]", "mode=fwd", "$(touch", "f)", "*", "gpus=1"]
    with pytest.raises(ValueError, match="ARGS="):
        expand(["{ARGS...}"], {"ARGS": "'p=[0.1"})


def test_gpu_bench_refuses_dtypes_that_are_not_dtypes(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PY": "python3"}
    done = subprocess.run(["bash", "scripts/gpu_bench.sh", f"fp32;touch {tmp_path}/x"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "give all, or dtypes" in done.stderr
    assert not (tmp_path / "x").exists()


def test_gpu_bench_logs_into_an_out_folder_it_creates(tmp_path):
    # OUT=$OUT/run1 on the device names a folder that does not exist yet: the log must still hold
    # the sweep's whole output. `make` and `nvidia-smi` are stand-ins that only print.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("make", "nvidia-smi"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} ran: $*"\n')
        (bin_dir / tool).chmod(0o755)
    out = tmp_path / "out" / "run1"
    env = {**os.environ, "OUT": str(out), "PY": sys.executable, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", "scripts/gpu_bench.sh", "fp32"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    log = (out / "bench.log").read_text()
    assert log.startswith("=== ") and "nvidia-smi ran:" in log
    assert "make ran: bench DTYPE=all" in log and "=== make bench exit 0" in log
