"""The README's claims: its model example runs as written (on CPU), its results section is what
`make report` renders from the committed CSVs, and its hand-written reading of the results holds no
number of its own (they all come from the generated section)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reports import figures, readme, render

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def python_block_after(heading: str) -> str:
    """The first ```python block after `heading` in the README."""
    text = README.read_text()
    assert heading in text, heading
    return re.search(r"```python\n(.*?)```", text.split(heading, 1)[1], re.S).group(1)


# The example's checks, run after it in the same process.
EXAMPLE_CHECKS = """
assert y.shape == z.shape == (8, 64, 256) and y.grad_fn is not None
nonzero_steps = (z != 0).sum(dim=1)  # per (batch, feature): how many of the 64 time steps survived
# Locked: a column is dropped whole (0) or kept whole (64), less any exact zeros of randn itself: on
# CPU about one draw in 17 million is 0.0 (15 zeros in 2000 calls of this size), so a kept column may show
# one or two. Testing `z != 0` against its first time step failed in CI on such a zero.
assert bool(((nonzero_steps == 0) | (nonzero_steps >= 62)).all())
assert 0.3 < (nonzero_steps > 0).float().mean() < 0.7  # 2048 columns at p=0.5: 0.5 +- 0.011
print("example ran on", device)
"""


@pytest.mark.slow  # a fresh Python process and torch.compile with Inductor on CPU: tens of seconds
def test_the_use_it_in_your_model_example_runs_as_written(tmp_path):
    code = python_block_after("## Use it in your model")
    assert "fullgraph=True" in code and "torch.compile(" in code
    # As a user runs it: a fresh process that imports the installed package (`make install` puts it
    # in .venv; scripts/gpu_tests.sh links it on the GPU machine), with no TRITON_INTERPRET (the
    # suite sets it on CPU). Run in-process in the H200 suite (torch 2.11), the example's Inductor
    # kernels once ran in Triton's interpreter on CUDA tensors, and failed: state left in the worker
    # by an earlier test (CPU sweeps there set TRITON_INTERPRET=1 for their duration) is the likely
    # cause. A fresh process inherits none of it.
    script = tmp_path / "readme_example.py"
    script.write_text(code + EXAMPLE_CHECKS)  # fullgraph=True: a graph break raises
    env = {key: value for key, value in os.environ.items() if key not in ("TRITON_INTERPRET", "PYTHONPATH")}
    done = subprocess.run([sys.executable, str(script)], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "example ran on" in done.stdout


def test_the_hand_written_reading_of_the_results_holds_no_numbers():
    text = README.read_text()
    reading = text.split("## What the H200 results show", 1)[1].split(readme.BEGIN, 1)[0]
    prose = re.sub(r"\]\([^)]*\)|h200", "]", reading, flags=re.I)  # link targets and the GPU's name
    assert re.findall(r"[^\W\d_]*\d[\w.%]*", prose) == []


# reads every committed CSV; figures are not drawn (only the markdown is compared): about a second
def test_the_readme_results_section_is_what_make_report_renders_from_the_csvs(tmp_path, monkeypatch):
    for gpu_dir in (ROOT / "results").iterdir():
        if gpu_dir.is_dir() and list(gpu_dir.glob("fp*.csv")) + list(gpu_dir.glob("bf16.csv")):
            (tmp_path / "results" / gpu_dir.name).mkdir(parents=True)
            for csv in gpu_dir.glob("*.csv"):
                if not csv.name.endswith(".samples.csv"):
                    shutil.copy(csv, tmp_path / "results" / gpu_dir.name / csv.name)
    shutil.copy(README, tmp_path / "README.md")
    monkeypatch.setattr(figures, "png_bytes", lambda *args, **kwargs: b"")
    render.render([tmp_path / "results"], tmp_path / "README.md")
    assert readme.region((tmp_path / "README.md").read_text()) == readme.region(README.read_text())
