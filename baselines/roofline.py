"""`copy`: the roofline row. Moves exactly the bytes the seeded op must move, and does nothing else.

The copy is an ATen elementwise kernel (`torch.mul(x, 1, out=y)`: exact for every float, one read
and one write), not `Tensor.copy_`: for contiguous tensors `copy_` is a `cudaMemcpyAsync`, which
eagerly runs at the same speed but captured in a CUDA graph ran at 2.7 TB/s instead of 4.2 TB/s for
tensors of 0.5 GB and more on the H200 (results/nvidia-h200/probes/16-timer-probe-*.csv: 64x8192x768
fp32, 1188 us in a graph against 761 us eagerly; the elementwise kernel 761 us both ways), so it was
no roofline under the `cuda_graph` timer.
"""

from __future__ import annotations

import torch

from baselines.case import DropoutCase
from baselines.registry import register, streaming_bytes


class _CopyBothWays(torch.autograd.Function):
    """y = copy of x; dx = copy of dy: one read and one write per pass, like the seeded op."""

    @staticmethod
    def forward(ctx, x):
        return _copy(x)  # I/O: read x + write y

    @staticmethod
    def backward(ctx, grad_out):
        return _copy(grad_out)  # I/O: read dy + write dx


def _copy(source: torch.Tensor) -> torch.Tensor:
    """A copy by an elementwise kernel, the same program eagerly and in a CUDA graph."""
    return torch.mul(source, 1, out=torch.empty_like(source))


@register("copy", bytes_moved=streaming_bytes, is_dropout=False)
def build_copy(case: DropoutCase):
    return _CopyBothWays.apply
