"""Plant a known slowdown into a throwaway copy of the repo, to prove the A/B gate catches it.

    python scripts/plant_slowdown.py TREE --every K

Edits the Triton kernel in TREE (a copy of this repo, e.g. `git archive HEAD | tar -x -C TREE`;
never this checkout: the script refuses the repository it lives in) so that every K-th program
also reads a second tile of x from half the tensor away (a `volatile` load, which the compiler
cannot drop, and a row the L2 has not seen yet for tensors far larger than it). The output is
unchanged for finite inputs. A program reads one tile and writes one, so the extra read adds
1 / (2K) of the bytes moved: K = 5 plants about 10% on large tensors, K = 1 about 1.5x; small
tensors that live in the L2 slow down less. The A/B job (`runners.ab`) then measures how much
slower the planted copy really is: that figure, not the nominal one, is what the gate had to see.

The product code has no switch for this: the slowdown exists only in the copy this script edits.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
LOAD = "    x = tl.load(x_tile + (do * x_stride_o + ds * x_stride_s + di * x_stride_i), mask=in_bounds)\n"
STORE = "    tl.store(out_tile + (do * out_stride_o + ds * out_stride_s + di * out_stride_i), y, mask=in_bounds)\n"
PLANTED_READ = """    # PLANTED SLOWDOWN (scripts/plant_slowdown.py): every {every}-th program reads a far tile too
    far_rows = ((o0 + do + size_o // 2) % size_o - o0 - do) * x_stride_o
    planted = in_bounds & (in_bounds.to(tl.int64) * 0 + pid % {every} == 0)  # broadcast: the interpreter needs it
    far = tl.load(x_tile + (do * x_stride_o + ds * x_stride_s + di * x_stride_i) + far_rows, mask=planted,
                  other=0.0, volatile=True)
"""
PLANTED_USE = """    y = tl.where(far == far + 1, y + 1, y)  # never true for finite values: the load must stay
"""


def kernel_file(tree: Path) -> Path:
    """The file of `tree` that holds the kernel's load and store lines."""
    found = [path for path in sorted((tree / "kernels").rglob("*.py")) if LOAD in path.read_text()]
    if len(found) != 1:
        raise SystemExit(f"plant: expected one kernel file with the load line under {tree}/kernels, found {found}")
    return found[0]


def plant(tree: Path, every: int) -> Path:
    if every < 1:
        raise SystemExit("plant: --every must be 1 or more")
    if tree.resolve() == HERE:
        raise SystemExit("plant: refusing to edit this checkout; give a throwaway copy")
    path = kernel_file(tree)
    source = path.read_text()
    if "PLANTED SLOWDOWN" in source:
        raise SystemExit(f"plant: {path} is planted already")
    if source.count(STORE) != 1:
        raise SystemExit(f"plant: expected one store line in {path}")
    source = source.replace(LOAD, LOAD + PLANTED_READ.format(every=every))
    source = source.replace(STORE, PLANTED_USE + STORE)
    path.write_text(source)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", type=Path, help="a throwaway copy of the repo")
    parser.add_argument("--every", type=int, required=True, help="every K-th program reads a second tile")
    args = parser.parse_args(argv)
    print(f"planted: every {args.every}-th program in {plant(args.tree, args.every)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
