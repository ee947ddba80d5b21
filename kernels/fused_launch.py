"""Running the fused op `h = residual + dropout(x); y = norm(h)` on a device: the row plan, the
Triton launches (forward and backward), the CPU path in plain PyTorch, and the dispatch.

Layout: x and residual are read as contiguous `(rows, D)` tensors (`.contiguous()`: a copy only
for a tensor that is not contiguous already); h, y, dx and dresidual are new contiguous tensors.
When the shared leading dims are not one block of adjacent dims (e.g. dims (0, 2) of a 4-d x), the
kernels run on copies permuted so that those dims come first (the last dim stays last), which
gives the same mask (its index depends on the kept dims only), and the results are copied back.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import triton

from .fused_kernel import (
    DROP_ALL,
    DROP_MASK,
    DROP_NONE,
    column_sums_kernel,
    dropout_add_norm_backward_kernel,
    dropout_add_norm_forward_kernel,
)
from .launch import _current_cuda_device, _seed_arguments, dropout_any_device, scale_bits, sm_count
from .layout import plan_view
from .mask_stream import PHILOX_ROUNDS, dropout_scale, keep_threshold

NORMS = {None: 0, "rms": 1, "layer": 2}  # the kernels' NORM
MAX_D = 16384  # the Triton path holds one row in registers: BLOCK_D = next power of 2 of D


def dropout_mode(p: float) -> int:
    """The kernels' DROPOUT: none at p == 0 (or eval mode, which passes p = 0), all at p == 1."""
    return int(DROP_NONE.value if p == 0 else DROP_ALL.value if p >= 1 else DROP_MASK.value)


@dataclass(frozen=True)
class RowPlan:
    """How x's shape and shared dims map onto the kernels' rows (kernels/fused_kernel.py)."""

    rows: int
    size_s: int
    size_k: int
    mask_row_len: int
    mask_col_stride: int
    block_d: int
    lanes: int
    num_warps: int
    order: tuple[int, ...] | None  # a permutation to run on instead (shared leading dims first), or None


@functools.lru_cache(maxsize=4096)
def row_plan(shape: tuple[int, ...], shared_dims: tuple[int, ...]) -> RowPlan:
    d_model = shape[-1]
    leading = shape[:-1]
    shared_leading = [d for d in shared_dims if d < len(leading)]
    last_shared = len(leading) in shared_dims
    row_strides = [math.prod(leading[d + 1 :]) for d in range(len(leading))]
    view = plan_view(leading, shared_leading, (row_strides,))
    order = None
    if view is None:  # shared leading dims not adjacent: run on a copy with them first
        kept = [d for d in range(len(leading)) if d not in shared_leading]
        order = (*shared_leading, *kept, len(leading))
        size_s, size_k = math.prod(leading[d] for d in shared_leading), math.prod(leading[d] for d in kept)
    else:
        _, size_s, size_k = view.sizes
    block_d = triton.next_power_of_2(max(d_model, 1))
    lanes = 8 if not last_shared and d_model % 8 == 0 else 1
    mask_row_len, mask_col_stride = (1, 0) if last_shared else (d_model, 1)
    num_warps = min(max(block_d // 256, 1), 8)
    return RowPlan(math.prod(leading), size_s, size_k, mask_row_len, mask_col_stride, block_d, lanes, num_warps,
                   order)  # fmt: skip


# The backward's loop: row tiles of about BACKWARD_TILE_ELEMENTS elements (2 rows at D = 768, one
# from D = 2048), the next tile's loads issued before this tile's arithmetic. Measured on the H200
# ((32, 512, D), RMSNorm, GPU time in CUDA graphs, against the one-row loop without prefetch, in one
# run; docs/perf-notes.md, changes 20 and 23):
# - 16-bit, 8 warps: 0.47x the one-row loop's time at D = 768, 0.72x at 2048, 0.67x at 8192. Tiles
#   of 8192 elements in 4 warps spill (10x slower).
# - float32, a warp per 512 elements of the tile (4 at D = 768, 8 at 4096): 0.58x at D = 768, 0.73x
#   at 4096. A prefetched float32 row wider than 4096 spills (1.23-1.47x at D = 8192), so wider rows
#   take the one-row loop in 16 warps (0.92x).
# - 16-bit rows of 4096 (16 elements of each input a thread): the compiler gives the RMSNorm loop 165
#   registers a thread, so an SM holds one program of the grid's two. Capped at 128 registers
#   (Triton's `maxnreg`; 4 bytes spilled) an SM holds both: 0.88x the uncapped time (change 26). The
#   same cap at D = 8192 (32 elements a thread) spills 168 bytes and runs 3.8x slower; rows of at most
#   2048 hold 8 elements a thread and were not measured short of registers. So the cap is for 16
#   elements a thread only, and for RMSNorm only: LayerNorm's loop holds more and was not measured.
#   Inductor takes no `maxnreg` for a kernel it traces (`wrap_triton` passes num_warps and num_stages
#   to the launch, not maxnreg), so a traced launch runs uncapped.
# - 16-bit RMSNorm rows of 2048: the loop pipelined by the compiler (STAGES 4: three rows' loads in
#   flight in shared memory, not registers) in 4 warps, no prefetch of its own: 0.86x the prefetched
#   loop's time (change 27). At D = 768 every pipelined loop was slower (1.08x at best); other widths
#   and LayerNorm were not measured, so they keep the prefetched loop.
# float64 keeps the one-row loop in the row plan's warps: not measured.
BACKWARD_TILE_ELEMENTS = 2048
CAPPED_ELEMENTS_PER_THREAD = 16
CAPPED_REGISTERS = 128
PIPELINED_BLOCK_D = 2048
PIPELINE_STAGES = 4


@dataclass(frozen=True)
class BackwardLoop:
    """The backward kernel's ROWS, num_warps and PREFETCH, the registers a thread may hold
    (Triton's `maxnreg`; None: the compiler's choice), and STAGES (1: the loop as written)."""

    rows_per_tile: int
    num_warps: int
    prefetch: bool
    max_registers: int | None = None
    stages: int = 1


def backward_loop(plan: RowPlan, dtype: torch.dtype, norm: int) -> BackwardLoop:
    """The backward's loop for `plan`'s rows of `dtype` under `norm` (the comment above says why)."""
    rows = max(1, BACKWARD_TILE_ELEMENTS // plan.block_d)
    if dtype.itemsize == 2:
        if norm == NORMS["rms"] and plan.block_d == PIPELINED_BLOCK_D:
            return BackwardLoop(1, 4, False, stages=PIPELINE_STAGES)
        warps = min(max(rows * plan.block_d // 256, 1), 8)
        per_thread = rows * plan.block_d // (32 * warps)
        capped = norm == NORMS["rms"] and per_thread == CAPPED_ELEMENTS_PER_THREAD
        return BackwardLoop(rows, warps, True, CAPPED_REGISTERS if capped else None)
    if dtype == torch.float32:
        if plan.block_d > 4096:
            return BackwardLoop(1, 16, False)
        return BackwardLoop(rows, min(max(rows * plan.block_d // 512, 1), 8), True)
    return BackwardLoop(1, plan.num_warps, False)


def packed_dims(shared_dims: Sequence[int], ndim: int) -> tuple[int, ...]:
    """The shared dims after the permutation of `RowPlan.order` (shared leading dims first)."""
    leading = [d for d in shared_dims if d < ndim - 1]
    return (*range(len(leading)), *((ndim - 1,) if ndim - 1 in shared_dims else ()))


def unpacked(packed: torch.Tensor, order: Sequence[int], shape) -> torch.Tensor:
    """A contiguous tensor of `shape` holding `packed`, the result of a run on permuted inputs."""
    out = torch.empty(shape, dtype=packed.dtype, device=packed.device)
    out.permute(tuple(order)).copy_(packed)
    return out


def _check_width(d_model: int) -> None:
    if d_model > MAX_D:
        raise ValueError(f"seeded_dropout_add_norm's kernel takes a last dim of at most {MAX_D}, got {d_model}")


def _seed_launch_arguments(seed, x: torch.Tensor, mode: int):
    """(seed_ptr, offset_ptr, seed_lo, seed_hi, SEED_MODE), as the standalone kernel takes them."""
    if mode != DROP_MASK.value:
        return x, x, 0, 0, 0
    return _seed_arguments(seed, x)


def _scale_argument(p: float, traced: bool):
    """(scale argument, SCALE_AS_FLOAT): the float64's bits, or for a traced launch (whose integer
    arguments must fit in 32 bits) the float itself, which the kernel rounds to float32."""
    return (dropout_scale(p), True) if traced else (scale_bits(p), False)


def _kernel(kernel, traced: bool):
    """The kernel, or for a launch torch.compile traces, the kernel as `wrap_triton` hands it to Inductor."""
    return torch.library.wrap_triton(kernel) if traced else kernel


def forward_triton(x, residual, weight, bias, seed, p: float, shared_dims, norm: int, eps: float, *,
                   traced: bool = False):  # fmt: skip
    """(y, h) by the Triton kernel; y is an empty placeholder when norm is 0 (none). `traced`: the
    launch Inductor takes in (`fused_residual_norm.dropout_add_norm_kernel_op`): 16-bit x, a device
    seed tensor, no Python of this package per compiled call."""
    if not traced and x.is_cuda and x.device.index != _current_cuda_device():
        with torch.cuda.device(x.device):
            return forward_triton(x, residual, weight, bias, seed, p, shared_dims, norm, eps)
    _check_width(x.shape[-1])
    mode = dropout_mode(p)
    plan = row_plan(tuple(x.shape), tuple(shared_dims))
    if plan.order is not None and mode == DROP_MASK.value:
        y, h = forward_triton(x.permute(plan.order), residual.permute(plan.order), weight, bias, seed, p,
                              packed_dims(shared_dims, x.dim()), norm, eps, traced=traced)  # fmt: skip
        return (unpacked(y, plan.order, x.shape) if norm else y), unpacked(h, plan.order, x.shape)
    x, residual = x.contiguous(), residual.contiguous()
    h = torch.empty_like(x)
    y = torch.empty_like(x) if norm else x.new_empty(0)
    if x.numel() == 0:
        return y, h
    seed_ptr, offset_ptr, seed_lo, seed_hi, seed_mode = _seed_launch_arguments(seed, x, mode)
    scale, scale_as_float = _scale_argument(p, traced)
    # No fused multiply-add: h = residual + (x * multiplier rounded), two roundings as the standalone
    # op and torch's add make them; contracted, fp32 and fp64 h differ in the last bit. A traced
    # launch takes 16-bit x only, whose product is rounded to 16 bits before the add (nothing to
    # contract), and leaves the compile options to Inductor.
    options = {} if traced else {"enable_fp_fusion": False}
    # I/O: read x, residual, weight, bias; write h and y (h only without a norm).
    _kernel(dropout_add_norm_forward_kernel, traced)[(plan.rows,)](
        x, residual, weight if weight is not None else x, bias if bias is not None else x, h, y if norm else h,
        seed_ptr, offset_ptr, seed_lo, seed_hi, keep_threshold(p), scale, eps,
        x.shape[-1], plan.size_s, plan.size_k, plan.mask_row_len, plan.mask_col_stride,
        BLOCK_D=plan.block_d, LANES=plan.lanes, NORM=norm, HAS_WEIGHT=weight is not None,
        HAS_BIAS=bias is not None, DROPOUT=mode, SEED_MODE=seed_mode, COMPUTE_F64=x.dtype == torch.float64,
        ROUNDS=PHILOX_ROUNDS, BF16_ROUND_BY_HAND=not x.is_cuda, SCALE_AS_FLOAT=scale_as_float,
        num_warps=plan.num_warps, **options,
    )  # fmt: skip
    return y, h


def backward_triton(grad_y, grad_h, h, weight, seed, p: float, shared_dims, norm: int, eps: float,
                    want_dweight: bool, want_dbias: bool, *, programs: int | None = None,
                    num_warps: int | None = None, rows_per_tile: int | None = None, prefetch: bool | None = None,
                    stages: int | None = None, traced: bool = False):  # fmt: skip
    """(dx, dresidual, dweight, dbias) by the Triton kernel, for a norm (norm != 0); grad_y and grad_h
    may be None (an output not used); dweight / dbias are None unless wanted. `programs`, `num_warps`,
    `rows_per_tile` (a power of 2: the rows each step of a program's loop takes at once) and
    `prefetch` (the next tile's loads issued before this tile's arithmetic), `stages` (the loop
    pipelined by the compiler, that many tiles in flight; 1: not): the launch's grid, warps,
    row tile and loop (default: `backward_loop`'s, with 2 programs per SM), for probes that compare them;
    `backward_loop`'s register cap applies to its own tile, warps and loop only. `traced`: the launch
    Inductor takes in, as `forward_triton`'s."""
    if not traced and h.is_cuda and h.device.index != _current_cuda_device():
        with torch.cuda.device(h.device):
            return backward_triton(grad_y, grad_h, h, weight, seed, p, shared_dims, norm, eps, want_dweight,
                                   want_dbias, programs=programs, num_warps=num_warps,
                                   rows_per_tile=rows_per_tile, prefetch=prefetch, stages=stages)  # fmt: skip
    mode = dropout_mode(p)
    plan = row_plan(tuple(h.shape), tuple(shared_dims))
    if plan.order is not None and mode == DROP_MASK.value:
        order = plan.order
        dx, dresidual, dweight, dbias = backward_triton(
            None if grad_y is None else grad_y.permute(order), None if grad_h is None else grad_h.permute(order),
            h.permute(order), weight, seed, p, packed_dims(shared_dims, h.dim()), norm, eps, want_dweight,
            want_dbias, programs=programs, num_warps=num_warps, rows_per_tile=rows_per_tile, prefetch=prefetch,
            stages=stages, traced=traced,
        )  # fmt: skip
        return unpacked(dx, order, h.shape), unpacked(dresidual, order, h.shape), dweight, dbias
    h = h.contiguous()
    grad_y = None if grad_y is None else grad_y.contiguous()
    grad_h = None if grad_h is None else grad_h.contiguous()
    d_model = h.shape[-1]
    compute_dtype = torch.float64 if h.dtype == torch.float64 else torch.float32
    loop = backward_loop(plan, h.dtype, norm)
    rows_per_tile = loop.rows_per_tile if rows_per_tile is None else rows_per_tile
    prefetch = loop.prefetch if prefetch is None else prefetch
    stages = loop.stages if stages is None else stages
    num_warps = num_warps or loop.num_warps
    # The register cap was measured for the loop's own tile, warps and prefetch; a probe's others run uncapped.
    own_loop = (rows_per_tile, num_warps, prefetch, stages) == (loop.rows_per_tile, loop.num_warps, loop.prefetch,
                                                                loop.stages)  # fmt: skip
    max_registers = loop.max_registers if own_loop and not traced else None
    if rows_per_tile < 1 or rows_per_tile & (rows_per_tile - 1):
        raise ValueError(f"rows_per_tile must be a power of 2, got {rows_per_tile}")
    programs = max(1, min(triton.cdiv(plan.rows, rows_per_tile), programs or 2 * sm_count(h.device)))
    want_dweight = want_dweight and weight is not None
    dx, dresidual = torch.empty_like(h), torch.empty_like(h)
    # Every program of the kernel writes its whole row of partial sums (zeros when it had no rows),
    # so the partials need no zero fill of their own, except where no kernel runs (no elements).
    partials = h.new_empty if h.numel() > 0 else h.new_zeros
    dweight = partials((programs, d_model), dtype=compute_dtype) if want_dweight else None
    dbias = partials((programs, d_model), dtype=compute_dtype) if want_dbias else None
    if h.numel() > 0:
        seed_ptr, offset_ptr, seed_lo, seed_hi, seed_mode = _seed_launch_arguments(seed, h, mode)
        scale, scale_as_float = _scale_argument(p, traced)
        # I/O: read grad_y, grad_h, h, weight; write dx, dresidual, and (programs, D) partial sums.
        _kernel(dropout_add_norm_backward_kernel, traced)[(programs,)](
            grad_y if grad_y is not None else h, grad_h if grad_h is not None else h, h,
            weight if weight is not None else h, dx, dresidual, dweight if want_dweight else h,
            dbias if want_dbias else h, seed_ptr, offset_ptr, seed_lo, seed_hi, keep_threshold(p),
            scale, eps, plan.rows, d_model, plan.size_s, plan.size_k, plan.mask_row_len,
            plan.mask_col_stride, BLOCK_D=plan.block_d, LANES=plan.lanes, ROWS=rows_per_tile, PREFETCH=prefetch,
            NORM=norm,
            HAS_WEIGHT=weight is not None, HAS_GRAD_Y=grad_y is not None, HAS_GRAD_H=grad_h is not None,
            WANT_DWEIGHT=want_dweight, WANT_DBIAS=want_dbias, DROPOUT=mode, SEED_MODE=seed_mode,
            COMPUTE_F64=h.dtype == torch.float64, ROUNDS=PHILOX_ROUNDS, BF16_ROUND_BY_HAND=not h.is_cuda,
            SCALE_AS_FLOAT=scale_as_float, STAGES=stages, num_warps=num_warps,
            **({} if max_registers is None else {"maxnreg": max_registers}),
        )  # fmt: skip
    return (dx, dresidual, None if dweight is None else summed_partials(dweight, weight.dtype, traced),
            None if dbias is None else summed_partials(dbias, h.dtype, traced))  # fmt: skip


# The partial sums' reduction: the backward's grid (2 programs per SM: 264 rows on the H200) in one
# step of COLUMN_SUM_ELEMENTS elements a program, all rows of BLOCK_D columns (16 at 264 rows).
COLUMN_SUM_ELEMENTS = 8192
COLUMN_SUM_MAX_ROWS = 1024


def summed_partials(partials: torch.Tensor, dtype: torch.dtype, traced: bool = False) -> torch.Tensor:
    """partials.sum(0), rounded once to `dtype`, by one launch of `column_sums_kernel` (torch's sum
    and a cast are two kernels). A launch torch.compile traces keeps torch's ops, which Inductor
    fuses into one kernel of its own (a user kernel's launch from Inductor costs more host time)."""
    if traced or partials.numel() == 0:
        return partials.sum(0).to(dtype)
    rows, d_model = partials.shape
    block_rows = min(triton.next_power_of_2(rows), COLUMN_SUM_MAX_ROWS)
    block_d = max(COLUMN_SUM_ELEMENTS // block_rows, 8)
    out = partials.new_empty(d_model, dtype=dtype)
    column_sums_kernel[(triton.cdiv(d_model, block_d),)](
        partials, out, rows, d_model, BLOCK_ROWS=block_rows, BLOCK_D=block_d,
        BF16_ROUND_BY_HAND=not partials.is_cuda, num_warps=8,
    )  # fmt: skip
    return out


# ---- the CPU path: the standalone op's CPU path, torch's add and torch's norms ----------------------


def norm_reference(h: torch.Tensor, weight, bias, norm: int, eps: float) -> torch.Tensor:
    """norm(h) over the last dim by torch's own functions, in float32 (float64 for float64 inputs),
    rounded once to h's dtype, as the kernel computes it."""
    compute_dtype = torch.float64 if h.dtype == torch.float64 else torch.float32
    h = h.to(compute_dtype)
    weight = None if weight is None else weight.to(compute_dtype)
    bias = None if bias is None else bias.to(compute_dtype)
    if norm == NORMS["layer"]:
        return F.layer_norm(h, h.shape[-1:], weight, bias, eps)
    y = F.rms_norm(h, h.shape[-1:], weight, eps)
    return y if bias is None else y + bias


def forward_reference(x, residual, weight, bias, seed: int, p: float, shared_dims, norm: int, eps: float):
    """(y, h) in plain PyTorch (the CPU path): h = residual + the standalone op's CPU path."""
    dropped = x if p == 0 else dropout_any_device(x, seed, p, shared_dims)
    h = (residual + dropped).contiguous()
    y = norm_reference(h, weight, bias, norm, eps).to(h.dtype) if norm else h.new_empty(0)
    return y, h


def backward_reference(grad_y, grad_h, h, weight, seed: int, p: float, shared_dims, norm: int, eps: float,
                       want_dweight: bool, want_dbias: bool):  # fmt: skip
    """backward_triton in plain PyTorch, the same formulas (kernels/fused_kernel.py), in float32
    (float64 for float64); then dx = the standalone op applied to dresidual. (Explicit formulas, not
    torch's autograd: a custom op's implementation runs below autograd.)"""
    compute_dtype = torch.float64 if h.dtype == torch.float64 else torch.float32
    d_model = h.shape[-1]
    dh = torch.zeros(h.shape, dtype=compute_dtype) if grad_h is None else grad_h.to(compute_dtype)
    dweight = torch.zeros_like(weight) if want_dweight and weight is not None else None
    dbias = torch.zeros(d_model, dtype=h.dtype) if want_dbias else None
    if grad_y is not None:
        h_c, grad_y = h.to(compute_dtype), grad_y.to(compute_dtype)
        centered = h_c - h_c.mean(-1, keepdim=True) if norm == NORMS["layer"] else h_c
        rstd = torch.rsqrt(centered.square().mean(-1, keepdim=True) + eps)
        xhat = centered * rstd
        g = grad_y if weight is None else grad_y * weight.to(compute_dtype)
        dh_norm = g - xhat * (g * xhat).mean(-1, keepdim=True)
        if norm == NORMS["layer"]:
            dh_norm = dh_norm - g.mean(-1, keepdim=True)
        dh = dh + dh_norm * rstd
        if dweight is not None:
            dweight = (grad_y * xhat).reshape(-1, d_model).sum(0).to(weight.dtype)
        if dbias is not None:
            dbias = grad_y.reshape(-1, d_model).sum(0).to(h.dtype)
    dresidual = dh.to(h.dtype, copy=True, memory_format=torch.contiguous_format)  # never grad_h itself
    dx = dresidual.clone() if p == 0 else dropout_any_device(dresidual, seed, p, shared_dims)
    return dx, dresidual, dweight, dbias


# ---- dispatch ------------------------------------------------------------------------------------


def forward_any_device(x, residual, weight, bias, seed, p: float, shared_dims, norm: int, eps: float):
    """(y, h) with a resolved seed: the kernel on a GPU, the CPU path on CPU, shapes on meta."""
    if x.device.type == "meta":
        return (torch.empty_like(x, memory_format=torch.contiguous_format) if norm else x.new_empty(0),
                torch.empty_like(x, memory_format=torch.contiguous_format))  # fmt: skip
    if x.device.type == "cpu":
        return forward_reference(x, residual, weight, bias, int(seed), p, shared_dims, norm, eps)
    return forward_triton(x, residual, weight, bias, seed, p, shared_dims, norm, eps)


def backward_any_device(grad_y, grad_h, h, weight, seed, p: float, shared_dims, norm: int, eps: float,
                        want_dweight: bool, want_dbias: bool):  # fmt: skip
    """(dx, dresidual, dweight, dbias) for a norm (norm != 0), on h's device."""
    if h.device.type == "meta":
        dweight = torch.empty_like(weight) if want_dweight and weight is not None else None
        dbias = h.new_empty(h.shape[-1:]) if want_dbias else None
        return torch.empty_like(h), torch.empty_like(h), dweight, dbias
    if h.device.type == "cpu":
        return backward_reference(grad_y, grad_h, h, weight, int(seed), p, shared_dims, norm, eps, want_dweight,
                                  want_dbias)  # fmt: skip
    return backward_triton(grad_y, grad_h, h, weight, seed, p, shared_dims, norm, eps, want_dweight, want_dbias)
