"""`per_element_rng`: the original project's approach, one random number drawn per element of x.

Each element calls `tl.rand(seed, mask_index)` for its own mask index, so elements that share a
mask element draw the same number and the mask is still shared; but the RNG runs once per element
of x instead of once per mask element. Timed next to `seeded`, it shows what sharing the RNG gains.
Fixed block size, no autotuning (the harness never tunes a baseline).
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from baselines.case import DropoutCase, NotApplicable
from baselines.registry import register, streaming_bytes

# Whether Triton runs kernels in its interpreter (CPU tensors): read when the kernel is decorated,
# as Triton reads it, not later (a process may set the variable after importing Triton).
_INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"

_BLOCK = 1024
_MAX_GROUPS = 4


# A fresh seed every call: not specialized, or Triton would compile a new variant whenever a seed is 1
# or divisible by 16, and that compilation could land inside a timed call.
@triton.jit(do_not_specialize=["seed"])
def _per_element_rng_dropout_kernel(
    x_ptr,
    out_ptr,
    numel,
    seed,
    p,
    scale,
    size_1,
    size_2,
    size_3,
    mask_stride_0,
    mask_stride_1,
    mask_stride_2,
    mask_stride_3,
    BLOCK: tl.constexpr,
    INDEX_64: tl.constexpr,
    COMPUTE_F64: tl.constexpr,
):
    """out = x * (rand(seed, mask_index) >= p) * scale over a contiguous x seen as 4 dim groups."""
    pid = tl.program_id(0)
    if INDEX_64:
        pid = pid.to(tl.int64)
    offsets = pid * BLOCK + tl.arange(0, BLOCK)
    in_bounds = offsets < numel
    # x's linear index -> (i0, i1, i2, i3) over the groups -> mask index (shared groups add 0)
    i3 = offsets % size_3
    rest = offsets // size_3
    i2 = rest % size_2
    rest = rest // size_2
    i1 = rest % size_1
    i0 = rest // size_1
    mask_index = i0 * mask_stride_0 + i1 * mask_stride_1 + i2 * mask_stride_2 + i3 * mask_stride_3
    keep = tl.rand(seed, mask_index) >= p  # one Philox call per element; P(keep) = 1 - p
    # I/O: read x + write out
    x = tl.load(x_ptr + offsets, mask=in_bounds)
    if COMPUTE_F64:
        y = tl.where(keep, x.to(tl.float64) * scale, 0.0)
    else:
        y = tl.where(keep, x.to(tl.float32) * scale, 0.0)
    tl.store(out_ptr + offsets, y.to(x.dtype), mask=in_bounds)


def dim_groups(shape, shared_dims) -> list[tuple[int, int]]:
    """(size, mask stride) of x's dims merged into alternating kept / shared groups, outer first.

    Size-1 dims are dropped; a shared group has mask stride 0. E.g. (B, T, D) sharing T:
    [(B, D), (T, 0), (D, 1)].
    """
    groups: list[list] = []  # [size, shared]
    for d, size in enumerate(shape):
        if size == 1:
            continue
        shared = d in shared_dims
        if groups and groups[-1][1] == shared:
            groups[-1][0] *= size
        else:
            groups.append([size, shared])
    strides, kept_below = [], 1
    for size, shared in reversed(groups):
        strides.append(0 if shared else kept_below)
        kept_below *= 1 if shared else size
    return [(size, stride) for (size, _), stride in zip(groups, reversed(strides), strict=True)]


def _launch(x: torch.Tensor, seed: int, p: float, groups: list[tuple[int, int]]) -> torch.Tensor:
    x = x.contiguous()
    out = torch.empty_like(x)
    numel = x.numel()
    if numel == 0:
        return out
    padded = [(1, 0)] * (_MAX_GROUPS - len(groups)) + groups
    sizes = [size for size, _ in padded]
    mask_strides = [stride for _, stride in padded]
    scale = 0.0 if p >= 1 else 1.0 / (1.0 - p)
    grid = (triton.cdiv(numel, _BLOCK),)
    _per_element_rng_dropout_kernel[grid](
        x, out, numel, seed, p, scale, *sizes[1:], *mask_strides,
        BLOCK=_BLOCK, INDEX_64=numel >= 2**31, COMPUTE_F64=x.dtype == torch.float64,
    )  # fmt: skip
    return out


class _PerElementRngDropout(torch.autograd.Function):
    """Saves the seed only; backward applies the same mask to the gradient."""

    @staticmethod
    def forward(ctx, x, seed, p, groups):
        ctx.seed, ctx.p, ctx.groups = seed, p, groups
        return _launch(x, seed, p, groups)

    @staticmethod
    def backward(ctx, grad_out):
        return _launch(grad_out, ctx.seed, ctx.p, ctx.groups), None, None, None


@register("per_element_rng", bytes_moved=streaming_bytes)
def build_per_element_rng(case: DropoutCase):
    if case.device.type == "cpu" and not _INTERPRETED:
        raise NotApplicable("a Triton kernel: CPU tensors need the interpreter (TRITON_INTERPRET=1)")
    groups = dim_groups(case.shape, case.shared_dims)
    if len(groups) > _MAX_GROUPS:
        raise NotApplicable(f"more than {_MAX_GROUPS} alternating kept/shared dim groups: {groups}")
    p = case.p

    def per_element_rng_dropout(x):
        seed = int(torch.randint(0, 2**31 - 1, (1,)))  # from torch's CPU generator: no device sync
        return _PerElementRngDropout.apply(x, seed, p, groups)

    return per_element_rng_dropout
