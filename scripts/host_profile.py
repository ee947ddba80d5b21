"""Where the host time of one seeded dropout call goes (device command; writes $OUT/host_profile.txt).

    python3 scripts/host_profile.py

Times each stage of the call path back to back on a (64, 1, 768) float32 CUDA tensor, in
microseconds per call (the C++ hot path alone, the public call through it, and the public call on
the Python launch), then prints a cProfile of the whole public call.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import kernels.seeded_dropout as op  # noqa: E402
from kernels import fast_path  # noqa: E402
from kernels.layout import plan_view  # noqa: E402
from runners.timers import host_us_per_call  # noqa: E402

CALLS = 3000


def main():
    x = torch.randn(64, 1, 768, device="cuda")
    xg = x.clone().requires_grad_(True)
    out = torch.empty_like(x)
    grad = torch.randn_like(x)
    view = plan_view(x.shape, (1,), (x.stride(), out.stride()))
    plan = op._launch_plan(x, out, (1,))
    fast = fast_path.module()  # the C++ hot path; its record for x's layout is made by the first call
    x_cpu = x.cpu()  # the C++ side returns None at once: pybind11's cost of the call with a tensor
    op.seeded_variational_dropout(x, 0.5, 1, seed=3)
    lines = []
    stages = {
        "torch.empty_like": lambda: torch.empty_like(x),
        "plan_view": lambda: plan_view(x.shape, (1,), (x.stride(), out.stride())),
        "tile": lambda: op._tile(view, 4),
        "draw_seed": lambda: op.draw_seed(x.device),
        "resolve_seed(int)": lambda: op._resolve_seed(3, x.device),
        "launch_plan (cached)": lambda: op._launch_plan(x, out, (1,)),
        "launch (given view)": lambda: op._launch(x, out, plan, 3, 0.5),
        "dropout_triton": lambda: op.dropout_triton(x, 3, 0.5, (1,)),
        "C++: a call with no work (record_count)": lambda: fast.record_count(),
        "C++: forward of a CPU tensor (declines)": lambda: fast.forward(x_cpu, 0.5, (1,), 3),
        "C++: draw_seed": lambda: fast.draw_seed(0),
        "C++ forward alone, seed=3": lambda: fast.forward(x, 0.5, (1,), 3),
        "C++ forward alone, seed=None": lambda: fast.forward(x, 0.5, (1,), None),
        "C++ forward alone, grad": lambda: fast.forward(xg, 0.5, (1,), None),
        "public, seed=3": lambda: op.seeded_variational_dropout(x, 0.5, 1, seed=3),
        "public, seed=None": lambda: op.seeded_variational_dropout(x, 0.5, 1),
        "public, requires_grad": lambda: op.seeded_variational_dropout(xg, 0.5, 1),
        "eager mask-based": lambda: x * torch.nn.functional.dropout(x.new_ones(64, 1, 768), 0.5, True),
        "public fwd+bwd": lambda: op.seeded_variational_dropout(xg, 0.5, 1).backward(grad),
        "eager fwd+bwd": lambda: (xg * torch.nn.functional.dropout(x.new_ones(64, 1, 768), 0.5, True)).backward(grad),
    }
    for name, fn in stages.items():
        lines.append(f"{name:42s} {host_us_per_call(fn, CALLS):8.2f} us")
    fast_path._loaded["module"] = None  # the Python launch, as before the C++ hot path
    for name in ("public, seed=None", "public, requires_grad", "public fwd+bwd"):
        lines.append(f"{name + ' [Python launch]':42s} {host_us_per_call(stages[name], CALLS):8.2f} us")
    fast_path._loaded["module"] = fast
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(CALLS):
        op.seeded_variational_dropout(x, 0.5, 1)
    torch.cuda.synchronize()
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(25)
    text = "\n".join(lines) + "\n\n" + stream.getvalue()
    with open(os.path.join(os.environ.get("OUT", "."), "host_profile.txt"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
