"""Kernel time of the seeded op at small sizes, per tile config (device command; $OUT/tile_probe.csv).

    python3 scripts/tile_probe.py [--quick]
    python3 scripts/tile_probe.py --warps     (default tiles, each num_warps, T up to 4096, 4 dtypes)

For each case ((64, T, 768), fp16/fp32, shared dim 1 or element-wise) and each tile config
(BLOCK_O, BLOCK_S, BLOCK_C, LANES, num_warps), forced through `_tile`, records:

- kernel_us: the kernels' own duration from the profiler (CUPTI), mean of 30 calls, each after an
  L2 flush (runners.timers.kernel_us_per_call; probe 11 instead left out every kernel named
  "fill", the flush's and any of the call's own): GPU time with no launch overhead at all;
- graph_us: the harness's cuda_graph timer (p50), the figure the sweep reports.

`copy` (x.clone()) and `per_element_rng` are timed the same way for reference. ROUNDS=0 rows (a
wrong mask, timing only) show what the Philox rounds cost.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import baselines  # noqa: E402,F401  (registers the implementations)
import kernels.seeded_dropout as op  # noqa: E402
from baselines.case import DropoutCase  # noqa: E402
from baselines.registry import IMPLEMENTATIONS  # noqa: E402
from runners.modes import make_mode_call  # noqa: E402
from runners.timers import kernel_us_per_call, time_cuda_graph  # noqa: E402

DEFAULT_TILE = op._tile
DEFAULT_ROUNDS = op.PHILOX_ROUNDS


def kernel_us(fn) -> float:
    return kernel_us_per_call(fn, calls=30)


def graph_us(fn, x) -> float:
    grad = torch.randn_like(x)
    samples = time_cuda_graph(lambda: make_mode_call(fn, x, grad, "fwd"), warmup=3, reps=40)
    return statistics.median(samples) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--warps", action="store_true", help="default tiles with each num_warps, up to 64x4096x768")
    args = parser.parse_args()
    path = os.path.join(os.environ.get("OUT", "."), "tile_probe.csv")
    out_file = open(path, "w", newline="")  # noqa: SIM115  (rows land as measured: a cut-off run keeps them)
    writer = csv.writer(out_file)
    writer.writerow(["case", "impl", "config", "kernel_us", "graph_us"])
    rows = []
    ts = (1, 16) if args.quick else (1, 16, 64)
    dtypes = (torch.float16, torch.float32)
    dim_choices = ((1,), ())
    if args.warps:
        ts, dim_choices = (16, 64, 256, 1024, 4096), ((1,),)
        dtypes = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
    for t, dtype, dims in itertools.product(ts, dtypes, dim_choices):
        x = torch.randn(64, t, 768, device="cuda", dtype=dtype)
        case = f"64x{t}x768 {str(dtype)[6:]} dim={dims}"

        def seeded(v, dims=dims):
            return op.seeded_variational_dropout(v, 0.5, dim=dims)

        refs = {"copy": lambda v: v.clone()}
        case_spec = DropoutCase((64, t, 768), dims, 0.5, dtype, x.device)
        refs["per_element_rng"] = IMPLEMENTATIONS["per_element_rng"].build(case_spec)
        refs["native"] = IMPLEMENTATIONS["native"].build(case_spec)
        for name, fn in refs.items():
            if args.warps and name != "copy":
                continue
            rows.append((case, name, "", kernel_us(lambda fn=fn, x=x: fn(x)), graph_us(fn, x)))
            writer.writerow(rows[-1])
            out_file.flush()
            print(rows[-1], flush=True)
        op.clear_launch_caches()
        op._tile = DEFAULT_TILE
        default = op._launch_plan(x, torch.empty_like(x), dims)
        default_cfg = (*default.blocks, default.num_warps) if default else None
        tile_elems = (512, 1024, 2048, 4096)
        configs = [("default", default_cfg, DEFAULT_ROUNDS), ("default rounds=0", default_cfg, 0)]
        if args.warps:
            configs = [("default", default_cfg, DEFAULT_ROUNDS)]
            configs += [(f"default warps={w}", w, DEFAULT_ROUNDS) for w in (1, 2, 4, 8)]
        else:
            for elems, warps, lanes in itertools.product(tile_elems, (1, 2, 4, 8), (1, 8)):
                configs.append((f"elems={elems} warps={warps} lanes={lanes}", (elems, warps, lanes), DEFAULT_ROUNDS))
        for label, cfg, rounds in configs:
            op.clear_launch_caches()
            op.PHILOX_ROUNDS = rounds
            if label.startswith("default warps="):

                def forced(view, itemsize, sm_count=1, warps=cfg):
                    return (*DEFAULT_TILE(view, itemsize, sm_count)[:4], warps)

                op._tile = forced
            elif label.startswith("default"):
                op._tile = DEFAULT_TILE
            else:
                elems, warps, lanes = cfg

                def forced(view, itemsize, sm_count=1, elems=elems, warps=warps, lanes=lanes):
                    size_o, size_s, size_i = view.sizes
                    block_i = op._inner_block(size_i, elems if size_s == 1 else min(1024, elems))
                    block_s = max(1, min(op.triton.next_power_of_2(size_s), elems // block_i))
                    block_o = max(1, min(op.triton.next_power_of_2(size_o), elems // (block_i * block_s)))
                    use_lanes = lanes if (size_i >= 8 and block_i >= 8 and (size_o == 1 or size_i % 8 == 0)) else 1
                    return block_o, block_s, block_i // use_lanes, use_lanes, warps

                op._tile = forced
            try:
                plan = op._launch_plan(x, torch.empty_like(x), dims)
                desc = f"{plan.blocks} w{plan.num_warps} grid{plan.grid[0]}"
                kernel = kernel_us(lambda x=x, seeded=seeded: seeded(x))
                rows.append((case, f"seeded {label}", desc, kernel, graph_us(seeded, x)))
            except Exception as error:  # noqa: BLE001
                rows.append((case, f"seeded {label}", f"error {error}"[:80], float("nan"), float("nan")))
            writer.writerow(rows[-1])
            out_file.flush()
            print(rows[-1], flush=True)
        op.PHILOX_ROUNDS = DEFAULT_ROUNDS
        op._tile = DEFAULT_TILE
        op.clear_launch_caches()
    out_file.close()


if __name__ == "__main__":
    main()
