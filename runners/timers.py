"""Timers: each takes a factory of a `ModeCall` and returns a `Timing`: per-call times in
milliseconds, and what the timer learned about the host.

Warm-up calls run first and are never timed (first calls compile, autotune and fill caches).

- `event`: GPU time of one eagerly issued call. Before each call a buffer twice the L2 size is
  zeroed (cold L2), then the GPU sleeps long enough for the host to issue the whole call before
  the GPU reaches the start event (the head start: `headstart_factor` x the host's issue time in
  warm-up, at least `headstart_min_us`), so the events time the GPU's work, never the host's.
  The host's time to issue each call is measured too (`host_us`), and a sample in which the GPU
  reached the start event before the host had issued the call is counted as starved (the head
  start was short; it doubles for the next samples). Without a head start, a call whose host
  work outlasts the flush is timed by the host, and those times moved up to 3.1x between two
  processes on the H200 (results/nvidia-h200/probes/16-timer-probe-*.csv); with it, within 4%.
- `cuda_graph`: the call captured once in a CUDA graph, replayed `warmup_replays` times untimed (on
  the H200 the first five replays of a freshly captured graph ran about 11% slow, whatever their
  length: docs/perf-notes.md change 30), then replayed for the samples (L2 flushed before each);
  each replay timed by events recorded inside the graph, around the call's own work: GPU time
  alone, no Python, no launch overhead. Events outside the graph would also time torch's replay
  prologue, which, for any graph that draws from a CUDA generator, launches two small kernels from
  the host (the generator's seed and offset refreshed) once per replay however many random ops the
  graph holds: a per-graph cost, not the op's. Where events cannot be captured (an older torch),
  the events outside the graph are used instead.
- `host`: wall time per call of `calls_per_rep` back-to-back calls and one synchronize, divided by
  the number of calls: what the caller waits for, which for tiny tensors is host overhead. It
  includes the mode's reset (`x.grad = None`) and autograd's recording, as in training. Bursts of
  the call alternate with bursts of a reference call (copy's, runners/host_ratio.py), and the
  median ratio of the two is `host_ratio`: the figure that does not move with the CPU's speed,
  which reports and gates judge; the samples stay absolute times.
- `cpu`: on a machine without a GPU, `time.perf_counter` around each call (CPU smoke sweep).
"""

from __future__ import annotations

import inspect
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from runners.host_ratio import burst_order, pair_ratios
from runners.modes import ModeCall
from runners.rounds import median_or_nan

MakeCall = Callable[[], ModeCall]

_flush_buffers: dict[int, torch.Tensor] = {}
_sleep_cycles_per_us: dict[int, float] = {}
# The event timer's head start never exceeds this: a call whose host work takes longer is timed
# with whatever head start this gives, and its starved samples say so.
MAX_HEADSTART_US = 20_000.0


@dataclass
class Timing:
    """What one timer measured: per-call samples (ms); for the event timer the host's median time
    to issue one call (us) and the fraction of samples in which the GPU waited for the host; for
    the host timer the median ratio of the call's time to the reference's (runners/host_ratio.py)."""

    samples_ms: list[float]
    host_us: float = math.nan
    starved: float = math.nan
    host_ratio: float = math.nan


def _l2_flush_buffer() -> torch.Tensor:
    """A buffer twice the L2 size of the current GPU, made once per device."""
    index = torch.cuda.current_device()
    if index not in _flush_buffers:
        l2_bytes = getattr(torch.cuda.get_device_properties(index), "L2_cache_size", 0) or 64 * 2**20
        _flush_buffers[index] = torch.empty(2 * l2_bytes, dtype=torch.int8, device=f"cuda:{index}")
    return _flush_buffers[index]


def _warm_up(mode_call: ModeCall, warmup: int) -> list[float]:
    """Run `warmup` untimed calls; returns the host's time to issue each, in microseconds."""
    issue_us = []
    for _ in range(warmup):
        mode_call.reset()
        begin = time.perf_counter()
        mode_call.call()
        issue_us.append((time.perf_counter() - begin) * 1e6)
    return issue_us


def sleep_cycles_per_us() -> float:
    """Cycles of `torch.cuda._sleep` per microsecond on the current GPU, measured once per device
    (after the sweep's warm-up has brought the clocks to their working level)."""
    index = torch.cuda.current_device()
    if index not in _sleep_cycles_per_us:
        cycles = 1_000_000
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda._sleep(1000)
        start.record()
        torch.cuda._sleep(cycles)
        end.record()
        torch.cuda.synchronize()
        _sleep_cycles_per_us[index] = cycles / (start.elapsed_time(end) * 1e3)
    return _sleep_cycles_per_us[index]


def _gpu_sleep(microseconds: float) -> None:
    torch.cuda._sleep(int(microseconds * sleep_cycles_per_us()))


def time_event(
    make_call: MakeCall,
    warmup: int,
    reps: int,
    flush_l2: bool = True,
    headstart_min_us: float = 50.0,
    headstart_factor: float = 3.0,
    min_time_ms: float = 0.0,
    max_reps: int | None = None,
) -> Timing:
    mode_call = make_call()
    warm_issue_us = _warm_up(mode_call, warmup)
    # the head start covers the host's issue time seen in warm-up (the first call excluded: it compiles)
    typical_issue_us = statistics.median(warm_issue_us[1:] or warm_issue_us or [0.0])
    headstart_us = min(MAX_HEADSTART_US, max(headstart_min_us, headstart_factor * typical_issue_us))
    flush = _l2_flush_buffer() if flush_l2 else None
    samples, issue_us, starved = [], [], 0
    began = time.perf_counter()
    while batch := batch_size(len(samples), began, reps, min_time_ms, max_reps):
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(batch)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(batch)]
        torch.cuda.synchronize()
        for start, end in zip(starts, ends, strict=True):
            mode_call.reset()
            if flush is not None:
                flush.zero_()
            _gpu_sleep(headstart_us)
            start.record()
            begin = time.perf_counter()
            mode_call.call()
            issue_us.append((time.perf_counter() - begin) * 1e6)
            if start.query():  # the GPU is already past the start event: it waited for the host
                starved += 1
                headstart_us = min(MAX_HEADSTART_US, 2 * headstart_us)
            end.record()
        torch.cuda.synchronize()
        samples += [start.elapsed_time(end) for start, end in zip(starts, ends, strict=True)]
    mode_call.reset()
    return Timing(samples, host_us=statistics.median(issue_us), starved=starved / len(samples))


def batch_size(taken: int, began: float, reps: int, min_time_ms: float, max_reps: int | None) -> int:
    """How many samples to take next (0: done), given `taken` samples so far, sampling since
    `began` (a `time.perf_counter()`): first `reps`; then, while sampling has taken less than
    `min_time_ms` of wall time, further batches of `reps`, up to `max_reps` in all."""
    if taken < reps:
        return reps - taken
    limit = reps if max_reps is None else max_reps
    if taken >= limit or (time.perf_counter() - began) * 1e3 >= min_time_ms:
        return 0
    return min(reps, limit - taken)


def time_cuda_graph(
    make_call: MakeCall,
    warmup: int,
    reps: int,
    flush_l2: bool = True,
    min_time_ms: float = 0.0,
    max_reps: int | None = None,
    warmup_replays: int = 0,
) -> Timing:
    # Warm-up and capture on a side stream (as CUDA graphs require); bwd's forward runs there too,
    # so its backward, which runs on the forward's stream, is captured.
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        mode_call = make_call()
        _warm_up(mode_call, warmup)
        mode_call.reset()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    inside = _graph_events()
    with torch.cuda.graph(graph, stream=stream):
        if inside is not None:
            inside[0].record()
        mode_call.call()
        if inside is not None:
            inside[1].record()
    flush = _l2_flush_buffer() if flush_l2 else None
    for _ in range(1 + warmup_replays):  # the first uploads the graph; a fresh graph's next few run slow
        graph.replay()
        torch.cuda.synchronize()
    samples = []
    began = time.perf_counter()
    while batch := batch_size(len(samples), began, reps, min_time_ms, max_reps):
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(batch)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(batch)]
        for start, end in zip(starts, ends, strict=True):
            if flush is not None:
                flush.zero_()
            start.record()
            graph.replay()
            end.record()
            if inside is not None:  # the same two events every replay: read them before the next
                end.synchronize()
                samples.append(inside[0].elapsed_time(inside[1]))
        torch.cuda.synchronize()
        if inside is None:
            samples += [start.elapsed_time(end) for start, end in zip(starts, ends, strict=True)]
    mode_call.reset()
    del graph
    return Timing(samples)


def _graph_events() -> tuple[torch.cuda.Event, torch.cuda.Event] | None:
    """Two timing events that a capture records as nodes of the graph (external events), or None
    where this torch cannot make them."""
    try:
        return torch.cuda.Event(enable_timing=True, external=True), torch.cuda.Event(enable_timing=True, external=True)
    except TypeError:
        return None


def time_host(
    make_call: MakeCall, warmup: int, reps: int, calls_per_rep: int = 50, make_reference: MakeCall | None = None
) -> Timing:
    """`reps` samples, each the wall time per call of a burst of `calls_per_rep` calls and one
    synchronize. With `make_reference` (not a setting: the sweep hands it in), each burst is paired
    with a burst of the reference call, in the order of `burst_order`, and `host_ratio` is the
    median over the pairs of the call's time per call over the reference's."""
    mode_call = make_call()
    reference = make_reference() if make_reference is not None else None
    _warm_up(mode_call, warmup)
    if reference is not None:
        _warm_up(reference, warmup)
    _synchronize()
    samples, reference_samples = [], []
    for call_first in burst_order(reps):
        if reference is not None and not call_first:
            reference_samples.append(_burst_ms(reference, calls_per_rep))
        samples.append(_burst_ms(mode_call, calls_per_rep))
        if reference is not None and call_first:
            reference_samples.append(_burst_ms(reference, calls_per_rep))
    mode_call.reset()
    if reference is None:
        return Timing(samples)
    reference.reset()
    return Timing(samples, host_ratio=median_or_nan(pair_ratios(samples, reference_samples)))


def _burst_ms(mode_call: ModeCall, calls: int) -> float:
    """Milliseconds per call of `calls` back-to-back calls and one synchronize."""
    start = time.perf_counter()
    for _ in range(calls):
        mode_call.reset()  # x.grad = None: a Python attribute store, inside the wall time
        mode_call.call()
    _synchronize()
    return (time.perf_counter() - start) * 1e3 / calls


def _synchronize() -> None:
    """Wait for the GPU's work (nothing to wait for without one: the host timer then times CPU calls)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def host_us_per_call(fn: Callable[[], object], calls: int = 2000, warmup: int = 100) -> float:
    """Microseconds per call of `calls` back-to-back calls and one synchronize (the probe scripts'
    single figure; the harness's `host` timer keeps samples). Without a GPU: CPU calls."""
    for _ in range(warmup):
        fn()
    _synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    _synchronize()
    return (time.perf_counter() - start) / calls * 1e6


def kernel_us_per_call(call: Callable[[], object], calls: int = 20, flush_l2: bool = True) -> float:
    """Device time of the kernels one call launches, from the profiler (CUPTI), microseconds: no
    launch gaps, no host time. The L2 is flushed before each call and the flush's own time,
    profiled alone, subtracted (the probe scripts' figure for kernel speed; not a harness timer)."""
    flush = _l2_flush_buffer() if flush_l2 else None

    def device_us(body) -> float:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            for _ in range(calls):
                body()
            torch.cuda.synchronize()
        cuda = torch.autograd.DeviceType.CUDA
        return sum(e.time_range.elapsed_us() for e in prof.events() if e.device_type == cuda) / calls

    for _ in range(3):
        call()
    torch.cuda.synchronize()
    if flush is None:
        return device_us(call)

    def flushed_call():
        flush.zero_()
        call()

    return device_us(flushed_call) - device_us(flush.zero_)


def time_cpu(
    make_call: MakeCall, warmup: int, reps: int, min_time_ms: float = 0.0, max_reps: int | None = None
) -> Timing:
    mode_call = make_call()
    _warm_up(mode_call, warmup)
    samples = []
    began = time.perf_counter()
    while batch := batch_size(len(samples), began, reps, min_time_ms, max_reps):
        for _ in range(batch):
            mode_call.reset()
            start = time.perf_counter()
            mode_call.call()
            samples.append((time.perf_counter() - start) * 1e3)
    mode_call.reset()
    return Timing(samples)


TIMERS = {"event": time_event, "cuda_graph": time_cuda_graph, "host": time_host, "cpu": time_cpu}
CALLS = ("make_call", "make_reference")  # handed in by the sweep, never settings of the config


def check_settings(timer: str, settings: dict) -> None:
    """Refuse, before anything runs, settings that a timer does not take or cannot work with
    (`timer` is one of TIMERS: runners.plan.timer_names has refused any other name)."""
    where = f"timer.settings.{timer}"
    parameters = {name: p for name, p in inspect.signature(TIMERS[timer]).parameters.items() if name not in CALLS}
    unknown = sorted(set(settings) - set(parameters))
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(parameters)}")
    required = [name for name, p in parameters.items() if p.default is inspect.Parameter.empty]
    missing = sorted(name for name in required if name not in settings)
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")
    for name, value in settings.items():  # a flag given as "no" or "off" must not read as true
        if isinstance(parameters[name].default, bool) and not isinstance(value, bool):
            raise ValueError(f"{where}.{name}={value!r} is not a boolean: give true or false")
    reps, warmup, max_reps = settings["reps"], settings["warmup"], settings.get("max_reps")
    if int(reps) < 1 or int(warmup) < 0:
        raise ValueError(f"{where}: reps must be >= 1 and warmup >= 0, got {reps} and {warmup}")
    if max_reps is not None and int(max_reps) < int(reps):
        raise ValueError(f"{where}: max_reps ({max_reps}) is below reps ({reps})")
    if float(settings.get("min_time_ms", 0.0)) < 0:
        raise ValueError(f"{where}: min_time_ms must be >= 0, got {settings['min_time_ms']}")
    if int(settings.get("warmup_replays", 0)) < 0:
        raise ValueError(f"{where}: warmup_replays must be >= 0, got {settings['warmup_replays']}")


def measure(timer: str, make_call: MakeCall, settings: dict, make_reference: MakeCall | None = None) -> Timing:
    """Run timer `timer` with its settings from the config (warmup, reps, ...); the host timer also
    times `make_reference`'s call, for its ratio (runners/host_ratio.py)."""
    if timer == "host":
        return time_host(make_call, **settings, make_reference=make_reference)
    return TIMERS[timer](make_call, **settings)
