"""The op families the micro-benchmark sweep measures, by name (`op=<name>` on the command line,
conf/op/). A family is what the sweep needs to know of an op, and nothing else differs between
families: the sweep (`runners/sweep.py`), its timers, memory counts, rows and results files are
shared. Adding a family means registering one here, its implementations (`baselines.registry.register`
with `family=`), and its configs (conf/op/, a shape preset, an impl preset).

A family gives:
- `workload(settings)`: the rows' `workload` column (the standalone op keeps `micro`, the name its
  rows were stored under before there were families; the fused family names its norm in it, so
  rows of different norms have different keys);
- `case(point, device, settings)`: the problem at a sweep point (`baselines.case`), built from the
  point and the family's own settings (conf/op/<name>.yaml, `op.settings`);
- `inputs(case)`: the tensors an implementation's forward takes (the first requires grad; every
  mode runs the training forward) and the gradients of its outputs, built once per point outside
  every timed region;
- `check(forward, case, is_dropout)`: correctness before timing (`runners/checks.py`);
- `roofline`: the implementation every other is compared with (`pct_of_copy`), re-timed in the same
  run; the host timer's reference call is its forward too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from baselines.add_norm import FAMILY as ADD_NORM
from baselines.add_norm import example_inputs
from baselines.case import AddNormCase, DropoutCase
from baselines.registry import FAMILY_IMPLEMENTATIONS, Implementation, get
from runners import checks, implementations  # noqa: F401  (implementations: registers products, rooflines)
from runners.modes import Inputs, make_inputs
from runners.plan import DTYPES, Point


@dataclass(frozen=True)
class OpFamily:
    name: str
    workload: Callable[[dict], str]  # workload(settings) -> the rows' workload column
    case: Callable  # case(point, device, settings: dict) -> a case
    inputs: Callable[[object], Inputs]
    check: Callable  # check(forward, case, is_dropout) -> "pass" | "fail: ..."
    roofline: str = "copy"
    settings: tuple[str, ...] = field(default=())  # the keys `op.settings` may hold

    @property
    def implementations(self) -> dict[str, Implementation]:
        return FAMILY_IMPLEMENTATIONS.get(self.name, {})

    def implementation(self, name: str) -> Implementation:
        return get(name, self.name)

    def check_of(self, implementation: Implementation) -> Callable:
        """check(forward, case) of an implementation: its own, else the family's."""
        if implementation.check is not None:
            return implementation.check
        return lambda forward, case: self.check(forward, case, implementation.is_dropout)

    def case_at(self, point: Point, device: torch.device, settings: dict | None = None):
        settings = dict(settings or {})
        unknown = sorted(set(settings) - set(self.settings))
        if unknown:
            known = ", ".join(self.settings) or "none"
            raise ValueError(f"op.settings.{unknown[0]}: op={self.name} takes no such setting (it takes: {known})")
        return self.case(point, device, settings)


# ---- the standalone dropout op -------------------------------------------------------------------


def dropout_case(point: Point, device: torch.device, settings: dict) -> DropoutCase:
    return DropoutCase(point.shape, point.dims, point.p, DTYPES[point.dtype], device)


def dropout_inputs(case: DropoutCase) -> Inputs:
    return make_inputs(case.shape, case.dtype, case.device)


# ---- dropout + residual add + norm ---------------------------------------------------------------

NORMS = ("rms", "layer", "none")


def add_norm_case(point: Point, device: torch.device, settings: dict) -> AddNormCase:
    norm = str(settings.get("norm", "rms"))
    if norm not in NORMS:
        raise ValueError(f"op.settings.norm={norm!r}: give one of {', '.join(NORMS)}")
    eps = settings.get("eps", 1e-6)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise ValueError(f"op.settings.eps={eps!r}: give a positive number")
    return AddNormCase(point.shape, point.dims, point.p, DTYPES[point.dtype], device, norm=norm, eps=float(eps))


def add_norm_workload(settings: dict) -> str:
    """dropout_add_rmsnorm, dropout_add_layernorm, or dropout_add (no norm)."""
    norm = str(settings.get("norm", "rms"))
    return "dropout_add" if norm == "none" else f"dropout_add_{norm}norm"


def add_norm_inputs(case: AddNormCase) -> Inputs:
    """x (requiring grad), residual, the norm's weight (and LayerNorm's bias), all requiring grad
    as in training (`baselines.add_norm.example_inputs`); the gradients of y and h."""
    grad_outs = tuple(torch.randn(case.shape, dtype=case.dtype, device=case.device) for _ in range(2))
    return Inputs(tensors=example_inputs(case), grad_outs=grad_outs)


FAMILIES: dict[str, OpFamily] = {
    "dropout": OpFamily("dropout", lambda settings: "micro", dropout_case, dropout_inputs, checks.check),
    ADD_NORM: OpFamily(ADD_NORM, add_norm_workload, add_norm_case, add_norm_inputs, checks.check_add_norm,
                       settings=("norm", "eps")),  # fmt: skip
}


def family_of(name: str) -> OpFamily:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"op={name!r} is no op family: give one of {', '.join(FAMILIES)}") from None
