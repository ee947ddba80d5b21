"""Which results reach the README: every published GPU folder (`results/<gpu-slug>/` other than
cpu-smoke and ci, whose rows come from the GPU it is named after) and nothing else, whatever is
named on the command line; a render that would drop a GPU the README shows refuses."""

from pathlib import Path

import pandas as pd
import pytest

from reports import readme, render, results

FIXTURE = Path(__file__).parent / "fixtures" / "report" / "fixture-h200"
README_TEMPLATE = f"# Project\n\n{readme.BEGIN}\nold generated text\n{readme.END}\n\nText after.\n"
REPO_README = Path(__file__).parent.parent / "README.md"


def write_gpu(folder: Path, gpu: str) -> None:
    """A small GPU folder, quick to render: the fixture's fp32 fwd rows of the event and host timers,
    measured on `gpu`."""
    frame = pd.read_csv(FIXTURE / "fp32.csv", keep_default_na=False, na_values=["nan"])
    frame = frame[frame.timer.isin(["event", "host"]) & (frame["mode"] == "fwd")].assign(gpu=gpu)
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "fp32.csv", index=False)


def snapshot(root: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def main(root: Path, *args: str) -> int:
    return render.main([*args, "--readme", str(root / "README.md")])


@pytest.fixture
def repo(tmp_path):
    """tmp_path laid out like the repo, the README showing one published GPU, GPU A."""
    write_gpu(tmp_path / "results" / "gpu-a", "GPU A")
    (tmp_path / "README.md").write_text(README_TEMPLATE)
    assert main(tmp_path, str(tmp_path / "results")) == 0
    assert "### GPU A (`gpu-a`)" in (tmp_path / "README.md").read_text()
    return tmp_path


def test_gpu_slug_is_the_folder_name_the_runners_give():
    from runners.rows import gpu_slug

    assert results.gpu_slug is gpu_slug  # one definition, the CSV contract's
    expected = ("nvidia-h200", "nvidia-geforce-rtx-4090", "amd-instinct-mi300x", "nvidia-h200-b-x-b", "")
    for name, slug in zip(("NVIDIA H200", "NVIDIA GeForce RTX 4090", "AMD Instinct MI300X",
                           "NVIDIA *H200* | <b>x</b>", ""), expected, strict=True):  # fmt: skip
        assert gpu_slug(name) == slug, name


def test_the_committed_readme_shows_the_h200():
    assert "nvidia-h200" in render.shown_gpus(REPO_README.read_text(), str(REPO_README))


def test_an_empty_folder_is_an_error_and_changes_nothing(repo, capsys):
    (repo / "empty").mkdir()
    before = snapshot(repo)
    assert main(repo, str(repo / "empty")) == 1
    assert "empty: nothing to render" in capsys.readouterr().err
    assert snapshot(repo) == before


@pytest.mark.parametrize("name", ["cpu-smoke", "ci"])
def test_a_named_unpublished_folder_is_rendered_but_kept_out_of_the_readme(repo, capsys, name):
    write_gpu(repo / "results" / name, "NVIDIA H200")
    text = (repo / "README.md").read_text()
    assert main(repo, str(repo / "results" / name)) == 0
    assert (repo / "results" / name / "summary.md").is_file()
    assert (repo / "README.md").read_text() == text
    assert f"{name}: rendered, not in the README" in capsys.readouterr().err


def test_a_stray_csv_at_the_top_of_results_is_left_out(repo, capsys):
    (repo / "results" / "fp32.csv").write_bytes((repo / "results" / "gpu-a" / "fp32.csv").read_bytes())
    before = snapshot(repo)
    assert main(repo, str(repo / "results")) == 0
    assert snapshot(repo) == before  # no results/summary.md, no results/figures, the README as it was
    assert "fp32.csv: left out, not in a GPU folder" in capsys.readouterr().err


def test_a_folder_not_named_after_its_gpu_is_kept_out_of_the_readme(repo, capsys):
    write_gpu(repo / "results" / "gpu-b", "GPU C")
    text = (repo / "README.md").read_text()
    assert main(repo, str(repo / "results")) == 0
    assert (repo / "README.md").read_text() == text
    assert "gpu-b: rendered, not in the README: its rows are from GPU C (gpu-c)" in capsys.readouterr().err


def test_a_render_of_one_gpu_rebuilds_the_readme_from_every_published_gpu(repo):
    write_gpu(repo / "results" / "gpu-b", "GPU B")
    assert main(repo, str(repo / "results" / "gpu-b")) == 0
    assert render.shown_gpus((repo / "README.md").read_text()) == ["gpu-a", "gpu-b"]


def remove_csvs(folder: Path) -> None:
    for path in folder.glob("*.csv"):
        path.unlink()


def add_row_of_another_gpu(folder: Path) -> None:
    frame = pd.read_csv(folder / "fp32.csv", keep_default_na=False, na_values=["nan"])
    pd.concat([frame, frame.head(1).assign(gpu="GPU Z")]).to_csv(folder / "fp32.csv", index=False)


@pytest.mark.parametrize(("change", "why"), [
    (remove_csvs, "no <dtype>.csv"),
    (add_row_of_another_gpu, "its rows are from GPU A (gpu-a) / GPU Z (gpu-z)"),
])
def test_a_render_that_would_drop_a_shown_gpu_refuses(repo, capsys, change, why):
    write_gpu(repo / "results" / "gpu-b", "GPU B")
    change(repo / "results" / "gpu-a")
    before = snapshot(repo)
    for named in ("results", "results/gpu-b"):
        assert main(repo, str(repo / named)) == 1
        error = capsys.readouterr().err
        assert "would drop gpu-a" in error and why in error and "--allow-drop gpu-a" in error
        assert snapshot(repo) == before  # nothing written, gpu-b's figures included


def test_allow_drop_removes_the_section(repo):
    remove_csvs(repo / "results" / "gpu-a")
    assert main(repo, str(repo / "results"), "--allow-drop", "gpu-a") == 0
    assert render.shown_gpus((repo / "README.md").read_text()) == []
    assert "No GPU results yet" in (repo / "README.md").read_text()
