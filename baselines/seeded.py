"""`seeded`: the product op from `kernels/`, as a user calls it."""

from __future__ import annotations

from baselines.case import DropoutCase
from baselines.registry import register, streaming_bytes
from kernels import seeded_variational_dropout


@register("seeded", bytes_moved=streaming_bytes)  # the mask lives in registers, never in memory
def build_seeded(case: DropoutCase, seed=None):
    """`seed=None` (the default) draws a seed from torch's generator on every call, as in training."""
    p, dims = case.p, case.shared_dims
    return lambda x: seeded_variational_dropout(x, p=p, dim=dims, seed=seed, training=True)
