"""Bad values in the results CSVs stop the report with the file, CSV line and column named (before
anything is written), and free text from the CSVs lands in the markdown escaped."""

import re
from pathlib import Path

import pandas as pd
import pytest

from reports import render

FIXTURE = Path(__file__).parent / "fixtures" / "report" / "fixture-h200"
README_TEMPLATE = "# Project\n\n<!-- BEGIN RESULTS -->\nold\n<!-- END RESULTS -->\n"
# the row a test spoils: seeded, fwd, event timer, T=1024, status ok
EDITED_ROW = 33
# its line in the CSV: the header, then one line per row, plus one for the two-line error text of row 0
EDITED_LINE = EDITED_ROW + 3


def fixture_fp32() -> pd.DataFrame:
    frame = pd.read_csv(FIXTURE / "fp32.csv", keep_default_na=False, na_values=["nan"], dtype=str)
    # a row not ok whose error spans two lines, so that CSV lines and row numbers part ways
    frame.loc[0, ["status", "error", "p20_ms", "p50_ms", "p80_ms"]] = ["error", "first line\nsecond line", "", "", ""]
    return frame


def spoiled_gpu(tmp_path: Path, column: str, value: str) -> Path:
    frame = fixture_fp32()
    assert frame.loc[EDITED_ROW, ["impl", "mode", "timer", "status"]].tolist() == ["seeded", "fwd", "event", "ok"]
    frame.loc[EDITED_ROW, column] = value
    gpu_dir = tmp_path / "gpu"
    gpu_dir.mkdir()
    frame.to_csv(gpu_dir / "fp32.csv", index=False)
    return gpu_dir


BAD_VALUES = [
    ("p50_ms", "fast", "'fast' is not a number"),
    ("p", "half", "'half' is not a number"),
    ("dim", "(1,", "'(1,' is not a tuple of dims"),
    ("dim", "x", "'x' is not a tuple of dims"),
    ("dim", "(3,)", "'(3,)' is not a tuple of dims of a rank-3 shape"),
    ("shape", "64x", "'64x' is not a shape"),
    ("shape", "64xTx768", "'64xTx768' is not a shape"),
    ("shape", "64x0x768", "'64x0x768' is not a shape"),
]


@pytest.mark.parametrize(("column", "value", "why"), BAD_VALUES)
def test_a_bad_value_names_the_file_line_and_column(tmp_path, column, value, why):
    gpu_dir = spoiled_gpu(tmp_path, column, value)
    where = f"{gpu_dir / 'fp32.csv'}, line {EDITED_LINE}, column {column}: {why}"
    with pytest.raises(ValueError, match=re.escape(where)):
        render.render([gpu_dir], None)
    assert not (gpu_dir / "figures").exists() and not (gpu_dir / "summary.md").exists()


@pytest.mark.parametrize("column", ["p20_ms", "p50_ms", "p80_ms", "pct_of_copy", "gbps"])
@pytest.mark.parametrize("value", ["-0.5", "0", "inf"])
def test_an_ok_row_needs_positive_finite_times(tmp_path, column, value):
    gpu_dir = spoiled_gpu(tmp_path, column, value)
    where = f"{gpu_dir / 'fp32.csv'}, line {EDITED_LINE}, column {column}: {float(value):g} in a row whose status is ok"
    with pytest.raises(ValueError, match=re.escape(where)):
        render.render([gpu_dir], None)


def test_an_ok_row_without_a_time_is_an_error(tmp_path):
    gpu_dir = spoiled_gpu(tmp_path, "p50_ms", "")
    with pytest.raises(ValueError, match=re.escape(f"line {EDITED_LINE}, column p50_ms: nan in a row whose status")):
        render.render([gpu_dir], None)


def test_main_prints_the_error_and_exits_1(tmp_path, capsys):
    gpu_dir = spoiled_gpu(tmp_path, "p50_ms", "fast")
    assert render.main([str(gpu_dir), "--no-readme"]) == 1
    error = capsys.readouterr().err
    assert f"{gpu_dir / 'fp32.csv'}, line {EDITED_LINE}, column p50_ms: 'fast' is not a number" in error
    assert "Traceback" not in error


def with_a_ragged_line() -> str:
    lines = (FIXTURE / "fp16.csv").read_text().splitlines(keepends=True)
    lines[4] = lines[4].rstrip("\n") + ",one field too many\n"
    return "".join(lines)


@pytest.mark.parametrize("text", ["", with_a_ragged_line(), "\xff\xfe not utf-8"])
def test_an_unreadable_csv_is_named(tmp_path, text):
    gpu_dir = tmp_path / "gpu"
    gpu_dir.mkdir()
    (gpu_dir / "fp16.csv").write_text(text, encoding="latin-1")
    with pytest.raises(ValueError, match=re.escape(f"{gpu_dir / 'fp16.csv'}: not a readable CSV")):
        render.render([gpu_dir], None)


FREE_TEXT = {
    "gpu": "NVIDIA *H200* | <b>x</b>",
    "driver": "570 | [link](http://x)\n# driver heading",
    "torch": "2.11`x`",
}


def cells(line: str) -> list[str]:
    """A table row's cells, split on the pipes that are not escaped."""
    return re.split(r"(?<!\\)\|", line.strip())[1:-1]


def tables(lines: list[str]) -> list[list[str]]:
    """The markdown tables among `lines`, each as its lines."""
    found, table = [], []
    for line in [*lines, ""]:
        if line.startswith("|"):
            table.append(line)
        elif table:
            found.append(table)
            table = []
    return found


def test_free_text_is_escaped_in_the_markdown(tmp_path):
    micro = fixture_fp32().assign(**FREE_TEXT)
    micro.loc[0, "error"] = "bad | <i>x</i>\nsecond line"
    micro.loc[1, ["status", "error"]] = ["my_status_", "# not a heading"]
    micro.loc[micro.impl == "per_element_rng", "impl"] = "per_element_rng|*x*"
    model = pd.read_csv(FIXTURE / "fp16.csv", keep_default_na=False, na_values=["nan"], dtype=str)
    model = model[model.workload == "model"].assign(**FREE_TEXT)
    model.loc[model.impl == "compile", "impl"] = "compile|*x*"
    gpu_dir = tmp_path / "results" / "nvidia-h200-b-x-b"
    gpu_dir.mkdir(parents=True)
    micro[micro.timer.isin(["event", "host"])].to_csv(gpu_dir / "fp32.csv", index=False)
    model.to_csv(gpu_dir / "fp16.csv", index=False)
    (tmp_path / "README.md").write_text(README_TEMPLATE)
    render.render([tmp_path / "results"], tmp_path / "README.md")

    gpu = r"NVIDIA \*H200\* \| \<b\>x\</b\>"
    for path, level in ((gpu_dir / "summary.md", "#"), (tmp_path / "README.md", "###")):
        lines = path.read_text().splitlines()
        assert f"{level} {gpu} (`nvidia-h200-b-x-b`)" in lines, path
        provenance = next(line for line in lines if line.startswith("Provenance: "))
        assert provenance.startswith(rf"Provenance: {gpu} · driver 570 \| \[link\](http://x) # driver heading · "
                                     r"CUDA 12.8 · torch 2.11\`x\` · ")
        assert not any("<b>" in line or "<i>" in line for line in lines), path
        assert not any(line.startswith(("# driver", "# not", "second")) for line in lines), path
        found = tables(lines)
        expected = 4 if level == "#" else 3  # the sweep's summary, (summary.md: host overhead), targets, model step
        assert len(found) == expected, path
        for table in found:
            assert {len(cells(line)) for line in table} == {len(cells(table[0]))}, table
    summary = (gpu_dir / "summary.md").read_text()
    assert r"- fp32 micro copy fwd event 64x16x768 dim (1,) p 0.5: error: bad \| \<i\>x\</i\>" in summary
    assert r"my_status\_: \# not a heading" in summary  # an underscore inside a word is no emphasis
    assert r"per_element_rng\|\*x\* fwd_bwd event 64x4096x768 dim (1,) p 0.5: oom" in summary
    assert r"| fp16 | lstm-small | compile\|\*x\* | " in summary
