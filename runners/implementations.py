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

The second op family, dropout + residual add + norm (`runners/op_families.py`), registers here its
product, `fused` (`kernels.seeded_dropout_add_norm`), its unfused counterpart `seeded` (the
standalone op, the add, torch's norm) and its roofline `copy` (the fused op's bytes, moved by
copies); `get(name, "dropout_add_norm")` finds them. Its baselines are in `baselines/add_norm.py`.
"""

from __future__ import annotations

import torch

import baselines  # noqa: F401  (registers the baselines)
from baselines.add_norm import FAMILY as ADD_NORM
from baselines.add_norm import add_norm_bytes, norm_of
from baselines.case import AddNormCase, DropoutCase, NotApplicable
from baselines.mask_based import compiled_for_case
from baselines.registry import IMPLEMENTATIONS, Implementation, get, register, streaming_bytes
from kernels import seeded_dropout_add_norm, seeded_variational_dropout

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


# ---- the dropout + residual add + norm family (baselines/add_norm.py has its baselines) -----------


@register("fused", bytes_moved=add_norm_bytes, family=ADD_NORM)
def build_fused(case: AddNormCase, seed=None):
    """The fused op (`kernels.seeded_dropout_add_norm`), a fresh seed per call as in training."""
    p, dims, norm, eps = case.p, case.shared_dims, None if case.norm == "none" else case.norm, case.eps

    def fused(x, residual, weight=None, bias=None):
        return seeded_dropout_add_norm(x, residual, p=p, dim=dims, seed=seed, training=True, norm=norm,
                                       weight=weight, bias=bias, eps=eps)  # fmt: skip

    return fused


@register("seeded", bytes_moved=add_norm_bytes, family=ADD_NORM)
def build_seeded_unfused(case: AddNormCase, seed=None):
    """The standalone seeded op, then the add and torch's norm: the fused op's work unfused."""
    p, dims = case.p, case.shared_dims

    def seeded_add_norm(x, residual, weight=None, bias=None):
        h = residual + seeded_variational_dropout(x, p=p, dim=dims, seed=seed, training=True)
        return norm_of(case, h, weight, bias), h

    return seeded_add_norm


class _CopyAddNormRoofline(torch.autograd.Function):
    """Moves the fused op's bytes (`add_norm_bytes`, norm cases) and computes nothing: fwd y = x and
    h = residual (read 2, write 2); bwd dx = dy + dh (read 2, write 1) and dresidual = h (read 1,
    write 1). The weight and bias get no gradient (D elements: below the timers' resolution)."""

    @staticmethod
    def forward(ctx, x, residual, weight=None, bias=None):
        h = _copy(residual)
        ctx.save_for_backward(h)
        return _copy(x), h

    @staticmethod
    def backward(ctx, grad_y, grad_h):
        (h,) = ctx.saved_tensors
        return torch.add(grad_y, grad_h), _copy(h), None, None


def check_add_norm_copy(forward, case: AddNormCase) -> str:
    """The roofline's check: exact copies both ways."""
    from runners.checks import PASS

    x, residual = (torch.rand(case.shape, device=case.device).to(case.dtype).requires_grad_() for _ in range(2))
    y, h = forward(x, residual)
    if not (torch.equal(y, x.detach()) and torch.equal(h, residual.detach())):
        return "fail: the roofline's outputs are not copies of x and residual"
    grad_y, grad_h = torch.rand_like(y), torch.rand_like(h)
    dx, dresidual = torch.autograd.grad((y, h), (x, residual), (grad_y, grad_h))
    if not (torch.equal(dx, grad_y + grad_h) and torch.equal(dresidual, h.detach())):
        return "fail: the roofline's backward is not dy + dh and a copy of h"
    return PASS


@register("copy", bytes_moved=add_norm_bytes, is_dropout=False, family=ADD_NORM, check=check_add_norm_copy)
def build_add_norm_copy(case: AddNormCase):
    if case.norm == "none":
        raise NotApplicable("the roofline copies the norm cases' bytes; without a norm the fused op is the "
                            "standalone op plus an add")  # fmt: skip
    return _CopyAddNormRoofline.apply
