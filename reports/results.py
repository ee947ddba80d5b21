"""Reading results: which folders hold a GPU's CSVs, the columns the report needs, provenance.

`results/<gpu-slug>/<dtype>.csv` holds one GPU's rows for one dtype (the columns of
`runners/rows.py`'s `ResultRow`; this stage reads the CSV only and imports nothing from
`runners/`). Raw samples (`<dtype>.samples.csv`) are not needed here: the CSV carries p20/p50/p80.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

DTYPES = ("fp16", "bf16", "fp32", "fp64")
# folders under results/ that are not a GPU's published results; rendered only when named
NOT_PUBLISHED = ("cpu-smoke", "ci")

# The columns this stage reads, named as in runners/rows.py (tests check they are a subset).
PROVENANCE_COLUMNS = (
    "timestamp", "git_sha", "git_dirty", "gpu", "driver", "cuda", "torch", "triton", "python",
)
KEY_COLUMNS = ("workload", "impl", "mode", "timer", "dtype", "shape", "dim", "p")
VALUE_COLUMNS = (
    "bytes_moved", "p20_ms", "p50_ms", "p80_ms", "gbps", "pct_of_copy",
    "peak_mem_delta_bytes", "saved_for_backward_bytes", "tokens_per_s", "loss", "status", "error",
)
REQUIRED_COLUMNS = PROVENANCE_COLUMNS + KEY_COLUMNS + VALUE_COLUMNS
TEXT_COLUMNS = ("timestamp", "git_sha", "gpu", "driver", "cuda", "torch", "triton", "python",
                "workload", "impl", "mode", "timer", "dtype", "shape", "dim", "status", "error")
NUMBER_COLUMNS = ("p",) + VALUE_COLUMNS[:-2]


class MissingColumnsError(ValueError):
    """A results CSV lacks columns the report needs."""


def read_results_csv(path: Path) -> pd.DataFrame:
    """One `<dtype>.csv` as a frame: text columns as str ("" when empty), numbers as float."""
    frame = pd.read_csv(path, dtype={name: str for name in TEXT_COLUMNS}, keep_default_na=False,
                        na_values={name: ["", "nan", "NaN"] for name in NUMBER_COLUMNS})
    missing = [name for name in REQUIRED_COLUMNS if name not in frame.columns]
    if missing:
        raise MissingColumnsError(
            f"{path}: missing required column(s) {', '.join(missing)} "
            "(the report needs the columns of runners/rows.py ResultRow)"
        )
    for name in NUMBER_COLUMNS:
        frame[name] = pd.to_numeric(frame[name], errors="raise").astype(float)
    frame["git_dirty"] = frame["git_dirty"].astype(str).str.lower().isin(["true", "1"])
    return frame


def dtype_csvs(gpu_dir: Path) -> list[Path]:
    """The `<dtype>.csv` files of one GPU folder, in DTYPES order (other CSVs are not results)."""
    return [gpu_dir / f"{dtype}.csv" for dtype in DTYPES if (gpu_dir / f"{dtype}.csv").is_file()]


def load_gpu_results(gpu_dir: Path) -> pd.DataFrame:
    """All dtype CSVs of one GPU folder, in one frame."""
    frames = [read_results_csv(path) for path in dtype_csvs(gpu_dir)]
    if not frames:
        raise FileNotFoundError(f"{gpu_dir}: no results CSV ({', '.join(f'{d}.csv' for d in DTYPES)})")
    return pd.concat(frames, ignore_index=True)


def find_gpu_dirs(paths: list[Path]) -> list[Path]:
    """GPU folders to render: a path holding dtype CSVs is one; otherwise its published subfolders."""
    found = []
    for path in paths:
        if dtype_csvs(path):
            found.append(path)
        elif path.is_dir():
            found += [sub for sub in sorted(path.iterdir())
                      if sub.is_dir() and sub.name not in NOT_PUBLISHED and dtype_csvs(sub)]
        else:
            raise FileNotFoundError(f"{path}: not a results folder")
    return found


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
