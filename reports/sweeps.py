"""Sweeps: micro rows that differ only in the size of one axis, and the numbers drawn from them.

Each op family of the micro sweep (runners/op_families.py) writes rows of its own `workload`:
`micro` for the standalone op, whose product is `seeded`; `dropout_add_rmsnorm` (and the other
norms) for the fused family, whose product is `fused`. A sweep holds rows of one workload, and
every reading of it compares that workload's product with its baselines and its `copy` roofline.

A preset sweeps one axis (the sequence length `T` in the default `64xTx768`, `dim=(1,)`); other
presets sweep other shapes and dims. Rows of one (dim, p, rank) are split on the axis whose
removal leaves the fewest distinct shapes: that axis is the x axis, the rest is the pattern.
The `host` timer runs on one tiny tensor outside any sweep, so it never shapes the groups.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass

import pandas as pd

MODES = ("fwd", "bwd", "fwd_bwd")
IMPL_ORDER = ("fused", "seeded", "seeded:compile", "eager", "compile", "native", "per_element_rng", "seeded+liger",
              "liger:no_dropout")  # fmt: skip
ROOFLINE_IMPL = "copy"
PRODUCT_IMPL = "seeded"  # the standalone op's (workload micro)
FUSED_PRODUCT_IMPL = "fused"  # the fused family's (workloads dropout_add...)
STANDALONE_WORKLOAD = "micro"


def product_of_workload(workload: str) -> str:
    return PRODUCT_IMPL if workload == STANDALONE_WORKLOAD else FUSED_PRODUCT_IMPL


def product_of(rows: pd.DataFrame) -> str:
    """The product the rows of one sweep measure (rows without a workload column: the standalone op)."""
    workloads = set(rows.workload) if "workload" in rows else {STANDALONE_WORKLOAD}
    if len(workloads) > 1:
        raise ValueError(f"rows of several op families ({sorted(workloads)}) are no one sweep")
    return product_of_workload(next(iter(workloads), STANDALONE_WORKLOAD))
# the timer a sweep's throughput and speedups are read from, first present wins
SWEEP_TIMERS = ("event", "cuda_graph", "cpu")
HOST_TIMER = "host"
SHAPE = re.compile(r"[1-9][0-9]*(x[1-9][0-9]*)*")


def parse_shape(text: str) -> tuple[int, ...]:
    """"64x256x768" -> (64, 256, 768); ValueError for anything but sizes >= 1 joined by "x"."""
    if not SHAPE.fullmatch(text):
        raise ValueError(f"{text!r} is not a shape: sizes >= 1 joined by 'x', e.g. 64x256x768")
    return tuple(int(size) for size in text.split("x"))


def parse_dim(text: str, rank: int) -> tuple[int, ...]:
    """The shared dims, non-negative: "(1,)" -> (1,), "(-2,)" of a rank-3 shape -> (1,), "1" -> (1,);
    ValueError for anything but a tuple of dims of a rank-`rank` shape."""
    try:
        dims = ast.literal_eval(text)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        dims = None
    dims = (dims,) if isinstance(dims, int) else dims
    if not isinstance(dims, tuple) or not all(isinstance(d, int) and -rank <= d < rank for d in dims):
        raise ValueError(f"{text!r} is not a tuple of dims of a rank-{rank} shape, e.g. (1,) or ()")
    return tuple(sorted(d % rank for d in dims))


def format_size(value: float) -> str:
    """A size as a short label: 768, 8192, 16.4k, 33.6M."""
    for threshold, divisor, suffix in ((1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if value >= threshold:
            return f"{value / divisor:.3g}{suffix}"
    return f"{value:g}"


def ordered_impls(impls) -> list[str]:
    """The product first, then the usual baselines, then any other name alphabetically."""
    known = [impl for impl in IMPL_ORDER if impl in set(impls)]
    return known + sorted(set(impls) - set(IMPL_ORDER))


@dataclass(frozen=True)
class Sweep:
    dim: str  # as in the CSV, e.g. "(1,)"
    p: float
    rank: int
    axis: int | None  # the swept axis; None: several axes grow together and x is numel
    pattern: str  # e.g. "64xTx768"; varying sizes of a numel sweep are "N"
    shapes: frozenset[str]  # the CSV shape texts in this sweep
    workload: str = STANDALONE_WORKLOAD  # the op family's rows: micro, dropout_add_rmsnorm, ...

    @property
    def product(self) -> str:
        return product_of_workload(self.workload)

    @property
    def symbol(self) -> str:
        """T for a swept shared axis (time, in the usual layout), N for another axis, else numel."""
        if self.axis is None:
            return "numel"
        return "T" if self.axis in parse_dim(self.dim, self.rank) else "N"

    @property
    def x_label(self) -> str:
        return f"{self.symbol} in {self.pattern}" if self.axis is not None else f"numel of {self.pattern}"

    @property
    def title(self) -> str:
        dims = f"dim {self.dim}" if parse_dim(self.dim, self.rank) else "element-wise"
        family = "" if self.workload == STANDALONE_WORKLOAD else f"{self.workload}, "
        return f"{family}{self.pattern}, {dims}, p {self.p:g}"

    @property
    def slug(self) -> str:
        shared = parse_dim(self.dim, self.rank)
        dims = "d" + "-".join(str(d) for d in shared) if shared else "elementwise"
        family = "" if self.workload == STANDALONE_WORKLOAD else f"{self.workload}_"
        return f"{family}{self.pattern}_{dims}_p{self.p:g}"

    def size(self, shape: str) -> int:
        sizes = parse_shape(shape)
        return math.prod(sizes) if self.axis is None else sizes[self.axis]

    def rows(self, frame: pd.DataFrame) -> pd.DataFrame:
        """This sweep's rows of `frame` with the swept size as column `x`, sorted by it."""
        mine = frame[(frame.dim == self.dim) & (frame.p == self.p) & frame["shape"].isin(self.shapes)
                     & (frame.timer != HOST_TIMER)]
        if "workload" in frame:
            mine = mine[mine.workload == self.workload]
        return mine.assign(x=[self.size(shape) for shape in mine["shape"]]).sort_values(
            ["impl", "mode", "timer", "x"], kind="stable")


def swept_axis(shapes: list[tuple[int, ...]], shared: tuple[int, ...]) -> int:
    """The axis whose removal leaves the fewest distinct shapes; ties: shared dims, then lowest."""
    def cost(axis: int) -> tuple[int, bool, int]:
        rest = {shape[:axis] + shape[axis + 1 :] for shape in shapes}
        return len(rest), axis not in shared, axis

    return min(range(len(shapes[0])), key=cost)


def pattern_of(shapes: list[tuple[int, ...]], symbol_at: dict[int, str]) -> str:
    return "x".join(symbol_at.get(axis, str(size)) for axis, size in enumerate(shapes[0]))


def find_sweeps(micro: pd.DataFrame) -> list[Sweep]:
    """Sweeps of one (dim, p, rank): split on the best single axis; when no single axis leaves
    two shapes alike (several axes grow together), all of them form one sweep over numel.
    Shared-dim sweeps come first, element-wise ones last; the standalone op's before the other op
    families' (a sweep is of one `workload`)."""
    swept = micro[micro.timer != HOST_TIMER]
    if "workload" not in swept:
        swept = swept.assign(workload=STANDALONE_WORKLOAD)
    sweeps = []
    for (workload, dim, p), rows in swept.groupby(["workload", "dim", "p"], sort=True):
        by_rank: dict[int, dict[str, tuple[int, ...]]] = {}
        for text in sorted(set(rows["shape"])):
            by_rank.setdefault(len(parse_shape(text)), {})[text] = parse_shape(text)
        for rank, shapes in sorted(by_rank.items()):
            shared = parse_dim(dim, rank)
            axis = swept_axis(list(shapes.values()), shared)
            members: dict[tuple[int, ...], dict[str, tuple[int, ...]]] = {}
            for text, shape in shapes.items():
                members.setdefault(shape[:axis] + shape[axis + 1 :], {})[text] = shape
            if len(shapes) > 1 and len(members) == len(shapes):
                varying = [a for a in range(rank) if len({shape[a] for shape in shapes.values()}) > 1]
                pattern = pattern_of(list(shapes.values()), dict.fromkeys(varying, "N"))
                sweeps.append(Sweep(dim, float(p), rank, None, pattern, frozenset(shapes), workload))
                continue
            symbol = "T" if axis in shared else "N"
            for _, group in sorted(members.items()):
                pattern = pattern_of(list(group.values()), {axis: symbol})
                sweeps.append(Sweep(dim, float(p), rank, axis, pattern, frozenset(group), workload))
    # shared-mask sweeps (what the op is for) before element-wise ones, then by rank
    return sorted(sweeps, key=lambda sweep: (sweep.workload != STANDALONE_WORKLOAD, sweep.workload,
                                             not parse_dim(sweep.dim, sweep.rank), sweep.rank, sweep.slug))


def sweep_timer(rows: pd.DataFrame) -> str | None:
    present = set(rows.timer)
    return next((timer for timer in SWEEP_TIMERS if timer in present), None)


def is_ok(rows: pd.DataFrame) -> pd.Series:
    return rows.status == "ok"


def speedups(rows: pd.DataFrame, baseline: str, mode: str, timer: str) -> pd.DataFrame:
    """Per size: baseline p50 / the product's p50 (> 1: the product is faster); NaN where either is
    not ok."""
    def p50(impl: str) -> pd.Series:
        mine = rows[(rows.impl == impl) & (rows["mode"] == mode) & (rows.timer == timer)]
        return mine.p50_ms.where(is_ok(mine)).set_axis(mine.x)

    product, other = p50(product_of(rows)), p50(baseline)
    sizes = sorted(set(product.index) & set(other.index))
    ratio = [other[x] / product[x] for x in sizes]
    return pd.DataFrame({"x": sizes, "speedup": ratio})


def extreme(speedup: pd.DataFrame, worst: bool) -> tuple[float, int] | None:
    """(speedup, size) of the lowest (worst) or highest speedup over the sweep; None if none."""
    valid = speedup[speedup.speedup.map(math.isfinite)]
    if valid.empty:
        return None
    best_first = valid.sort_values(["speedup", "x"], ascending=[worst, True], kind="stable")
    return float(best_first.speedup.iloc[0]), int(best_first.x.iloc[0])
