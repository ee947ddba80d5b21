"""Reading results: which folders hold a GPU's CSVs, the columns the report needs, provenance.

`results/<gpu-slug>/<dtype>.csv` holds one GPU's rows for one dtype (the columns of
`runners/rows.py`'s `ResultRow`; of `runners/` this stage imports that contract and nothing
else). Raw samples (`<dtype>.samples.csv`) are not needed here: the CSV carries p20/p50/p80.

A CSV the report cannot use stops it with a `ResultsError` naming the file, and for a bad value
the CSV line and the column: a number column that does not parse; a micro-benchmark row whose
`shape` is not sizes >= 1 joined by "x" or whose `dim` is not a tuple of that shape's dims; an
`ok` row without positive, finite times (p20/p50/p80), or with a rate (GB/s, % of copy, tokens/s)
that is given but not positive and finite. Such an ok row is an error rather than a row shown as
not ok: it is a broken measurement or a broken CSV, and the report would otherwise read a zero,
negative or infinite time as a speedup (1.00x) or a % of copy.

Published results, the only ones the README shows: a folder `results/<gpu-slug>/` other than
cpu-smoke and ci whose rows all come from the GPU it is named after (`gpu_slug`).
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from reports.sweeps import parse_dim, parse_shape
from runners.rows import KEY_COLUMNS, gpu_slug

DTYPES = ("fp16", "bf16", "fp32", "fp64")
# folders under results/ that are not a GPU's published results; rendered only when named
NOT_PUBLISHED = ("cpu-smoke", "ci")

# The columns this stage reads, named as in runners/rows.py (tests check they are a subset).
PROVENANCE_COLUMNS = (
    "timestamp", "git_sha", "git_dirty", "gpu", "driver", "cuda", "torch", "triton", "python",
)
VALUE_COLUMNS = (
    "bytes_moved", "p20_ms", "p50_ms", "p80_ms", "gbps", "pct_of_copy",
    "peak_mem_delta_bytes", "saved_for_backward_bytes", "tokens_per_s", "loss", "status", "error",
)
REQUIRED_COLUMNS = PROVENANCE_COLUMNS + KEY_COLUMNS + VALUE_COLUMNS
TEXT_COLUMNS = ("timestamp", "git_sha", "gpu", "driver", "cuda", "torch", "triton", "python",
                "workload", "impl", "mode", "timer", "dtype", "shape", "dim", "status", "error")
NUMBER_COLUMNS = ("p",) + VALUE_COLUMNS[:-2]
# columns of later CSVs that older ones lack: read with these values where absent
OPTIONAL_COLUMNS = {"host_us": np.nan, "host_ratio": np.nan, "bound": "", "rounds": np.nan, "ci_lo_ms": np.nan,
                    "ci_hi_ms": np.nan}  # fmt: skip
# what an ok row must carry, positive and finite; and what it may leave empty, but not give otherwise
OK_TIMES = ("p20_ms", "p50_ms", "p80_ms")
OK_RATES = ("gbps", "pct_of_copy", "tokens_per_s")
BAD_VALUES_LISTED = 10


class ResultsError(ValueError):
    """Results the report cannot use; the message names the file (and the line and column)."""


class MissingColumnsError(ResultsError):
    """A results CSV lacks columns the report needs."""


@dataclass(frozen=True)
class BadValue:
    row: int  # the data row, from 0
    column: str
    why: str


def record_lines(path: Path) -> list[int]:
    """The CSV line on which each data row starts (a quoted field can span lines)."""
    starts, end = [], 0
    with open(path, newline="", encoding="utf-8", errors="replace") as file:
        reader = csv.reader(file)
        for record in reader:
            if len(record) > 1 or "".join(record).strip():  # blank lines are no rows, for pandas either
                starts.append(end + 1)
            end = reader.line_num
    return starts[1:]  # the first record is the header


def raise_bad_values(path: Path, frame: pd.DataFrame, problems: list[BadValue]) -> None:
    if not problems:
        return
    lines = record_lines(path)

    def where(row: int) -> str:
        # should pandas and the csv module ever count rows differently, a row number beats a wrong line
        return f"line {lines[row]}" if len(lines) == len(frame) else f"data row {row + 1}"

    problems = sorted(problems, key=lambda problem: problem.row)
    listed = [f"{path}, {where(problem.row)}, column {problem.column}: {problem.why}"
              for problem in problems[:BAD_VALUES_LISTED]]
    if len(problems) > BAD_VALUES_LISTED:
        listed.append(f"and {len(problems) - BAD_VALUES_LISTED} more bad values in {path}")
    raise ResultsError("\n".join(listed))


def unparsable_numbers(frame: pd.DataFrame) -> list[BadValue]:
    problems = []
    for name in NUMBER_COLUMNS:
        parsed = pd.to_numeric(frame[name], errors="coerce")
        for row in np.flatnonzero(parsed.isna() & frame[name].notna()):
            problems.append(BadValue(row, name, f"{frame[name].iat[row]!r} is not a number"))
    return problems


def malformed_keys(frame: pd.DataFrame) -> list[BadValue]:
    """Micro-benchmark rows whose shape or dim does not parse (a model row's shape names the model)."""
    problems = []
    for row in np.flatnonzero(frame.workload == "micro"):
        try:
            rank = len(parse_shape(frame["shape"].iat[row]))
        except ValueError as error:
            problems.append(BadValue(row, "shape", str(error)))
            continue
        try:
            parse_dim(frame["dim"].iat[row], rank)
        except ValueError as error:
            problems.append(BadValue(row, "dim", str(error)))
    return problems


def impossible_ok_values(frame: pd.DataFrame) -> list[BadValue]:
    problems = []
    ok = frame.status == "ok"
    for name in OK_TIMES + OK_RATES:
        values = frame[name]
        bad = ok & ~(np.isfinite(values) & (values > 0))
        if name in OK_RATES:
            bad &= values.notna()
        for row in np.flatnonzero(bad):
            problems.append(BadValue(row, name, f"{values.iat[row]:g} in a row whose status is ok "
                                                "(its times and rates must be positive and finite)"))
    return problems


def read_results_csv(path: Path) -> pd.DataFrame:
    """One `<dtype>.csv` as a frame: text columns as str ("" when empty), numbers as float.
    A CSV the report cannot use raises ResultsError (see the module docstring)."""
    try:
        frame = pd.read_csv(path, dtype={name: str for name in TEXT_COLUMNS}, keep_default_na=False,
                            na_values={name: ["", "nan", "NaN"] for name in NUMBER_COLUMNS})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ResultsError(f"{path}: not a readable CSV: {str(error).strip()}") from error
    missing = [name for name in REQUIRED_COLUMNS if name not in frame.columns]
    if missing:
        raise MissingColumnsError(
            f"{path}: missing required column(s) {', '.join(missing)} "
            "(the report needs the columns of runners/rows.py ResultRow)"
        )
    raise_bad_values(path, frame, unparsable_numbers(frame))
    for name in NUMBER_COLUMNS:
        frame[name] = pd.to_numeric(frame[name]).astype(float)
    raise_bad_values(path, frame, malformed_keys(frame))
    raise_bad_values(path, frame, impossible_ok_values(frame))
    frame["git_dirty"] = frame["git_dirty"].astype(str).str.lower().isin(["true", "1"])
    for name, missing_value in OPTIONAL_COLUMNS.items():
        if name not in frame:
            frame[name] = missing_value
        elif isinstance(missing_value, float):
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
    frame, superseded = drop_superseded(frame)
    if superseded:
        print(f"{path}: {superseded} superseded row(s) left out (the file is not compacted yet)", file=sys.stderr)
    return frame


def drop_superseded(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One row per key, the last written, and the number of rows left out: a file read while a run
    appends to it (or after a run was killed, before the next compacts it) holds superseded rows
    (runners/results_io.py)."""
    superseded = frame.duplicated(list(KEY_COLUMNS), keep="last")
    return frame[~superseded].reset_index(drop=True), int(superseded.sum())


def dtype_csvs(gpu_dir: Path) -> list[Path]:
    """The `<dtype>.csv` files of one GPU folder, in DTYPES order (other CSVs are not results)."""
    return [gpu_dir / f"{dtype}.csv" for dtype in DTYPES if (gpu_dir / f"{dtype}.csv").is_file()]


def load_gpu_results(gpu_dir: Path) -> pd.DataFrame:
    """All dtype CSVs of one GPU folder, in one frame."""
    frames = [read_results_csv(path) for path in dtype_csvs(gpu_dir)]
    if not frames:
        raise FileNotFoundError(f"{gpu_dir}: no results CSV ({', '.join(f'{d}.csv' for d in DTYPES)})")
    return pd.concat(frames, ignore_index=True)


def gpu_subfolders(folder: Path) -> list[Path]:
    """The subfolders of `folder` holding dtype CSVs, by name (cpu-smoke and ci included)."""
    if not folder.is_dir():
        return []
    return [sub for sub in sorted(folder.iterdir()) if sub.is_dir() and dtype_csvs(sub)]


def same_folder(path: Path, other: Path | None) -> bool:
    return other is not None and path.resolve() == other.resolve()


def find_gpu_dirs(paths: list[Path], results_dir: Path | None = None) -> list[Path]:
    """GPU folders to render. A path holding dtype CSVs is one, except `results_dir` (the README's
    results folder, which holds GPU folders: a dtype CSV directly in it is stray, reported on stderr
    and never rendered). Any other folder stands for its subfolders holding dtype CSVs, except
    cpu-smoke and ci. A path with nothing to render is an error, except `results_dir` (no GPU
    results yet)."""
    found = []
    for path in paths:
        is_results_dir = same_folder(path, results_dir)
        if dtype_csvs(path) and not is_results_dir:
            found.append(path)
            continue
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: not a results folder")
        for stray in dtype_csvs(path):
            print(f"{stray}: left out, not in a GPU folder (results go to results/<gpu-slug>/<dtype>.csv)",
                  file=sys.stderr)
        rendered = [sub for sub in gpu_subfolders(path) if sub.name not in NOT_PUBLISHED]
        if not rendered and not is_results_dir:
            raise FileNotFoundError(f"{path}: nothing to render: no {'/'.join(DTYPES)}.csv in it or in a GPU "
                                    f"folder under it ({' and '.join(NOT_PUBLISHED)} are rendered only when named)")
        found += rendered
    return found


def unpublished_reason(gpu_dir: Path, frame: pd.DataFrame) -> str | None:
    """Why the rows of `gpu_dir` are not published results (None: they are): cpu-smoke and ci never
    are; nor is a folder not named after the GPU its rows were measured on."""
    if gpu_dir.name in NOT_PUBLISHED:
        return f"{gpu_dir.name} results are never published"
    gpus = sorted(set(frame.gpu))
    if {gpu_slug(gpu) for gpu in gpus} != {gpu_dir.name}:
        measured_on = " / ".join(f"{gpu} ({gpu_slug(gpu)})" if gpu else "no GPU name" for gpu in gpus)
        return f"its rows are from {measured_on}, a folder is published only under its GPU's name"
    return None


@dataclass(frozen=True)
class Provenance:
    """Where and with what a set of rows was measured; several values are joined by " / "."""

    gpu: str
    driver: str
    cuda: str
    torch: str
    triton: str
    python: str
    git: str
    dates: str

    def footer(self) -> str:
        return (f"{self.gpu} · driver {self.driver} · CUDA {self.cuda} · torch {self.torch} · "
                f"Triton {self.triton} · Python {self.python} · git {self.git} · measured {self.dates}")


def provenance(rows: pd.DataFrame) -> Provenance:
    def values(column: str) -> str:
        return " / ".join(sorted({v for v in rows[column] if v})) or "unknown"

    shas = sorted({sha[:10] + ("-dirty" if dirty else "")
                   for sha, dirty in zip(rows.git_sha, rows.git_dirty, strict=True) if sha})
    stamps = pd.to_datetime(rows.timestamp, utc=True, errors="coerce", format="ISO8601").dropna()
    dates = sorted({stamp.strftime("%Y-%m-%d") for stamp in stamps})
    return Provenance(
        gpu=values("gpu"), driver=values("driver"), cuda=values("cuda"), torch=values("torch"),
        triton=values("triton"), python=values("python"), git=" / ".join(shas) or "unknown",
        dates=(dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}") if dates else "unknown",
    )
