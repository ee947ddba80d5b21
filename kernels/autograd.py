"""How the op enters autograd and the compiler: the eager `torch.autograd.Function` (no dispatcher
round trip) and two `torch.library` ops with autograd registered, which `torch.compile` traces:

- `dropout_kernel_op`, a `triton_op`: the kernel launched through `wrap_triton`, which Inductor
  traces into its own generated code; a compiled call then runs no Python of this package (its
  launch costs what Inductor's launch of any kernel costs). For CUDA tensors of static shape.
- `dropout_op`, an opaque custom op with a fake implementation: everything else (CPU tensors, the
  meta device, dynamic shapes, p == 1, 0-d tensors). Each call runs the Python launch.

All save nothing but the seed for backward: an int, or a one-element tensor when the seed lives on
the device. The op is linear, so its backward is itself applied to the gradient with the same seed.
"""

from __future__ import annotations

import torch

from .launch import dropout_any_device, dropout_traceable


class SeededDropoutFunction(torch.autograd.Function):
    """Eager autograd: saves the seed only (an int on ctx, or a one-element tensor)."""

    @staticmethod
    def forward(ctx, x, seed, p, shared_dims):
        ctx.p, ctx.shared_dims = p, shared_dims
        if isinstance(seed, torch.Tensor):
            ctx.save_for_backward(seed)
            ctx.seed = None
        else:
            ctx.seed = seed
        return dropout_any_device(x, seed, p, shared_dims)

    @staticmethod
    def backward(ctx, grad_out):
        seed = ctx.saved_tensors[0] if ctx.seed is None else ctx.seed
        # d(x * mask * scale)/dx = mask * scale: the forward's own function applied to the gradient.
        # Through autograd only when a graph of the backward is recorded (double backward).
        if torch.is_grad_enabled():
            return SeededDropoutFunction.apply(grad_out, seed, ctx.p, ctx.shared_dims), None, None, None
        return dropout_any_device(grad_out, seed, ctx.p, ctx.shared_dims), None, None, None


def launch_seed(x: torch.Tensor, seed: torch.Tensor):
    """A custom op's one-element seed tensor as the launch takes it: an int on CPU or off x's device,
    else the tensor itself (read by the kernel)."""
    if x.device.type == "cpu" or seed.device != x.device:
        return int(seed.reshape(()).item())
    return seed


@torch.library.custom_op("seeded_variational_dropout::dropout", mutates_args=())
def dropout_op(x: torch.Tensor, seed: torch.Tensor, p: float, shared_dims: list[int]) -> torch.Tensor:
    """The op with its seed as a one-element int64 tensor: what compiled code calls."""
    return dropout_any_device(x, launch_seed(x, seed), p, shared_dims)


@dropout_op.register_fake
def _(x, seed, p, shared_dims):
    return torch.empty_like(x)


def _setup_context(ctx, inputs, output):
    _, seed, p, shared_dims = inputs
    ctx.save_for_backward(seed)
    ctx.p, ctx.shared_dims = p, shared_dims


def _backward(ctx, grad_out):
    (seed,) = ctx.saved_tensors
    return dropout_op(grad_out, seed, ctx.p, ctx.shared_dims), None, None, None


dropout_op.register_autograd(_backward, setup_context=_setup_context)


@torch.library.triton_op("seeded_variational_dropout::dropout_kernel", mutates_args=())
def dropout_kernel_op(x: torch.Tensor, seed: torch.Tensor, p: float, shared_dims: list[int]) -> torch.Tensor:
    """The op as Inductor takes it in: seed a one-element int64 tensor on x's device, 0 < p < 1,
    x.dim() > 0, x on a device Triton runs on (see dropout_traceable). A layout the traced launch
    cannot take goes to the opaque op, decided here, where a size is a plain int or a SymInt: under
    dynamic shapes (Dynamo marks sizes dynamic when a second shape is seen), or with a size, stride
    or element count of 2**31 or more."""
    if not launch_fits_32_bits(x):
        return dropout_op(x, seed, p, shared_dims)
    return dropout_traceable(x, seed, p, shared_dims)


def launch_fits_32_bits(x: torch.Tensor) -> bool:
    """Whether x's sizes, strides and element count are plain ints below 2**31 (no SymInt): every
    integer argument of `dropout_traceable`'s launch is then a 32-bit constant of the graph."""
    layout = (*x.shape, *x.stride())
    return all(type(n) is int and abs(n) < 2**31 for n in layout) and x.numel() < 2**31


def _kernel_backward(ctx, grad_out):
    (seed,) = ctx.saved_tensors
    return dropout_kernel_op(grad_out, seed, ctx.p, ctx.shared_dims), None, None, None


dropout_kernel_op.register_autograd(_kernel_backward, setup_context=_setup_context)
