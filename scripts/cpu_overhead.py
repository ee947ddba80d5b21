"""The op on CPU tensors against `F.dropout`: time per call on small and on 64 MiB tensors, on one
and on two threads, written as a CSV and a markdown table (results/cpu/).

    .venv/bin/python scripts/cpu_overhead.py [--out results/cpu] [--rounds 7] [--quick]

Each case (shape, dtype, dims, threads) times the seeded op (`seed=None`, as a model calls it) and
`F.dropout` (p = 0.5, training) in rounds; in every round both run `calls` back-to-back calls in a
random order, and a round's time per call is its total over `calls`. A row is the median of the
rounds' times per call and their range; `ratio` is seeded's median over F.dropout's.

What it cannot do: keep other processes off the machine. On a shared machine both impls of a round
run under the same load, so read the ratio, and a range that is wide as a sign of contention. The
CSV records the CPU model, the thread counts and the versions, and `make report` does not read it.
`--quick` times two small cases only (what tests/test_cpu_overhead.py runs).
"""

from __future__ import annotations

import argparse
import csv
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the op of this tree, as `kernels`

from kernels import seeded_variational_dropout  # noqa: E402

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32, "fp64": torch.float64}
# (shape, dtype, dims, calls per round): small tensors, where the per-call overhead is the time, and a
# 64 MiB float32 tensor, where the work is.
CASES = [
    ((3, 17, 24), "fp16", (1,), 200),
    ((3, 17, 24), "fp16", (), 100),
    ((8, 32, 64), "fp32", (1,), 100),
    ((64, 1, 768), "fp32", (1,), 100),
    ((64, 256, 1024), "fp32", (1,), 3),
    ((64, 256, 1024), "fp32", (), 2),
]
QUICK_CASES = CASES[:1] + CASES[3:4]
FIELDS = ["shape", "dtype", "dims", "threads", "impl", "calls", "rounds", "us_per_call_p50", "us_per_call_min",
          "us_per_call_max", "ratio", "cpu", "torch", "python", "git_sha"]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_sha() -> str:
    done = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def time_case(shape, dtype: str, dims: tuple, calls: int, rounds: int, threads: int) -> dict[str, list[float]]:
    """Per impl, each round's microseconds per call."""
    torch.set_num_threads(threads)
    x = torch.randn(shape).to(DTYPES[dtype])
    impls = {
        "seeded": lambda: seeded_variational_dropout(x, 0.5, dim=dims),
        "F.dropout": lambda: F.dropout(x, 0.5, training=True),
    }
    for call in impls.values():  # warm up: first-call work, caches
        for _ in range(min(calls, 5)):
            call()
    times: dict[str, list[float]] = {name: [] for name in impls}
    order = list(impls)
    for _ in range(rounds):
        random.shuffle(order)
        for name in order:
            call = impls[name]
            start = time.perf_counter()
            for _ in range(calls):
                call()
            times[name].append((time.perf_counter() - start) / calls * 1e6)
    return times


def measure(cases, rounds: int, thread_counts: list[int]) -> list[dict]:
    common = {"cpu": cpu_model(), "torch": torch.__version__, "python": platform.python_version(),
              "git_sha": git_sha()}
    rows = []
    for threads in thread_counts:
        for shape, dtype, dims, calls in cases:
            times = time_case(shape, dtype, dims, calls, rounds, threads)
            medians = {name: statistics.median(values) for name, values in times.items()}
            for name, values in times.items():
                rows.append({"shape": "x".join(map(str, shape)), "dtype": dtype, "dims": str(dims),
                             "threads": threads, "impl": name, "calls": calls, "rounds": rounds,
                             "us_per_call_p50": f"{medians[name]:.1f}", "us_per_call_min": f"{min(values):.1f}",
                             "us_per_call_max": f"{max(values):.1f}",
                             "ratio": f"{medians[name] / medians['F.dropout']:.2f}", **common})
                print(f"threads {threads} {rows[-1]['shape']} {dtype} dims {dims} {name}: "
                      f"{medians[name]:.1f} us/call ({rows[-1]['ratio']}x F.dropout)", flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    first = rows[0]
    lines = ["# The op on CPU tensors against F.dropout",
             "",
             "Written by `scripts/cpu_overhead.py` (its docstring has the method) with `overhead.csv` beside it; "
             "edits here are overwritten.",
             "",
             f"Measured on {first['cpu']}, torch {first['torch']}, Python {first['python']}, git {first['git_sha']}, "
             "on a machine shared with other work: the ratio compares impls timed in the same rounds, a wide "
             "range says the load moved.",
             "",
             "| threads | shape | dtype | dims | seeded µs/call, p50 (range) | F.dropout µs/call, p50 (range) | "
             "seeded / F.dropout |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    seeded = [row for row in rows if row["impl"] == "seeded"]
    for row in seeded:
        base = next(other for other in rows if other["impl"] == "F.dropout"
                    and all(other[key] == row[key] for key in ("shape", "dtype", "dims", "threads")))
        lines.append(f"| {row['threads']} | {row['shape']} | {row['dtype']} | {row['dims']} | "
                     f"{row['us_per_call_p50']} ({row['us_per_call_min']}-{row['us_per_call_max']}) | "
                     f"{base['us_per_call_p50']} ({base['us_per_call_min']}-{base['us_per_call_max']}) | "
                     f"{row['ratio']}x |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "cpu")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--quick", action="store_true", help="two small cases only")
    args = parser.parse_args(argv)
    rows = measure(QUICK_CASES if args.quick else CASES, args.rounds, args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "overhead.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "README.md").write_text(markdown(rows))
    print(f"wrote {args.out / 'overhead.csv'} and {args.out / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
