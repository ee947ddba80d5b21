"""The fused op `h = residual + dropout(x); y = norm(h)` for transformer blocks: the public
function `seeded_dropout_add_norm`, its argument checks, its eager autograd Function and the
`torch.library` ops `torch.compile` traces (as `kernels/autograd.py` does for the standalone op).

Backward regenerates the mask from the seed. Saved for backward: h (the norm's input: its mean and
rstd are recomputed from it in the backward kernel, which reads h anyway), the weight (a reference
to the parameter) and the seed; nothing else, and nothing at all but the seed without a norm.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch.autograd.function import once_differentiable

from .autograd import dropout_kernel_op, dropout_op, launch_fits_32_bits, launch_seed
from .functional import (
    SUPPORTED_DTYPES,
    _check_dense,
    _normalized_dims,
    _refuse_function_transforms,
    _shared_dims,
    _training_flag,
    canonical_dim,
    dropout_probability,
)
from .fused_launch import NORMS, backward_any_device, backward_triton, forward_any_device, forward_triton
from .launch import dropout_any_device
from .seeds import GeneratorState, checked_seed, resolved_seed, traced_seed


def _saved_seed(ctx, seed) -> tuple[torch.Tensor, ...]:
    """Keep the seed on ctx: an int as is; its tensors (a device seed, a generator state) to save."""
    ctx.seed, ctx.offset_in_graph = seed, None
    if isinstance(seed, GeneratorState):
        ctx.seed, ctx.offset_in_graph = None, seed.offset_in_graph
        return seed.seed, seed.offset
    if isinstance(seed, torch.Tensor):
        ctx.seed = None
        return (seed,)
    return ()


def _restored_seed(ctx, tensors: Sequence[torch.Tensor]):
    if ctx.offset_in_graph is not None:
        return GeneratorState(tensors[0], tensors[1], ctx.offset_in_graph)
    return tensors[0] if ctx.seed is None else ctx.seed


class DropoutAddNormFunction(torch.autograd.Function):
    """Eager autograd: saves h (with a norm), the weight and the seed."""

    @staticmethod
    def forward(ctx, x, residual, weight, bias, seed, p, shared_dims, norm, eps):
        ctx.set_materialize_grads(False)  # an unused output costs no gradient of zeros
        y, h = forward_any_device(x, residual, weight, bias, seed, p, shared_dims, norm, eps)
        ctx.p, ctx.shared_dims, ctx.norm, ctx.eps = p, shared_dims, norm, eps
        ctx.save_for_backward(h if norm else None, weight, *_saved_seed(ctx, seed))
        if not norm:
            ctx.mark_non_differentiable(y)  # the empty placeholder
        return y, h

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y, grad_h):
        h, weight, *seed_tensors = ctx.saved_tensors
        seed = _restored_seed(ctx, seed_tensors)
        if not ctx.norm:  # h = residual + dropout(x): dresidual = grad_h, dx = dropout(grad_h)
            if grad_h is None:
                return (None,) * 9
            dx = grad_h if ctx.p == 0 else dropout_any_device(grad_h, seed, ctx.p, ctx.shared_dims)
            return dx, grad_h, *(None,) * 7
        if grad_y is None and grad_h is None:
            return (None,) * 9
        dx, dresidual, dweight, dbias = backward_any_device(
            grad_y, grad_h, h, weight, seed, ctx.p, ctx.shared_dims, ctx.norm, ctx.eps, ctx.needs_input_grad[2],
            ctx.needs_input_grad[3],
        )  # fmt: skip
        return dx, dresidual, dweight, dbias, *(None,) * 5


# ---- the ops torch.compile traces ----------------------------------------------------------------


@torch.library.custom_op("seeded_variational_dropout::dropout_add_norm", mutates_args=())
def dropout_add_norm_op(
    x: torch.Tensor,
    residual: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    seed: torch.Tensor,
    p: float,
    shared_dims: list[int],
    norm: int,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, h) with the seed as a one-element int64 tensor: what compiled code calls. y is an empty
    placeholder when norm is 0 (none)."""
    return forward_any_device(x, residual, weight, bias, launch_seed(x, seed), p, shared_dims, norm, eps)


@dropout_add_norm_op.register_fake
def _(x, residual, weight, bias, seed, p, shared_dims, norm, eps):
    h = x.new_empty(x.shape)
    return (x.new_empty(x.shape) if norm else x.new_empty(0)), h


@torch.library.custom_op("seeded_variational_dropout::dropout_add_norm_backward", mutates_args=())
def dropout_add_norm_backward_op(
    grad_y: torch.Tensor | None,
    grad_h: torch.Tensor | None,
    h: torch.Tensor,
    weight: torch.Tensor | None,
    seed: torch.Tensor,
    p: float,
    shared_dims: list[int],
    norm: int,
    eps: float,
    want_dweight: bool,
    want_dbias: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dx, dresidual, dweight, dbias) for a norm; dweight / dbias empty when not wanted."""
    return _op_outputs(h, *backward_any_device(grad_y, grad_h, h, weight, launch_seed(h, seed), p, shared_dims, norm,
                                               eps, want_dweight, want_dbias))  # fmt: skip


def _op_outputs(h, dx, dresidual, dweight, dbias):
    """The backward ops' outputs: an op returns tensors only, so a gradient not wanted is empty."""
    return dx, dresidual, h.new_empty(0) if dweight is None else dweight, h.new_empty(0) if dbias is None else dbias


@dropout_add_norm_backward_op.register_fake
def _(grad_y, grad_h, h, weight, seed, p, shared_dims, norm, eps, want_dweight, want_dbias):
    dweight = weight.new_empty(weight.shape) if want_dweight and weight is not None else h.new_empty(0)
    dbias = h.new_empty(h.shape[-1:]) if want_dbias else h.new_empty(0)
    return h.new_empty(h.shape), h.new_empty(h.shape), dweight, dbias


def _setup_context(ctx, inputs, output):
    _, _, weight, bias, seed, p, shared_dims, norm, eps = inputs
    ctx.save_for_backward(output[1] if norm else None, weight, seed)
    ctx.p, ctx.shared_dims, ctx.norm, ctx.eps = p, shared_dims, norm, eps
    ctx.has_weight, ctx.has_bias = weight is not None, bias is not None


def _backward_through(backward_op, standalone_op):
    """The traced ops' backward: `backward_op` for a norm, the standalone `standalone_op` without one."""

    def backward(ctx, grad_y, grad_h):
        h, weight, seed = ctx.saved_tensors
        if not ctx.norm:
            if grad_h is None:
                return (None,) * 9
            dx = grad_h if ctx.p == 0 else standalone_op(grad_h, seed, ctx.p, ctx.shared_dims)
            return dx, grad_h, *(None,) * 7
        want_dweight = ctx.has_weight and ctx.needs_input_grad[2]
        want_dbias = ctx.has_bias and ctx.needs_input_grad[3]
        dx, dresidual, dweight, dbias = backward_op(
            grad_y, grad_h, h, weight, seed, ctx.p, ctx.shared_dims, ctx.norm, ctx.eps, want_dweight, want_dbias
        )
        return dx, dresidual, dweight if want_dweight else None, dbias if want_dbias else None, *(None,) * 5

    return backward


dropout_add_norm_op.register_autograd(_backward_through(dropout_add_norm_backward_op, dropout_op),
                                      setup_context=_setup_context)  # fmt: skip


# ---- the ops Inductor traces into (16-bit CUDA tensors): it launches the kernels itself ------------


def inductor_can_launch(x: torch.Tensor, p: float, seed: torch.Tensor) -> bool:
    """Whether a traced call can go to `dropout_add_norm_kernel_op`, whose launches Inductor generates:
    a float16 or bfloat16 CUDA x (fp32 and fp64 need the kernel built without fused multiply-add, a
    compile option the traced launch does not carry; float64 also the scale's 64-bit pattern), the
    seed on x's device, p < 1. Sizes are not read here (as `functional._inductor_can_launch`); the
    ops send dynamic or too-large layouts to the custom ops."""
    return x.is_cuda and x.dtype in (torch.float16, torch.bfloat16) and p < 1 and seed.device == x.device


@torch.library.triton_op("seeded_variational_dropout::dropout_add_norm_kernel", mutates_args=())
def dropout_add_norm_kernel_op(
    x: torch.Tensor,
    residual: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    seed: torch.Tensor,
    p: float,
    shared_dims: list[int],
    norm: int,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`dropout_add_norm_op` as Inductor takes it in (`inductor_can_launch`): the launch traced, so a
    compiled call runs no Python of this package. A dynamic or >= 2**31 layout goes to the custom op."""
    if not launch_fits_32_bits(x):
        return dropout_add_norm_op(x, residual, weight, bias, seed, p, shared_dims, norm, eps)
    return forward_triton(x, residual, weight, bias, seed, p, shared_dims, norm, eps, traced=True)


@torch.library.triton_op("seeded_variational_dropout::dropout_add_norm_backward_kernel", mutates_args=())
def dropout_add_norm_backward_kernel_op(
    grad_y: torch.Tensor | None,
    grad_h: torch.Tensor | None,
    h: torch.Tensor,
    weight: torch.Tensor | None,
    seed: torch.Tensor,
    p: float,
    shared_dims: list[int],
    norm: int,
    eps: float,
    want_dweight: bool,
    want_dbias: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """`dropout_add_norm_backward_op` as Inductor takes it in."""
    if not launch_fits_32_bits(h):
        return dropout_add_norm_backward_op(grad_y, grad_h, h, weight, seed, p, shared_dims, norm, eps, want_dweight,
                                            want_dbias)  # fmt: skip
    return _op_outputs(h, *backward_triton(grad_y, grad_h, h, weight, seed, p, shared_dims, norm, eps, want_dweight,
                                           want_dbias, traced=True))  # fmt: skip


dropout_add_norm_kernel_op.register_autograd(_backward_through(dropout_add_norm_backward_kernel_op, dropout_kernel_op),
                                             setup_context=_setup_context)  # fmt: skip


# ---- the public function -------------------------------------------------------------------------


def _check_tensors(x, residual, weight, bias, norm) -> None:
    for name, tensor in (("x", x), ("residual", residual)):
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
        _check_dense(tensor, name)
    if x.dtype not in SUPPORTED_DTYPES:
        names = ", ".join(str(d) for d in SUPPORTED_DTYPES)
        raise TypeError(f"seeded_dropout_add_norm does not support dtype {x.dtype}; supported: {names}")
    if x.dim() == 0:
        raise ValueError("seeded_dropout_add_norm needs x of at least one dim (the norm's last dim)")
    if residual.shape != x.shape or residual.dtype != x.dtype or residual.device != x.device:
        raise ValueError(
            f"residual must match x in shape, dtype and device: x is {tuple(x.shape)} {x.dtype} on {x.device}, "
            f"residual {tuple(residual.shape)} {residual.dtype} on {residual.device}"
        )
    if norm not in NORMS:
        raise ValueError(f"norm must be 'rms', 'layer' or None, got {norm!r}")
    for name, param in (("weight", weight), ("bias", bias)):
        if param is None:
            continue
        if norm is None:
            raise ValueError(f"{name} given with norm=None: there is no norm to apply it")
        if not isinstance(param, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor or None, got {type(param).__name__}")
        _check_dense(param, name)
        if param.shape != x.shape[-1:] or param.dtype != x.dtype or param.device != x.device:
            raise ValueError(
                f"{name} must have shape ({x.shape[-1]},) (x's last dim), x's dtype and device: got "
                f"{tuple(param.shape)} {param.dtype} on {param.device} for x {x.dtype} on {x.device}"
            )


def _checked_eps(eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not math.isfinite(eps) or eps <= 0:
        raise ValueError(f"eps must be a finite real number > 0, got {eps!r}")
    return float(eps)


def seeded_dropout_add_norm(
    x: torch.Tensor,
    residual: torch.Tensor,
    p: float = 0.1,
    dim: int | Sequence[int] = 1,
    seed: int | torch.Tensor | None = None,
    training: bool = True,
    norm: str | None = "rms",
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-6,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`h = residual + seeded_variational_dropout(x, p, dim, seed)`, then `y = norm(h)` over the last
    dim, in one pass over memory (on CUDA: one kernel forward, one backward).

    Args:
        x, residual: tensors of one shape `(..., D)` (rank >= 1), dtype (float16, bfloat16, float32,
            float64) and device (CUDA; CPU by a plain PyTorch path with the same masks; meta). Any
            strides: read as contiguous copies where they are not contiguous.
        p, dim, seed, training: as `seeded_variational_dropout` takes them; the same seed gives the
            same mask. Eval mode or p == 0: h = residual + x, no mask, no seed drawn.
        norm: "rms" (RMSNorm), "layer" (LayerNorm) or None (y is h).
        weight, bias: None or tensors of shape (D,) in x's dtype and device (only with a norm).
        eps: added to the variance (layer) or mean square (rms), > 0.

    Returns:
        (y, h), new contiguous tensors in x's dtype: pre-norm blocks feed y to the next sublayer and
        carry h; post-norm blocks take y. `h` is bit for bit `residual + seeded_variational_dropout(x,
        p, dim, seed)`; y is norm(h) computed in float32 (float64 for float64) and rounded once. With
        norm=None, y is h (the same tensor).
    """
    _check_tensors(x, residual, weight, bias, norm)
    p = dropout_probability(p)
    dim = canonical_dim(dim)
    seed = checked_seed(seed)
    eps = _checked_eps(eps)
    if type(training) is not bool:  # as the standalone op: "False" is an error, not a truthy string
        training = _training_flag(training)
    norm_id = NORMS[norm]
    drop = training and p > 0
    if not drop:
        p, shared_dims = 0.0, ()
    elif torch.jit.is_tracing():
        raise RuntimeError(
            "seeded_dropout_add_norm cannot be traced by torch.jit.trace in training mode: the trace would keep "
            "one seed, so every call would drop the same elements. Trace in eval mode, or use torch.compile."
        )
    if torch.compiler.is_compiling():
        if drop:
            shared_dims = _normalized_dims(dim, x.dim())
            seed = traced_seed(seed, x.device)
        else:
            seed = torch.zeros(1, dtype=torch.int64, device=x.device)
        op = dropout_add_norm_kernel_op if inductor_can_launch(x, p, seed) else dropout_add_norm_op
        y, h = op(x, residual, weight, bias, seed, p, list(shared_dims), norm_id, eps)
        return (h, h) if norm is None else (y, h)
    _refuse_function_transforms(x, residual, weight, bias, op="seeded_dropout_add_norm",
                                instead="torch.nn.functional.dropout, the add and the norm")  # fmt: skip
    if drop:
        shared_dims = _shared_dims(dim, x.dim())
        seed = resolved_seed(seed, x.device)
    else:
        seed = 0
    tensors = (x, residual, weight, bias)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        y, h = DropoutAddNormFunction.apply(x, residual, weight, bias, seed, p, shared_dims, norm_id, eps)
    else:
        y, h = forward_any_device(x, residual, weight, bias, seed, p, shared_dims, norm_id, eps)
    return (h, h) if norm is None else (y, h)
