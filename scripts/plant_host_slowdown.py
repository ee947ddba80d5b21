"""Plant a known host slowdown into a throwaway copy of the repo, to prove the A/B gate sees host cost.

    python scripts/plant_host_slowdown.py TREE --percent P   # about P% more host work per forward call
    python scripts/plant_host_slowdown.py TREE --no-fast-path  # every call takes the Python launch

`--percent P` puts a busy loop at the top of the op's Python wrapper (`seeded_variational_dropout`
in TREE/kernels/functional.py): a fixed count of empty loop iterations, chosen here so that the
loop's run costs P% of the op's forward call (this checkout's op, on the GPU when there is one, on
`--shape`, by default the gate's host point 64x1x768 fp32). Loop and call are timed in alternating
bursts and compared as a ratio, as the harness's host figure is (runners/host_ratio.py), because on
the H200 machine the CPU's speed moves by up to 2x between processes and within one: a loop
calibrated in microseconds planted anywhere from 0.7x to 2x what was asked (docs/perf-notes.md).
A fixed amount of work, not a wait for the clock: like the rest of the call's host work it runs
slower on a slower CPU, so the host ratio sees the same fraction whatever the CPU's speed. Every
forward call of the op passes the wrapper (the C++ hot path starts inside it); a call under
torch.compile does not (the compiled graph holds the op, not the wrapper), and backward does not:
on `fwd_bwd` (about 7x the forward's host time) P% of the forward is about P/7%.

`--no-fast-path` makes `module()` in TREE/kernels/fast_path.py return None, as when the C++
extension cannot be built: the op then launches its kernel from Python (same results; on the H200
16 -> 50.6 µs per forward call, fwd+bwd 140 -> 452 µs).

Both edit only TREE (a copy of this repo, e.g. `git archive HEAD | tar -x -C TREE`); the script
refuses the repository it lives in, and the product has no switch for either: the slowdown exists
only in the copy. Edits are placed by parsing the files (the function, after its docstring), so
they survive unrelated changes to those files.
"""

from __future__ import annotations

import argparse
import ast
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
MARKER = "PLANTED HOST SLOWDOWN"


def planted_loop(count: int):
    """The planted statement, compiled as it is planted (a literal count), as a function."""
    namespace: dict = {}
    exec(f"def loop():\n    for _ in range({count}):\n        pass\n", namespace)
    return namespace["loop"]


def op_call(shape: tuple[int, ...]):
    """One forward call of this checkout's op (training, p=0.5, mask shared along dim 1, fp32),
    on the GPU when there is one; it returns once the call has been issued, as the host timer sees it."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import torch

    from kernels import seeded_variational_dropout

    x = torch.randn(shape, device="cuda" if torch.cuda.is_available() else "cpu")
    return lambda: seeded_variational_dropout(x, p=0.5, dim=1, training=True)


def per_run_s(function, runs: int) -> float:
    start = time.perf_counter()
    for _ in range(runs):
        function()
    return (time.perf_counter() - start) / runs


def cost_ratio(loop, call, rounds: int = 15, burst: int = 100) -> float:
    """The loop's run over the op's call: the median over `rounds` of the ratio of their times per
    run in back-to-back bursts of `burst` (each round's order alternating), less an empty call's."""
    empty = planted_loop(0)
    ratios = []
    for index in range(rounds):
        order = (loop, call, empty) if index % 2 else (empty, call, loop)
        times = {function: per_run_s(function, burst) for function in order}
        ratios.append(max(times[loop] - times[empty], 0.0) / times[call])
    return statistics.median(ratios)


def calibrated_count(percent: float, call) -> int:
    """The smallest loop count (to 1%) whose run costs at least `percent`% of `call`, bisecting on
    the measured ratio (an iteration's cost is not even constant: CPython keeps the integers up to
    256 preallocated, so iterations past 256 each allocate one and cost about twice as much)."""
    target = percent / 100
    for _ in range(200):  # warm up: the first calls build caches and compile kernels
        call()
    high = 16
    while cost_ratio(planted_loop(high), call) < target:
        high *= 2
    low = high // 2
    while high - low > max(1, low // 100):
        middle = (low + high) // 2
        if cost_ratio(planted_loop(middle), call) < target:
            low = middle
        else:
            high = middle
    return high


def refuse_planted(path: Path) -> None:
    if MARKER in path.read_text():
        raise SystemExit(f"plant: {path} is planted already")


def insert_after_docstring(path: Path, function: str, lines: list[str]) -> None:
    """Insert `lines` (unindented) as the first statements of `function` after its docstring."""
    refuse_planted(path)
    source = path.read_text()
    found = [node for node in ast.walk(ast.parse(source))
             if isinstance(node, ast.FunctionDef) and node.name == function]  # fmt: skip
    if len(found) != 1 or len(found[0].body) < 2:
        raise SystemExit(f"plant: expected one function {function} with a docstring and a body in {path}")
    first = found[0].body[1]
    text = source.splitlines(keepends=True)
    indent = " " * first.col_offset
    text[first.lineno - 1 : first.lineno - 1] = [f"{indent}{line}\n" for line in lines]
    path.write_text("".join(text))


def plant_busy_loop(tree: Path, percent: float, count: int) -> Path:
    """A busy loop of `count` iterations (about `percent`% of a call) at the top of the op's wrapper."""
    path = tree / "kernels" / "functional.py"
    insert_after_docstring(path, "seeded_variational_dropout", [
        f"for _ in range({count}):  # {MARKER} (scripts/plant_host_slowdown.py): about {percent}% of a call",
        "    pass",
    ])  # fmt: skip
    return path


def plant_no_fast_path(tree: Path) -> Path:
    """`module()` of the C++ hot path returns None: every call takes the Python launch."""
    path = tree / "kernels" / "fast_path.py"
    insert_after_docstring(path, "module", [f"return None  # {MARKER} (scripts/plant_host_slowdown.py): no C++ path"])
    return path


def check_tree(tree: Path) -> None:
    if tree.resolve() == HERE:
        raise SystemExit("plant: refusing to edit this checkout; give a throwaway copy")
    if not (tree / "kernels" / "functional.py").is_file():
        raise SystemExit(f"plant: {tree} is not a copy of this repository (no kernels/functional.py)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", type=Path, help="a throwaway copy of the repo")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--percent", type=float, help="about this many percent more host work per forward call")
    what.add_argument("--no-fast-path", action="store_true", help="the C++ hot path is never used")
    parser.add_argument("--shape", default="64,1,768", help="the op's input for --percent (the gate's host point)")
    args = parser.parse_args(argv)
    check_tree(args.tree)
    if args.no_fast_path:
        print(f"planted: no C++ hot path in {plant_no_fast_path(args.tree)}")
        return 0
    if not args.percent > 0:
        raise SystemExit("plant: --percent must be more than 0")
    refuse_planted(args.tree / "kernels" / "functional.py")  # before the calibration's seconds
    call = op_call(tuple(int(n) for n in args.shape.split(",")))
    count = calibrated_count(args.percent, call)
    path = plant_busy_loop(args.tree, args.percent, count)
    seen = cost_ratio(planted_loop(count), call, rounds=31)
    print(f"planted: a busy loop of {count} iterations in {path}: {seen:.1%} of the op's call at {args.shape} "
          f"here (asked {args.percent}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
