"""scripts/plant_host_slowdown.py: its edits land in a copy, never here, and the copy still imports
and computes what the product computes (the GPU session measures what the plant costs)."""

from __future__ import annotations

import ast
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from kernels import seeded_variational_dropout

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "plant_host_slowdown.py"

CHECK = """
import statistics, sys, time, torch
import kernels
from kernels import fast_path, seeded_variational_dropout
assert kernels.__file__.startswith(sys.argv[1]), kernels.__file__
x = torch.arange(96, dtype=torch.float32).reshape(4, 3, 8)
print("sum", float(seeded_variational_dropout(x, 0.5, 1, seed=7).sum()))
times = []
for _ in range(7):
    start = time.perf_counter()
    seeded_variational_dropout(x, 0.5, 1, seed=7)
    times.append(time.perf_counter() - start)
print("ms", statistics.median(times) * 1e3)
print("fast_path", fast_path.module() is None)
"""


def copy_of_kernels(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "kernels", tree / "kernels", ignore=shutil.ignore_patterns("__pycache__"))
    return tree


def plant(tree: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(tree), *args], capture_output=True, text=True)


def run_copy(tree: Path) -> dict[str, str]:
    """What the copy's op computes and how long a CPU call takes, in a process importing the copy."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", CHECK, str(tree)], cwd=tree, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(line.split(" ", 1) for line in done.stdout.splitlines())


def product_call_ms_and_sum() -> tuple[float, float]:
    x = torch.arange(96, dtype=torch.float32).reshape(4, 3, 8)
    total = float(seeded_variational_dropout(x, 0.5, 1, seed=7).sum())
    times = []
    for _ in range(7):
        start = time.perf_counter()
        seeded_variational_dropout(x, 0.5, 1, seed=7)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3, total


@pytest.mark.slow
def test_a_planted_busy_loop_slows_the_copys_calls_and_changes_nothing_else(tmp_path):
    tree = copy_of_kernels(tmp_path)
    done = plant(tree, "--percent", "300", "--shape", "4,3,8")  # the CHECK's input; 4x its call
    assert done.returncode == 0, done.stderr
    source = (tree / "kernels" / "functional.py").read_text()
    assert "PLANTED HOST SLOWDOWN" in source and "PLANTED" not in (ROOT / "kernels" / "functional.py").read_text()
    function = next(node for node in ast.walk(ast.parse(source))
                    if isinstance(node, ast.FunctionDef) and node.name == "seeded_variational_dropout")  # fmt: skip
    assert isinstance(function.body[1], ast.For)  # the loop comes first, after the docstring
    copy = run_copy(tree)
    product_ms, product_sum = product_call_ms_and_sum()
    assert float(copy["sum"]) == product_sum  # same output
    assert float(copy["ms"]) > 2 * product_ms  # 4x planted (a ratio measured under the same load); 2x at least
    assert "of the op's call at 4,3,8 here (asked 300.0%)" in done.stdout
    again = plant(tree, "--percent", "5")
    assert again.returncode != 0 and "planted already" in again.stderr


@pytest.mark.slow
def test_the_copy_without_the_cpp_hot_path_still_imports_and_computes_the_same(tmp_path):
    tree = copy_of_kernels(tmp_path)
    done = plant(tree, "--no-fast-path")
    assert done.returncode == 0, done.stderr
    assert "return None  # PLANTED HOST SLOWDOWN" in (tree / "kernels" / "fast_path.py").read_text()
    copy = run_copy(tree)
    assert copy["fast_path"] == "True"  # module() gives None: every call takes the Python launch
    assert float(copy["sum"]) == product_call_ms_and_sum()[1]


def test_the_script_refuses_this_checkout_and_a_tree_that_is_no_copy(tmp_path):
    refused = plant(ROOT, "--percent", "10")
    assert refused.returncode != 0 and "refusing" in refused.stderr
    empty = plant(tmp_path, "--no-fast-path")
    assert empty.returncode != 0 and "not a copy" in empty.stderr
    nothing = plant(copy_of_kernels(tmp_path), "--percent", "0")
    assert nothing.returncode != 0 and "more than 0" in nothing.stderr
