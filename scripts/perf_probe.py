"""One device call's worth of kernel measurements for docs/perf-notes.md (not the harness).

    python3 scripts/perf_probe.py [--out DIR] [--tiles 8192,16384,32768]

Times, with `triton.testing.do_bench` (median, L2 flushed), the seeded op against copy and the
eager mask-based baseline on the (64, T, 768) sweep and element-wise dropout, for several tile
sizes of the seeded kernel side by side, plus host microseconds per call on a (64, 1, 768) tensor.
GB/s counts x read + y written (2 x numel x itemsize) for every row alike.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys

import torch
import triton.testing

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import kernels.seeded_dropout as op  # noqa: E402
from kernels import seeded_variational_dropout  # noqa: E402
from runners.timers import host_us_per_call  # noqa: E402

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32, "fp64": torch.float64}


def eager_locked(x, p, dims):
    mask_shape = [1 if d in dims else s for d, s in enumerate(x.shape)]
    mask = torch.nn.functional.dropout(x.new_ones(mask_shape), p, True)
    return x * mask


def time_ms(fn, grad_to_none=None):
    return triton.testing.do_bench(fn, warmup=25, rep=100, grad_to_none=grad_to_none, return_mode="median")


def measure(rows, label, dtype_name, shape, dims, tiles):
    dtype = DTYPES[dtype_name]
    x = torch.randn(shape, device="cuda", dtype=dtype)
    gbytes = 2 * x.numel() * x.element_size() / 1e9
    out = torch.empty_like(x)
    copy_ms = time_ms(lambda: out.copy_(x))
    results = {"copy": copy_ms, "eager": time_ms(lambda: eager_locked(x, 0.5, dims))}
    xg = x.clone().requires_grad_(True)
    grad = torch.randn_like(x)
    results["eager_fb"] = time_ms(lambda: eager_locked(xg, 0.5, dims).backward(grad), [xg]) / 2
    for tile in tiles:
        op._TILE_BYTES = tile
        op.clear_launch_caches()
        results[f"seeded_t{tile}"] = time_ms(lambda: seeded_variational_dropout(x, 0.5, dims))
        results[f"seeded_t{tile}_fb"] = (
            time_ms(lambda: seeded_variational_dropout(xg, 0.5, dims).backward(grad), [xg]) / 2
        )
    for name, ms in results.items():
        rows.append({"case": label, "dtype": dtype_name, "shape": "x".join(map(str, shape)), "dim": str(dims),
                     "impl": name, "ms": ms, "gbps": gbytes / (ms * 1e-3),
                     "pct_of_copy": 100 * copy_ms / ms})  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    parser.add_argument("--tiles", default="16384")
    args = parser.parse_args()
    tiles = [int(t) for t in args.tiles.split(",")]
    default_tile = op._TILE_BYTES
    rows = []
    for dtype_name in ("fp16", "fp32", "fp64"):
        for seq in (1, 16, 256, 4096):
            measure(rows, "seq", dtype_name, (64, seq, 768), (1,), tiles)
    for dtype_name in ("fp16", "bf16", "fp32"):
        measure(rows, "elementwise", dtype_name, (64, 4096, 768), (), tiles)
    op._TILE_BYTES = default_tile
    op.clear_launch_caches()
    tiny = torch.randn(64, 1, 768, device="cuda")
    tiny_grad = tiny.clone().requires_grad_(True)
    host = {
        "empty_like": host_us_per_call(lambda: torch.empty_like(tiny)),
        "eager": host_us_per_call(lambda: eager_locked(tiny, 0.5, (1,))),
        "seeded": host_us_per_call(lambda: seeded_variational_dropout(tiny, 0.5, 1)),
        "seeded_int_seed": host_us_per_call(lambda: seeded_variational_dropout(tiny, 0.5, 1, seed=3)),
        "seeded_requires_grad": host_us_per_call(lambda: seeded_variational_dropout(tiny_grad, 0.5, 1)),
        "launch_only": host_us_per_call(lambda: op.dropout_triton(tiny, 3, 0.5, (1,))),
    }
    for name, us in host.items():
        rows.append({"case": "host", "dtype": "fp32", "shape": "64x1x768", "dim": "(1,)", "impl": name,
                     "ms": us / 1e3, "gbps": float("nan"), "pct_of_copy": float("nan")})  # fmt: skip
    path = os.path.join(args.out, "perf_probe.csv")
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"{'case':12} {'dtype':5} {'shape':14} {'impl':22} {'ms':>9} {'GB/s':>7} {'%copy':>6}")
    for r in rows:
        print(f"{r['case']:12} {r['dtype']:5} {r['shape']:14} {r['impl']:22} {r['ms']:9.4f} {r['gbps']:7.0f} "
              f"{r['pct_of_copy']:6.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
