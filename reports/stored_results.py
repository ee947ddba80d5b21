"""A stored results CSV and its samples file, loaded for a comparison (reports/compare.py).

The columns are the CSV contract of runners/rows.py. A file written by a run that was cut short
may hold superseded rows of a key (the writer appends; runners/results_io.py): the last row of a
key is the one that counts, and the load says how many it left out. The samples file gives each
row's observations for the significance test: its round medians (reports/stats.py). A row whose
samples hold a value that is not a finite number is unusable: a comparison never counts it as
unchanged.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reports.results import drop_superseded
from runners.results_io import samples_path_for
from runners.rows import KEY_COLUMNS, SAMPLES_COLUMNS, round_medians

TIMING_COLUMNS = ("p20_ms", "p50_ms", "p80_ms")
INTERVAL_COLUMNS = ("ci_lo_ms", "ci_hi_ms")
HOST_RATIO_COLUMNS = ("host_ratio", "host_ratio_lo", "host_ratio_hi")  # host rows' figure; absent in older files
REQUIRED_COLUMNS = (*KEY_COLUMNS, "gpu", *TIMING_COLUMNS, "status")


class UnusableInput(Exception):
    """The inputs cannot be compared (exit status 2); the message says why."""


@dataclass
class StoredResults:
    """One results CSV: its rows by key (last row per key), and per key its round medians."""

    path: Path
    frame: pd.DataFrame
    rows: dict[tuple, dict]
    rounds: dict[tuple, list[float]]  # key -> round medians (empty: no samples, or no rounds)
    samples_path: Path | None  # None: no samples file beside the CSV
    unusable: dict[tuple, str] = field(default_factory=dict)  # key -> why its samples cannot be used
    rounds_checked: dict[tuple, list[float]] = field(default_factory=dict)  # samples without rounds: their median
    notes: list[str] = field(default_factory=list)

    def interval(self, key: tuple) -> tuple[tuple[float, float], str]:
        """(low, high) and its name: the range of round medians where the CSV has it, else p20-p80."""
        row = self.rows[key]
        lows_highs = tuple(float(row.get(column, math.nan)) for column in INTERVAL_COLUMNS)
        if all(math.isfinite(v) for v in lows_highs):
            return lows_highs, "rounds"
        return (row["p20_ms"], row["p80_ms"]), "p20-p80"


def canonical_p(text: str) -> str:
    # "0.5", "0.50" and "5e-1" are one key
    try:
        return repr(float(text))
    except ValueError:
        return text


def read_csv_text(path: Path, role: str) -> pd.DataFrame:
    if not path.is_file():
        raise UnusableInput(f"{role} file not found: {path}")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise UnusableInput(f"{role} file {path} is not a readable CSV: {err}") from err


def require_columns(frame: pd.DataFrame, columns, path: Path, role: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UnusableInput(f"{role} file {path} lacks column(s): {', '.join(missing)}")


def keys_of(frame: pd.DataFrame) -> list[tuple]:
    return [tuple(values) for values in frame[list(KEY_COLUMNS)].itertuples(index=False)]


def read_samples(path: Path, role: str, results: StoredResults) -> None:
    """Fill `results.rounds` (and `unusable`) from the samples file at `path`."""
    frame = read_csv_text(path, f"{role} samples")
    require_columns(frame, SAMPLES_COLUMNS[: len(KEY_COLUMNS) + 1], path, f"{role} samples")
    frame["p"] = frame["p"].map(canonical_p)
    frame, _ = drop_superseded(frame)
    has_rounds = "sample_rounds" in frame.columns
    if not has_rounds:
        results.notes.append(f"{path.name} records no rounds: {role} changes judged by intervals, not by a test")
    for index, key in enumerate(keys_of(frame)):
        try:
            samples = [float(s) for s in frame["samples_ms"].iat[index].split()]
        except ValueError as err:
            raise UnusableInput(f"{role} samples file {path}: bad samples for {key}: {err}") from err
        if not all(math.isfinite(s) for s in samples):
            results.unusable[key] = "a sample that is not a finite number"
            continue
        rounds_text = frame["sample_rounds"].iat[index].split() if has_rounds else []
        if samples and len(rounds_text) == len(samples):
            results.rounds[key] = round_medians(samples, [int(r) for r in rounds_text])
        elif samples:
            results.rounds_checked[key] = [statistics.median(samples)]
    refuse_samples_of_other_rows(results, path, role)


SAMPLES_TOLERANCE = 1e-3  # samples are stored to 7 significant digits; p50 is their round medians' median


def refuse_samples_of_other_rows(results: StoredResults, path: Path, role: str) -> None:
    """Raise UnusableInput when an ok row's p50 is not the median of its samples' round medians: the
    samples file is not the one written with this CSV (copied from another run, or edited), and a
    verdict from it would judge numbers the CSV does not hold."""
    wrong = []
    for key, row in results.rows.items():
        medians = results.rounds.get(key) or results.rounds_checked.get(key)
        if row.get("status") != "ok" or not medians or not finite_positive(row["p50_ms"]):
            continue
        expected = statistics.median(medians)
        if abs(expected - row["p50_ms"]) > SAMPLES_TOLERANCE * row["p50_ms"]:
            wrong.append((key, row["p50_ms"], expected))
    if wrong:
        key, p50, expected = wrong[0]
        raise UnusableInput(
            f"{role} samples file {path} does not match {results.path}: {len(wrong)} ok row(s) whose p50 is not the "
            f"median of their samples' round medians (first: {', '.join(key)}: p50 {p50:.6g} ms, samples give "
            f"{expected:.6g} ms); a samples file of another run? Put the CSV's own samples beside it"
        )


def load_results(path, role: str) -> StoredResults:
    """Read a results CSV and the samples beside it; `role` ("baseline"/"candidate") names it in errors."""
    path = Path(path)
    frame = read_csv_text(path, role)
    require_columns(frame, REQUIRED_COLUMNS, path, role)
    if frame.empty:
        raise UnusableInput(f"{role} file {path} has no rows (a header only): nothing to compare")
    frame["p"] = frame["p"].map(canonical_p)
    for column in TIMING_COLUMNS + tuple(c for c in (*INTERVAL_COLUMNS, *HOST_RATIO_COLUMNS) if c in frame.columns):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame, superseded = drop_superseded(frame)
    rows = dict(zip(keys_of(frame), frame.to_dict("records"), strict=True))
    samples_path = samples_path_for(path)
    results = StoredResults(path, frame, rows, {}, samples_path if samples_path.is_file() else None)
    if superseded:
        results.notes.append(f"{path.name}: {superseded} superseded row(s) left out (the last row of a key counts)")
    if results.samples_path is not None:
        read_samples(samples_path, role, results)
    else:
        results.notes.append(f"no samples file beside the {role} ({samples_path.name}): changes judged by intervals")
    return results


def finite_positive(value) -> bool:
    return isinstance(value, float | int | np.floating) and math.isfinite(value) and value > 0
