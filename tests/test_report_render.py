"""`make report` end to end on the committed fixture (synthetic numbers, see make_fixture.py):
the expected files, valid and byte-identical PNGs on a re-render, the fixture's numbers in the
markdown, the README region, and clear errors for bad input."""

import shutil
from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest

from reports import figures, readme, render, tables, targets
from reports.results import MissingColumnsError, load_gpu_results
from reports.sweeps import find_sweeps

FIXTURE = Path(__file__).parent / "fixtures" / "report" / "fixture-h200"
# the folder the README publishes the fixture's rows from: its GPU's name, "FIXTURE (synthetic, not measured)"
FIXTURE_SLUG = "fixture-synthetic-not-measured"
README_TEMPLATE = f"# Project\n\nText before.\n\n{readme.BEGIN}\nold generated text\n{readme.END}\n\nText after.\n"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def snapshot(root: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The fixture rendered twice into a temp copy; yields (root, README path, files after each)."""
    root = tmp_path_factory.mktemp("report")
    shutil.copytree(FIXTURE, root / "results" / FIXTURE_SLUG)
    readme_path = root / "README.md"
    readme_path.write_text(README_TEMPLATE)
    render.render([root / "results"], readme_path)
    first = snapshot(root)
    render.render([root / "results"], readme_path)
    return root, readme_path, first, snapshot(root)


def fixture_rows() -> pd.DataFrame:
    return pd.concat([pd.read_csv(FIXTURE / f"{dtype}.csv", keep_default_na=False, na_values=["nan"])
                      for dtype in ("fp16", "fp32")], ignore_index=True)


def table_row(markdown: str, dtype: str, mode: str) -> list[str]:
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[:2] == [dtype, mode]:
            return cells
    raise AssertionError(f"no table row for {dtype} {mode}")


def test_expected_files_are_valid_pngs(rendered):
    root, _, files, _ = rendered
    gpu_dir = root / "results" / FIXTURE_SLUG
    expected = {f"{dtype}_{kind}_64xTx768_d1_p0.5.png" for dtype in ("fp16", "fp32")
                for kind in ("throughput", "speedup", "memory", "timers", "host")} | {"fp16_model.png"}
    assert {path.name for path in (gpu_dir / "figures").iterdir()} == expected
    assert (gpu_dir / "summary.md") in files
    for name in expected:
        data = files[gpu_dir / "figures" / name]
        assert data.startswith(PNG_SIGNATURE) and data.endswith(b"IEND\xaeB`\x82"), name
        height, width, _ = matplotlib.image.imread(gpu_dir / "figures" / name).shape
        assert height > 200 and width > 500, name


def test_second_render_is_byte_identical(rendered):
    _, _, first, second = rendered
    assert list(first) == list(second)
    changed = [path for path in first if first[path] != second[path]]
    assert changed == []


def test_summary_table_holds_the_fixture_numbers(rendered):
    root, _, _, _ = rendered
    summary = (root / "results" / FIXTURE_SLUG / "summary.md").read_text()
    rows = fixture_rows()
    for dtype in ("fp16", "fp32"):
        event = rows[(rows.dtype == dtype) & (rows.timer == "event") & (rows["mode"] == "fwd")
                     & (rows.workload == "micro")]
        seeded = event[event.impl == "seeded"].set_index("shape")
        largest = max(seeded.index, key=lambda shape: int(shape.split("x")[1]))
        cells = table_row(summary, dtype, "fwd")
        assert cells[2] == f"{seeded.loc[largest, 'pct_of_copy']:.1f}% (T={largest.split('x')[1]})"
        eager = event[event.impl == "eager"].set_index("shape")
        ratios = {int(shape.split("x")[1]): eager.loc[shape, "p50_ms"] / seeded.loc[shape, "p50_ms"]
                  for shape in seeded.index}
        worst_size = min(ratios, key=ratios.get)
        best_size = max(ratios, key=ratios.get)
        assert cells[3] == f"{ratios[worst_size]:.2f}x (T={worst_size})"
        assert cells[4] == f"{ratios[best_size]:.2f}x (T={best_size})"
        host = rows[(rows.dtype == dtype) & (rows.timer == "host") & (rows.impl == "seeded")
                    & (rows["mode"] == "fwd")]
        assert cells[7] == f"– ({host.p50_ms.iloc[0] * 1e3:.1f})"  # the fixture's rows predate host_ratio


def test_rows_not_ok_are_counted_and_listed(rendered):
    root, _, _, _ = rendered
    summary = (root / "results" / FIXTURE_SLUG / "summary.md").read_text()
    rows = fixture_rows()
    failed = rows[rows.status != "ok"]
    assert len(failed) > 0
    assert f"Rows not ok: {len(failed)} of {len(rows)}" in summary
    for row in failed.itertuples():
        assert f"{row.impl} {row.mode} {row.timer} {row.shape} dim {row.dim} p {row.p:g}: {row.status}" in summary


def test_host_overhead_table_reads_the_host_timer_and_the_issue_times(rendered):
    root, _, _, _ = rendered
    summary = (root / "results" / FIXTURE_SLUG / "summary.md").read_text()
    rows = fixture_rows()
    host = rows[(rows.timer == "host") & (rows.impl == "eager") & (rows["mode"] == "fwd") & (rows.dtype == "fp32")]
    event = rows[(rows.timer == "event") & (rows.impl == "eager") & (rows["mode"] == "fwd") & (rows.dtype == "fp32")]
    bound_sizes = [int(shape.split("x")[1]) for shape in event[event.bound == "host"]["shape"]]
    expected = (f"| fp32 | fwd | eager | {host.p50_ms.iloc[0] * 1e3:.1f} | {event.host_us.median():.1f} | "
                f"{max(bound_sizes)} |")
    assert expected in summary


def test_model_table_holds_the_fixture_numbers(rendered):
    root, _, _, _ = rendered
    summary = (root / "results" / FIXTURE_SLUG / "summary.md").read_text()
    model = fixture_rows().query("workload == 'model'")
    assert len(model) > 0
    for row in model.itertuples():
        cells = next(line for line in summary.splitlines() if line.startswith(f"| {row.dtype} | {row.shape} | "
                                                                              f"{row.impl} |"))
        assert f"{row.p50_ms:.2f} ({row.p20_ms:.2f}-{row.p80_ms:.2f})" in cells
        assert f"{row.tokens_per_s:,.0f}" in cells
        assert f"{row.peak_mem_delta_bytes / 2**30:.2f}" in cells


def test_readme_region_is_replaced_and_the_rest_kept(rendered):
    root, readme_path, _, _ = rendered
    text = readme_path.read_text()
    head, rest = text.split(readme.BEGIN)
    generated, tail = rest.split(readme.END)
    assert head == "# Project\n\nText before.\n\n"
    assert tail == "\n\nText after.\n"
    assert "old generated text" not in generated
    assert "FIXTURE (synthetic, not measured)" in generated
    links = [line.split("](")[1].rstrip(")") for line in generated.splitlines() if line.startswith("![")]
    assert {Path(link).name for link in links} == {"fp16_throughput_64xTx768_d1_p0.5.png",
                                                   "fp32_throughput_64xTx768_d1_p0.5.png"}
    for link in links:
        assert (root / link).is_file(), link


def test_summary_and_readme_carry_the_performance_targets(rendered):
    root, readme_path, _, _ = rendered
    summary = (root / "results" / FIXTURE_SLUG / "summary.md").read_text()
    table = targets.targets_table(fixture_rows())
    assert table.startswith("| target | fp16 | fp32 |")
    assert "## Performance targets" in summary and table in summary
    assert "#### Performance targets" in readme_path.read_text() and table in readme_path.read_text()


def test_readme_without_results_says_so(tmp_path):
    (tmp_path / "results" / "cpu-smoke").mkdir(parents=True)
    shutil.copy(FIXTURE / "fp16.csv", tmp_path / "results" / "cpu-smoke" / "fp16.csv")
    readme_path = tmp_path / "README.md"
    readme_path.write_text(README_TEMPLATE)
    assert render.render([tmp_path / "results"], readme_path) == []
    assert "No GPU results yet" in readme_path.read_text()
    assert not (tmp_path / "results" / "cpu-smoke" / "figures").exists()


def test_stale_figures_are_removed(tmp_path):
    gpu_dir = tmp_path / "gpu"
    gpu_dir.mkdir()
    frame = pd.read_csv(FIXTURE / "fp32.csv", keep_default_na=False, na_values=["nan"])
    frame[frame.timer.isin(["event", "host"])].to_csv(gpu_dir / "fp32.csv", index=False)
    (gpu_dir / "figures").mkdir()
    (gpu_dir / "figures" / "fp64_throughput_old.png").write_bytes(PNG_SIGNATURE)
    render.render([gpu_dir], None)
    names = sorted(path.name for path in (gpu_dir / "figures").iterdir())
    # without cuda_graph rows there is no timer comparison, and the old file is gone
    assert names == ["fp32_host_64xTx768_d1_p0.5.png", "fp32_memory_64xTx768_d1_p0.5.png",
                     "fp32_speedup_64xTx768_d1_p0.5.png", "fp32_throughput_64xTx768_d1_p0.5.png"]


def test_each_figure_names_the_commits_of_its_own_rows(tmp_path, monkeypatch):
    # One dtype's file holds rows measured at different commits (here the micro sweep and the model
    # workload): a figure's footer names where its own rows come from, not every commit in the file.
    gpu_dir = tmp_path / "gpu"
    gpu_dir.mkdir()
    frame = pd.read_csv(FIXTURE / "fp16.csv", keep_default_na=False, na_values=["nan"])
    model = frame.workload == "model"
    assert model.any() and (~model).any()
    frame.loc[model, "git_sha"], frame.loc[~model, "git_sha"] = "b" * 40, "a" * 40
    frame.to_csv(gpu_dir / "fp16.csv", index=False)
    footers = {}
    real_png_bytes = figures.png_bytes

    def recording_png_bytes(build, *args, **kwargs):
        footers.setdefault(build.__name__, set()).update(a for a in args if isinstance(a, str) and " · git " in a)
        return real_png_bytes(build, *args, **kwargs)

    monkeypatch.setattr(figures, "png_bytes", recording_png_bytes)
    render.render([gpu_dir], None)
    model_footers = footers.pop("model_figure")
    assert model_footers and all("git bbbbbbbbbb ·" in footer for footer in model_footers), model_footers
    assert footers, "no sweep figure drawn"
    for name, drawn in footers.items():
        assert drawn and all("git aaaaaaaaaa ·" in footer for footer in drawn), (name, drawn)


def test_a_sweep_without_host_rows_gets_no_empty_host_columns(tmp_path):
    # A sweep with no size small enough for the host timer (the fused family's widths) has no host
    # figure: its summary table must not carry host columns of dashes, nor a caption explaining them.
    gpu_dir = tmp_path / "results" / FIXTURE_SLUG
    gpu_dir.mkdir(parents=True)
    frame = pd.read_csv(FIXTURE / "fp32.csv", keep_default_na=False, na_values=["nan"])
    frame[frame.timer != "host"].to_csv(gpu_dir / "fp32.csv", index=False)
    readme_path = tmp_path / "README.md"
    readme_path.write_text(README_TEMPLATE)
    render.render([tmp_path / "results"], readme_path)
    text = readme_path.read_text()
    assert "% of copy, largest size" in text  # the summary table is there
    assert "host, x copy's call" not in text
    frame.to_csv(gpu_dir / "fp32.csv", index=False)  # with the host rows, the columns come back
    render.render([tmp_path / "results"], readme_path)
    assert "| host, x copy's call (µs): seeded | host, x copy's call (µs): eager |" in readme_path.read_text()


def test_the_host_columns_read_host_ratio_first_and_the_absolute_time_in_brackets(tmp_path):
    gpu_dir = tmp_path / "results" / FIXTURE_SLUG
    gpu_dir.mkdir(parents=True)
    frame = pd.read_csv(FIXTURE / "fp32.csv", keep_default_na=False, na_values=["nan"])
    host = (frame.timer == "host") & (frame["mode"] == "fwd")
    frame.loc[host & (frame.impl == "seeded"), "host_ratio"] = 0.876
    frame.loc[host & (frame.impl == "eager"), "host_ratio"] = 1.834
    frame.to_csv(gpu_dir / "fp32.csv", index=False)
    (tmp_path / "README.md").write_text(README_TEMPLATE)
    render.render([tmp_path / "results"], tmp_path / "README.md")
    cells = table_row((gpu_dir / "summary.md").read_text(), "fp32", "fwd")
    seeded_us, eager_us = (frame[host & (frame.impl == impl)].p50_ms.iloc[0] * 1e3 for impl in ("seeded", "eager"))
    assert cells[-2:] == [f"0.88x ({seeded_us:.1f})", f"1.83x ({eager_us:.1f})"]
    assert table_row((gpu_dir / "summary.md").read_text(), "fp32", "bwd")[-2].startswith("– (")  # no ratio there


def test_host_bound_points_are_drawn_hollow_and_older_csvs_without_the_column_still_render(tmp_path):
    frame = pd.read_csv(FIXTURE / "fp32.csv", keep_default_na=False, na_values=["nan"])
    fp32 = frame[(frame.workload == "micro") & (frame.timer != "host")]
    sweep = find_sweeps(fp32)[0]
    rows = sweep.rows(fp32)
    assert set(rows[(rows.timer == "event") & (rows.x == 16)].bound) == {"host"}  # 64x16: 3 us GPU, 9+ us host
    assert set(rows[(rows.timer == "event") & (rows.x == 4096)].bound) == {"gpu"}
    with_hollow = figures.png_bytes(figures.throughput_figure, rows, sweep, "fp32", "event", "footer")
    without = figures.png_bytes(figures.throughput_figure, rows.assign(bound="gpu"), sweep, "fp32", "event", "footer")
    assert with_hollow != without
    older = tmp_path / "gpu"
    older.mkdir()
    frame.drop(columns=["bound", "host_us", "rounds", "ci_lo_ms", "ci_hi_ms"]).to_csv(older / "fp32.csv", index=False)
    render.render([older], None)
    names = {path.name for path in (older / "figures").iterdir()}
    assert "fp32_throughput_64xTx768_d1_p0.5.png" in names and "fp32_host_64xTx768_d1_p0.5.png" not in names


def test_superseded_rows_of_an_uncompacted_file_are_left_out(tmp_path, capsys):
    gpu_dir = tmp_path / "gpu"
    gpu_dir.mkdir()
    frame = pd.read_csv(FIXTURE / "fp32.csv", keep_default_na=False, na_values=["nan"])
    first = frame.iloc[[0]].assign(p50_ms=123.0)  # an older row of the first key, appended before it
    pd.concat([first, frame]).to_csv(gpu_dir / "fp32.csv", index=False)
    loaded = load_gpu_results(gpu_dir)
    assert len(loaded) == len(frame) and 123.0 not in set(loaded.p50_ms)
    assert "1 superseded row(s) left out" in capsys.readouterr().err


def test_missing_column_is_named(tmp_path):
    gpu_dir = tmp_path / "gpu"
    gpu_dir.mkdir()
    frame = pd.read_csv(FIXTURE / "fp16.csv", keep_default_na=False)
    frame.drop(columns=["p50_ms", "status"]).to_csv(gpu_dir / "fp16.csv", index=False)
    with pytest.raises(MissingColumnsError, match=r"fp16\.csv: missing required column\(s\) p50_ms, status"):
        render.render([gpu_dir], None)


def test_not_a_results_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a results folder"):
        render.render([tmp_path / "nowhere"], None)


def test_main_renders_a_named_folder(tmp_path, capsys):
    gpu_dir = tmp_path / "cpu-smoke"
    gpu_dir.mkdir()
    frame = pd.read_csv(FIXTURE / "fp32.csv", keep_default_na=False, na_values=["nan"])
    frame[frame.timer == "event"].to_csv(gpu_dir / "fp32.csv", index=False)
    assert render.main([str(gpu_dir), "--no-readme"]) == 0  # cpu-smoke renders when named
    assert (gpu_dir / "summary.md").is_file()
    assert len(list((gpu_dir / "figures").glob("fp32_*.png"))) == 4  # throughput, speedup, memory, host
    assert f"{gpu_dir}: 5 files, 5 changed" in capsys.readouterr().out


def test_the_method_note_says_which_rows_predate_rounds_and_the_head_start():
    frame = fixture_rows()
    frame["rounds"] = pd.to_numeric(frame["rounds"], errors="coerce").fillna(0)
    assert render.method_note(frame).startswith("Method: every point measured in rounds")
    older = frame.assign(rounds=[0 if timer == "event" else r for timer, r in zip(frame.timer, frame.rounds,
                                                                                    strict=True)])
    micro = older[older.workload == "micro"]
    note = render.method_note(older)
    assert f"{int((micro.rounds == 0).sum())} of {len(micro)} micro-benchmark rows were measured before" in note
    assert "host-inclusive" in note


def test_near_fastest_counts_sizes_within_one_percent_of_the_fastest_baseline():
    rows = pd.DataFrame({"x": [1, 1, 1, 2, 2, 2], "mode": "bwd", "timer": "event", "status": "ok",
                         "impl": ["seeded", "eager", "native"] * 2, "p50_ms": [1.01, 1.0, 1.2, 1.02, 1.5, 1.0]})
    assert tables.near_fastest(rows, "bwd", "event") == (1, 2)  # 1.01x at x=1 counts, 1.02x at x=2 does not


def test_compile_table_says_where_compiling_the_step_did_not_make_it_faster():
    rows = pd.DataFrame({"dtype": "bf16", "shape": "transformer", "status": "ok",
                         "impl": ["eager", "compile", "seeded", "seeded:compile"], "p50_ms": [13.0, 10.0, 12.0, 12.6],
                         "peak_mem_delta_bytes": [2**31] * 4})
    sentence, table = tables.compile_table(rows)
    assert "faster in 1 of 1 (dtype, model) pairs with the eager dropout and 0 of 1" in sentence
    assert "not faster in bf16 transformer with seeded (+5.0%)" in sentence
    assert "| bf16 | transformer | seeded → seeded:compile | 12.00 → 12.60 (+5.0%) |" in table
    assert "the step with the seeded op took 1.260x (bf16 transformer) to 1.260x (bf16 transformer)" in sentence


def test_compile_table_has_the_fused_ops_pair_where_a_model_has_it():
    rows = pd.DataFrame({"dtype": "bf16", "shape": "transformer", "status": "ok",
                         "impl": ["eager", "compile", "fused", "fused:compile"], "p50_ms": [13.0, 10.0, 12.5, 9.9],
                         "peak_mem_delta_bytes": [2**31] * 4})
    sentence, table = tables.compile_table(rows)
    assert "`fused:compile` with the fused dropout + add + norm op" in sentence
    assert "1 of 1 (dtype, model) pairs with the fused dropout" in sentence
    assert "| bf16 | transformer | fused → fused:compile | 12.50 → 9.90 (-20.8%) |" in table
    assert "pairs with the eager dropout and 1 of 1 (dtype, model) pairs with the fused dropout" in sentence
    without = tables.compile_table(rows[~rows.impl.str.startswith("fused")])[0]
    assert "fused" not in without
    spread = rows.assign(p20_ms=rows.p50_ms * 0.99, p80_ms=rows.p50_ms * 1.01)
    spread.loc[spread.impl == "fused:compile", "p80_ms"] = 11.0  # spans 11.2% of 9.9
    assert "| fused → fused:compile | 12.50 → 9.90 (-20.8%) † |" in tables.compile_table(spread)[1]
    assert "| eager → compile | 13.00 → 10.00 (-23.1%) |" in tables.compile_table(spread)[1]


def test_model_rows_whose_steps_spread_wide_are_marked_unsteady_with_a_note():
    rows = pd.DataFrame({"dtype": "bf16", "shape": "transformer", "status": "ok", "impl": ["compile", "fused:compile"],
                         "dim": "(1,)", "p": 0.1, "p20_ms": [9.7, 10.95], "p50_ms": [9.8, 11.83],
                         "p80_ms": [9.9, 12.59], "tokens_per_s": 1e6, "peak_mem_delta_bytes": 2**31, "loss": 9.1})
    text = tables.model_table(rows)
    assert "| 9.80 (9.70-9.90) |" in text  # spans 2%: not marked
    assert "| 11.83 (10.95-12.59) † |" in text  # spans 13.9%
    assert "† Unsteady (1 row): p20-p80 spans more than 10% of p50" in text
    assert "†" not in tables.model_table(rows.iloc[:1])


def test_the_model_table_says_what_its_loss_column_can_be_compared_with():
    rows = pd.DataFrame({"dtype": "bf16", "shape": "transformer", "status": "ok", "impl": ["eager"], "dim": "(1,)",
                         "p": 0.1, "p20_ms": 9.7, "p50_ms": 9.8, "p80_ms": 9.9, "tokens_per_s": 1e6,
                         "peak_mem_delta_bytes": 2**31, "loss": 8.7317})
    table, note = tables.model_table(rows).split("\n\nLoss: ")
    assert "| 8.7317 | ok |" in table
    assert note.startswith("the held-out loss after the run's steps") and "only within one run" in note


def test_compiled_against_compiled_gives_the_range_of_seeded_compile_over_compile_and_where():
    rows = pd.DataFrame({"dtype": ["bf16"] * 2 + ["fp32"] * 2 + ["fp16"], "status": "ok",
                         "shape": ["lstm", "lstm", "transformer", "transformer", "lstm"],
                         "impl": ["compile", "seeded:compile"] * 2 + ["compile"], "p50_ms": [10.0, 9.9, 20.0, 20.4, 5]})
    sentence = tables.compiled_against_compiled(rows)
    assert "took 0.990x (bf16 lstm) to 1.020x (fp32 transformer)" in sentence and "2 (dtype, model) pairs" in sentence
    assert tables.compiled_against_compiled(rows[rows.dtype == "fp16"]) == ""
