"""Before/after probe for docs/perf-notes.md: one process per code version, same device call.

    python3 scripts/ab_probe.py --label after [--kernels-from DIR]

Arguments as in scripts/ab_setup.py (--label, --kernels-from DIR, --set NAME=INT); the timers are
the harness's own (runners/timers.py). Appends rows
`label,measure,impl,mode,shape,dtype,value,unit` to $OUT/ab.csv:

- host: microseconds per call, 2000 back-to-back calls then one synchronize, (64, 1, 768) fp32;
- cuda_graph / event: p50 milliseconds of the harness's timers on (64, T, 768) fp16.
"""

from __future__ import annotations

import csv
import os
import statistics

from ab_setup import ab_parser, import_kernels


def main():
    args = ab_parser(__doc__.splitlines()[0]).parse_args()
    kernels = import_kernels(args)
    import torch

    from runners.modes import make_mode_call
    from runners.timers import host_us_per_call, time_cuda_graph, time_event

    drop = kernels.seeded_variational_dropout

    def eager(x):
        return x * torch.nn.functional.dropout(x.new_ones(x.shape[0], 1, x.shape[2]), 0.5, True)

    def seeded(x):
        return drop(x, 0.5, dim=1)

    def copy(x):
        return x.clone()

    rows = []

    x = torch.randn(64, 1, 768, device="cuda")
    xg = x.clone().requires_grad_(True)
    grad = torch.randn_like(x)
    for impl, fn in (("seeded", seeded), ("eager", eager)):
        calls = {
            "fwd (no grad)": lambda fn=fn: fn(x),
            "fwd": lambda fn=fn: fn(xg),
            "fwd_bwd": lambda fn=fn: fn(xg).backward(grad),
        }
        for mode, call in calls.items():
            rows.append(("host", impl, mode, "64x1x768", "fp32", host_us_per_call(call), "us"))
            print(rows[-1], flush=True)

    for t in (1, 16, 64, 256, 1024, 4096):
        xs = torch.randn(64, t, 768, device="cuda", dtype=torch.float16, requires_grad=True)
        gs = torch.randn_like(xs)
        for impl, fn in (("seeded", seeded), ("eager", eager), ("copy", copy)):
            for mode in ("fwd", "fwd_bwd"):
                for timer, reps in (("cuda_graph", 50), ("event", 50)):
                    measure = time_cuda_graph if timer == "cuda_graph" else time_event
                    samples = measure(
                        lambda fn=fn, mode=mode, xs=xs, gs=gs: make_mode_call(fn, xs, gs, mode), warmup=5, reps=reps
                    )
                    rows.append((timer, impl, mode, f"64x{t}x768", "fp16", statistics.median(samples), "ms"))
                    print(rows[-1], flush=True)

    path = os.path.join(os.environ.get("OUT", "."), "ab.csv")
    new = not os.path.exists(path)
    with open(path, "a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(["label", "measure", "impl", "mode", "shape", "dtype", "value", "unit"])
        for row in rows:
            writer.writerow([args.label, *row])


if __name__ == "__main__":
    main()
