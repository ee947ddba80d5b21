"""Probe (GPU): the fused op's backward kernel at several grids and warp counts, side by side.

The backward kernel runs a grid of `programs` programs, each looping over rows
(kernels/fused_kernel.py); the row plan's default is 2 programs per SM and its `num_warps`. This
probe times `kernels.fused_launch.backward_triton` (the kernel and the sum of the per-program
dweight partials) for `programs = k * SMs` and a few warp counts, RMSNorm with a weight, p 0.5,
mask shared along T, at (32, 512, D), in interleaved rounds (each round times every candidate once
with triton's do_bench, L2 flushed, median), and reports each candidate's median over rounds, its
GB/s over the fused op's backward bytes (5 N s: read dy, dh, h; write dx, dresidual) and its time
over the default's. The default is timed twice (`default` and `default again`): their ratio is the
A/A noise of this probe.

    python3 scripts/fused_bwd_probe.py OUT_CSV [--dtype bf16] [--rounds 5]
"""

from __future__ import annotations

import argparse
import csv
import statistics

import torch
import triton.testing

from kernels.fused_launch import NORMS, backward_triton, row_plan
from kernels.launch import sm_count

WIDTHS = (768, 1024, 2048, 4096, 8192)
MULTIPLIERS = (2, 4, 8, 16, 32)
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def candidates(d_model: int, sms: int) -> list[tuple[str, int, int]]:
    """(name, programs, num_warps); the default first and last."""
    default_warps = row_plan((32, 512, d_model), (1,)).num_warps
    out = [("default", 2 * sms, default_warps)]
    for k in MULTIPLIERS:
        for warps in sorted({default_warps, max(default_warps // 2, 1), min(default_warps * 2, 16)}):
            if (k, warps) != (2, default_warps):
                out.append((f"k{k} w{warps}", k * sms, warps))
    out.append(("default again", 2 * sms, default_warps))
    return out


def probe_width(d_model: int, dtype_name: str, sms: int, rounds: int) -> list[dict]:
    dtype = DTYPES[dtype_name]
    shape = (32, 512, d_model)
    grad_y, grad_h, h = (torch.randn(shape, device="cuda", dtype=dtype) for _ in range(3))
    weight = torch.randn(d_model, device="cuda", dtype=dtype)
    bytes_moved = 5 * h.numel() * h.element_size()
    src = torch.empty(h.numel() * 5 // 2, device="cuda", dtype=dtype)
    dst = torch.empty_like(src)  # copying 2.5 N elements moves the backward's 5 N s bytes

    def call(programs, warps):
        return backward_triton(grad_y, grad_h, h, weight, 1234, 0.5, (1,), NORMS["rms"], 1e-6, True, False,
                               programs=programs, num_warps=warps)  # fmt: skip

    cands = candidates(d_model, sms)
    reference = call(2 * sms, cands[0][2])
    for _, programs, warps in cands[1:]:  # the same gradients (warps change the row sums' order: last bits)
        for got, want in zip(call(programs, warps)[:3], reference[:3], strict=True):
            torch.testing.assert_close(got, want, rtol=2e-2, atol=2e-2)
    times: dict[str, list[float]] = {name: [] for name, _, _ in cands}
    copy_ms = []
    for _ in range(rounds):
        copy_ms.append(triton.testing.do_bench(lambda: dst.copy_(src), return_mode="median"))
        for name, programs, warps in cands:
            times[name].append(triton.testing.do_bench(lambda p=programs, w=warps: call(p, w), return_mode="median"))
    copy = statistics.median(copy_ms)
    default = statistics.median(times["default"])
    rows = []
    for name, programs, warps in cands:
        ms = statistics.median(times[name])
        rows.append(dict(dtype=dtype_name, d_model=d_model, candidate=name, programs=programs, num_warps=warps,
                         p50_ms=ms, gbps=bytes_moved / ms / 1e6, pct_of_copy=100 * copy / ms,
                         over_default=ms / default, rounds=rounds))  # fmt: skip
        print(f"{dtype_name} D={d_model:5d} {name:14s} programs={programs:5d} warps={warps:2d} "
              f"{ms * 1e3:8.1f} us  {100 * copy / ms:5.1f}% of copy  x{ms / default:.3f} of default", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_csv")
    parser.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sms = sm_count(torch.device("cuda"))
    rows = [row for d_model in WIDTHS for row in probe_width(d_model, args.dtype, sms, args.rounds)]
    with open(args.out_csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
