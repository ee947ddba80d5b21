"""The results writer: keyed upsert, atomic rewrite, samples beside the CSV, merge, GPU separation."""

import math

import pytest

from runners.merge import find_parts, missing_parts
from runners.merge import main as merge_main
from runners.results_io import MixedGpuError, ResultsFile, merge, read_results, samples_path_for
from runners.rows import COLUMNS, ResultRow


def make_row(impl="seeded", p=0.5, p50=1.0, gpu="NVIDIA H200", run_id="a", samples=(1.0, 2.0)):
    return ResultRow(
        run_id=run_id, gpu=gpu, impl=impl, mode="fwd", timer="event", dtype="fp16", shape="64x1x768",
        dim="(1,)", p=p, numel=49152, p50_ms=p50, n_samples=len(samples), samples_ms=list(samples),
    )  # fmt: skip


def test_upsert_replaces_rows_with_the_same_key_and_keeps_the_rest(tmp_path):
    path = tmp_path / "nvidia-h200" / "fp16.csv"
    results = ResultsFile(path)
    results.write(make_row("seeded", p50=1.0, run_id="first"))
    results.write(make_row("eager", p50=2.0, run_id="first"))
    results.write(make_row("seeded", p50=3.0, run_id="second", samples=(3.0,)))
    frame = read_results(path)
    assert list(frame.columns) == list(COLUMNS)
    assert frame.set_index("impl").loc["seeded", "p50_ms"] == 3.0
    assert frame.set_index("impl").loc["eager", "run_id"] == "first"
    assert len(frame) == 2
    samples = read_results(samples_path_for(path)).set_index("impl")
    assert samples.loc["seeded", "samples_ms"] == "3" and samples.loc["eager", "samples_ms"] == "1 2"
    assert sorted(p.name for p in path.parent.iterdir()) == ["fp16.csv", "fp16.samples.csv"]  # no temp


def test_reloaded_file_knows_its_keys(tmp_path):
    path = tmp_path / "fp16.csv"
    ResultsFile(path).write(make_row(p=0.1))
    again = ResultsFile(path)
    assert again.has(make_row(p=0.1).key())
    assert not again.has(make_row(p=0.2).key())


def test_values_round_trip_with_their_types(tmp_path):
    path = tmp_path / "fp16.csv"
    ResultsFile(path).write(make_row(p50=0.123456789012345))
    frame = read_results(path)
    assert frame.p50_ms[0] == 0.123456789012345 and math.isnan(frame.gbps[0])
    assert frame.numel.dtype == "int64" and frame.git_dirty.dtype == bool and frame.error[0] == ""


def test_rows_of_another_gpu_are_refused(tmp_path):
    results = ResultsFile(tmp_path / "fp16.csv")
    results.write(make_row(gpu="NVIDIA H200"))
    with pytest.raises(MixedGpuError):
        results.write(make_row(impl="eager", gpu="NVIDIA A100"))
    assert len(ResultsFile(tmp_path / "fp16.csv")) == 1


def test_merge_joins_parts_and_keeps_their_samples(tmp_path):
    folder = tmp_path / "nvidia-h200"
    ResultsFile(folder / "fp16.part-0-of-2.csv").write(make_row("seeded", samples=(1.0,)))
    ResultsFile(folder / "fp16.part-1-of-2.csv").write(make_row("eager", samples=(2.0,)))
    ResultsFile(folder / "fp16.csv").write(make_row("copy", samples=(0.5,)))  # an earlier full run
    merged = merge(folder / "fp16.csv", [folder / "fp16.part-0-of-2.csv", folder / "fp16.part-1-of-2.csv"])
    assert sorted(r["impl"] for r in merged.rows()) == ["copy", "eager", "seeded"]
    assert len(read_results(samples_path_for(folder / "fp16.csv"))) == 3


def test_merge_command_finds_part_files(tmp_path, capsys):
    folder = tmp_path / "nvidia-h200"
    ResultsFile(folder / "bf16.part-0-of-3.csv").write(make_row("seeded"))
    ResultsFile(folder / "bf16.part-2-of-3.csv").write(make_row("eager"))
    parts = find_parts(tmp_path)
    assert list(parts) == [folder / "bf16.csv"]
    assert missing_parts(parts[folder / "bf16.csv"]) == [1]
    assert merge_main([str(tmp_path)]) == 0
    assert "missing parts [1]" in capsys.readouterr().out
    assert len(read_results(folder / "bf16.csv")) == 2
    assert merge_main([str(tmp_path)]) == 0  # merging again changes nothing
    assert len(read_results(folder / "bf16.csv")) == 2


def test_merge_command_refuses_parts_of_two_splits(tmp_path, capsys):
    # Stale parts of an earlier 3-way split beside a fresh 2-way split: merging would let old rows win.
    folder = tmp_path / "nvidia-h200"
    ResultsFile(folder / "fp32.part-0-of-3.csv").write(make_row("seeded", p50=9.0))
    ResultsFile(folder / "fp32.part-0-of-2.csv").write(make_row("seeded", p50=1.0))
    assert merge_main([str(tmp_path)]) == 2
    assert "different splits" in capsys.readouterr().out
    assert not (folder / "fp32.csv").exists()
