"""The README's claims: its model example runs as written (on CPU), its results section is what
`make report` renders from the committed CSVs, and its hand-written reading of the results holds no
number of its own (they all come from the generated section)."""

import re
import shutil
import sys
from pathlib import Path

import pytest
import torch

import kernels
from reports import figures, readme, render

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def python_block_after(heading: str) -> str:
    """The first ```python block after `heading` in the README."""
    text = README.read_text()
    assert heading in text, heading
    return re.search(r"```python\n(.*?)```", text.split(heading, 1)[1], re.S).group(1)


@pytest.mark.slow  # torch.compile with Inductor on CPU: tens of seconds
def test_the_use_it_in_your_model_example_runs_as_written(monkeypatch):
    code = python_block_after("## Use it in your model")
    assert "fullgraph=True" in code and "torch.compile(" in code
    # The example imports the package by its installed name; here it is `kernels`, which the other
    # tests import. A second copy of the package in this process would define its custom ops again:
    # torch destroys the first definitions' library and registers the copy's. On the H200 (torch
    # 2.11) compiled calls then failed ("Tried to access the schema for ."): this test's own when it
    # ran first in a process, a later test's in the same worker in the suite; with one copy both
    # pass. The example runs on the package under test.
    monkeypatch.setitem(sys.modules, "seeded_variational_dropout", kernels)
    namespace = {}
    try:
        exec(compile(code, "README.md", "exec"), namespace)  # fullgraph=True: a graph break raises
    finally:
        torch._dynamo.reset()
    y, z = namespace["y"], namespace["z"]
    assert y.shape == z.shape == (8, 64, 256) and y.grad_fn is not None
    kept = z != 0  # randn has no exact zeros: the mask itself, shared along time
    assert torch.equal(kept, kept[:, :1].expand_as(kept)) and 0.3 < kept.float().mean() < 0.7


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
