"""One row of the results CSV: the contract between running and reporting.

The field order of `ResultRow` is the column order of `results/<gpu>/<dtype>.csv`. A row is one
measurement of one (workload, impl, mode, timer, dtype, shape, dim, p): `KEY_COLUMNS`. Raw timing
samples do not live in the CSV; they go to `<dtype>.samples.csv` beside it, one line per key with
the samples in milliseconds joined by spaces.

Text encodings used in key columns:
- `shape`: sizes joined by "x", e.g. "64x256x768".
- `dim`: the shared dims as a Python tuple literal, e.g. "(1,)", "(2, 3)", "()" for element-wise.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

STATUSES = ("ok", "error", "oom", "skipped")
MODES = ("fwd", "bwd", "fwd_bwd", "step")
TIMERS = ("event", "cuda_graph", "host", "cpu")

KEY_COLUMNS = ("workload", "impl", "mode", "timer", "dtype", "shape", "dim", "p")


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
    gbps: float = float("nan")
    pct_of_copy: float = float("nan")
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
    # raw samples: written to the samples file, not the CSV
    samples_ms: list[float] = field(default_factory=list, repr=False)

    def key(self) -> tuple:
        return tuple(getattr(self, name) for name in KEY_COLUMNS)

    def csv_fields(self) -> dict:
        fields = dataclasses.asdict(self)
        fields.pop("samples_ms")
        return fields


COLUMNS = tuple(f.name for f in dataclasses.fields(ResultRow) if f.name != "samples_ms")
