"""scripts/cpu_overhead.py (the CPU path against F.dropout): it writes the rows and the table it says,
and the committed results (results/cpu/) hold what the README says of them."""

import csv
from pathlib import Path

from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
cpu_overhead = load_script("cpu_overhead")
COMMITTED = ROOT / "results" / "cpu" / "overhead.csv"


def rows_of(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_quick_run_writes_one_row_per_impl_and_case_and_a_table(tmp_path):
    assert cpu_overhead.main(["--quick", "--rounds", "2", "--threads", "1", "--out", str(tmp_path)]) == 0
    rows = rows_of(tmp_path / "overhead.csv")
    assert [(row["shape"], row["impl"]) for row in rows if row["impl"] == "seeded"] == [
        ("3x17x24", "seeded"), ("64x1x768", "seeded")]
    assert len(rows) == 4 and all(float(row["us_per_call_p50"]) > 0 for row in rows)
    assert all(row["ratio"] == "1.00" for row in rows if row["impl"] == "F.dropout")
    table = (tmp_path / "README.md").read_text()
    assert table.count("| 1 | ") == 2 and "x |" in table


def test_the_committed_measurement_covers_small_and_64_mib_tensors_on_one_and_two_threads():
    rows = rows_of(COMMITTED)
    seeded = [row for row in rows if row["impl"] == "seeded"]
    assert {row["threads"] for row in seeded} == {"1", "2"}
    assert {row["shape"] for row in seeded} >= {"3x17x24", "64x256x1024"}
    assert (ROOT / "results" / "cpu" / "README.md").read_text() == cpu_overhead.markdown(rows)
