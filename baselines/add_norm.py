"""The dropout + residual add + norm family's baselines: what a transformer block runs today for
`h = residual + dropout(x); y = norm(h)` (the fused op and the roofline are registered in
`runners/implementations.py`). Every implementation is `forward(x, residual, weight, bias=None)
-> (y, h)`; the norm (RMSNorm, LayerNorm, or none: `y` is `h`) is over the last dim.

- `eager`: the AWD-style locked mask (dropout of a tensor of ones of the mask shape) times x, the
  add, then torch's `F.rms_norm` / `F.layer_norm`: three passes and a mask kept for backward.
- `compile`: the same under `torch.compile(fullgraph=True)`: Inductor fuses the add and the norm.
- `seeded+liger`: the standalone seeded op, then Liger-Kernel's fused add + RMSNorm (rms only,
  when `liger_kernel` is importable; otherwise the rows are `skipped` with the reason).
- `liger:no_dropout`: Liger's fused add + RMSNorm alone, no dropout: the time dropout would add
  nothing to.

Bytes (every implementation is given the fused op's bytes, `add_norm_bytes`, so GB/s is the same
work over each one's time): N elements of s bytes in x, D the width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from baselines.case import AddNormCase, NotApplicable
from baselines.mask_based import compiled_for_case
from baselines.registry import _per_mode, register

FAMILY = "dropout_add_norm"


def add_norm_bytes(case: AddNormCase, mode: str) -> int:
    """What the fused op must move. With a norm, fwd: read x and residual, write y and h (4 N s);
    bwd: read dy, dh and h, write dx and dresidual (5 N s); the weight (and bias) read once and
    their gradients written once, D s each. Without: fwd 3 N s (y is h); bwd 2 N s (read dh, write
    dx: dresidual is dh itself)."""
    stream, vector = case.numel * case.itemsize, case.width * case.itemsize
    if case.norm == "none":
        return _per_mode(case, mode, 3 * stream, 2 * stream)
    vectors = 2 if case.norm == "layer" else 1
    return _per_mode(case, mode, 4 * stream + vectors * vector, 5 * stream + 2 * vectors * vector)


def norm_of(case: AddNormCase, h: torch.Tensor, weight, bias) -> torch.Tensor:
    """torch's own norm of h over its last dim, or h itself without one."""
    if case.norm == "rms":
        y = F.rms_norm(h, (case.width,), weight, case.eps)
        return y if bias is None else y + bias
    if case.norm == "layer":
        return F.layer_norm(h, (case.width,), weight, bias, case.eps)
    return h


def example_inputs(case: AddNormCase) -> tuple[torch.Tensor, ...]:
    """Inputs to compile with: x, residual, weight (and bias with LayerNorm), requiring grad."""
    def tensor(shape):
        return torch.randn(shape, dtype=case.dtype, device=case.device, requires_grad=True)

    return (tensor(case.shape), tensor(case.shape), *(tensor((case.width,)) for _ in range(case.norm_vectors)))


@register("eager", bytes_moved=add_norm_bytes, family=FAMILY)
def build_eager(case: AddNormCase):
    mask_shape, p = case.mask_shape, case.p

    def eager_dropout_add_norm(x, residual, weight=None, bias=None):
        mask = F.dropout(x.new_ones(mask_shape), p, training=True)  # kept by autograd for backward
        h = residual + x * mask
        return norm_of(case, h, weight, bias), h

    return eager_dropout_add_norm


@register("compile", bytes_moved=add_norm_bytes, family=FAMILY)
def build_compiled(case: AddNormCase, backend="inductor", mode=None, dynamic=False, recompile_limit=64):
    return compiled_for_case(build_eager(case), case, backend, mode, dynamic, recompile_limit, example=example_inputs)


def liger_fused_add_rms_norm(case: AddNormCase):
    """Liger-Kernel's fused add + RMSNorm function, or NotApplicable saying why not."""
    if case.norm != "rms":
        raise NotApplicable(f"Liger's fused add-norm is an RMSNorm; this case's norm is {case.norm}")
    if case.device.type != "cuda":
        raise NotApplicable("Liger-Kernel runs on GPUs only")
    try:
        from liger_kernel.ops.fused_add_rms_norm import LigerFusedAddRMSNormFunction
    except ImportError as error:
        raise NotApplicable(f"liger-kernel is not importable here ({error}): pip install liger-kernel") from None
    return LigerFusedAddRMSNormFunction


@register("seeded+liger", bytes_moved=add_norm_bytes, family=FAMILY)
def build_seeded_then_liger(case: AddNormCase):
    from kernels import seeded_variational_dropout

    fused_add_rms_norm, p, dims, eps = liger_fused_add_rms_norm(case), case.p, case.shared_dims, case.eps

    def seeded_then_liger(x, residual, weight=None, bias=None):
        dropped = seeded_variational_dropout(x, p=p, dim=dims, training=True)
        y, h = fused_add_rms_norm.apply(dropped, residual, weight, eps)
        return (y if bias is None else y + bias), h

    return seeded_then_liger


@register("liger:no_dropout", bytes_moved=add_norm_bytes, is_dropout=False, family=FAMILY)
def build_liger_alone(case: AddNormCase):
    fused_add_rms_norm, eps = liger_fused_add_rms_norm(case), case.eps

    def liger_add_rms_norm(x, residual, weight=None, bias=None):
        y, h = fused_add_rms_norm.apply(x, residual, weight, eps)
        return (y if bias is None else y + bias), h

    return liger_add_rms_norm
