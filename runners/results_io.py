"""Results on disk: one CSV per (GPU, dtype) and its raw-samples file, appended to row by row.

`ResultsFile(path)` is the rows of `path` (columns: `runners.rows.COLUMNS`) and of the samples file
beside it (`<stem>.samples.csv`: the key columns, `samples_ms` and `sample_rounds`, each
space-separated). What it guarantees:

- **Append only, one line per row.** `write` appends the row's samples line, then its CSV line,
  each followed by an fsync: the cost of a row does not depend on the size of the file, and a row in
  the CSV always has its samples on disk. Several processes may write one file at once (two runs
  given the same `output=`): every write holds an exclusive `fcntl.flock` on a lock file beside the
  CSV (`.<name>.lock`, never replaced or removed, so every process locks the same file) and opens
  the data files in append mode for that write alone, so a writer never holds a descriptor of a
  file that a compaction has since renamed away, and no process rewrites rows it has not read.
- **The last row of a key counts.** A key written again (`overwrite=true`, a failed row retried)
  gets a second line; readers take the last. `compact()` rewrites both files with one row per key,
  re-reading them under the lock (so rows other processes appended since this one opened the file
  are kept), through a temporary file, an fsync and a rename; a file that needs no change is left
  alone. The harness compacts at the end of every run and `merge` after merging, so a file at rest
  holds one row per key.
- **A kill loses no finished row** (SIGINT, SIGTERM, SIGKILL): at worst it cuts the line being
  written. A line that does not parse (cut short, a wrong field count, a status outside
  `runners.rows.STATUSES`, a `p` that is no finite number) is ignored with a `DamagedRowWarning`
  naming the file and line: its key counts as not measured (so its sweep measures it again), and
  the next compaction moves the line to the quarantine file `<name>.damaged` beside the file (never
  deleted). An ok row whose p50 is not a positive finite number (or another figure infinite or not
  positive) is such a line. Lines are parsed one by one (values never hold line breaks, so one row
  is one line): a damaged line never takes another with it. A line cut short at the end of a file
  is moved to the quarantine file by the next write before it appends; a file cut inside its header
  holds no row and starts afresh the same way. A UTF-8 byte-order mark is ignored. A rewrite killed midway
  leaves the old file whole; its temporary file (`.<name>.tmp-<host>-<pid>`) is removed on any
  exception, and one a killed process of this host left is removed when a `ResultsFile` next opens
  that folder.
- **Resume**: `has(key)` says the file holds a row of that key; `done(key)` that its last row is
  `ok` or `skipped`, so a resumed run need not measure it; `error` and `oom` rows are not done.
- **Refused, left as they are**: a path that is not a regular file (/dev/null, a folder), or a
  file that is not a results (or samples) file: not UTF-8, a header
  lacking a key column or naming a column the row type does not have, a foreign CSV. `ResultsFile`
  raises `ResultsFileError` naming the file, the line and the fault, before anything is measured
  (and before a lock file is made beside it). A
  row of another GPU raises `MixedGpuError`: results of different GPUs never share a file.
- **Older column sets**: a file whose header is a subset of today's columns (written before columns
  were added) is read as it is; before the first row is appended it is rewritten once, under the
  lock, with today's header, the new columns holding the row type's defaults.

`merge(out_path, part_paths)` merges part files (one per job of a split sweep) into one file: per
key the newest row by timestamp, every part checked before anything is written.
`read_results(path)` loads a results CSV (or a samples file) as a DataFrame with the row type's
column types, the last row of each key.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import fcntl
import io
import math
import os
import re
import socket
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from runners.rows import COLUMNS, KEY_COLUMNS, SAMPLES_COLUMNS, STATUSES, ResultRow

# A key whose last row has one of these is not measured again: an implementation that cannot run a
# case (`skipped`) cannot run it next time either; an `error` or `oom` may pass on a retry.
DONE_STATUSES = ("ok", "skipped")
TEMPORARY_NAME = re.compile(r"^\..+\.tmp-(?:(?P<host>.+)-)?(?P<pid>\d+)$")


class MixedGpuError(RuntimeError):
    """A row would land in a file holding another GPU's results."""


class ResultsFileError(ValueError):
    """A file that cannot be read as a results (or samples) file; it is left as it is."""


class DamagedRowWarning(UserWarning):
    """A line of a results file that does not parse: ignored, measured again, dropped by a compaction."""


def samples_path_for(path: Path) -> Path:
    """results/nvidia-h200/fp16.csv -> results/nvidia-h200/fp16.samples.csv"""
    path = Path(path)
    return path.with_name(path.stem + ".samples.csv")


def quarantine_path_for(path: Path) -> Path:
    """results/nvidia-h200/fp16.csv -> results/nvidia-h200/fp16.csv.damaged: where the lines that a
    rewrite or an append removes (damaged rows, a line cut by a kill) are kept, never deleted."""
    path = Path(path)
    return path.with_name(path.name + ".damaged")


def quarantine(path: Path, data: bytes) -> None:
    """Append `data` (whole lines, or a cut one) to the quarantine file of `path`, each ending in a
    line end; the caller holds the lock."""
    if not data:
        return
    with quarantine_path_for(path).open("ab") as f:
        f.write(data if data.endswith(b"\n") else data + b"\n")
        f.flush()
        os.fsync(f.fileno())


def lock_path_for(path: Path) -> Path:
    """results/nvidia-h200/fp16.csv -> results/nvidia-h200/.fp16.csv.lock (one lock for both files)"""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


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


# ---- reading ---------------------------------------------------------------------------------------


@dataclass
class Table:
    """What a results or samples file holds: its header (None: no file, or an empty one), the rows
    that parse in file order, and the (line, reason) of each line that does not."""

    header: list[str] | None
    rows: list[dict[str, str]]
    damaged: list[tuple[int, str]]
    damaged_text: list[str] = dataclasses.field(default_factory=list)  # those lines as they are


def why_damaged(fields: dict[str, str]) -> str | None:
    """Why a row of the right field count is not a row the writer wrote, or None."""
    try:
        p = float(fields["p"])
    except ValueError:
        return f"p={fields['p']!r} is not a number"
    if not math.isfinite(p):
        return f"p={fields['p']!r} is not a finite number"
    if "status" in fields and fields["status"] not in STATUSES:
        return f"status {fields['status']!r} is none of {', '.join(STATUSES)}"
    if fields.get("status") == "ok":
        return why_ok_figures_damaged(fields)
    return None


# An ok row's p50 must be a positive finite number; its other times and rates too, or NaN (not
# measured). The writer never writes anything else, so an ok row that breaks this was damaged after
# it was written: counting it as measured would keep a value no report can use from being measured
# again.
OK_FIGURES = ("p50_ms", "p20_ms", "p80_ms", "gbps", "pct_of_copy", "tokens_per_s")


def why_ok_figures_damaged(fields: dict[str, str]) -> str | None:
    for name in OK_FIGURES:
        if name not in fields:
            continue
        try:
            value = float(fields[name] or "nan")
        except ValueError:
            return f"{name}={fields[name]!r} is not a number in a row whose status is ok"
        if name != "p50_ms" and math.isnan(value):
            continue
        if not (math.isfinite(value) and value > 0):
            return f"{name}={fields[name]!r} is not a positive finite number in a row whose status is ok"
    return None


def read_table(path: Path, known_columns: tuple[str, ...] | None) -> Table:
    """The rows of a CSV this module wrote. Raises `ResultsFileError` for a file that is not one:
    not UTF-8, no key columns, or (given `known_columns`) a column outside them."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Table(None, [], [])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ResultsFileError(
            f"{path}, line {line}: not UTF-8 text (byte {data[error.start]:#04x} at offset {error.start}): "
            "not a results file this harness wrote; left as it is"
        ) from None
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors add: no part of the first column's name
    if not text:
        return Table(None, [], [])
    # A file not ending in a line end was cut by a kill inside its last line: that tail is no row.
    complete, tail = text[: text.rfind("\n") + 1], text[text.rfind("\n") + 1 :]
    if not complete and is_cut_header(tail, known_columns):
        return Table(None, [], [(1, "the file ends inside its header (a first write cut short); it starts afresh")],
                     [tail])
    lines = complete.splitlines()
    header = next(csv.reader([lines[0] if lines else tail]), [])
    check_header(path, header, known_columns)
    rows, damaged, damaged_text = [], [], []
    # One row is one line (values never hold line breaks): each line is parsed alone, so a damaged
    # line (an open quote, a stray field) costs itself and never the line after it.
    for line, text_line in enumerate(lines[1:], start=2):
        if not text_line.strip():
            continue  # a blank line
        fields, reason = parse_line(text_line, header)
        if reason is None:
            rows.append(fields)
        else:
            damaged.append((line, reason))
            damaged_text.append(text_line)
    if tail and lines:
        damaged.append((len(lines) + 1, "cut short: the file ends inside this line (an interrupted write)"))
        damaged_text.append(tail)
    return Table(header, rows, damaged, damaged_text)


def is_cut_header(text: str, known_columns: tuple[str, ...] | None) -> bool:
    """A file without a line end whose text begins a header this module writes: a first write cut
    short (the header and the first row go in one write), holding no row."""
    headers = [known_columns] if known_columns is not None else [COLUMNS, SAMPLES_COLUMNS]
    return any(",".join(columns).startswith(text.rstrip("\r")) for columns in headers)


def parse_line(line: str, header: list[str]) -> tuple[dict[str, str] | None, str | None]:
    """One line of a results file as (its fields by column, None), or (None, why it is not a row the
    writer wrote)."""
    if "\x00" in line:
        return None, "a NUL byte: no text the writer writes holds one"
    try:
        record = next(csv.reader([line], strict=True))
    except csv.Error as error:
        return None, f"not CSV ({error})"
    if len(record) != len(header):
        return None, f"{len(record)} fields, the header has {len(header)}"
    if csv_line(record).decode("utf-8").rstrip("\r\n") != line.rstrip("\r"):
        return None, "quoted as the writer never quotes (a stray quote?)"
    fields = dict(zip(header, record, strict=True))
    reason = why_damaged(fields)
    return (fields, None) if reason is None else (None, reason)


def check_header(path: Path, header: list[str], known_columns: tuple[str, ...] | None) -> None:
    missing = [c for c in KEY_COLUMNS if c not in header]
    if missing:
        raise ResultsFileError(
            f"{path}, line 1: the header lacks the key column(s) {', '.join(missing)} "
            f"(a renamed column, or not a results file); left as it is. Header: {','.join(header)[:200]}"
        )
    unknown = [c for c in header if known_columns is not None and c not in known_columns]
    if unknown:
        raise ResultsFileError(
            f"{path}, line 1: column(s) {', '.join(unknown)} are none of runners/rows.py's columns "
            "(a renamed column, or not a results file); left as it is"
        )
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise ResultsFileError(f"{path}, line 1: column(s) {', '.join(repeated)} appear twice; left as it is")


def warn_damaged(path: Path, table: Table) -> None:
    for line, reason in table.damaged:
        warnings.warn(f"{path}, line {line}: ignored, {reason}; its key counts as not measured",
                      DamagedRowWarning, stacklevel=3)  # fmt: skip


def last_row_per_key(rows: Iterable[dict[str, str]]) -> dict[tuple, dict[str, str]]:
    """Key -> the last row of that key (at the place of the first)."""
    latest: dict[tuple, dict[str, str]] = {}
    for fields in rows:
        latest[key_of(fields)] = fields
    return latest


# ---- writing ---------------------------------------------------------------------------------------


def csv_line(values: Iterable[str]) -> bytes:
    """One CSV record on one line, ending in "\\r\\n" (the csv module's line end). A line break
    inside a value becomes a space: one row is one line, so a cut line never spans two rows."""
    text = io.StringIO()
    csv.writer(text).writerow(str(v).replace("\r", " ").replace("\n", " ") for v in values)
    return text.getvalue().encode("utf-8")


def append_rows(path: Path, columns: tuple[str, ...], rows: list[dict[str, str]]) -> None:
    """Append rows (missing columns empty) in one write and fsync; the caller holds the lock.

    The file is opened in append mode here, for this write alone: if a compaction renamed a new file
    into place since the last write, the rows land in the new one. A last line that a kill cut
    short (no line end) is removed first: it is no row, and an open quote in it would swallow the
    rows appended after it."""
    lines = b"".join(csv_line(fields.get(c, "") for c in columns) for fields in rows)
    with path.open("a+b") as f:
        size = f.seek(0, os.SEEK_END)
        complete = end_of_last_line(f, size)
        if complete < size:
            f.seek(complete)
            quarantine(path, f.read(size - complete))
            f.truncate(complete)
        if complete == 0:
            lines = csv_line(columns) + lines
        f.write(lines)
        f.flush()
        os.fsync(f.fileno())


def end_of_last_line(f, size: int) -> int:
    """The offset just past the last line end of an open binary file of `size` bytes (0: none)."""
    if size:
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return size  # the usual case: the file ends with a whole line
    end = size
    while end > 0:
        start = max(end - 65536, 0)
        f.seek(start)
        cut = f.read(end - start).rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        end = start
    return 0


def temporary_path(path: Path) -> Path:
    """The name of the file a rewrite of `path` goes through: host and pid tell a stale one."""
    return path.with_name(f".{path.name}.tmp-{socket.gethostname()}-{os.getpid()}")


def write_atomically(path: Path, columns: tuple[str, ...], rows: Iterable[dict[str, str]]) -> None:
    """Replace `path` by a file of `rows` (missing columns empty): written aside, fsynced, renamed."""
    tmp = temporary_path(path)
    try:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore", restval="")
            writer.writeheader()
            writer.writerows(rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # after the rename there is nothing left to remove


def process_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, another user's
    return True


def remove_stale_temporary_files(folder: Path) -> list[Path]:
    """Remove the temporary files in `folder` of processes of this host that are gone (a rewrite
    killed by SIGKILL, or SIGTERM without a handler, cannot remove its own). Returns them."""
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for path in folder.iterdir():
            match = TEMPORARY_NAME.match(path.name)
            if not match or match["host"] not in (None, socket.gethostname()):
                continue  # not one of ours, or another host's (a shared file system): its pid means nothing here
            if not process_is_alive(int(match["pid"])):
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def row_defaults() -> dict[str, str]:
    """The text of each column's default: what a migrated row of an older column set gets."""
    empty = ResultRow()
    return {name: format_value(getattr(empty, name)) for name in COLUMNS}


# ---- the file --------------------------------------------------------------------------------------


class ResultsFile:
    """The rows of one results CSV (and its samples file): read at opening, appended as written."""

    def __init__(self, path):
        self.path = Path(path)
        self.samples_path = samples_path_for(self.path)
        self.lock_path = lock_path_for(self.path)
        for path, columns in self._files():
            refuse_what_is_no_results_file(path, columns)  # before the lock file is made beside it
        remove_stale_temporary_files(self.path.parent)
        table = Table(None, [], [])
        if self.path.exists() or self.samples_path.exists():
            with self._locked(fcntl.LOCK_SH):  # no other process is half-way through a line meanwhile
                table = read_table(self.path, COLUMNS)
                samples = read_table(self.samples_path, SAMPLES_COLUMNS)  # refused here, before anything is measured
            warn_damaged(self.path, table)
            warn_damaged(self.samples_path, samples)
        self._rows = last_row_per_key(table.rows)
        self._gpus = {fields.get("gpu", "") for fields in self._rows.values()}

    def __len__(self) -> int:
        return len(self._rows)

    def has(self, key: tuple) -> bool:
        """The file holds a row of this key (whatever its status)."""
        return self._key(key) in self._rows

    def done(self, key: tuple) -> bool:
        """The key's last row is `ok` or `skipped`: a resumed run need not measure it again."""
        fields = self._rows.get(self._key(key))
        return fields is not None and fields.get("status") in DONE_STATUSES

    def rows(self) -> list[dict[str, str]]:
        return list(self._rows.values())

    def gpus(self) -> set[str]:
        return set(self._gpus)

    def write(self, row: ResultRow) -> None:
        """Append one row and its samples (the last row of a key is the one that counts)."""
        self.write_fields(row_fields(row), sample_fields(row))

    def write_fields(self, fields: dict[str, str], samples: dict[str, str] | None) -> None:
        self.append([(fields, samples)])

    def append(self, rows: list[tuple[dict[str, str], dict[str, str] | None]]) -> None:
        """Append rows as (fields, samples or None): samples first, so a row on disk has its samples."""
        for fields, _ in rows:
            self._refuse_other_gpu(fields)
        samples_rows = [
            {**dict(zip(KEY_COLUMNS, (fields[c] for c in KEY_COLUMNS), strict=True)), **samples}
            for fields, samples in rows
            if samples is not None
        ]
        with self._locked(fcntl.LOCK_EX):
            self._migrate_older_columns()
            if samples_rows:
                append_rows(self.samples_path, SAMPLES_COLUMNS, samples_rows)
            append_rows(self.path, COLUMNS, [fields for fields, _ in rows])
        for fields, _ in rows:
            self._rows[key_of(fields)] = fields
            self._gpus.add(fields.get("gpu", ""))

    def compact(self) -> None:
        """Rewrite both files with one row per key (the last), today's header, no damaged line and
        no samples without a row; each file only where that changes it. Re-reads the files under the
        lock, so rows other processes appended are kept (and known to this object afterwards)."""
        if not (self.path.exists() or self.samples_path.exists()):
            return
        with self._locked(fcntl.LOCK_EX):
            self._compact_locked()

    def merge_from(self, other: ResultsFile) -> int:
        """Append the rows of `other` (and their samples) that are newer than this file's row of
        their key (`is_newer`); `compact()` afterwards. Returns the rows taken."""
        samples = last_row_per_key(read_table(other.samples_path, SAMPLES_COLUMNS).rows)
        newer = [(fields, samples.get(key)) for key, fields in other._rows.items()
                 if is_newer(fields, self._rows.get(key))]  # fmt: skip
        if newer:
            self.append(newer)
        return len(newer)

    # -- under the lock --

    @contextlib.contextmanager
    def _locked(self, mode: int) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock_path.open("a") as lock:  # never replaced: every process locks the same inode
            fcntl.flock(lock, mode)
            yield  # closing the file releases the lock

    def _compact_locked(self) -> None:
        table = read_table(self.path, COLUMNS)
        samples = read_table(self.samples_path, SAMPLES_COLUMNS)
        rows = last_row_per_key(table.rows)
        latest_samples = last_row_per_key(samples.rows)
        kept_samples = [latest_samples[key] for key in rows if key in latest_samples]
        if samples.header is not None and (
            samples.header != list(SAMPLES_COLUMNS) or samples.damaged or len(kept_samples) != len(samples.rows)
        ):
            quarantine(self.samples_path, "\n".join(samples.damaged_text).encode("utf-8"))
            write_atomically(self.samples_path, SAMPLES_COLUMNS, kept_samples)
        if table.header is not None and (
            table.header != list(COLUMNS) or table.damaged or len(rows) != len(table.rows)
        ):
            quarantine(self.path, "\n".join(table.damaged_text).encode("utf-8"))
            defaults = row_defaults()
            write_atomically(self.path, COLUMNS, ({**defaults, **fields} for fields in rows.values()))
        self._rows = rows
        self._gpus = {fields.get("gpu", "") for fields in rows.values()}

    def _migrate_older_columns(self) -> None:
        """Before appending rows of today's columns, rewrite a file of an older column set (once)."""
        if any(first_line(p) not in (None, list(c)) for p, c in self._files()):
            self._compact_locked()

    def _files(self) -> list[tuple[Path, tuple[str, ...]]]:
        return [(self.samples_path, SAMPLES_COLUMNS), (self.path, COLUMNS)]

    def _key(self, key: tuple) -> tuple:
        return key_of(dict(zip(KEY_COLUMNS, key, strict=True)))

    def _refuse_other_gpu(self, fields: dict[str, str]) -> None:
        gpus = self._gpus - {fields.get("gpu", "")}
        if gpus:
            raise MixedGpuError(
                f"{self.path} holds results of {sorted(gpus)}, not {fields.get('gpu')!r}: "
                "write to another file (results of different GPUs never share one)"
            )


def refuse_what_is_no_results_file(path: Path, columns: tuple[str, ...]) -> None:
    """Raise `ResultsFileError` for a path that cannot be a results file of these columns: not a
    regular file (/dev/null, a folder), or a file whose first line is no such header (README.md).
    A cheap look before anything is measured or created beside it (the lock file)."""
    if not path.exists():
        return
    if not path.is_file():
        raise ResultsFileError(f"{path}: not a regular file; give a results file path (a .csv file, or none yet)")
    with path.open("rb") as f:
        first = f.readline(1 << 16)
    if not first.endswith(b"\n"):
        return  # empty, or a header cut short: read_table decides
    try:
        header = next(csv.reader([first.decode("utf-8").removeprefix("\ufeff")]), [])
    except (UnicodeDecodeError, csv.Error):
        raise ResultsFileError(f"{path}, line 1: not a CSV header; not a results file, left as it is") from None
    check_header(path, header, columns)


def first_line(path: Path) -> list[str] | None:
    """The header of a CSV, or None for a missing or empty file (a cheap read: one line)."""
    try:
        with path.open(newline="", encoding="utf-8", errors="replace") as f:
            return next(csv.reader(f), None)
    except FileNotFoundError:
        return None


def is_newer(fields: dict[str, str], than: dict[str, str] | None) -> bool:
    """A row written after `than` (by timestamp: ISO 8601 UTC, so text order is time order); a
    row with no timestamp is the oldest. Equal times keep `than`, so merging again changes nothing."""
    return than is None or fields.get("timestamp", "") > than.get("timestamp", "")


def merge(out_path, part_paths: Iterable) -> ResultsFile:
    """Merge part files into `out_path`: per key the newest row (by timestamp) of the file and the
    parts, so a part never puts an older row back over a newer one. Every part is read and checked
    first (readable, one GPU with the file): a bad part is named and nothing is written. The result
    is compacted: one row per key."""
    out = ResultsFile(out_path)
    parts = [ResultsFile(part) for part in part_paths]
    gpus = out.gpus()
    for part in parts:
        other = part.gpus() - gpus if gpus else set()
        if other or len(part.gpus()) > 1:
            raise MixedGpuError(
                f"{part.path} holds results of {sorted(part.gpus())}, {out_path} (or a part before it) of "
                f"{sorted(gpus)}: not merged, nothing written (results of different GPUs never share a file)"
            )
        gpus |= part.gpus()
    for part in parts:
        out.merge_from(part)
    out.compact()
    return out


def column_types() -> dict[str, str]:
    """Column -> 'str' | 'bool' | 'int' | 'float', from `ResultRow`'s annotations."""
    return {f.name: str(f.type) for f in dataclasses.fields(ResultRow) if f.name in COLUMNS}


def read_results(path) -> pd.DataFrame:
    """A results CSV (or samples file), the last row of each key, with text columns as str (empty
    stays ''), numbers as numbers, flags as bool. Damaged lines are skipped with a warning."""
    path = Path(path)
    table = read_table(path, None)
    if table.header is None:
        if not path.exists():
            raise FileNotFoundError(f"no results file {path}")
        raise ResultsFileError(f"{path}: an empty file, not a results file")
    warn_damaged(path, table)
    frame = pd.DataFrame(list(last_row_per_key(table.rows).values()), columns=table.header, dtype=str)
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
