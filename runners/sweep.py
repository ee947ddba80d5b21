"""The micro-benchmark sweep: at every point, every implementation, mode and timer, one row each.

Per point and implementation, in this order: build (compiling, for `compile`), check correctness
(`runners/checks.py`; a failure is recorded and nothing is timed), count the bytes autograd saves,
then per (mode, timer) time the call and measure its peak memory. Every row is written to disk the
moment it is complete. An exception or OOM becomes an `error`/`oom` row and the sweep goes on; an
implementation that cannot run a case becomes a `skipped` row.

Resuming: keys already in the file are skipped unless `overwrite`. The copy roofline of a point is
re-timed whenever anything else at that point is, so `pct_of_copy` always compares rows of one run.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

import baselines
from baselines import DropoutCase, NotApplicable
from runners import checks, memory, timers
from runners.modes import make_inputs, mode_call_factory
from runners.plan import DTYPES, Point, timers_at
from runners.provenance import utc_now
from runners.results_io import ResultsFile
from runners.rows import ResultRow

OOM_ERRORS = tuple({getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError), torch.cuda.OutOfMemoryError})
ERROR_TEXT_LIMIT = 500


@dataclass
class SweepSettings:
    impls: list[str]
    modes: list[str]
    timers: list[str]
    device: torch.device
    impl_options: dict[str, dict] = field(default_factory=dict)
    timer_settings: dict[str, dict] = field(default_factory=dict)
    host_max_numel: int = 65536
    overwrite: bool = False
    workload: str = "micro"


class RecompiledWhileTiming(RuntimeError):
    """torch.compile compiled a graph inside a timed region: the time would include compilation."""


def compiled_graph_count() -> int:
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


def describe_error(error: BaseException) -> str:
    text = " | ".join(line.strip() for line in f"{type(error).__name__}: {error}".splitlines() if line.strip())
    return text[:ERROR_TEXT_LIMIT]


def failure_status(error: BaseException) -> str:
    return "oom" if isinstance(error, OOM_ERRORS) else "error"


def release_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def work_at(point: Point, settings: SweepSettings, writer: ResultsFile) -> dict[str, list[tuple[str, str]]]:
    """impl -> the (mode, timer) pairs still to measure at this point."""
    pairs = [(m, t) for m in settings.modes for t in timers_at(point, settings.timers, settings.host_max_numel)]

    def missing(impl, mode, timer):
        key = (settings.workload, impl, mode, timer, *point.key_fields().values())
        return settings.overwrite or not writer.has(key)

    work = {impl: [(m, t) for m, t in pairs if missing(impl, m, t)] for impl in settings.impls}
    if "copy" in work and any(work[impl] for impl in settings.impls if impl != "copy"):
        work["copy"] = pairs  # the roofline is re-timed in the same run as what it is compared with
    return work


def count_rows(points: list[Point], settings: SweepSettings) -> int:
    return sum(
        len(settings.impls) * len(settings.modes) * len(timers_at(p, settings.timers, settings.host_max_numel))
        for p in points
    )


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    p20, p50, p80 = np.percentile(np.asarray(samples, dtype=np.float64), [20, 50, 80])
    return float(p20), float(p50), float(p80)


def measure_implementation(
    name: str,
    case: DropoutCase,
    point: Point,
    inputs,
    todo: list[tuple[str, str]],
    settings: SweepSettings,
    announce: Callable[[str, str, str], None],
) -> Iterator[ResultRow]:
    """Rows of one implementation at one point, each yielded as soon as it is complete."""
    impl = baselines.get(name)

    def row(mode: str, timer: str, **fields) -> ResultRow:
        return ResultRow(
            workload=settings.workload, impl=name, mode=mode, timer=timer, **point.key_fields(),
            numel=case.numel, bytes_moved=impl.bytes_moved(case, mode), **fields,
        )  # fmt: skip

    announce(name, "build+check", "")
    try:
        forward = impl.build(case, **settings.impl_options.get(name, {}))
        check = checks.check(forward, case, impl.is_dropout)
    except NotApplicable as error:
        yield from (row(m, t, status="skipped", error=str(error)) for m, t in todo)
        return
    except Exception as error:
        status, text = failure_status(error), describe_error(error)
        release_memory(case.device)
        yield from (row(m, t, status=status, error=text) for m, t in todo)
        return
    if check != checks.PASS:
        yield from (row(m, t, status="error", check=check, error="correctness check failed") for m, t in todo)
        return

    saved_bytes, note = float("nan"), ""
    try:
        saved_bytes = float(memory.saved_for_backward_bytes(forward, inputs.x))
    except Exception as error:
        note = f"saved_for_backward not measured: {describe_error(error)}"

    peak_by_mode: dict[str, float] = {}
    for mode, timer in todo:
        announce(name, mode, timer)
        try:
            make_call = mode_call_factory(forward, inputs, mode)
            graphs_before = compiled_graph_count()
            samples = timers.measure(timer, make_call, settings.timer_settings.get(timer, {}))
            if compiled_graph_count() != graphs_before:
                raise RecompiledWhileTiming("torch.compile compiled a graph while being timed")
            if mode not in peak_by_mode:
                peak_by_mode[mode] = memory.peak_memory_delta(make_call(), case.device)
        except Exception as error:
            status, text = failure_status(error), describe_error(error)
            release_memory(case.device)
            yield row(mode, timer, check=check, status=status, error=text)
            continue
        p20, p50, p80 = _percentiles(samples)
        yield row(
            mode, timer, p20_ms=p20, p50_ms=p50, p80_ms=p80, n_samples=len(samples), samples_ms=samples,
            peak_mem_delta_bytes=peak_by_mode[mode], saved_for_backward_bytes=saved_bytes,
            check=check, status="ok", error=note,
        )  # fmt: skip


def run_point(
    point: Point, settings: SweepSettings, writer: ResultsFile, provenance: dict, progress
) -> list[ResultRow]:
    """Measure what is left to measure at one point; returns the rows written."""
    work = work_at(point, settings, writer)
    planned = len(settings.modes) * len(timers_at(point, settings.timers, settings.host_max_numel))
    progress.update(sum(planned - len(work[impl]) for impl in settings.impls))  # already in the file
    if not any(work.values()):
        return []
    case = DropoutCase(point.shape, point.dims, point.p, DTYPES[point.dtype], settings.device)
    inputs = make_inputs(point.shape, case.dtype, case.device)
    copy_p50: dict[tuple[str, str], float] = {}
    written = []

    def announce(impl, mode, timer):
        text = f"{point.dtype} {point.key_fields()['shape']} {impl} {mode} {timer}".strip()
        progress.set_description(text, refresh=False)

    for impl in settings.impls:
        for row in measure_implementation(impl, case, point, inputs, work[impl], settings, announce):
            for name, value in provenance.items():
                setattr(row, name, value)
            row.timestamp = utc_now()
            if row.status == "ok":
                row.gbps = row.bytes_moved / (row.p50_ms * 1e-3) / 1e9
                if impl == "copy":
                    copy_p50[(row.mode, row.timer)] = row.p50_ms
                # pct_of_copy is time-based: copy's p50 over this row's p50, same shape/mode/timer.
                copy_ms = copy_p50.get((row.mode, row.timer))
                if copy_ms is not None:
                    row.pct_of_copy = copy_ms / row.p50_ms * 100
            writer.write(row)
            written.append(row)
            progress.update(1)
    del inputs
    release_memory(settings.device)
    return written
