"""A prototype for the fused op's backward (RMSNorm), read by `scripts/fused_bwd_probe.py`: each row in
chunks, so a program holds a chunk of each input in registers instead of the whole row.

Why: at D = 4096 the product's backward (kernels/fused_kernel.py) holds the whole row of three inputs
and the next row's loads in registers, and runs at 74% of copy where its forward runs at copy speed
(docs/perf-notes.md, changes 23 and 25); if its registers let an SM hold only one program, a kernel
that needs fewer registers per program may keep more bytes in flight. This is the "row read in
chunks" of docs/fused-op.md, measured before it is built into the product.

Per row, two passes over its chunks of CHUNK columns:
1. read h and grad_y: sum(h^2) and sum(grad_y * weight * h);
   rstd = 1 / sqrt(sum(h^2) / D + eps),  mean(g * xhat) = rstd * sum(g * h) / D;
2. read h, grad_y again (from L2 or L1: a chunk was read a moment ago) and grad_h:
   dresidual = grad_h + rstd * (g - xhat * mean(g * xhat)),  dx = dropout(dresidual),
   and add grad_y * xhat to the program's row of dweight partials in memory (zeroed by the launch).
Rows go to programs pid, pid + programs, ... as in the product's kernel. The same arithmetic as the
product's backward but for the order of the row sums (so the gradients agree to rounding, not bits);
dx is the standalone op of dresidual bit for bit (the same mask stream, the same multiply).

Limits of the prototype: RMSNorm with a weight, both gradients given, dweight wanted, no bias,
0 < p < 1, the last dim kept and D % 8 == 0 (one Philox call decides eight elements), contiguous
inputs whose shared dims are adjacent leading dims (`row_plan` needs no permutation), a seed given as
an int.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.fused_kernel import _rounded
from kernels.fused_launch import row_plan
from kernels.launch import _seed_arguments, scale_bits
from kernels.mask_stream import PHILOX_ROUNDS, keep_threshold
from kernels.triton_kernel import dropout_scale_of, kept, philox_key


@triton.jit
def _chunk(h_ptr, grad_y_ptr, weight_ptr, start, cols, D):
    """(cols, in_row, h, grad_y, weight) of one chunk of the row at `start`, in float32 (0 past D):
    what both passes over a row read."""
    in_row = cols < D
    h = tl.load(h_ptr + start + cols, mask=in_row, other=0.0).to(tl.float32)
    grad_y = tl.load(grad_y_ptr + start + cols, mask=in_row, other=0.0).to(tl.float32)
    weight = tl.load(weight_ptr + cols, mask=in_row, other=0.0).to(tl.float32)
    return cols, in_row, h, grad_y, weight


@triton.jit(do_not_specialize=["seed_lo", "seed_hi", "threshold", "scale_bits", "eps"])
def chunked_rms_backward_kernel(
    grad_y_ptr, grad_h_ptr, h_ptr, weight_ptr, dx_ptr, dresidual_ptr, dweight_ptr,
    seed_ptr, offset_ptr, seed_lo, seed_hi, threshold, scale_bits, eps, rows, D, size_s, size_k,
    BLOCK_D: tl.constexpr, CHUNK: tl.constexpr, SEED_MODE: tl.constexpr, ROUNDS: tl.constexpr,
    BF16_ROUND_BY_HAND: tl.constexpr,
):  # fmt: skip
    pid = tl.program_id(0).to(tl.int64)
    programs = tl.num_programs(0)
    k0, k1 = philox_key(seed_ptr, offset_ptr, seed_lo, seed_hi, SEED_MODE)
    scale = dropout_scale_of(scale_bits, False, False)
    group = tl.arange(0, CHUNK // 8)[:, None]  # [CHUNK // 8, 1]: one Philox call a group of 8 columns
    position = tl.arange(0, 8)[None, :]
    chunk_cols = group * 8 + position  # [CHUNK // 8, 8]
    dtype = dx_ptr.dtype.element_ty
    for i in range(0, tl.cdiv(rows - pid, programs)):
        row = pid + i * programs  # int64, as pid: the mask's Philox counters are 64-bit
        start = row * D
        sum_h2 = tl.zeros((), tl.float32)
        sum_gh = tl.zeros((), tl.float32)
        for first in range(0, BLOCK_D, CHUNK):
            cols, in_row, h, grad_y, weight = _chunk(h_ptr, grad_y_ptr, weight_ptr, start, first + chunk_cols, D)
            sum_h2 += tl.sum(h * h)
            sum_gh += tl.sum(grad_y * weight * h)
        rstd = 1.0 / tl.sqrt(sum_h2 / D + tl.cast(eps, tl.float32))
        mean_gx = rstd * sum_gh / D
        o = row // (size_s * size_k)
        k = row % size_k
        mask_base = (o * size_k + k) * D  # mask index of the row's column 0
        for first in range(0, BLOCK_D, CHUNK):
            cols, in_row, h, grad_y, weight = _chunk(h_ptr, grad_y_ptr, weight_ptr, start, first + chunk_cols, D)
            grad_h = tl.load(grad_h_ptr + start + cols, mask=in_row, other=0.0).to(tl.float32)
            xhat = h * rstd
            dh = grad_h + tl.where(in_row, rstd * (grad_y * weight - xhat * mean_gx), 0.0)
            dresidual = _rounded(dh, dtype, BF16_ROUND_BY_HAND)
            tl.store(dresidual_ptr + start + cols, dresidual, mask=in_row)
            call = (mask_base + first) // 8 + group
            multiplier = tl.where(kept(call, position, k0, k1, threshold, ROUNDS), scale, 0.0)
            dx = _rounded(dresidual.to(tl.float32) * multiplier, dtype, BF16_ROUND_BY_HAND)
            tl.store(dx_ptr + start + cols, dx, mask=in_row)
            partial = dweight_ptr + pid * D + cols
            tl.store(partial, tl.load(partial, mask=in_row, other=0.0) + grad_y * xhat, mask=in_row)


def chunked_rms_backward(grad_y, grad_h, h, weight, seed: int, p: float, shared_dims, eps: float, *, chunk: int,
                         programs: int, num_warps: int):  # fmt: skip
    """(dx, dresidual, dweight) of the fused op with RMSNorm, by the chunked prototype (see the module)."""
    d_model = h.shape[-1]
    plan = row_plan(tuple(h.shape), tuple(shared_dims))
    if plan.order is not None or plan.lanes != 8 or plan.mask_row_len != d_model or not 0 < p < 1:
        raise ValueError("the prototype takes adjacent shared leading dims, D % 8 == 0 and 0 < p < 1")
    if chunk % 8 or chunk & (chunk - 1) or chunk > plan.block_d:
        raise ValueError(f"chunk must be a power of 2, at least 8 and at most {plan.block_d}, got {chunk}")
    grad_y, grad_h, h = grad_y.contiguous(), grad_h.contiguous(), h.contiguous()
    dx, dresidual = torch.empty_like(h), torch.empty_like(h)
    programs = max(1, min(plan.rows, programs))
    partials = torch.zeros((programs, d_model), dtype=torch.float32, device=h.device)
    seed_ptr, offset_ptr, seed_lo, seed_hi, seed_mode = _seed_arguments(seed, h)
    chunked_rms_backward_kernel[(programs,)](
        grad_y, grad_h, h, weight, dx, dresidual, partials, seed_ptr, offset_ptr, seed_lo, seed_hi,
        keep_threshold(p), scale_bits(p), eps, plan.rows, d_model, plan.size_s, plan.size_k,
        BLOCK_D=plan.block_d, CHUNK=chunk, SEED_MODE=seed_mode, ROUNDS=PHILOX_ROUNDS,
        BF16_ROUND_BY_HAND=not h.is_cuda, num_warps=num_warps,
    )  # fmt: skip
    return dx, dresidual, partials.sum(0).to(weight.dtype)
