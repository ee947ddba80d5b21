"""Every implementation the harness times, by name (conf/impl/): the baselines users pick today
(`baselines/`, registered by that package), and, registered here, the product and the roofline:

- `seeded`: the op from `kernels/`, as a user calls it (a fresh seed from torch's generator on
  every call, as in training);
- `seeded:compile`: the same call under `torch.compile(fullgraph=True)`, compiled per case as the
  `compile` baseline is (`baselines.mask_based.compiled_for_case`): what a user who compiles their
  model gets from the op;
- `copy`: the roofline row. It moves exactly the bytes the seeded op must move and does nothing
  else: an ATen elementwise kernel (`torch.mul(x, 1, out=y)`: exact for every float, one read and
  one write), not `Tensor.copy_`. For contiguous tensors `copy_` is a `cudaMemcpyAsync`, which
  eagerly runs at the same speed but captured in a CUDA graph ran at 2.7 TB/s instead of 4.2 TB/s
  for tensors of 0.5 GB and more on the H200 (results/nvidia-h200/probes/16-timer-probe-*.csv:
  64x8192x768 fp32, 1188 us in a graph against 761 us eagerly; the elementwise kernel 761 us both
  ways), so it was no roofline under the `cuda_graph` timer.

`get(name).build(case, **options)` returns `forward(x) -> y`; see `baselines/registry.py`.
"""

from __future__ import annotations

import torch

import baselines  # noqa: F401  (registers the baselines)
from baselines.case import DropoutCase
from baselines.mask_based import compiled_for_case
from baselines.registry import IMPLEMENTATIONS, Implementation, get, register, streaming_bytes
from kernels import seeded_variational_dropout

__all__ = ["IMPLEMENTATIONS", "Implementation", "get"]


@register("seeded", bytes_moved=streaming_bytes)  # the mask lives in registers, never in memory
def build_seeded(case: DropoutCase, seed=None):
    """`seed=None` (the default) draws a seed from torch's generator on every call, as in training."""
    p, dims = case.p, case.shared_dims
    return lambda x: seeded_variational_dropout(x, p=p, dim=dims, seed=seed, training=True)


@register("seeded:compile", bytes_moved=streaming_bytes)
def build_seeded_compiled(case: DropoutCase, seed=None, backend="inductor", mode=None, dynamic=False,
                          recompile_limit=64):  # fmt: skip
    """`seeded` under torch.compile; a fresh seed per call unless `seed` is given, as `seeded`."""
    return compiled_for_case(build_seeded(case, seed), case, backend, mode, dynamic, recompile_limit)


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


def copy_forward():
    """copy's forward (its backward copies the gradient): the same function for every case. Also the
    host timer's reference call (runners/host_ratio.py)."""
    return _CopyBothWays.apply


@register("copy", bytes_moved=streaming_bytes, is_dropout=False)
def build_copy(case: DropoutCase):
    return copy_forward()
