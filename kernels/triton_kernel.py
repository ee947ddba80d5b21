"""The Triton kernel of the op: one pass over x, the mask computed in registers from the seed and
never stored. Only `@triton.jit` code lives here; `kernels/launch.py` plans and launches it.

The mask is the one `kernels/mask_stream.py` specifies (version 1): Philox4x32-10 keyed by the
64-bit seed, eight 16-bit decisions per call, element `m` of the compact mask shape kept iff its
half >= round(p * 2**16); seeds derived on the device follow the same file's `seed_from_generator`.
"""

import triton
import triton.language as tl

from .mask_stream import (
    GOLDEN_GAMMA,
    PHILOX_KEY_A,
    PHILOX_KEY_B,
    PHILOX_MUL_A,
    PHILOX_MUL_B,
    SPLITMIX_MUL_A,
    SPLITMIX_MUL_B,
)

# The spec's numbers as compile-time values of the kernel.
_MUL_A = tl.constexpr(PHILOX_MUL_A)
_MUL_B = tl.constexpr(PHILOX_MUL_B)
_KEY_A = tl.constexpr(PHILOX_KEY_A)
_KEY_B = tl.constexpr(PHILOX_KEY_B)
_GOLDEN_GAMMA_U64 = tl.constexpr(GOLDEN_GAMMA)
_SPLITMIX_MUL_A = tl.constexpr(SPLITMIX_MUL_A)
_SPLITMIX_MUL_B = tl.constexpr(SPLITMIX_MUL_B)


@triton.jit
def _philox4x32(counter, k0, k1, ROUNDS: tl.constexpr):
    """Philox4x32 of counters (counter, counter >> 32, 0, 0): four uint32 words."""
    c0 = (counter & 0xFFFFFFFF).to(tl.uint32)
    c1 = ((counter >> 32) & 0xFFFFFFFF).to(tl.uint32)
    c2 = tl.zeros_like(c0)
    c3 = tl.zeros_like(c0)
    mul_a = tl.full(c0.shape, _MUL_A, tl.uint32)
    mul_b = tl.full(c0.shape, _MUL_B, tl.uint32)
    for _ in tl.static_range(ROUNDS):
        next_c0 = tl.umulhi(mul_b, c2) ^ c1 ^ k0
        next_c2 = tl.umulhi(mul_a, c0) ^ c3 ^ k1
        c1 = mul_b * c2
        c3 = mul_a * c0
        c0 = next_c0
        c2 = next_c2
        k0 = k0 + _KEY_A
        k1 = k1 + _KEY_B
    return c0, c1, c2, c3


@triton.jit
def _derive_seed(base, offset):
    """splitmix64(base + golden gamma * (offset // 4 + 1)) in uint64: mask_stream.seed_from_generator."""
    z = base + _GOLDEN_GAMMA_U64 * (offset // 4 + 1)
    z = (z ^ (z >> 30)) * _SPLITMIX_MUL_A
    z = (z ^ (z >> 27)) * _SPLITMIX_MUL_B
    return z ^ (z >> 31)


@triton.jit
def dropout_scale_of(scale_bits, COMPUTE_F64: tl.constexpr, SCALE_AS_FLOAT: tl.constexpr):
    """1 / (1 - p) as the kernel multiplies by it: float64 for float64 inputs, else float32. From
    the float64's bits (an int64), or, SCALE_AS_FLOAT, from a float argument (float32, or float64
    where Inductor passes Python floats so), rounded to float32. One return (Triton compiles the
    code after a constexpr `if` too)."""
    if SCALE_AS_FLOAT:
        scale = tl.cast(scale_bits, tl.float32)
    else:
        scale = scale_bits.to(tl.float64, bitcast=True)
        if not COMPUTE_F64:
            scale = scale.to(tl.float32)
    return scale


@triton.jit
def kept(call, position, k0, k1, threshold, ROUNDS: tl.constexpr):
    """The mask stream's decision for the element at `position` (0-7) of Philox call `call`: its
    16-bit half of the call's four words, kept iff >= threshold. P(keep) = 1 - threshold / 2**16."""
    w0, w1, w2, w3 = _philox4x32(call, k0, k1, ROUNDS)
    word_index = position // 2
    word = tl.where(word_index == 0, w0, tl.where(word_index == 1, w1, tl.where(word_index == 2, w2, w3)))
    half = (word >> ((position % 2) * 16).to(tl.uint32)) & 0xFFFF
    return half.to(tl.int32) >= threshold


@triton.jit
def philox_key(seed_ptr, offset_ptr, seed_lo, seed_hi, SEED_MODE: tl.constexpr):
    """The Philox key (k0, k1): SEED_MODE 0, the seed's halves by value (seed_lo, seed_hi); 1, an
    int64 at seed_ptr; 2, derived as `draw_seed` derives it from the generator's seed at seed_ptr and
    Philox offset at offset_ptr plus seed_lo (the offset inside a CUDA graph)."""
    if SEED_MODE == 0:
        k0 = seed_lo.to(tl.uint32)
        k1 = seed_hi.to(tl.uint32)
    else:
        if SEED_MODE == 1:
            seed = tl.load(seed_ptr).to(tl.uint64, bitcast=True)
        else:
            base = tl.load(seed_ptr).to(tl.uint64, bitcast=True)
            offset = tl.load(offset_ptr).to(tl.uint64, bitcast=True) + seed_lo.to(tl.uint64)
            seed = _derive_seed(base, offset)
        k0 = (seed & 0xFFFFFFFF).to(tl.uint32)
        k1 = (seed >> 32).to(tl.uint32)
    return k0, k1


@triton.jit(do_not_specialize=["seed_lo", "seed_hi", "threshold", "scale_bits"])
def seeded_dropout_kernel(
    x_ptr,
    out_ptr,
    seed_ptr,
    offset_ptr,
    seed_lo,
    seed_hi,
    threshold,
    scale_bits,
    size_o,
    size_s,
    size_i,
    x_stride_o,
    x_stride_s,
    x_stride_i,
    out_stride_o,
    out_stride_s,
    out_stride_i,
    BLOCK_O: tl.constexpr,
    BLOCK_S: tl.constexpr,
    BLOCK_C: tl.constexpr,
    LANES: tl.constexpr,
    SEED_MODE: tl.constexpr,
    COMPUTE_F64: tl.constexpr,
    ROUNDS: tl.constexpr,
    BF16_ROUND_BY_HAND: tl.constexpr,
    WIDE_OFFSETS: tl.constexpr,
    SCALE_AS_FLOAT: tl.constexpr = False,
):
    """out[o, s, i] = x[o, s, i] * (keep[o * size_i + i] ? scale : 0), one tile per program.

    LANES == 8: the tile is [BLOCK_O, BLOCK_S, BLOCK_C, 8] and each group of 8 is exactly the eight
    mask elements of one Philox call (the caller guarantees the alignment: size_o == 1 or
    size_i % 8 == 0), so each call is made once. Used where few rows share a mask row (element-wise
    dropout, short shared axes), where the RNG is the cost.
    LANES == 1: the tile is [BLOCK_O, BLOCK_S, BLOCK_C] and each mask element makes its own call and
    picks its half: 1/BLOCK_S calls per element, cheap once BLOCK_S >= 8, and the plain 3-D layout
    keeps every row's loads coalesced (the 4-D layout measured 47-80% of copy there).
    Either way the mask tile is computed once and broadcast over the BLOCK_S rows.

    The seed: SEED_MODE 0, by value (seed_lo, seed_hi); 1, an int64 at seed_ptr; 2, derived as
    `draw_seed` derives it from the generator's seed at seed_ptr and Philox offset at offset_ptr
    plus seed_lo (the offset inside a CUDA graph). x is loaded before any seed load, so the seed's
    latency overlaps x's instead of adding to it.

    The scale: SCALE_AS_FLOAT False, `scale_bits` holds the float64 scale's bits (an int64); True,
    `scale_bits` is the scale as a float argument, rounded to float32 here (16- and 32-bit inputs
    only, which multiply in float32 either way: the same number). Inductor's launch takes the float
    (kernels/launch.py).

    BF16_ROUND_BY_HAND: in Triton's interpreter (CPU tensors) float32 -> bfloat16 truncates where
    the GPU rounds to nearest even; the launch sets it for CPU tensors, so both give the spec's bits.
    """
    block_i: tl.constexpr = BLOCK_C * LANES
    blocks_i = tl.cdiv(size_i, block_i)
    blocks_s = tl.cdiv(size_s, BLOCK_S)
    pid = tl.program_id(0).to(tl.int64)
    o0 = pid // (blocks_i * blocks_s) * BLOCK_O
    s0 = (pid // blocks_i) % blocks_s * BLOCK_S
    i0 = pid % blocks_i * block_i

    # Tile-local indices; offsets inside a tile are int32 unless the caller says they may overflow
    # (WIDE_OFFSETS), the tile's corner is a 64-bit pointer.
    index_type = tl.int64 if WIDE_OFFSETS else tl.int32
    if LANES == 8:  # 4-D tile [BLOCK_O, BLOCK_S, BLOCK_C, 8]
        do = tl.arange(0, BLOCK_O).to(index_type)[:, None, None, None]
        ds = tl.arange(0, BLOCK_S).to(index_type)[None, :, None, None]
        group = tl.arange(0, BLOCK_C)[None, None, :, None]
        lane = tl.arange(0, LANES)[None, None, None, :]
        di = (group * LANES + lane).to(index_type)
    else:  # 3-D tile [BLOCK_O, BLOCK_S, BLOCK_C]: the inner axis is plainly contiguous
        do = tl.arange(0, BLOCK_O).to(index_type)[:, None, None]
        ds = tl.arange(0, BLOCK_S).to(index_type)[None, :, None]
        di = tl.arange(0, BLOCK_C).to(index_type)[None, None, :]

    in_bounds = (do < size_o - o0) & (ds < size_s - s0) & (di < size_i - i0)
    x_tile = x_ptr + (o0 * x_stride_o + s0 * x_stride_s + i0 * x_stride_i)
    out_tile = out_ptr + (o0 * out_stride_o + s0 * out_stride_s + i0 * out_stride_i)
    # I/O: read x once, write out once; the mask never touches memory.
    x = tl.load(x_tile + (do * x_stride_o + ds * x_stride_s + di * x_stride_i), mask=in_bounds)

    k0, k1 = philox_key(seed_ptr, offset_ptr, seed_lo, seed_hi, SEED_MODE)

    # Mask tile [BLOCK_O, 1, BLOCK_C, LANES]: decision m uses half (m % 8) of Philox call m // 8.
    o = o0 + do.to(tl.int64)
    if LANES == 8:
        call = (o * size_i + i0) // 8 + group
        position = lane
    else:
        m = o * size_i + i0 + di.to(tl.int64)
        call = m // 8
        position = m % 8
    keep = kept(call, position, k0, k1, threshold, ROUNDS)

    scale = dropout_scale_of(scale_bits, COMPUTE_F64, SCALE_AS_FLOAT)
    multiplier = tl.where(keep, scale, 0.0)

    if COMPUTE_F64 or x.dtype == tl.float32:
        y = x * multiplier
    elif BF16_ROUND_BY_HAND and x.dtype == tl.bfloat16:
        # Triton's interpreter truncates float32 -> bfloat16 where the GPU rounds to nearest even:
        # round by hand there (ties to even on the 16 dropped bits; NaN passes through).
        y32 = x.to(tl.float32) * multiplier
        bits = y32.to(tl.uint32, bitcast=True)
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
        y = tl.where(y32 == y32, rounded, y32.to(tl.bfloat16))
    else:  # 16-bit: multiply in float32, round to nearest even
        y = (x.to(tl.float32) * multiplier).to(x.dtype)
    tl.store(out_tile + (do * out_stride_o + ds * out_stride_s + di * out_stride_i), y, mask=in_bounds)

