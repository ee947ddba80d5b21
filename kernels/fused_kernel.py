"""The Triton kernels of the fused op `h = residual + dropout(x); y = norm(h)`, forward and
backward, one row of the last dim D per step. Only `@triton.jit` code lives here;
`kernels/fused_launch.py` launches it.

The scale 1 / (1 - p) arrives as the float64's bits (`scale_bits`), or, SCALE_AS_FLOAT, as a float
(the launch Inductor generates takes no integer of 32 bits or more): the same float32 for 16- and
32-bit inputs (`triton_kernel.dropout_scale_of`).

The dropout is the standalone op's, bit for bit: the mask stream of `kernels/mask_stream.py`
(version 1), decided by `triton_kernel.kept` and keyed by `triton_kernel.philox_key` as the
standalone kernel is, and the same arithmetic (`x * (keep ? scale : 0)` in float32, float64 for float64,
rounded to x's dtype), after which `h = residual + that`, rounded to x's dtype as torch's add
rounds it. So `h` equals `residual + seeded_variational_dropout(x, p, dim, seed)` bit for bit.

Rows. x, residual, h and y are contiguous `(rows, D)`. The leading dims of x (all but the last)
are seen as `[O, S, K]` (`kernels/layout.py`'s view of them: S the shared leading dims, O and K
the kept ones before and after), so row `r = (o * S + s) * K + k` and mask element
`m = (o * K + k) * mask_row_len + j * mask_col_stride` for column j: `mask_row_len, mask_col_stride`
are `(D, 1)` when the last dim is kept, `(1, 0)` when it is shared.

The norm, over D, statistics in float32 (float64 for float64 inputs), `h` read as rounded:
    layer: xhat = (h - mean(h)) * rstd,   rstd = 1 / sqrt(mean((h - mean(h))**2) + eps)
    rms:   xhat = h * rstd,               rstd = 1 / sqrt(mean(h**2) + eps)
    y = xhat * weight + bias, rounded once to x's dtype.
"""

import triton
import triton.language as tl

from .triton_kernel import dropout_scale_of, kept, philox_key

NORM_NONE: tl.constexpr = tl.constexpr(0)
NORM_RMS: tl.constexpr = tl.constexpr(1)
NORM_LAYER: tl.constexpr = tl.constexpr(2)
DROP_NONE: tl.constexpr = tl.constexpr(0)  # eval mode or p == 0: x passes unchanged
DROP_MASK: tl.constexpr = tl.constexpr(1)  # 0 < p < 1: the mask stream
DROP_ALL: tl.constexpr = tl.constexpr(2)  # p == 1: zeros, as the standalone op gives (never inf * 0)


@triton.jit
def _multiplier(row, cols, k0, k1, threshold, scale, size_s, size_k, mask_row_len, mask_col_stride,
                BLOCK_D: tl.constexpr, LANES: tl.constexpr, ROUNDS: tl.constexpr,
                TILE: tl.constexpr = False):  # fmt: skip
    """keep ? scale : 0 for the row's columns, in the columns' tile shape.

    LANES == 8 (last dim kept, D % 8 == 0): the tile is [BLOCK_D // 8, 8] and each group of 8 is the
    eight decisions of one Philox call, made once. LANES == 1: one call per element, which picks its
    16-bit half. TILE: `row` is a tile of rows ([ROWS, 1, 1] with LANES == 8, else [ROWS, 1]) and
    `cols` has a leading axis of 1 (`_row_tile`); the result is [ROWS, ...]."""
    o = row // (size_s * size_k)
    k = row % size_k
    base = (o * size_k + k) * mask_row_len  # mask index of the row's column 0 (int64)
    if LANES == 8:
        group = tl.arange(0, BLOCK_D // 8)[:, None]  # [BLOCK_D // 8, 1]: one call per group, base % 8 == 0
        position = tl.arange(0, 8)[None, :]
        if TILE:
            group = tl.expand_dims(group, 0)
            position = tl.expand_dims(position, 0)
        call = base // 8 + group
    else:
        m = base + cols.to(tl.int64) * mask_col_stride
        call = m // 8
        position = m % 8
    return tl.where(kept(call, position, k0, k1, threshold, ROUNDS), scale, 0.0)


@triton.jit
def _rounded(value, dtype: tl.constexpr, BF16_ROUND_BY_HAND: tl.constexpr):
    """value (float32 or float64) rounded to dtype, to nearest even. Triton's interpreter truncates
    float32 -> bfloat16 where the GPU rounds: BF16_ROUND_BY_HAND rounds by hand (NaN passes through)."""
    # One return: Triton compiles the code after a constexpr-true `if` that returns too, and refuses
    # two returns of different types.
    if BF16_ROUND_BY_HAND and dtype == tl.bfloat16:
        bits = value.to(tl.uint32, bitcast=True)
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
        result = tl.where(value == value, rounded, value.to(tl.bfloat16))
    else:
        result = value.to(dtype)
    return result


@triton.jit
def _columns(BLOCK_D: tl.constexpr, LANES: tl.constexpr):
    """Column indices of one row: [BLOCK_D // 8, 8] when LANES == 8, else [BLOCK_D]."""
    if LANES == 8:  # one return, as in _rounded
        cols = tl.arange(0, BLOCK_D // 8)[:, None] * 8 + tl.arange(0, 8)[None, :]
    else:
        cols = tl.arange(0, BLOCK_D)
    return cols


@triton.jit
def _normalized(h, in_row, D, eps, NORM: tl.constexpr):
    """(xhat, rstd) of one row h (compute dtype; 0 past D). eps is cast to h's dtype: Triton's own
    launch passes a Python float as float32, Inductor's launch of the same kernel (torch.compile) as
    float64, which would turn the statistics float64 (in the backward, a compile error: the dweight
    partials carried by its loop change type)."""
    if NORM == NORM_LAYER:
        mean = tl.sum(h) / D
        centered = tl.where(in_row, h - mean, 0.0)
    else:
        centered = h
    rstd = 1.0 / tl.sqrt(tl.sum(centered * centered) / D + tl.cast(eps, h.dtype))
    return centered * rstd, rstd


@triton.jit
def _row_tile(tile, ROWS: tl.constexpr, BLOCK_D: tl.constexpr, LANES: tl.constexpr):
    """(rows, cols) of row tile `tile` (its ROWS rows), shaped to broadcast into the tile: [ROWS, 1, 1]
    and [1, BLOCK_D // 8, 8] when LANES == 8, else [ROWS, 1] and [1, BLOCK_D]."""
    rows = tile * ROWS + tl.arange(0, ROWS)
    if LANES == 8:  # one return, as in _rounded
        rows = rows[:, None, None]
    else:
        rows = rows[:, None]
    return rows, tl.expand_dims(_columns(BLOCK_D, LANES), 0)


@triton.jit
def _row_sums(x, LANES: tl.constexpr):
    """Each row's sum of a row tile, shaped to broadcast into it."""
    if LANES == 8:
        sums = tl.sum(tl.sum(x, axis=2, keep_dims=True), axis=1, keep_dims=True)
    else:
        sums = tl.sum(x, axis=1, keep_dims=True)
    return sums


@triton.jit
def _normalized_rows(h, in_tile, D, eps, NORM: tl.constexpr, LANES: tl.constexpr):
    """`_normalized` of each row of a row tile: (xhat, rstd), rstd shaped to broadcast (eps cast as there)."""
    if NORM == NORM_LAYER:
        mean = _row_sums(h, LANES) / D
        centered = tl.where(in_tile, h - mean, 0.0)
    else:
        centered = h
    rstd = 1.0 / tl.sqrt(_row_sums(centered * centered, LANES) / D + tl.cast(eps, h.dtype))
    return centered * rstd, rstd


@triton.jit(do_not_specialize=["seed_lo", "seed_hi", "threshold", "scale_bits", "eps"])
def dropout_add_norm_forward_kernel(
    x_ptr, residual_ptr, weight_ptr, bias_ptr, h_ptr, y_ptr, seed_ptr, offset_ptr,
    seed_lo, seed_hi, threshold, scale_bits, eps,
    D, size_s, size_k, mask_row_len, mask_col_stride,
    BLOCK_D: tl.constexpr, LANES: tl.constexpr, NORM: tl.constexpr, HAS_WEIGHT: tl.constexpr,
    HAS_BIAS: tl.constexpr, DROPOUT: tl.constexpr, SEED_MODE: tl.constexpr, COMPUTE_F64: tl.constexpr,
    ROUNDS: tl.constexpr, BF16_ROUND_BY_HAND: tl.constexpr, SCALE_AS_FLOAT: tl.constexpr = False,
):  # fmt: skip
    """One row per program: h = residual + dropout(x), y = norm(h).

    I/O per row: read x, residual (and weight, bias: D elements each, cached); write h, and y
    unless NORM_NONE. The mask never touches memory; the statistics stay in registers."""
    row = tl.program_id(0).to(tl.int64)
    cols = _columns(BLOCK_D, LANES)
    in_row = cols < D
    offsets = row * D + cols
    x = tl.load(x_ptr + offsets, mask=in_row, other=0.0)
    residual = tl.load(residual_ptr + offsets, mask=in_row, other=0.0)
    compute = tl.float64 if COMPUTE_F64 else tl.float32

    if DROPOUT == DROP_MASK:
        k0, k1 = philox_key(seed_ptr, offset_ptr, seed_lo, seed_hi, SEED_MODE)
        scale = dropout_scale_of(scale_bits, COMPUTE_F64, SCALE_AS_FLOAT)
        multiplier = _multiplier(row, cols, k0, k1, threshold, scale, size_s, size_k, mask_row_len, mask_col_stride,
                                 BLOCK_D, LANES, ROUNDS)  # fmt: skip
        # The standalone op's value, rounded to x's dtype, then torch's add (one rounding).
        dropped = _rounded(x.to(compute) * multiplier, x.dtype, BF16_ROUND_BY_HAND).to(compute)
    elif DROPOUT == DROP_ALL:
        dropped = tl.zeros(x.shape, compute)
    else:
        dropped = x.to(compute)
    h = _rounded(residual.to(compute) + dropped, x.dtype, BF16_ROUND_BY_HAND)
    tl.store(h_ptr + offsets, h, mask=in_row)

    if NORM != NORM_NONE:
        xhat, rstd = _normalized(h.to(compute), in_row, D, eps, NORM)
        y = xhat
        if HAS_WEIGHT:
            y = y * tl.load(weight_ptr + cols, mask=in_row, other=0.0).to(compute)
        if HAS_BIAS:
            y = y + tl.load(bias_ptr + cols, mask=in_row, other=0.0).to(compute)
        tl.store(y_ptr + offsets, _rounded(y, x.dtype, BF16_ROUND_BY_HAND), mask=in_row)


@triton.jit
def _tile_inputs(tile, grad_y_ptr, grad_h_ptr, h_ptr, rows, D, ROWS: tl.constexpr, BLOCK_D: tl.constexpr,
                 LANES: tl.constexpr, NORM: tl.constexpr, HAS_GRAD_Y: tl.constexpr,
                 HAS_GRAD_H: tl.constexpr):  # fmt: skip
    """(grad_h, h, grad_y) of row tile `tile` as stored (zeros for an input the backward does not
    read; every element masked past the last row, so a tile past the end moves no bytes)."""
    row, col = _row_tile(tile, ROWS, BLOCK_D, LANES)
    in_tile = (row < rows) & (col < D)
    offsets = row * D + col
    zeros = tl.zeros(in_tile.shape, h_ptr.dtype.element_ty)
    grad_h = zeros
    h = zeros
    grad_y = zeros
    if HAS_GRAD_H:
        grad_h = tl.load(grad_h_ptr + offsets, mask=in_tile, other=0.0)
    if NORM != NORM_NONE and HAS_GRAD_Y:
        h = tl.load(h_ptr + offsets, mask=in_tile, other=0.0)
        grad_y = tl.load(grad_y_ptr + offsets, mask=in_tile, other=0.0)
    return grad_h, h, grad_y


@triton.jit(do_not_specialize=["seed_lo", "seed_hi", "threshold", "scale_bits", "eps"])
def dropout_add_norm_backward_kernel(
    grad_y_ptr, grad_h_ptr, h_ptr, weight_ptr, dx_ptr, dresidual_ptr, dweight_ptr, dbias_ptr,
    seed_ptr, offset_ptr, seed_lo, seed_hi, threshold, scale_bits, eps,
    rows, D, size_s, size_k, mask_row_len, mask_col_stride,
    BLOCK_D: tl.constexpr, LANES: tl.constexpr, ROWS: tl.constexpr, PREFETCH: tl.constexpr, NORM: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
    HAS_GRAD_Y: tl.constexpr, HAS_GRAD_H: tl.constexpr, WANT_DWEIGHT: tl.constexpr, WANT_DBIAS: tl.constexpr,
    DROPOUT: tl.constexpr, SEED_MODE: tl.constexpr, COMPUTE_F64: tl.constexpr, ROUNDS: tl.constexpr,
    BF16_ROUND_BY_HAND: tl.constexpr, SCALE_AS_FLOAT: tl.constexpr = False, STAGES: tl.constexpr = 1,
):  # fmt: skip
    """Row tiles of ROWS rows, tiles pid, pid + programs, ...: the statistics recomputed from h
    (nothing else was saved), then, per row,

        g = grad_y * weight
        layer: dh = rstd * (g - mean(g) - xhat * mean(g * xhat))
        rms:   dh = rstd * (g - xhat * mean(g * xhat))
        dresidual = grad_h + dh          (float32, float64 for float64; rounded once)
        dx = dropout(dresidual)          (the standalone op applied to dresidual: same mask, same bits)
        dweight[pid] = sum over its rows of grad_y * xhat,  dbias[pid] = sum of grad_y  (partials)

    I/O per row: read grad_y, grad_h (each when present), h (when a norm is used); write dx,
    dresidual. Per program: read weight once, write one row of partial dweight and dbias. ROWS rows
    at a time put ROWS times the bytes in flight per step of a program's loop (small D); PREFETCH
    issues the next tile's loads before this tile's arithmetic, so their latency overlaps it (the
    next tile's inputs held in registers as stored, 16 bits an element for 16-bit inputs). STAGES > 1
    has the compiler pipeline the loop instead (`tl.range`'s num_stages: the loads of STAGES - 1 tiles
    ahead copied asynchronously into shared memory, not held in registers); use it without PREFETCH."""
    pid = tl.program_id(0).to(tl.int64)
    programs = tl.num_programs(0)
    cols = _columns(BLOCK_D, LANES)
    compute = tl.float64 if COMPUTE_F64 else tl.float32
    dtype = dx_ptr.dtype.element_ty
    if DROPOUT == DROP_MASK:
        k0, k1 = philox_key(seed_ptr, offset_ptr, seed_lo, seed_hi, SEED_MODE)
        scale = dropout_scale_of(scale_bits, COMPUTE_F64, SCALE_AS_FLOAT)
    if HAS_WEIGHT:
        weight = tl.expand_dims(tl.load(weight_ptr + cols, mask=cols < D, other=0.0).to(compute), 0)
    dweight = tl.zeros(cols.shape, compute)
    dbias = tl.zeros(cols.shape, compute)

    if PREFETCH:
        next_grad_h, next_h, next_grad_y = _tile_inputs(pid, grad_y_ptr, grad_h_ptr, h_ptr, rows, D, ROWS, BLOCK_D,
                                                        LANES, NORM, HAS_GRAD_Y, HAS_GRAD_H)  # fmt: skip
    for i in tl.range(0, tl.cdiv(tl.cdiv(rows, ROWS) - pid, programs), num_stages=STAGES):
        tile = pid + i * programs
        if PREFETCH:
            stored_grad_h, stored_h, stored_grad_y = next_grad_h, next_h, next_grad_y
            next_grad_h, next_h, next_grad_y = _tile_inputs(
                tile + programs, grad_y_ptr, grad_h_ptr, h_ptr, rows, D, ROWS, BLOCK_D, LANES, NORM, HAS_GRAD_Y,
                HAS_GRAD_H,
            )  # fmt: skip
        else:
            stored_grad_h, stored_h, stored_grad_y = _tile_inputs(
                tile, grad_y_ptr, grad_h_ptr, h_ptr, rows, D, ROWS, BLOCK_D, LANES, NORM, HAS_GRAD_Y, HAS_GRAD_H
            )  # fmt: skip
        row, col = _row_tile(tile, ROWS, BLOCK_D, LANES)
        in_tile = (row < rows) & (col < D)
        offsets = row * D + col
        dh = stored_grad_h.to(compute)
        if NORM != NORM_NONE and HAS_GRAD_Y:
            h = stored_h.to(compute)
            grad_y = stored_grad_y.to(compute)
            xhat, rstd = _normalized_rows(h, in_tile, D, eps, NORM, LANES)
            g = grad_y
            if HAS_WEIGHT:
                g = grad_y * weight
            dh_norm = g - xhat * (_row_sums(g * xhat, LANES) / D)
            if NORM == NORM_LAYER:
                dh_norm -= _row_sums(g, LANES) / D
            dh += tl.where(in_tile, dh_norm * rstd, 0.0)
            if WANT_DWEIGHT:
                dweight += tl.sum(grad_y * xhat, axis=0)
            if WANT_DBIAS:
                dbias += tl.sum(grad_y, axis=0)
        dresidual = _rounded(dh, dtype, BF16_ROUND_BY_HAND)
        tl.store(dresidual_ptr + offsets, dresidual, mask=in_tile)
        if DROPOUT == DROP_MASK:
            multiplier = _multiplier(row, col, k0, k1, threshold, scale, size_s, size_k, mask_row_len,
                                     mask_col_stride, BLOCK_D, LANES, ROUNDS, True)  # fmt: skip
            dx = _rounded(dresidual.to(compute) * multiplier, dtype, BF16_ROUND_BY_HAND)
        elif DROPOUT == DROP_ALL:
            dx = tl.zeros(in_tile.shape, dtype)
        else:
            dx = dresidual
        tl.store(dx_ptr + offsets, dx, mask=in_tile)

    in_row = cols < D
    if WANT_DWEIGHT:
        tl.store(dweight_ptr + pid * D + cols, dweight, mask=in_row)
    if WANT_DBIAS:
        tl.store(dbias_ptr + pid * D + cols, dbias, mask=in_row)


@triton.jit
def column_sums_kernel(partials_ptr, out_ptr, rows, D, BLOCK_ROWS: tl.constexpr, BLOCK_D: tl.constexpr,
                       BF16_ROUND_BY_HAND: tl.constexpr):  # fmt: skip
    """out = partials.sum(0) rounded once to out's dtype: the backward's (programs, D) partial sums of
    dweight or dbias reduced in one launch, where torch's sum and then a cast take two. A program sums
    BLOCK_D columns over every row, BLOCK_ROWS rows a step (all of them, for the backward's grid of
    2 programs per SM), in the partials' dtype.

    I/O: read the partials once; write D elements."""
    cols = tl.program_id(0) * BLOCK_D + tl.arange(0, BLOCK_D)
    in_cols = cols < D
    total = tl.zeros([BLOCK_D], partials_ptr.dtype.element_ty)
    for start in range(0, rows, BLOCK_ROWS):
        row = start + tl.arange(0, BLOCK_ROWS)
        mask = (row[:, None] < rows) & in_cols[None, :]
        total += tl.sum(tl.load(partials_ptr + row[:, None].to(tl.int64) * D + cols[None, :], mask=mask, other=0.0),
                        axis=0)  # fmt: skip
    tl.store(out_ptr + cols, _rounded(total, out_ptr.dtype.element_ty, BF16_ROUND_BY_HAND), mask=in_cols)
