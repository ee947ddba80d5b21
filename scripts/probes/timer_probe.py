"""Timer probe (one-off, for the measurement redesign): which timing of which copy is a roofline,
and does an event timer with a head start give GPU time reproducibly between processes?

    python3 scripts/probes/timer_probe.py --label run1 --out $OUT/timer-probe.csv

Rows: label, dtype, T, impl, timer, p50_us, p20_us, p80_us, extra. Timers:
- event_flush: events around one call after an L2 flush (the harness's event timer as of now)
- event_headstart: the same with a GPU sleep after the flush, long enough that the host has issued
  the call before the GPU reaches the start event (extra: host issue us, starved fraction)
- graph_inside: one call captured, events captured inside the graph, L2 flush between replays
- graph_loop: 20 back-to-back replays of the graph, events outside, per replay (no flush)
- eager_loop: 20 back-to-back calls, events outside, per call (no flush)
- host_timer / host_loop: the harness host timer's per-call figure vs 2000 calls + one sync
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time

import numpy as np
import torch
import triton
import triton.language as tl

sys.path.insert(0, os.getcwd())
from kernels import seeded_variational_dropout  # noqa: E402


@triton.jit
def _copy_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(y_ptr + offsets, tl.load(x_ptr + offsets, mask=mask), mask=mask)


def copy_triton(x, y):
    n = x.numel()
    _copy_kernel[(triton.cdiv(n, 8192),)](x, y, n, BLOCK=8192, num_warps=8)


def copy_chunked(x, y, chunk_bytes=512 * 2**20):
    xf, yf = x.view(-1), y.view(-1)
    step = max(1, chunk_bytes // x.element_size())
    for start in range(0, xf.numel(), step):
        yf[start : start + step].copy_(xf[start : start + step])


IMPLS = {
    "copy_memcpy": lambda x, y: y.copy_(x),
    "copy_chunked": copy_chunked,
    "copy_mul": lambda x, y: torch.mul(x, 1, out=y),
    "copy_triton": copy_triton,
    "seeded": lambda x, y: seeded_variational_dropout(x, 0.5, dim=1),
    "eager": lambda x, y: x * torch.nn.functional.dropout(x.new_ones(x.shape[0], 1, x.shape[2]), 0.5, True),
}


def smi(query):
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=20)
        return out.stdout.strip().replace(", ", "/")
    except Exception as error:  # noqa: BLE001
        return f"n/a {error}"


FLUSH = None


def flush():
    FLUSH.zero_()


def cycles_per_us():
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda._sleep(1000)
    start.record()
    torch.cuda._sleep(2_000_000)
    end.record()
    torch.cuda.synchronize()
    return 2_000_000 / (start.elapsed_time(end) * 1e3)


def event_timer(call, reps, headstart_cycles=0):
    for _ in range(3):
        call()
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    issue, starved = [], 0
    for start, end in zip(starts, ends, strict=True):
        flush()
        if headstart_cycles:
            torch.cuda._sleep(headstart_cycles)
        start.record()
        t0 = time.perf_counter()
        call()
        issue.append((time.perf_counter() - t0) * 1e6)
        starved += bool(start.query())
        end.record()
    torch.cuda.synchronize()
    return [s.elapsed_time(e) * 1e3 for s, e in zip(starts, ends, strict=True)], float(np.median(issue)), starved / reps


def graph_inside(call, reps):
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            call()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    inside = (torch.cuda.Event(enable_timing=True, external=True), torch.cuda.Event(enable_timing=True, external=True))
    with torch.cuda.graph(graph, stream=stream):
        inside[0].record()
        call()
        inside[1].record()
    graph.replay()
    torch.cuda.synchronize()
    samples = []
    for _ in range(reps):
        flush()
        graph.replay()
        inside[1].synchronize()
        samples.append(inside[0].elapsed_time(inside[1]) * 1e3)
    plain = torch.cuda.CUDAGraph()
    with torch.cuda.graph(plain, stream=stream):
        call()
    plain.replay()
    torch.cuda.synchronize()
    loops = []
    for _ in range(5):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(20):
            plain.replay()
        end.record()
        torch.cuda.synchronize()
        loops.append(start.elapsed_time(end) * 1e3 / 20)
    return samples, loops


def eager_loop(call):
    for _ in range(3):
        call()
    loops = []
    for _ in range(5):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        for _ in range(20):
            call()
        end.record()
        torch.cuda.synchronize()
        loops.append(start.elapsed_time(end) * 1e3 / 20)
    return loops


def host_figures(call):
    samples = []
    for _ in range(10):
        call()
    torch.cuda.synchronize()
    for _ in range(15):
        t0 = time.perf_counter()
        for _ in range(50):
            call()
        torch.cuda.synchronize()
        samples.append((time.perf_counter() - t0) * 1e6 / 50)
    t0 = time.perf_counter()
    for _ in range(2000):
        call()
    torch.cuda.synchronize()
    return samples, (time.perf_counter() - t0) * 1e6 / 2000


def main():
    global FLUSH
    parser = argparse.ArgumentParser()
    parser.add_argument("--label", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--warm-s", type=float, default=3.0)
    args = parser.parse_args()
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    FLUSH = torch.empty(2 * l2, dtype=torch.int8, device="cuda")
    rows = []

    def add(dtype, t, impl, timer, samples, extra=""):
        p20, p50, p80 = np.percentile(samples, [20, 50, 80])
        rows.append((args.label, dtype, t, impl, timer, round(p50, 3), round(p20, 3), round(p80, 3), extra))

    clocks = "clocks.sm,clocks.mem,temperature.gpu,power.draw"
    print(args.label, "clocks before warm-up (sm, mem, temp, power):", smi(clocks))
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    t_end = time.perf_counter() + args.warm_s
    while time.perf_counter() < t_end:
        for _ in range(20):
            a @ a
        torch.cuda.synchronize()
    print(args.label, "clocks after warm-up:", smi("clocks.sm,clocks.mem,temperature.gpu,power.draw"), flush=True)
    per_us = cycles_per_us()
    print("sleep cycles per us", per_us)
    for dtype_name, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
        for t in (1, 16, 64, 256, 1024, 4096, 8192):
            x = torch.randn(64, t, 768, device="cuda", dtype=dtype)
            y = torch.empty_like(x)
            for impl, fn in IMPLS.items():
                call = lambda fn=fn, x=x, y=y: fn(x, y)  # noqa: E731
                reps = 30
                s, issue, starved = event_timer(call, reps)
                add(dtype_name, t, impl, "event_flush", s, f"issue_us={issue:.1f};starved={starved:.2f}")
                head = int(per_us * max(50.0, 3 * issue))
                s, issue, starved = event_timer(call, reps, head)
                add(dtype_name, t, impl, "event_headstart", s, f"issue_us={issue:.1f};starved={starved:.2f}")
                inside, loops = graph_inside(call, reps)
                add(dtype_name, t, impl, "graph_inside", inside)
                add(dtype_name, t, impl, "graph_loop", loops)
                add(dtype_name, t, impl, "eager_loop", eager_loop(call))
                if t == 1:
                    host, plain = host_figures(call)
                    add(dtype_name, t, impl, "host_timer", host, f"plain_loop_us={plain:.2f}")
            print(args.label, dtype_name, t, "done", smi("clocks.sm,temperature.gpu"), flush=True)
            del x, y
    # the harness's own host timer vs a plain loop on the same call, autograd on (as in the sweep)
    x = torch.randn(64, 1, 768, device="cuda", requires_grad=True)
    for impl in ("seeded", "eager"):
        fn = IMPLS[impl]
        host, plain = host_figures(lambda fn=fn: fn(x, None))
        add("fp32", 1, impl + "_requires_grad", "host_timer", host, f"plain_loop_us={plain:.2f}")
    with open(args.out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "dtype", "T", "impl", "timer", "p50_us", "p20_us", "p80_us", "extra"])
        writer.writerows(rows)
    print(args.label, "clocks at the end:", smi("clocks.sm,clocks.mem,temperature.gpu,power.draw"))


if __name__ == "__main__":
    main()
