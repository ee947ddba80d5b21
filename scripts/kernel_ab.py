"""Before/after kernel time of the seeded op, one process per code version (device command).

    python3 scripts/kernel_ab.py --label after [--kernels-from DIR]

Arguments as in scripts/ab_setup.py (--label, --kernels-from DIR, --set NAME=INT); `--t` picks
the sizes. For (64, T, 768), T = 1 ... 4096, in four dtypes, shared
dim 1 and element-wise, appends `label,shape,dtype,dim,impl,kernel_us` rows to $OUT/kernel_ab.csv:
the profiler's device time of one forward call (runners.timers.kernel_us_per_call: L2 flushed
before each call, no launch gaps), for `seeded` and for `copy` (x.clone(), the roofline).
"""

from __future__ import annotations

import csv
import itertools
import os

from ab_setup import ab_parser, import_kernels


def main():
    parser = ab_parser(__doc__.splitlines()[0])
    parser.add_argument("--t", type=int, nargs="+", default=[1, 4, 16, 64, 256, 1024, 4096], help="the T values")
    args = parser.parse_args()
    kernels = import_kernels(args)
    import torch

    from runners.timers import kernel_us_per_call

    path = os.path.join(os.environ.get("OUT", "."), "kernel_ab.csv")
    new = not os.path.exists(path)
    with open(path, "a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(["label", "shape", "dtype", "dim", "impl", "kernel_us"])
        dtypes = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
        for t, dtype, dims in itertools.product(args.t, dtypes, ((1,), ())):
            x = torch.randn(64, t, 768, device="cuda", dtype=dtype)
            calls = {
                "seeded": lambda x=x, dims=dims: kernels.seeded_variational_dropout(x, 0.5, dim=dims),
                "copy": lambda x=x: x.clone(),
            }
            for impl, call in calls.items():
                row = (args.label, f"64x{t}x768", str(dtype)[6:], str(dims), impl, round(kernel_us_per_call(call), 3))
                writer.writerow(row)
                f.flush()
                print(row, flush=True)
            del x


if __name__ == "__main__":
    main()
