"""The micro-benchmark sweep: at every point, every implementation, mode and timer, one row each.

At each point, first every implementation is prepared: built (compiling, for `compile`), checked
for correctness (`runners/checks.py`; a failure is recorded and nothing is timed) and its saved
bytes counted. Then the point is measured in `rounds` rounds (`runners/rounds.py`): in each round
the prepared implementations run in a freshly shuffled order, each timing every (mode, timer) it
still needs. Peak memory is measured once per (implementation, mode). The rows of a point are
written when its last round ends, then the GPU's clock and temperature are read into them. An
exception or OOM becomes an `error`/`oom` row and the sweep goes on; an implementation that cannot
run a case becomes a `skipped` row.

Resuming: keys already in the file are skipped unless `overwrite`. The copy roofline of a point is
re-timed whenever anything else at that point is, so `pct_of_copy` always compares rows of one run.
"""

from __future__ import annotations

import gc
import math
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from baselines import NotApplicable
from baselines.mask_based import compiled_graph_count
from runners import checks, gpu_state, memory, timers
from runners.context import RunContext
from runners.host_ratio import RatioSummary
from runners.modes import mode_call_factory
from runners.op_families import FAMILIES, OpFamily, family_of
from runners.plan import (
    Point,
    as_list,
    dtype_names,
    flag,
    impl_names,
    mode_names,
    part_of,
    sweep_points,
    timer_names,
    timers_at,
    whole_number,
)
from runners.provenance import utc_now
from runners.results_io import ResultsFile
from runners.rounds import RoundSummary, bound_of, median_or_nan, round_order
from runners.rows import ResultRow, gbps_of, percent_of_copy
from runners.summary import summary_text

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
    family: OpFamily = FAMILIES["dropout"]  # the op measured (op=<name>): runners/op_families.py
    op_settings: dict = field(default_factory=dict)  # the family's own settings (op.settings)
    rounds: int = 5
    host_rounds: int = 5  # rounds of a point the host timer runs at (rounds_at)
    shuffle_seed: int = 0
    pass_index: int = 0  # pass i of a sweep in passes numbers a point's rounds from i x its rounds

    @property
    def workload(self) -> str:
        """The rows' workload column: the family's, for its settings (`micro` for the standalone op)."""
        return self.family.workload(self.op_settings)


class RecompiledWhileTiming(RuntimeError):
    """torch.compile compiled a graph inside a timed region: the time would include compilation."""


def describe_error(error: BaseException) -> str:
    text = " | ".join(line.strip() for line in f"{type(error).__name__}: {error}".splitlines() if line.strip())
    return text[:ERROR_TEXT_LIMIT]


def failure_status(error: BaseException) -> str:
    """`oom` for an allocation that failed (CUDA's OutOfMemoryError; on CPU a MemoryError or the CPU
    allocator's RuntimeError), else `error`."""
    if isinstance(error, (*OOM_ERRORS, MemoryError)):
        return "oom"
    if isinstance(error, RuntimeError) and "can't allocate memory" in str(error):
        return "oom"
    return "error"


def release_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def work_at(point: Point, settings: SweepSettings, writer: ResultsFile) -> dict[str, list[tuple[str, str]]]:
    """impl -> the (mode, timer) pairs still to measure at this point."""
    pairs = [(m, t) for m in settings.modes for t in timers_at(point, settings.timers, settings.host_max_numel)]

    def missing(impl, mode, timer):
        key = (settings.workload, impl, mode, timer, *point.key_fields().values())
        return settings.overwrite or not writer.done(key)

    work = {impl: [(m, t) for m, t in pairs if missing(impl, m, t)] for impl in settings.impls}
    roofline = settings.family.roofline
    if roofline in work and any(work[impl] for impl in settings.impls if impl != roofline):
        work[roofline] = pairs  # the roofline is re-timed in the same run as what it is compared with
    return work


def rounds_at(point: Point, settings: SweepSettings) -> int:
    """How many rounds a point is measured in: `timer.host_rounds` where the host timer runs (it is
    never fewer than `timer.rounds`), else `timer.rounds`.

    Why: a Python-heavy call's host time over copy's moves by 5-13% from one moment of the shared
    host to the next, for a second or two at a time, and a round's figure sees one such moment;
    within one process, rounds a second or two apart vary independently, and processes differ by no
    more than their rounds predict (scripts/host_round_effect_probe.py,
    scripts/host_process_effect_probe.py; docs/perf-notes.md). So the median of a sweep's host
    figure narrows only with more rounds: two sweeps agree within 5% on such a key about nine times
    in ten with some 60 rounds between them, against five or six in ten with 10. A host point is a
    tiny tensor, so each of its rounds takes a second or two."""
    if "host" in timers_at(point, settings.timers, settings.host_max_numel):
        return max(settings.rounds, settings.host_rounds)
    return settings.rounds


def count_timings(points: list[Point], settings: SweepSettings) -> int:
    """The sweep's timings: every row of every point, once per round of the point."""
    return sum(rows_at(p, settings) * rounds_at(p, settings) for p in points)


def rows_at(point: Point, settings: SweepSettings) -> int:
    return len(settings.impls) * len(settings.modes) * len(timers_at(point, settings.timers, settings.host_max_numel))


def count_rows(points: list[Point], settings: SweepSettings) -> int:
    return sum(rows_at(p, settings) for p in points)


@dataclass
class Prepared:
    """An implementation built and checked at one point, ready to be timed."""

    forward: Callable
    check: str
    saved_bytes: float
    note: str


@dataclass
class Measurement:
    """What the rounds gathered for one (impl, mode, timer)."""

    timings: list[timers.Timing] = field(default_factory=list)
    failure: tuple[str, str] | None = None  # (status, error text): no more rounds for it


def prepare(name: str, case, inputs, settings: SweepSettings) -> Prepared | tuple[str, str, str]:
    """Build, check and count saved bytes; or (status, check, error) of the rows it cannot time."""
    impl = settings.family.implementation(name)
    try:
        forward = impl.build(case, **settings.impl_options.get(name, {}))
        check = settings.family.check_of(impl)(forward, case)
    except NotApplicable as error:
        return "skipped", "", str(error)
    except Exception as error:
        release_memory(case.device)
        return failure_status(error), "", describe_error(error)
    if check != checks.PASS:
        return "error", check, "correctness check failed"
    saved_bytes, note = float("nan"), ""
    try:
        saved_bytes = float(memory.saved_for_backward_bytes(forward, *inputs.tensors))
    except Exception as error:
        note = f"saved_for_backward not measured: {describe_error(error)}"
    return Prepared(forward, check, saved_bytes, note)


def time_once(prepared: Prepared, inputs, mode: str, timer: str, settings: SweepSettings,
              first_round: bool = True, reference=None) -> timers.Timing:
    """One round's timing of one (impl, mode, timer). Rounds after the first warm up with one call:
    compilation and caches were warmed by the first. `reference`: the host timer's reference
    forward (the family's roofline; None: the host timer measures no ratio)."""
    make_call = mode_call_factory(prepared.forward, inputs, mode)
    timer_settings = dict(settings.timer_settings.get(timer, {}))
    if not first_round and "warmup" in timer_settings:
        timer_settings["warmup"] = min(int(timer_settings["warmup"]), 1)
    make_reference = None
    if timer == "host" and reference is not None:
        make_reference = mode_call_factory(reference, inputs, mode)
    graphs_before = compiled_graph_count()
    timing = timers.measure(timer, make_call, timer_settings, make_reference)
    if compiled_graph_count() != graphs_before:
        raise RecompiledWhileTiming("torch.compile compiled a graph while being timed")
    return timing


def measured_fields(measurement: Measurement, timer: str) -> dict:
    """The timing columns of a row from its rounds."""
    summary = RoundSummary.from_rounds([timing.samples_ms for timing in measurement.timings])
    host_us = median_or_nan([timing.host_us for timing in measurement.timings])
    starved = [timing.starved for timing in measurement.timings if math.isfinite(timing.starved)]
    ratio = RatioSummary.from_rounds([timing.host_ratio for timing in measurement.timings])
    return dict(
        p20_ms=summary.p20_ms, p50_ms=summary.p50_ms, p80_ms=summary.p80_ms, n_samples=summary.n_samples,
        rounds=summary.rounds, ci_lo_ms=summary.ci_lo_ms, ci_hi_ms=summary.ci_hi_ms,
        samples_ms=summary.samples_ms, sample_rounds=summary.sample_rounds,
        host_us=host_us, starved=statistics.fmean(starved) if starved else math.nan,
        bound=bound_of(timer, summary.p50_ms, host_us),
        host_ratio=ratio.ratio, host_ratio_lo=ratio.low, host_ratio_hi=ratio.high,
    )  # fmt: skip


def run_point(
    point: Point, settings: SweepSettings, writer: ResultsFile, provenance: dict, progress, point_index: int = 0
) -> list[ResultRow]:
    """Measure what is left to measure at one point in `rounds_at(point)` rounds; returns the rows
    written. `point_index` (the point's place in the sweep) seeds the rounds' order."""
    work = work_at(point, settings, writer)
    rounds = rounds_at(point, settings)
    planned = len(settings.modes) * len(timers_at(point, settings.timers, settings.host_max_numel))
    progress.update(rounds * sum(planned - len(work[impl]) for impl in settings.impls))  # in the file
    if not any(work.values()):
        return []
    family = settings.family
    case = family.case_at(point, settings.device, settings.op_settings)
    label = f"{point.dtype} {point.key_fields()['shape']}"

    def row(impl: str, mode: str, timer: str, **fields) -> ResultRow:
        return ResultRow(
            workload=settings.workload, impl=impl, mode=mode, timer=timer, **point.key_fields(), numel=case.numel,
            bytes_moved=family.implementation(impl).bytes_moved(case, mode), shuffle_seed=settings.shuffle_seed,
            **fields,
        )  # fmt: skip

    rows: dict[tuple[str, str, str], ResultRow] = {}
    try:
        inputs = family.inputs(case)
    except Exception as error:  # e.g. a shape too large for memory: rows saying so, and the sweep goes on
        release_memory(settings.device)
        status, text = failure_status(error), f"inputs of shape {label}: {describe_error(error)}"
        for impl in settings.impls:
            for mode, timer in work[impl]:
                rows[impl, mode, timer] = row(impl, mode, timer, status=status, error=text[:ERROR_TEXT_LIMIT])
        progress.update(rounds * sum(len(pairs) for pairs in work.values()))
        return write_point_rows(rows, settings, writer, provenance)
    prepared: dict[str, Prepared] = {}
    # Compiled implementations compile afresh at every point (never the silent eager fallback past
    # the recompile limit); one reset before all of them are built, so none drops another's graphs.
    torch._dynamo.reset()
    for impl in settings.impls:
        if not work[impl]:
            continue
        progress.set_description(f"{label} {impl} build+check", refresh=False)
        outcome = prepare(impl, case, inputs, settings)
        if isinstance(outcome, Prepared):
            prepared[impl] = outcome
            continue
        status, check, error = outcome
        for mode, timer in work[impl]:
            rows[impl, mode, timer] = row(impl, mode, timer, status=status, check=check, error=error)
            progress.update(rounds)

    measurements = {(impl, mode, timer): Measurement() for impl in prepared for mode, timer in work[impl]}
    reference = host_reference(case, settings)
    peak_by_mode: dict[tuple[str, str], float] = {}
    for round_index in range(rounds):
        order_index = settings.pass_index * rounds + round_index
        for impl in round_order(list(prepared), settings.shuffle_seed, point_index, order_index):
            for mode, timer in work[impl]:
                measurement = measurements[impl, mode, timer]
                progress.set_description(f"{label} {impl} {mode} {timer} round {round_index + 1}", refresh=False)
                progress.update(1)
                if measurement.failure is not None:
                    continue
                try:
                    measurement.timings.append(time_once(prepared[impl], inputs, mode, timer, settings,
                                                         first_round=round_index == 0, reference=reference))
                    if (impl, mode) not in peak_by_mode:
                        make_call = mode_call_factory(prepared[impl].forward, inputs, mode)
                        peak_by_mode[impl, mode] = memory.peak_memory_delta(make_call(), case.device)
                except Exception as error:
                    measurement.failure = (failure_status(error), describe_error(error))
                    release_memory(case.device)

    sm_clock, temperature = gpu_state.clock_and_temperature(case.device)
    for (impl, mode, timer), measurement in measurements.items():
        ready = prepared[impl]
        if measurement.failure is not None:
            status, error = measurement.failure
            rows[impl, mode, timer] = row(impl, mode, timer, check=ready.check, status=status, error=error)
            continue
        rows[impl, mode, timer] = row(
            impl, mode, timer, **measured_fields(measurement, timer), peak_mem_delta_bytes=peak_by_mode[impl, mode],
            saved_for_backward_bytes=ready.saved_bytes, check=ready.check, status="ok", error=ready.note,
            sm_clock_mhz=sm_clock, gpu_temp_c=temperature,
        )  # fmt: skip
    written = write_point_rows(rows, settings, writer, provenance)
    del inputs, prepared
    release_memory(settings.device)
    return written


def host_reference(case, settings: SweepSettings):
    """The host timer's reference forward at this case: the family's roofline (for the dropout op,
    `implementations.copy_forward()`), or None where the host timer does not run or the roofline
    has no program for the case."""
    if "host" not in settings.timers:
        return None
    try:
        return settings.family.implementation(settings.family.roofline).build(case)
    except NotApplicable:
        return None


def write_point_rows(
    rows: dict[tuple[str, str, str], ResultRow], settings: SweepSettings, writer: ResultsFile, provenance: dict
) -> list[ResultRow]:
    """Fill provenance, throughput and % of copy (copy of this point, same mode and timer), then
    write each row; in the order of the config's implementations, modes and timers."""
    roofline = settings.family.roofline
    copy_p50 = {(r.mode, r.timer): r.p50_ms for r in rows.values() if r.impl == roofline and r.status == "ok"}
    order = {name: index for index, name in enumerate(settings.impls)}
    written = []
    for (_, mode, timer), result in sorted(rows.items(), key=lambda item: order[item[0][0]]):
        for name, value in provenance.items():
            setattr(result, name, value)
        result.timestamp = utc_now()
        if result.status == "ok":
            result.gbps = gbps_of(result.bytes_moved, result.p50_ms)
            copy_ms = copy_p50.get((mode, timer))
            if copy_ms is not None:
                result.pct_of_copy = percent_of_copy(copy_ms, result.p50_ms)
        writer.write(result)
        written.append(result)
    return written


def settings_of(cfg: DictConfig, device: torch.device) -> SweepSettings:
    def options(node) -> dict:
        return OmegaConf.to_container(node, resolve=True) if node is not None else {}

    family = family_of(str(OmegaConf.select(cfg, "op.name", default="dropout")))
    op_node = OmegaConf.select(cfg, "op.settings")
    if op_node is not None and not isinstance(op_node, DictConfig):
        raise ValueError(f"op.settings={op_node!r}: give settings by name, e.g. op.settings.norm=layer")
    op_settings = options(op_node)
    settings = SweepSettings(
        impls=impl_names(cfg), modes=mode_names(cfg), timers=timer_names(cfg, device), device=device,
        impl_options=options(cfg.impl.get("options")), timer_settings=options(cfg.timer.get("settings")),
        host_max_numel=whole_number(cfg, "timer.host_max_numel", 0), overwrite=flag(cfg, "overwrite"),
        family=family, op_settings=op_settings,
        rounds=whole_number(cfg, "timer.rounds", 1), host_rounds=host_rounds_of(cfg),
        shuffle_seed=whole_number(cfg, "timer.shuffle_seed", 0), pass_index=int(cfg.get("pass_index", 0)),
    )  # fmt: skip
    for name in settings.impls:  # an unknown name fails here, before anything runs
        if name not in family.implementations:
            raise KeyError(f"unknown implementation {name!r} of op={family.name}; registered: "
                           f"{', '.join(sorted(family.implementations))} (op=<family> brings its own impl preset)")
    for name in settings.timers:  # so do settings a timer cannot take
        timers.check_settings(name, settings.timer_settings.get(name, {}))
    return settings


def host_rounds_of(cfg: DictConfig) -> int:
    """`timer.host_rounds`; a config without it (or null) measures host points in `timer.rounds`."""
    if OmegaConf.select(cfg, "timer.host_rounds") is None:
        return whole_number(cfg, "timer.rounds", 1)
    return whole_number(cfg, "timer.host_rounds", 1)


def check_sweep(cfg: DictConfig, device: torch.device) -> None:
    """Everything about the sweep's config that can be refused before anything runs (ValueError or
    KeyError naming the setting): the dtypes, implementations, modes, timers and their settings,
    rounds, flags, shapes and p. `runners.bench.run` calls it before a sweep in passes starts its
    first pass, so a bad setting is named there, not as a pass that failed."""
    settings = settings_of(cfg, device)
    points = sweep_points(cfg, dtype_names(cfg))
    if points:  # the family's own settings (op.settings), checked by making its first case
        settings.family.case_at(points[0], device, settings.op_settings)


def run_sweep(cfg: DictConfig, context: RunContext) -> list[ResultRow]:
    """The micro-benchmark workload: every point of `cfg` (this job's part of them) measured and
    written; returns the rows written. Prints its plan, a progress bar and a summary."""
    settings = settings_of(cfg, context.device)
    all_points = sweep_points(cfg, context.dtypes)
    points = part_of(all_points, int(cfg.part_index), int(cfg.part_count))
    total = count_rows(points, settings)
    host_points = sum(rounds_at(p, settings) != settings.rounds for p in points)
    extra = f", {settings.host_rounds} at the {host_points} host point(s)" if host_points else ""
    print(
        f"{len(points)} points x {settings.impls} x {settings.modes} x {settings.timers}: "
        f"{total} rows of {settings.rounds} rounds{extra} (p={as_list(cfg.p)}) -> {', '.join(map(str, context.paths))}",
        flush=True,
    )
    gpu_state.warm_up(context.device, float(cfg.timer.gpu_warmup_s))
    rows = []
    interactive = sys.stderr.isatty()
    progress = tqdm(
        total=count_timings(points, settings), unit="timing", dynamic_ncols=True, mininterval=0.5 if interactive else 15
    )
    try:
        for point in points:
            # the point's place in the whole sweep seeds its rounds' order, whichever part runs it
            point_index = all_points.index(point)
            rows += run_point(point, settings, context.writers[point.dtype], context.provenance, progress, point_index)
    finally:
        progress.close()
    print(summary_text(rows), flush=True)
    return rows
