"""One row of the results CSV: the contract between running and reporting.

The field order of `ResultRow` is the column order of `results/<gpu>/<dtype>.csv`. A row is one
measurement of one (workload, impl, mode, timer, dtype, shape, dim, p): `KEY_COLUMNS`. Raw timing
samples do not live in the CSV; they go to `<dtype>.samples.csv` beside it (`SAMPLES_COLUMNS`), one
line per key: the samples in milliseconds joined by spaces, and the round each was taken in.

A micro-benchmark row is measured in `rounds` rounds (docs/harness.md): `p50_ms` is the median of
the round medians, `ci_lo_ms`/`ci_hi_ms` the lowest and highest round median (an interval for that
median, see `runners.rounds`), `p20_ms`/`p80_ms` percentiles of all samples pooled.

Text encodings used in key columns:
- `shape`: sizes joined by "x", e.g. "64x256x768".
- `dim`: the shared dims as a Python tuple literal, e.g. "(1,)", "(2, 3)", "()" for element-wise.
"""

from __future__ import annotations

import dataclasses
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

STATUSES = ("ok", "error", "oom", "skipped")
MODES = ("fwd", "bwd", "fwd_bwd", "step")
TIMERS = ("event", "cuda_graph", "host", "cpu")

KEY_COLUMNS = ("workload", "impl", "mode", "timer", "dtype", "shape", "dim", "p")


def gpu_slug(device_name: str) -> str:
    """The folder of a GPU's results, results/<slug>/: 'NVIDIA H200' -> 'nvidia-h200' (lower case,
    runs of anything not alphanumeric become '-')."""
    return re.sub(r"[^a-z0-9]+", "-", device_name.lower()).strip("-")


def key_text(key: tuple) -> str:
    """A key (KEY_COLUMNS' values, as text) in a few words for a report line: impl, mode, timer,
    dtype, shape and dim."""
    fields = dict(zip(KEY_COLUMNS, key, strict=True))
    return " ".join(fields[name] for name in ("impl", "mode", "timer", "dtype", "shape")) + f" dim {fields['dim']}"


def format_shape(shape) -> str:
    return "x".join(str(int(s)) for s in shape)


def parse_shape(text: str) -> tuple[int, ...]:
    return tuple(int(s) for s in str(text).split("x")) if str(text) else ()


def format_dim(dims) -> str:
    return repr(tuple(int(d) for d in dims))


@dataclass
class ResultRow:
    # provenance: which run, which code, which machine
    run_id: str = ""
    timestamp: str = ""
    git_sha: str = ""
    git_dirty: bool = False
    gpu: str = ""
    driver: str = ""
    cuda: str = ""
    torch: str = ""
    triton: str = ""
    python: str = ""
    # key
    workload: str = "micro"
    impl: str = ""
    mode: str = ""
    timer: str = ""
    dtype: str = ""
    shape: str = ""
    dim: str = ""
    p: float = 0.0
    # size and traffic
    numel: int = 0
    bytes_moved: int = 0
    # timing, milliseconds per call
    p20_ms: float = float("nan")
    p50_ms: float = float("nan")
    p80_ms: float = float("nan")
    n_samples: int = 0
    # rounds: each a pass over the point's implementations in a freshly shuffled order
    rounds: int = 0
    ci_lo_ms: float = float("nan")  # the lowest round median
    ci_hi_ms: float = float("nan")  # the highest round median
    shuffle_seed: int = 0  # the run's seed of the round order
    gbps: float = float("nan")
    pct_of_copy: float = float("nan")
    # host or GPU: what sets the pace of back-to-back calls
    host_us: float = float("nan")  # event timer: median host time to issue one call, microseconds
    # host timer: the call's time over the reference's (copy's call), timed in alternating bursts in
    # the same process (runners/host_ratio.py): the median over rounds of each round's median ratio,
    # and the lowest and highest round's. What gates judge host rows on: it does not move with the
    # CPU's speed as p50_ms does. NaN for other timers and for rows written before it existed.
    host_ratio: float = float("nan")
    host_ratio_lo: float = float("nan")
    host_ratio_hi: float = float("nan")
    bound: str = ""  # event: "host" when host_us exceeds the GPU time p50, else "gpu"; cuda_graph "gpu"; host "host"
    starved: float = float("nan")  # event timer: fraction of samples in which the GPU waited for the host
    # the GPU's state after the point was measured
    sm_clock_mhz: float = float("nan")
    gpu_temp_c: float = float("nan")
    # memory, bytes
    peak_mem_delta_bytes: float = float("nan")
    saved_for_backward_bytes: float = float("nan")
    # model workload only (NaN elsewhere)
    tokens_per_s: float = float("nan")
    loss: float = float("nan")
    # outcome
    check: str = ""
    status: str = "ok"
    error: str = ""
    # raw samples and the round of each: written to the samples file, not the CSV
    samples_ms: list[float] = field(default_factory=list, repr=False)
    sample_rounds: list[int] = field(default_factory=list, repr=False)

    def key(self) -> tuple:
        return tuple(getattr(self, name) for name in KEY_COLUMNS)

    def csv_fields(self) -> dict:
        fields = dataclasses.asdict(self)
        for name in SAMPLE_FIELDS:
            fields.pop(name)
        return fields


SAMPLE_FIELDS = ("samples_ms", "sample_rounds")
COLUMNS = tuple(f.name for f in dataclasses.fields(ResultRow) if f.name not in SAMPLE_FIELDS)
SAMPLES_COLUMNS = (*KEY_COLUMNS, *SAMPLE_FIELDS)


def samples_by_round(samples_ms: Sequence[float], sample_rounds: Sequence[int]) -> list[list[float]]:
    """A row's samples grouped by the round each was taken in, in round order."""
    if len(samples_ms) != len(sample_rounds):
        raise ValueError(f"{len(samples_ms)} samples but {len(sample_rounds)} round numbers")
    by_round: dict[int, list[float]] = {}
    for sample, round_index in zip(samples_ms, sample_rounds, strict=True):
        by_round.setdefault(int(round_index), []).append(float(sample))
    return [by_round[r] for r in sorted(by_round)]


def round_medians(samples_ms: Sequence[float], sample_rounds: Sequence[int]) -> list[float]:
    """The median of each round's samples, in round order: a row's observations (the samples file
    holds the samples and the round of each; runners/rounds.py says why rounds are the unit)."""
    return [statistics.median(samples) for samples in samples_by_round(samples_ms, sample_rounds)]


def gbps_of(bytes_moved: float, p50_ms: float) -> float:
    """The `gbps` column: the bytes model over the p50 time, in 1e9 bytes per second."""
    return bytes_moved / (p50_ms * 1e-3) / 1e9


def percent_of_copy(copy_p50_ms: float, p50_ms: float) -> float:
    """The `pct_of_copy` column: time-based, copy's p50 over the row's p50, x 100."""
    return copy_p50_ms / p50_ms * 100
