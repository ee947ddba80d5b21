"""The implementations the harness times, registered by name, and the bytes each one moves.

An implementation is one small builder: `build(case, **options)` takes a `DropoutCase` (what to
compute, nothing allocated yet) and returns `forward(x) -> y`, the callable the runner times in
every mode (it prepares `x` outside the timed region, the same way for every implementation).
Building may do untimed work of its own (compiling, a first call). A builder that has no program
for a case raises `NotApplicable`: the row is recorded as `skipped` with the reason.

Bytes models, `bytes_moved(case, mode) -> int`: what an implementation's program must move per
call, counted from its own tensors, never measured. N = x's elements of s bytes, M = mask
elements; `fwd_bwd` = `fwd` + `bwd`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from baselines.case import DropoutCase

Forward = Callable  # forward(x) -> y
Builder = Callable[..., Forward]  # build(case, **options) -> forward
BytesModel = Callable[[DropoutCase, str], int]


def _per_mode(case: DropoutCase, mode: str, forward: int, backward: int) -> int:
    if mode == "fwd":
        return forward
    if mode == "bwd":
        return backward
    if mode == "fwd_bwd":
        return forward + backward
    raise ValueError(f"unknown mode {mode!r}; expected fwd, bwd or fwd_bwd")


def streaming_bytes(case: DropoutCase, mode: str) -> int:
    """The mask never touches memory. fwd: read x + write y (2 N s); bwd: read dy + write dx."""
    per_pass = 2 * case.numel * case.itemsize
    return _per_mode(case, mode, per_pass, per_pass)


def mask_based_bytes(case: DropoutCase, mode: str) -> int:
    """A mask of M elements of x's dtype, built, applied, and saved for backward.

    fwd: read x + write y, plus the mask written once when built and read once by the multiply
         (2 N s + 2 M s). The tensor of ones it is built from and dropout's own intermediates are
         not counted: a lower bound of what the program moves.
    bwd: read dy + write dx, plus the saved mask read once (2 N s + M s).
    """
    stream = 2 * case.numel * case.itemsize
    mask = case.mask_numel * case.itemsize
    return _per_mode(case, mode, stream + 2 * mask, stream + mask)


def fused_dropout_bytes(case: DropoutCase, mode: str) -> int:
    """Element-wise `F.dropout` (one fused kernel): a bool mask of N bytes, written and saved.

    fwd: read x + write y + write the bool mask (2 N s + N); bwd: read dy + read mask + write dx
    (2 N s + N).
    """
    stream = 2 * case.numel * case.itemsize
    return _per_mode(case, mode, stream + case.numel, stream + case.numel)


@dataclass(frozen=True)
class Implementation:
    """A registered implementation: its builder, its bytes model, and whether it drops at all
    (`copy` does not: its correctness check is `y == x`)."""

    name: str
    build: Builder
    bytes_moved: BytesModel
    is_dropout: bool = True
    check: Callable | None = None  # check(forward, case) -> "pass" | "fail: ...": its own, else its family's


# The implementations of each op family (`runners/op_families.py`), by family, then by name: names
# are per family (each family has its own `copy` roofline, `eager` and `compile`).
FAMILY_IMPLEMENTATIONS: dict[str, dict[str, Implementation]] = {"dropout": {}}
IMPLEMENTATIONS = FAMILY_IMPLEMENTATIONS["dropout"]  # the standalone dropout op's


def register(name: str, bytes_moved: BytesModel, is_dropout: bool = True, family: str = "dropout",
             check: Callable | None = None) -> Callable[[Builder], Builder]:  # fmt: skip
    """Decorator: add a builder to `family`'s implementations under `name`."""

    def add(build: Builder) -> Builder:
        registered = FAMILY_IMPLEMENTATIONS.setdefault(family, {})
        if name in registered:
            raise ValueError(f"implementation {name!r} of {family} is registered twice")
        registered[name] = Implementation(name, build, bytes_moved, is_dropout, check)
        return build

    return add


def get(name: str, family: str = "dropout") -> Implementation:
    """The implementation of `family` registered as `name`."""
    registered = FAMILY_IMPLEMENTATIONS.get(family, {})
    try:
        return registered[name]
    except KeyError:
        known = ", ".join(sorted(registered))
        raise KeyError(f"unknown implementation {name!r} of {family}; registered: {known}") from None
