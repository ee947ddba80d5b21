"""What the before/after probes share (scripts/ab_probe.py, scripts/kernel_ab.py): their common
arguments and the import of the `kernels` package under test.

`--label` names the code version in the rows; `--kernels-from DIR` imports `kernels` from DIR (e.g.
`git archive <old> kernels` unpacked there) instead of this checkout; `--set NAME=INT` changes an
integer constant of kernels/seeded_dropout.py before any call.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ab_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--label", required=True, help="the code version's name in the rows")
    parser.add_argument("--kernels-from", default=None, metavar="DIR", help="import `kernels` from DIR")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=INT",
        help="set an integer constant of kernels/seeded_dropout.py first (e.g. _PROGRAMS_PER_SM=0)",
    )
    return parser


def import_kernels(args: argparse.Namespace):
    """The `kernels` package under test, with the --set constants applied (printed with the label)."""
    sys.path.insert(0, ROOT)
    if args.kernels_from:
        sys.path.insert(0, os.path.abspath(args.kernels_from))
    kernels = importlib.import_module("kernels")
    op = importlib.import_module("kernels.seeded_dropout")
    for setting in args.set:
        name, value = setting.split("=")
        setattr(op, name, int(value))
    print(args.label, "kernels from", os.path.dirname(kernels.__file__), args.set, flush=True)
    return kernels
