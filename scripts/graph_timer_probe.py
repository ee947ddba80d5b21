"""The cuda_graph timer with events inside the graph vs outside it (device command; $OUT/graph_timer.csv).

    python3 scripts/graph_timer_probe.py

For copy, seeded, eager and native on (64, T, 768) fp16 (shared dim 1), fwd, bwd and fwd_bwd, the
p50 of the harness's cuda_graph timer both ways, and the profiler's sum of the call's kernel
durations (no graph, L2 flushed before each call): what the graph body should come close to.
"""

from __future__ import annotations

import csv
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from baselines import IMPLEMENTATIONS, DropoutCase  # noqa: E402
from runners import timers  # noqa: E402
from runners.modes import make_mode_call  # noqa: E402

INSIDE = timers._graph_events


def kernel_us(make_call) -> float:
    mode_call = make_call()

    def call():
        mode_call.reset()
        mode_call.call()

    result = timers.kernel_us_per_call(call)
    mode_call.reset()
    return result


def main():
    path = os.path.join(os.environ.get("OUT", "."), "graph_timer.csv")
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["shape", "impl", "mode", "graph_outside_us", "graph_inside_us", "kernel_us"])
        for t in (1, 16, 64, 256, 4096):
            case = DropoutCase((64, t, 768), (1,), 0.5, torch.float16, torch.device("cuda"))
            x = torch.randn(case.shape, dtype=case.dtype, device="cuda", requires_grad=True)
            grad = torch.randn_like(x)
            for impl in ("copy", "seeded", "eager", "native"):
                forward = IMPLEMENTATIONS[impl].build(case)
                for mode in ("fwd", "bwd", "fwd_bwd"):

                    def make_call(forward=forward, mode=mode, x=x, grad=grad):
                        return make_mode_call(forward, x, grad, mode)

                    timers._graph_events = lambda: None
                    outside = statistics.median(timers.time_cuda_graph(make_call, warmup=3, reps=40)) * 1e3
                    timers._graph_events = INSIDE
                    inside = statistics.median(timers.time_cuda_graph(make_call, warmup=3, reps=40)) * 1e3
                    kernels = kernel_us(make_call)
                    row = (f"64x{t}x768", impl, mode, round(outside, 3), round(inside, 3), round(kernels, 3))
                    writer.writerow(row)
                    f.flush()
                    print(row, flush=True)


if __name__ == "__main__":
    main()
