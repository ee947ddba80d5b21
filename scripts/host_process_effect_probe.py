"""Probe (GPU): does a process's host ratio carry an offset of its own, set when the process starts,
and does fixing what a process draws at start (Python's string hash seed, the address-space layout)
remove it?

Why: two sweeps of the same code agree on the Python-heavy calls' host ratio far less often than
their rounds' variation predicts. In the four processes of the A/A at git 75111a1, compile's fwd_bwd
read 3.43, 3.45, 3.70 and 2.74 (the last process's five rounds all within 2.70-2.83), while one
process's round figures, taken as independent draws, put the median of five within about 5% of
itself. Within one process a key's figures forget each other after about ten seconds
(scripts/host_round_effect_probe.py), so an offset that holds for a whole process is something the
process drew when it started: CPython randomises its string hashes per process (dict and set
layouts, and so the memory a Python-heavy call walks, differ between processes), and the kernel
randomises where the heap, the stack and the libraries lie.

The parent runs `--processes` children for each condition, interleaved (a b c a b c ...), so a
drift of the machine falls on every condition alike:
- `random`: as a sweep's pass runs now (PYTHONHASHSEED unset: a fresh hash seed per process);
- `hashseed`: PYTHONHASHSEED=0 in every process;
- `layout`: PYTHONHASHSEED=0 and address-space randomisation off (`setarch -R`).
Each child builds the default sweep's host point (fp32 64x1x768, mask shared along dim 1) and times
every (implementation, mode) with the sweep's host timer (runners/timers.py `time_host`, 10 pairs
of 25-call bursts against copy's call) in `--rounds` rounds, a shuffled order each round.

Per condition and key the report gives the median over processes of the process medians, the
variation (coefficient of variation) of the process medians, what that variation would be without
a process offset (1.25 x the rounds' variation within a process / sqrt(rounds): the median's
standard error), and the share of pairs of processes whose medians agree within 5%, which is what
two single-process sweeps would. A process offset shows as the second figure well above the third;
a condition that removes it brings them together and the share of agreeing pairs up.

    python3 scripts/host_process_effect_probe.py OUT.csv [--processes 5] [--rounds 5]
        [--conditions random,hashseed,layout] [--budget-s 420]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CONDITIONS = ("random", "hashseed", "layout")
FIELDS = ["condition", "process", "impl", "mode", "round", "host_ratio", "call_us", "str_hash", "heap_at"]


def child_command(condition: str, argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of one child under `condition`."""
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; known: {', '.join(CONDITIONS)}")
    env = dict(os.environ)
    env.pop("PYTHONHASHSEED", None)
    command = [sys.executable, *argv]
    if condition in ("hashseed", "layout"):
        env["PYTHONHASHSEED"] = "0"
    if condition == "layout":
        setarch = shutil.which("setarch")
        if setarch is None:
            raise RuntimeError("condition layout needs setarch (util-linux) to turn address randomisation off")
        command = [setarch, os.uname().machine, "-R", *command]
    return command, env


def measure(out_csv: str, condition: str, process: int, rounds: int, impls: list[str], modes: list[str],
            device: str, reps: int) -> None:  # fmt: skip
    """The child: the host point's host ratios, one row per (round, impl, mode)."""
    import torch

    from runners import timers
    from runners.modes import mode_call_factory
    from runners.op_families import family_of
    from runners.plan import Point

    family = family_of("dropout")
    case = family.case_at(Point("fp32", (64, 1, 768), (1,), 0.5), torch.device(device))
    inputs = family.inputs(case)
    torch._dynamo.reset()
    forwards = {name: family.implementation(name).build(case) for name in impls}
    reference = family.implementation(family.roofline).build(case)
    keys = [(impl, mode) for impl in impls for mode in modes]
    # what the condition fixed, for the record: equal across processes where it is fixed
    drawn = dict(str_hash=hash("locked dropout") % 10**8, heap_at=hex(id(object())))
    rows = []
    for round_index in range(rounds):
        order = list(keys)
        random.Random(round_index).shuffle(order)
        for impl, mode in order:
            timing = timers.time_host(mode_call_factory(forwards[impl], inputs, mode),
                                      warmup=10 if round_index == 0 else 1, reps=reps, calls_per_rep=25,
                                      make_reference=mode_call_factory(reference, inputs, mode))  # fmt: skip
            rows.append(dict(condition=condition, process=process, impl=impl, mode=mode, round=round_index,
                             host_ratio=timing.host_ratio, call_us=1e3 * statistics.median(timing.samples_ms),
                             **drawn))  # fmt: skip
    with open(out_csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.mean(values) if len(values) > 1 else float("nan")


def pairs_within(values: list[float], tolerance: float = 0.05) -> float:
    """Share of pairs of `values` that agree within `tolerance` (larger / smaller - 1)."""
    pairs = list(itertools.combinations(values, 2))
    if not pairs:
        return float("nan")
    return sum(max(a, b) / min(a, b) - 1 <= tolerance for a, b in pairs) / len(pairs)


def summarise(rows: list[dict]) -> list[dict]:
    """Per (condition, impl, mode): the figures of the module docstring."""
    out = []
    groups = sorted({(r["condition"], r["impl"], r["mode"]) for r in rows}, key=lambda g: (g[1], g[2], g[0]))
    for condition, impl, mode in groups:
        mine = [r for r in rows if (r["condition"], r["impl"], r["mode"]) == (condition, impl, mode)]
        by_process: dict[int, list[float]] = {}
        for r in mine:
            by_process.setdefault(int(r["process"]), []).append(float(r["host_ratio"]))
        medians = [statistics.median(v) for v in by_process.values()]
        within = statistics.fmean(cv(v) for v in by_process.values())
        rounds = statistics.fmean(len(v) for v in by_process.values())
        out.append(dict(condition=condition, impl=impl, mode=mode, processes=len(medians),
                        ratio=statistics.median(medians), cv_of_processes=cv(medians),
                        cv_expected=1.25 * within / rounds**0.5, pairs_within_5pct=pairs_within(medians),
                        medians=" ".join(f"{m:.3f}" for m in medians)))  # fmt: skip
    return out


def report(summary: list[dict]) -> str:
    lines = [f"{'impl':15s} {'mode':8s} {'condition':9s} {'n':>2s} {'ratio':>7s} {'cv_proc':>7s} {'cv_exp':>7s} "
             f"{'pairs<=5%':>9s}  process medians"]  # fmt: skip
    for s in summary:
        lines.append(f"{s['impl']:15s} {s['mode']:8s} {s['condition']:9s} {s['processes']:2d} {s['ratio']:7.3f} "
                     f"{s['cv_of_processes']:7.3f} {s['cv_expected']:7.3f} {s['pairs_within_5pct']:9.2f}  "
                     f"{s['medians']}")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_csv")
    parser.add_argument("--processes", type=int, default=5, help="children per condition")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per child (the sweep's: 5 a pass)")
    parser.add_argument("--reps", type=int, default=10, help="pairs of bursts per timing (the sweep's: 10)")
    parser.add_argument("--conditions", default=",".join(CONDITIONS))
    parser.add_argument("--impls", default="seeded,compile,seeded:compile,per_element_rng,eager,native")
    parser.add_argument("--modes", default="fwd,fwd_bwd")
    parser.add_argument("--device", default="cuda", help="cpu: a smoke run of the probe itself")
    parser.add_argument("--budget-s", type=float, default=420.0, help="no child starts after this many seconds")
    parser.add_argument("--child", nargs=2, metavar=("CONDITION", "PROCESS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    impls, modes = args.impls.split(","), args.modes.split(",")
    if args.child:
        measure(args.out_csv, args.child[0], int(args.child[1]), args.rounds, impls, modes, args.device, args.reps)
        return
    conditions = args.conditions.split(",")
    for condition in conditions:
        child_command(condition, [])  # an unknown condition, or setarch missing, stops here
    began = time.monotonic()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as scratch:
        for process, condition in itertools.product(range(args.processes), conditions):
            if time.monotonic() - began > args.budget_s:
                print(f"budget of {args.budget_s:g} s spent: no more children", flush=True)
                break
            part = Path(scratch) / f"{condition}-{process}.csv"
            argv = [str(Path(__file__).resolve()), str(part), "--child", condition, str(process),
                    "--rounds", str(args.rounds), "--reps", str(args.reps), "--impls", args.impls,
                    "--modes", args.modes, "--device", args.device]  # fmt: skip
            command, env = child_command(condition, argv)
            started = time.monotonic()
            done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"child {condition} {process} failed ({done.returncode}):\n{done.stderr[-2000:]}", flush=True)
                continue
            with part.open() as f:
                rows += list(csv.DictReader(f))
            print(f"child {condition} {process}: {time.monotonic() - started:.0f} s", flush=True)
            with open(args.out_csv, "w", newline="") as f:  # rewritten after every child: nothing lost
                writer = csv.DictWriter(f, fieldnames=FIELDS)
                writer.writeheader()
                writer.writerows(rows)
    if rows:
        print(report(summarise(rows)), flush=True)


if __name__ == "__main__":
    main()
