"""Results on disk: one CSV per (GPU, dtype) and its raw-samples file, upserted by key.

`ResultsFile(path)` holds the rows of `path` (columns: `runners.rows.COLUMNS`) and of the samples
file beside it (`<stem>.samples.csv`: the key columns, `samples_ms` and `sample_rounds`, each
space-separated). Every
`write` replaces the row with the same key (or appends a new one) and rewrites both files through a
temporary file and a rename, so a crash or Ctrl-C leaves the last complete state on disk. Rows of
another GPU are refused: results of different GPUs never share a file.

`merge(out_path, part_paths)` upserts the rows of part files (one per job of a split sweep) into
one file. `read_results(path)` loads a results CSV as a DataFrame with the row type's column types.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from runners.rows import COLUMNS, KEY_COLUMNS, SAMPLES_COLUMNS, ResultRow


class MixedGpuError(RuntimeError):
    """A row would land in a file holding another GPU's results."""


def samples_path_for(path: Path) -> Path:
    """results/nvidia-h200/fp16.csv -> results/nvidia-h200/fp16.samples.csv"""
    path = Path(path)
    return path.with_name(path.stem + ".samples.csv")


def format_value(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return str(value)


def key_of(fields: dict) -> tuple[str, ...]:
    """The key of a row given as text fields; `p` normalised so '0.50' and '0.5' are one key."""
    return tuple(repr(float(fields[c])) if c == "p" else str(fields[c]) for c in KEY_COLUMNS)


def row_fields(row: ResultRow) -> dict[str, str]:
    return {name: format_value(value) for name, value in row.csv_fields().items()}


def format_samples(samples_ms: Iterable[float]) -> str:
    return " ".join(f"{s:.7g}" for s in samples_ms)


def sample_fields(row: ResultRow) -> dict[str, str]:
    """The samples file's fields of a row: samples (ms) and the round of each, space-separated;
    a row measured without rounds has every sample in round 0."""
    rounds = row.sample_rounds or [0] * len(row.samples_ms)
    return {"samples_ms": format_samples(row.samples_ms), "sample_rounds": " ".join(str(r) for r in rounds)}


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _write_csv_atomically(path: Path, columns: tuple[str, ...], rows: Iterable[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore", restval="")
        writer.writeheader()
        writer.writerows(rows)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ResultsFile:
    """The rows of one results CSV (and its samples file), kept in memory and on disk."""

    def __init__(self, path):
        self.path = Path(path)
        self.samples_path = samples_path_for(self.path)
        self._rows = {key_of(r): r for r in _read_csv(self.path)}
        self._samples = {
            key_of(r): {name: r.get(name) or "" for name in ("samples_ms", "sample_rounds")}
            for r in _read_csv(self.samples_path)
        }

    def __len__(self) -> int:
        return len(self._rows)

    def has(self, key: tuple) -> bool:
        return key_of(dict(zip(KEY_COLUMNS, key, strict=True))) in self._rows

    def rows(self) -> list[dict[str, str]]:
        return list(self._rows.values())

    def gpus(self) -> set[str]:
        return {r.get("gpu", "") for r in self._rows.values()}

    def write(self, row: ResultRow) -> None:
        """Upsert one row and its samples, then rewrite both files atomically."""
        self.write_fields(row_fields(row), sample_fields(row))

    def write_fields(self, fields: dict[str, str], samples: dict[str, str] | None) -> None:
        self._upsert(fields, samples)
        self._save()

    def _upsert(self, fields: dict[str, str], samples: dict[str, str] | None) -> None:
        gpus = self.gpus() - {fields.get("gpu", "")}
        if gpus:
            raise MixedGpuError(
                f"{self.path} holds results of {sorted(gpus)}, not {fields.get('gpu')!r}: "
                "write to another file (results of different GPUs never share one)"
            )
        key = key_of(fields)
        self._rows[key] = fields
        if samples is not None:
            self._samples[key] = samples

    def _save(self) -> None:
        samples_rows = (
            {**dict(zip(KEY_COLUMNS, key, strict=True)), **s} for key, s in self._samples.items()
        )
        _write_csv_atomically(self.samples_path, SAMPLES_COLUMNS, samples_rows)
        _write_csv_atomically(self.path, COLUMNS, self._rows.values())

    def merge_from(self, other: ResultsFile) -> int:
        """Upsert every row of `other` (and its samples); one rewrite at the end. Returns rows taken."""
        for key, fields in other._rows.items():
            self._upsert(fields, other._samples.get(key))
        self._save()
        return len(other._rows)


def merge(out_path, part_paths: Iterable) -> ResultsFile:
    """Upsert the rows of each part file, in order, into `out_path`; later parts win on equal keys."""
    out = ResultsFile(out_path)
    for part in part_paths:
        out.merge_from(ResultsFile(part))
    return out


def column_types() -> dict[str, str]:
    """Column -> 'str' | 'bool' | 'int' | 'float', from `ResultRow`'s annotations."""
    return {f.name: str(f.type) for f in dataclasses.fields(ResultRow) if f.name in COLUMNS}


def read_results(path) -> pd.DataFrame:
    """A results CSV with text columns as str (empty stays ''), numbers as numbers, flags as bool."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    for name, kind in column_types().items():
        if name not in frame:
            continue
        if kind == "bool":
            frame[name] = frame[name].map({"True": True, "False": False})
        elif kind == "float":
            frame[name] = frame[name].replace("", "nan").astype("float64")
        elif kind == "int":
            frame[name] = frame[name].astype("int64")
    return frame
