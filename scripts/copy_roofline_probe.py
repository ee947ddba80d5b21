"""Probe: which copy is a roofline for every dtype, eagerly and in a CUDA graph.

At 64xTx768 (T = 2048, 8192) in fp16, bf16, fp32 and fp64, times with the harness's `event` and
`cuda_graph` timers (runners.timers, 10 samples, L2 flushed): the ATen elementwise copy the `copy`
row uses (`torch.mul(x, 1, out=y)`), `Tensor.copy_`, plain Triton copy kernels of a few block
sizes, and the seeded op's forward (p=0.5, mask shared along dim 1). Writes one CSV row per
(dtype, T, candidate, timer) with GB/s (one read and one write per element).

    python scripts/copy_roofline_probe.py --out copy-roofline.csv
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

import torch
import triton
import triton.language as tl

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kernels import seeded_variational_dropout  # noqa: E402
from runners import timers  # noqa: E402
from runners.modes import ModeCall  # noqa: E402

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32, "fp64": torch.float64}


@triton.jit
def _copy_kernel(source, target, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = offsets < n
    tl.store(target + offsets, tl.load(source + offsets, mask=inside), mask=inside)


def triton_copy(block: int, warps: int):
    def copy(x, y):
        n = x.numel()
        _copy_kernel[(triton.cdiv(n, block),)](x, y, n, BLOCK=block, num_warps=warps)

    return copy


CANDIDATES = {
    "aten_mul": lambda x, y: torch.mul(x, 1, out=y),
    "copy_": lambda x, y: y.copy_(x),
    "triton_b1024_w4": triton_copy(1024, 4),
    "triton_b4096_w8": triton_copy(4096, 8),
    "triton_b8192_w16": triton_copy(8192, 16),
    "seeded_fwd": lambda x, y: seeded_variational_dropout(x, p=0.5, dim=1, training=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seq", type=int, nargs="+", default=[2048, 8192])
    args = parser.parse_args()
    rows = []
    for dtype_name, dtype in DTYPES.items():
        for t in args.seq:
            x = torch.randn(64, t, 768, device="cuda").to(dtype)
            y = torch.empty_like(x)
            for name, candidate in CANDIDATES.items():

                def make_call(candidate=candidate, x=x, y=y):
                    return ModeCall(call=lambda: candidate(x, y), reset=lambda: None)

                for timer in ("event", "cuda_graph"):
                    timing = timers.measure(timer, make_call, {"warmup": 3, "reps": 10})
                    ms = statistics.median(timing.samples_ms)
                    gbps = 2 * x.numel() * x.element_size() / (ms * 1e-3) / 1e9
                    rows.append(dict(dtype=dtype_name, shape=f"64x{t}x768", candidate=name, timer=timer,
                                     p50_ms=round(ms, 5), gbps=round(gbps, 1)))  # fmt: skip
                    print(f"{dtype_name} 64x{t}x768 {name:18s} {timer:10s} {ms:9.4f} ms {gbps:7.0f} GB/s", flush=True)
            del x, y
            torch.cuda.empty_cache()
    with args.out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
