"""Peak extra memory and time of the op's CPU path against torch.nn.functional.dropout (CPU only).

    python3 scripts/cpu_path_probe.py [--threads 1] [--repeats 5]

Each (case, implementation) runs in a fresh subprocess: the input is made and a small call warms
the code up, then one call on the input is measured by the process's peak resident set
(`resource.getrusage(...).ru_maxrss`) above the level before it, so the figure counts the output
and every temporary (torch's CPU allocator hands large blocks back to the OS on free, so a peak is
only seen as the maxrss high-water mark). Then the best and the median time of --repeats further
calls (the best is the steadier figure on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

CASES = {  # name: (shape, dim); 16.8M float32 elements (64 MiB) each
    "element-wise (64, 4096, 64)": ((64, 4096, 64), ()),
    "dim=1 (64, 4096, 64)": ((64, 4096, 64), (1,)),
}
IMPLEMENTATIONS = ("seeded", "F.dropout")


def _measure(case: str, implementation: str, threads: int, repeats: int) -> dict:
    import torch

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from kernels import seeded_variational_dropout

    torch.set_num_threads(threads)
    shape, dim = CASES[case]
    if implementation == "seeded":

        def run(t):
            return seeded_variational_dropout(t, 0.5, dim=dim, seed=1)
    else:

        def run(t):
            return torch.nn.functional.dropout(t, 0.5, training=True)

    run(torch.randn(4, 8, 16))  # imports, first-call set-up
    x = torch.randn(shape)
    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    y = run(x)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    del y
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - start)
    return {"extra_mib": (peak_kib - before_kib) / 1024, "best_ms": 1000 * min(times),
            "median_ms": 1000 * statistics.median(times)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure(*args.child, args.threads, args.repeats)))
        return
    print(f"| case | implementation | peak extra MiB | best ms | median ms | ({args.threads} thread(s))")
    print("|---|---|---:|---:|---:|")
    for case in CASES:
        for implementation in IMPLEMENTATIONS:
            command = [sys.executable, __file__, "--threads", str(args.threads), "--repeats", str(args.repeats),
                       "--child", case, implementation]  # fmt: skip
            result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            print(f"| {case} | {implementation} | {result['extra_mib']:.0f} | {result['best_ms']:.0f} | "
                  f"{result['median_ms']:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
