"""The sweep as a list of work: points (dtype, shape, shared dims, p), and what is timed at each.

A point is one input; every implementation, mode and timer of the config is measured on it. Points
come in a fixed order (dtype, then the shape preset's cases in file order, then p), so
`part_index`/`part_count` select the same deterministic subset in every job of a split sweep.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from runners.rows import format_dim, format_shape

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32, "fp64": torch.float64}
GPU_TIMERS = ("event", "cuda_graph", "host")


@dataclass(frozen=True)
class Point:
    dtype: str
    shape: tuple[int, ...]
    dims: tuple[int, ...]
    p: float

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def key_fields(self) -> dict:
        """The key columns a point fixes (the rest: workload, impl, mode, timer)."""
        return dict(dtype=self.dtype, shape=format_shape(self.shape), dim=format_dim(self.dims), p=self.p)


def as_list(value) -> list:
    """A scalar or a list from the config, as a list (`p=0.1` and `p=[0.1,0.5]` both work)."""
    return list(value) if isinstance(value, (list, tuple, ListConfig)) else [value]


def chosen(names: list[str], key: str, known) -> list[str]:
    """The names a selection gives; an empty one is refused: it would run nothing and say nothing."""
    if not names:
        raise ValueError(f"{key}=[] selects nothing to measure: give at least one of {', '.join(known)}")
    return names


def flag(cfg: DictConfig, key: str) -> bool:
    """A boolean setting, e.g. `overwrite`: true or false, never a string read by its truthiness
    (`overwrite=no` would otherwise re-measure and replace every row)."""
    value = OmegaConf.select(cfg, key)
    if not isinstance(value, bool):
        raise ValueError(f"{key}={value!r} is not a boolean: give {key}=true or {key}=false")
    return value


def whole_number(cfg: DictConfig, key: str, least: int) -> int:
    """An integer setting of at least `least`, e.g. `timer.rounds`, checked before anything runs."""
    value = OmegaConf.select(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{key}={value!r}: give a whole number, {least} or more")
    return value


def dtype_names(cfg: DictConfig) -> list[str]:
    names = chosen([str(n) for n in as_list(cfg.dtype.names)], "dtype.names", DTYPES)
    unknown = [n for n in names if n not in DTYPES]
    if unknown:
        raise ValueError(f"unknown dtype {unknown}; choose from {list(DTYPES)} or all")
    return names


def shape_cases(cfg: DictConfig) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(shape, shared dims) pairs of the shape preset, in file order; negative dims normalised.

    Raises ValueError naming the case (`shape.cases[i].shapes[j]`) for a size that is not a
    positive integer, or a dim that is not an integer, lies outside the shape, or repeats one:
    without this, `dim: [5]` on a 3-d shape would measure dim 2 (5 % 3)."""
    if not cfg.shape.cases:
        raise ValueError("shape.cases is empty: the shape preset gives no shape to measure")
    cases = []
    for i, case in enumerate(cfg.shape.cases):
        dims = as_list(case.dim)
        bad_dims = [d for d in dims if not is_integer(d)]
        if bad_dims:
            raise ValueError(f"shape.cases[{i}].dim: {bad_dims[0]!r} is not an integer dimension")
        if not case.shapes:
            raise ValueError(f"shape.cases[{i}].shapes is empty")
        for j, shape in enumerate(case.shapes):
            where = f"shape.cases[{i}].shapes[{j}]"
            shape = as_list(shape)
            if not shape or not all(is_integer(s) and s > 0 for s in shape):
                raise ValueError(f"{where}: {list(shape)} is not a shape: give one or more positive integer sizes")
            cases.append((tuple(int(s) for s in shape), shared_dims(dims, len(shape), f"shape.cases[{i}].dim")))
    return cases


def is_integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def shared_dims(dims: list[int], rank: int, where: str) -> tuple[int, ...]:
    """The dims as indices in [0, rank), sorted; each given dim in [-rank, rank), none named twice."""
    outside = [d for d in dims if not -rank <= d < rank]
    if outside:
        raise ValueError(f"{where}: dim {outside[0]} is outside a {rank}-d shape (dims lie in [{-rank}, {rank - 1}])")
    normalised = [d % rank for d in dims]
    if len(set(normalised)) < len(normalised):
        raise ValueError(f"{where}: {list(dims)} names one dimension twice (in a {rank}-d shape)")
    return tuple(sorted(normalised))


def drop_probabilities(cfg: DictConfig) -> list[float]:
    """The config's `p` values; each a number in [0, 1] (1 drops everything). NaN is refused: it
    would pass the correctness check (every comparison with NaN is false) with an all-zero output."""
    ps = as_list(cfg.p)
    if not ps:
        raise ValueError("p is empty: give a drop probability in [0, 1], or a list of them (config key p)")
    for p in ps:
        if isinstance(p, bool) or not isinstance(p, (int, float)):
            raise ValueError(f"p={p!r} is not a number: give drop probabilities in [0, 1] (config key p)")
        if not 0 <= p <= 1:  # false for NaN too
            raise ValueError(f"p={p} is not a drop probability: give a number in [0, 1] (config key p)")
    return [float(p) for p in ps]


def sweep_points(cfg: DictConfig, dtypes: list[str]) -> list[Point]:
    """Every point of the sweep; raises ValueError, naming the value and its config key, for a
    config that is not one (checked before anything is measured)."""
    ps = drop_probabilities(cfg)
    return [Point(dt, shape, dims, p) for dt in dtypes for shape, dims in shape_cases(cfg) for p in ps]


def part_of(points: list[Point], part_index: int, part_count: int) -> list[Point]:
    """Points part_index, part_index + part_count, ...: round robin, so parts cost about the same."""
    if not 0 <= part_index < part_count:
        raise ValueError(f"part_index must lie in [0, part_count): got {part_index} of {part_count}")
    return points[part_index::part_count]


def timer_names(cfg: DictConfig, device: torch.device) -> list[str]:
    """The timers of the config; on CPU only `cpu` exists (perf_counter), whatever was asked."""
    names = chosen([str(n) for n in as_list(cfg.timer.names)], "timer.names", GPU_TIMERS)
    if device.type == "cpu":
        unknown = [n for n in names if n not in (*GPU_TIMERS, "cpu")]
        if unknown:
            raise ValueError(f"unknown timer {unknown}; choose from {list(GPU_TIMERS)} (on CPU each runs as cpu)")
        return ["cpu"]
    if "cpu" in names:
        raise ValueError("timer cpu is the CPU smoke timer; on a GPU use event, cuda_graph or host")
    unknown = [n for n in names if n not in GPU_TIMERS]
    if unknown:
        raise ValueError(f"unknown timer {unknown}; choose from {list(GPU_TIMERS)}")
    return names


def timers_at(point: Point, timers: list[str], host_max_numel: int) -> list[str]:
    """The host timer measures launch overhead, so it runs on tiny tensors only."""
    return [t for t in timers if t != "host" or point.numel <= host_max_numel]


def mode_names(cfg: DictConfig) -> list[str]:
    modes = chosen([str(m) for m in as_list(cfg.mode)], "mode", ("fwd", "bwd", "fwd_bwd"))
    unknown = [m for m in modes if m not in ("fwd", "bwd", "fwd_bwd")]
    if unknown:
        raise ValueError(f"unknown mode {unknown}; choose from fwd, bwd, fwd_bwd")
    return modes


def impl_names(cfg: DictConfig) -> list[str]:
    """The implementations of the config, copy (the roofline) first when it is there."""
    names = chosen([str(n) for n in as_list(cfg.impl.names)], "impl.names", ("copy", "seeded", "eager", "..."))
    return sorted(names, key=lambda n: n != "copy")
