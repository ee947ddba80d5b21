"""Plant a known host slowdown into a throwaway copy of the repo, to prove the A/B gate sees host cost.

    python scripts/plant_host_slowdown.py TREE --us N        # about N µs more host work per forward call
    python scripts/plant_host_slowdown.py TREE --no-fast-path  # every call takes the Python launch

`--us N` puts a busy loop at the top of the op's Python wrapper (`seeded_variational_dropout` in
TREE/kernels/functional.py): a fixed count of empty loop iterations, calibrated here by timing that
loop so that it takes about N µs on this machine now. A fixed amount of work, not a wait for the
clock: like the rest of the call's host work it runs slower on a slower CPU, so the host ratio
(runners/host_ratio.py) sees the same fraction whatever the CPU's speed. Every forward call of the
op passes the wrapper (the C++ hot path starts inside it); a call under torch.compile does not (the
compiled graph holds the op, not the wrapper), and backward does not. On the H200 a forward call
costs 14-15 µs of host time at 64x1x768 fp32 when it runs back to back with copy's, so N = 1.6
plants about 10% on `seeded fwd host`; on `fwd_bwd` (about 100-125 µs) the same N is about 1.5%.

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
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
MARKER = "PLANTED HOST SLOWDOWN"


def loop_us(count: int, samples: int = 21) -> float:
    """Microseconds one run of the planted loop takes here: the exact statement planted, compiled
    the same way, timed as the fastest of `samples` tries of about 2 ms of runs each, less the cost
    of calling an empty function (the planted loop runs inline, not as a call)."""
    namespace: dict = {}
    exec(f"def loop():\n    for _ in range({count}):\n        pass\n\ndef empty():\n    pass\n", namespace)
    runs = min(2000, max(1, round(2000 * 64 / count)))  # about 2 ms per try at any count
    fastest = {}
    for name in ("loop", "empty"):
        function, best = namespace[name], float("inf")
        for _ in range(samples):
            start = time.perf_counter()
            for _ in range(runs):
                function()
            best = min(best, time.perf_counter() - start)
        fastest[name] = best / runs
    return max(fastest["loop"] - fastest["empty"], 0.0) * 1e6


def calibrated_count(microseconds: float, warm_s: float = 0.5) -> int:
    """The smallest loop count (to 1%) whose run takes at least `microseconds` on this machine,
    found by timing the planted loop itself at each count tried (after `warm_s` seconds of busy
    work: a benchmark's process is busy, and a CPU can run faster once it has been).

    Timing one long loop and scaling misjudges a short one, and the cost is not even proportional
    to the count: CPython keeps the integers up to 256 preallocated, so iterations up to 256
    allocate nothing and each later one allocates an int, at more than twice the cost. On the H200
    machine a count scaled from a loop of 200,000 planted half the time asked for (74 iterations
    for 1.6 us ran in about 0.8 us); so this bisects on the measured cost instead."""
    end = time.perf_counter() + warm_s
    while time.perf_counter() < end:
        pass
    high = 16
    while loop_us(high) < microseconds:
        high *= 2
    low = high // 2
    while high - low > max(1, low // 100):
        middle = (low + high) // 2
        if loop_us(middle) < microseconds:
            low = middle
        else:
            high = middle
    return high


def insert_after_docstring(path: Path, function: str, lines: list[str]) -> None:
    """Insert `lines` (unindented) as the first statements of `function` after its docstring."""
    source = path.read_text()
    if MARKER in source:
        raise SystemExit(f"plant: {path} is planted already")
    found = [node for node in ast.walk(ast.parse(source))
             if isinstance(node, ast.FunctionDef) and node.name == function]  # fmt: skip
    if len(found) != 1 or len(found[0].body) < 2:
        raise SystemExit(f"plant: expected one function {function} with a docstring and a body in {path}")
    first = found[0].body[1]
    text = source.splitlines(keepends=True)
    indent = " " * first.col_offset
    text[first.lineno - 1 : first.lineno - 1] = [f"{indent}{line}\n" for line in lines]
    path.write_text("".join(text))


def plant_busy_loop(tree: Path, microseconds: float) -> tuple[Path, int]:
    """A busy loop of about `microseconds` at the top of the op's wrapper; returns (file, iterations)."""
    if not microseconds > 0:
        raise SystemExit("plant: --us must be more than 0")
    count = calibrated_count(microseconds)
    path = tree / "kernels" / "functional.py"
    insert_after_docstring(path, "seeded_variational_dropout", [
        f"for _ in range({count}):  # {MARKER} (scripts/plant_host_slowdown.py): about {microseconds} us",
        "    pass",
    ])  # fmt: skip
    return path, count


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
    what.add_argument("--us", type=float, help="about this many microseconds of host work more per forward call")
    what.add_argument("--no-fast-path", action="store_true", help="the C++ hot path is never used")
    args = parser.parse_args(argv)
    check_tree(args.tree)
    if args.no_fast_path:
        print(f"planted: no C++ hot path in {plant_no_fast_path(args.tree)}")
    else:
        path, count = plant_busy_loop(args.tree, args.us)
        print(f"planted: a busy loop of {count} iterations (about {args.us} us here) in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
