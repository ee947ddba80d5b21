"""Timers: each takes a factory of a `ModeCall` and returns per-call times in milliseconds.

Warm-up calls run first and are never timed (first calls compile, autotune and fill caches).

- `event`: CUDA events around each call; before each call a buffer twice the L2 size is zeroed,
  so every call starts with a cold L2. When the GPU starves, host overhead shows in the time.
- `cuda_graph`: the call captured once in a CUDA graph, then replayed (L2 flushed before each);
  each replay timed by events recorded inside the graph, around the call's own work: GPU time
  alone, no Python, no launch overhead. Events outside the graph would also time torch's replay
  prologue, which, for any graph that draws from a CUDA generator, launches two small kernels from
  the host (the generator's seed and offset refreshed) once per replay however many random ops the
  graph holds: a per-graph cost, not the op's. Where events cannot be captured (an older torch),
  the events outside the graph are used instead.
- `host`: wall time per call of `calls_per_rep` back-to-back calls and one synchronize, divided by
  the number of calls: what the caller waits for, which for tiny tensors is host overhead.
- `cpu`: on a machine without a GPU, `time.perf_counter` around each call (CPU smoke sweep).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from runners.modes import ModeCall

MakeCall = Callable[[], ModeCall]

_flush_buffers: dict[int, torch.Tensor] = {}


def _l2_flush_buffer() -> torch.Tensor:
    """A buffer twice the L2 size of the current GPU, made once per device."""
    index = torch.cuda.current_device()
    if index not in _flush_buffers:
        l2_bytes = getattr(torch.cuda.get_device_properties(index), "L2_cache_size", 0) or 64 * 2**20
        _flush_buffers[index] = torch.empty(2 * l2_bytes, dtype=torch.int8, device=f"cuda:{index}")
    return _flush_buffers[index]


def _warm_up(mode_call: ModeCall, warmup: int) -> None:
    for _ in range(warmup):
        mode_call.reset()
        mode_call.call()


def time_event(make_call: MakeCall, warmup: int, reps: int, flush_l2: bool = True) -> list[float]:
    mode_call = make_call()
    _warm_up(mode_call, warmup)
    flush = _l2_flush_buffer() if flush_l2 else None
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    torch.cuda.synchronize()
    for start, end in zip(starts, ends, strict=True):
        mode_call.reset()
        if flush is not None:
            flush.zero_()
        start.record()
        mode_call.call()
        end.record()
    torch.cuda.synchronize()
    mode_call.reset()
    return [start.elapsed_time(end) for start, end in zip(starts, ends, strict=True)]


def time_cuda_graph(make_call: MakeCall, warmup: int, reps: int, flush_l2: bool = True) -> list[float]:
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
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    graph.replay()  # first replay uploads the graph
    torch.cuda.synchronize()
    samples = []
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
    mode_call.reset()
    del graph
    if inside is None:
        samples = [start.elapsed_time(end) for start, end in zip(starts, ends, strict=True)]
    return samples


def _graph_events() -> tuple[torch.cuda.Event, torch.cuda.Event] | None:
    """Two timing events that a capture records as nodes of the graph (external events), or None
    where this torch cannot make them."""
    try:
        return torch.cuda.Event(enable_timing=True, external=True), torch.cuda.Event(enable_timing=True, external=True)
    except TypeError:
        return None


def time_host(make_call: MakeCall, warmup: int, reps: int, calls_per_rep: int = 50) -> list[float]:
    mode_call = make_call()
    _warm_up(mode_call, warmup)
    torch.cuda.synchronize()
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(calls_per_rep):
            mode_call.reset()  # x.grad = None: a Python attribute store, inside the wall time
            mode_call.call()
        torch.cuda.synchronize()
        samples.append((time.perf_counter() - start) * 1e3 / calls_per_rep)
    mode_call.reset()
    return samples


def host_us_per_call(fn: Callable[[], object], calls: int = 2000, warmup: int = 100) -> float:
    """Microseconds per call of `calls` back-to-back calls and one synchronize (the probe scripts'
    single figure; the harness's `host` timer keeps samples)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    torch.cuda.synchronize()
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


def time_cpu(make_call: MakeCall, warmup: int, reps: int) -> list[float]:
    mode_call = make_call()
    _warm_up(mode_call, warmup)
    samples = []
    for _ in range(reps):
        mode_call.reset()
        start = time.perf_counter()
        mode_call.call()
        samples.append((time.perf_counter() - start) * 1e3)
    mode_call.reset()
    return samples


TIMERS = {"event": time_event, "cuda_graph": time_cuda_graph, "host": time_host, "cpu": time_cpu}


def measure(timer: str, make_call: MakeCall, settings: dict) -> list[float]:
    """Run timer `timer` with its settings from the config (warmup, reps, ...)."""
    return TIMERS[timer](make_call, **settings)
