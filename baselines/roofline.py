"""`copy`: the roofline row. Moves exactly the bytes the seeded op must move, and does nothing else."""

from __future__ import annotations

import torch

from baselines.case import DropoutCase
from baselines.registry import register, streaming_bytes


class _CopyBothWays(torch.autograd.Function):
    """y = copy of x; dx = copy of dy: one read and one write per pass, like the seeded op."""

    @staticmethod
    def forward(ctx, x):
        y = torch.empty_like(x)
        y.copy_(x)  # I/O: read x + write y
        return y

    @staticmethod
    def backward(ctx, grad_out):
        grad_in = torch.empty_like(grad_out)
        grad_in.copy_(grad_out)  # I/O: read dy + write dx
        return grad_in


@register("copy", bytes_moved=streaming_bytes, is_dropout=False)
def build_copy(case: DropoutCase):
    return _CopyBothWays.apply
