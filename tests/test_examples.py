"""The examples run as plain scripts that import the installed package (`make install` installs it,
editable), on CPU; they train, and really are a one-line swap (both sides of the line run)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*_swap.py"))
SWAP_LINE = re.compile(r"^(?P<indent>\s*)(?P<now>.*SeededVariationalDropout\(.*?)\s*# was: (?P<was>.+)$")


def run_script(path: Path, *args: str) -> str:
    """`python path ...` as a user runs it: from the repo root, without the repo on PYTHONPATH."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    done = subprocess.run(
        [sys.executable, str(path), "--device", "cpu", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def losses(output: str) -> list[float]:
    return [float(v) for v in re.findall(r"loss (\d+\.\d+)", output)]


def swap_lines(source: str) -> list[re.Match]:
    return [m for m in map(SWAP_LINE.match, source.splitlines()) if m]


def test_there_are_examples_for_both_models():
    assert EXAMPLES == ["awd_lstm_swap", "transformer_swap"]


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_trains_with_the_seeded_op(example):
    output = run_script(ROOT / "examples" / f"{example}.py", "--steps", "30")
    assert "SeededVariationalDropout(" in output
    trace = losses(output)
    assert len(trace) >= 2 and trace[-1] < trace[0] - 0.1, trace


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_is_a_one_line_swap_and_the_old_line_runs_too(example, tmp_path):
    source = (ROOT / "examples" / f"{example}.py").read_text()
    (swap,) = swap_lines(source)
    assert source.count("SeededVariationalDropout(") == 1, "the op is made on one line only"
    original = source.replace(swap.group(0), swap.group("indent") + swap.group("was"))
    (tmp_path / f"{example}_original.py").write_text(original)
    (tmp_path / "toy_training.py").write_text((ROOT / "examples" / "toy_training.py").read_text())
    output = run_script(tmp_path / f"{example}_original.py", "--steps", "2")
    assert "SeededVariationalDropout(" not in output and len(losses(output)) == 2
