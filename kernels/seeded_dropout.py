"""Seeded variational dropout: one mask shared along `dim`, regenerated from the seed in backward.

Top to bottom: the Triton kernel, its launch (tile choice, layout, seed arguments), the CPU path,
the autograd glue, the `torch.library` op for `torch.compile`, seeds (and the seed-draw op of
compiled code), the checks of p and dim, and the public function. Eager CUDA
calls whose layout this module has launched once run in C++ (`kernels/fast_path.py`): the launch
made here is handed over, and the C++ side repeats it with the same kernel and arguments.

The mask is the one `kernels/mask_stream.py` specifies (version 1): Philox4x32-10 keyed by the
64-bit seed, eight 16-bit decisions per call, element `m` of the compact mask shape kept iff its
half >= round(p * 2**16). CUDA tensors run the kernel; CPU tensors run the same stream in plain
PyTorch. Autograd keeps nothing but the seed (a Python int, or an 8-byte tensor when the seed
lives on the device, e.g. under CUDA-graph capture or `torch.compile`).
"""

from __future__ import annotations

import itertools
import math
import numbers
import operator
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from kernels import fast_path
from kernels.layout import View3, plan_view
from kernels.mask_stream import (
    PHILOX_KEY_A,
    PHILOX_KEY_B,
    PHILOX_MUL_A,
    PHILOX_MUL_B,
    PHILOX_ROUNDS,
    apply_mask,
    dropout_scale,
    keep_mask,
    keep_threshold,
    split_seed,
)

SUPPORTED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_SEED_BOUND = 2**63

# Philox constants as compile-time values for the kernel (the spec's numbers, mask_stream.py).
_MUL_A = tl.constexpr(PHILOX_MUL_A)
_MUL_B = tl.constexpr(PHILOX_MUL_B)
_KEY_A = tl.constexpr(PHILOX_KEY_A)
_KEY_B = tl.constexpr(PHILOX_KEY_B)
# splitmix64's constants (draw_seed), for seeds derived on the device under CUDA-graph capture.
_GOLDEN_GAMMA_U64 = tl.constexpr(0x9E3779B97F4A7C15)
_SPLITMIX_MUL_A = tl.constexpr(0xBF58476D1CE4E5B9)
_SPLITMIX_MUL_B = tl.constexpr(0x94D049BB133111EB)


# ---------------------------------------------------------------------------------------------
# Triton kernel
# ---------------------------------------------------------------------------------------------


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
    """splitmix64(base + golden gamma * (offset // 4 + 1)) in uint64: `draw_seed`'s formula."""
    z = base + _GOLDEN_GAMMA_U64 * (offset // 4 + 1)
    z = (z ^ (z >> 30)) * _SPLITMIX_MUL_A
    z = (z ^ (z >> 27)) * _SPLITMIX_MUL_B
    return z ^ (z >> 31)


@triton.jit(do_not_specialize=["seed_lo", "seed_hi", "threshold", "scale_bits"])
def _locked_dropout_kernel(
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

    # Mask tile [BLOCK_O, 1, BLOCK_C, LANES]: decision m uses half (m % 8) of Philox call m // 8.
    o = o0 + do.to(tl.int64)
    if LANES == 8:
        call = (o * size_i + i0) // 8 + group
        position = lane
    else:
        m = o * size_i + i0 + di.to(tl.int64)
        call = m // 8
        position = m % 8
    w0, w1, w2, w3 = _philox4x32(call, k0, k1, ROUNDS)
    word_index = position // 2
    word = tl.where(word_index == 0, w0, tl.where(word_index == 1, w1, tl.where(word_index == 2, w2, w3)))
    half = (word >> ((position % 2) * 16).to(tl.uint32)) & 0xFFFF
    keep = half.to(tl.int32) >= threshold  # P(keep) = 1 - threshold / 2**16

    scale = scale_bits.to(tl.float64, bitcast=True)
    if not COMPUTE_F64:
        scale = scale.to(tl.float32)
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


# ---------------------------------------------------------------------------------------------
# Launch
# ---------------------------------------------------------------------------------------------

# Bytes of input one program handles: enough in flight per SM without spilling registers.
_TILE_BYTES = 16384
# Small tensors: tiles shrink (down to _MIN_TILE_BYTES) until the grid has this many programs per
# SM, so a tensor of a few hundred KB is read by many SMs at once instead of a handful (change 07
# in docs/perf-notes.md). 0 turns the rule off.
_PROGRAMS_PER_SM = 2
_MIN_TILE_BYTES = 2048
# Below this many programs per SM (at _TILE_BYTES) a grid is latency-bound: see _tile. 0 turns it off.
_SMALL_GRID_PROGRAMS_PER_SM = 16
_SMALL_GRID_TILE = 1024  # elements of a grouped-RNG tile there: 8 per thread, 4 warps
_SM_COUNTS: dict[int, int] = {}
# Under TRITON_INTERPRET=1 (CPU tests) the kernel body runs in numpy; see BF16_ROUND_BY_HAND.
_INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"


def _inner_block(size_i: int, cap: int) -> int:
    """The inner tile width: the largest power of two <= cap dividing size_i (no idle lanes), if
    one of at least 64 exists; else the power of two covering size_i, capped."""
    block = min(triton.next_power_of_2(size_i), cap)
    while block >= 64:
        if size_i % block == 0:
            return block
        block //= 2
    return min(triton.next_power_of_2(size_i), cap)


def _sm_count(device: torch.device) -> int:
    """Streaming multiprocessors of a CUDA device (cached); 1 elsewhere (the interpreter)."""
    if device.type != "cuda":
        return 1
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in _SM_COUNTS:
        _SM_COUNTS[index] = torch.cuda.get_device_properties(index).multi_processor_count
    return _SM_COUNTS[index]


def _tile_elements(numel: int, itemsize: int, sm_count: int) -> int:
    """Elements per program: _TILE_BYTES worth, fewer for tensors too small to fill the GPU."""
    tile_elems = _TILE_BYTES // itemsize
    wanted_programs = _PROGRAMS_PER_SM * sm_count
    if wanted_programs > 1 and numel < tile_elems * wanted_programs:
        tile_elems = max(_MIN_TILE_BYTES // itemsize, triton.next_power_of_2(triton.cdiv(numel, wanted_programs)))
    return tile_elems


def _blocks(view: View3, tile_elems: int) -> tuple[int, int, int, int]:
    """(BLOCK_O, BLOCK_S, block_i, LANES) of a tile of about `tile_elems` elements."""
    size_o, size_s, size_i = view.sizes
    block_i = _inner_block(size_i, tile_elems if size_s == 1 else min(1024, tile_elems))
    block_s = max(1, min(triton.next_power_of_2(size_s), tile_elems // block_i))
    aligned = size_i >= 8 and block_i >= 8 and (size_o == 1 or size_i % 8 == 0)
    lanes = 8 if aligned and block_s < 8 else 1  # grouped RNG only where the mask row is reused < 8 times
    block_o = max(1, min(triton.next_power_of_2(size_o), tile_elems // (block_i * block_s)))
    return block_o, block_s, block_i, lanes


def _tile(view: View3, itemsize: int, sm_count: int = 1) -> tuple[int, int, int, int, int]:
    """(BLOCK_O, BLOCK_S, BLOCK_C, LANES, num_warps) for a view: a cheap rule, no autotuning.

    The inner axis gets up to 1024 elements (the whole tile when nothing is shared); the shared axis
    fills the tile (the mask row is reused along it); leftover room goes to the outer axis. The
    grouped-RNG layout (LANES = 8) is used only where it is aligned and a mask row serves fewer than
    8 rows of the tile; elsewhere the plain 3-D layout (docs/perf-notes.md, change 04).

    Grids of fewer than _SMALL_GRID_PROGRAMS_PER_SM programs per SM (tensors up to a few MB) are
    latency-bound, not bandwidth-bound (change 08): grouped-RNG tiles shrink to _SMALL_GRID_TILE
    elements, one Philox call per thread; plain tiles keep their size with fewer warps, so fewer
    threads compute the same mask row again.
    """
    size_o, size_s, size_i = view.sizes
    numel = size_o * size_s * size_i
    tile_elems = _tile_elements(numel, itemsize, sm_count)
    block_o, block_s, block_i, lanes = _blocks(view, tile_elems)
    small_grid = numel < _TILE_BYTES // itemsize * _SMALL_GRID_PROGRAMS_PER_SM * sm_count
    if small_grid and lanes == 8 and tile_elems > _SMALL_GRID_TILE:
        block_o, block_s, block_i, lanes = _blocks(view, _SMALL_GRID_TILE)
    tile = block_o * block_s * block_i
    if not small_grid:
        num_warps = 8 if tile * itemsize >= 16384 else 4
    elif lanes == 8:
        num_warps = max(1, min(8, tile // (32 * 8)))  # eight elements (one Philox call) per thread
    else:
        num_warps = max(2, min(8, tile // (32 * 64)))  # at most 64 elements per thread
    return block_o, block_s, block_i // lanes, lanes, num_warps


def _scale_bits(p: float) -> int:
    """The float64 scale's bit pattern as a signed int64: the kernel bitcasts it back exactly."""
    return struct.unpack("<q", struct.pack("<d", dropout_scale(p)))[0]


def _as_int32(word: int) -> int:
    """A 32-bit word as a signed value, so Triton always types the seed arguments as i32."""
    return word - (1 << 32) if word >= 1 << 31 else word


@dataclass(frozen=True)
class _LaunchPlan:
    """Everything about a launch that depends on shape, strides, shared dims and dtype only."""

    key: tuple
    grid: tuple[int, int, int]
    geometry: tuple[int, ...]  # size_o, size_s, size_i, then x's and out's (o, s, i) strides
    blocks: tuple[int, int, int, int]  # BLOCK_O, BLOCK_S, BLOCK_C, LANES
    num_warps: int
    compute_f64: bool
    wide_offsets: bool  # an offset inside one tile may pass 2**31 elements


_PLANS: dict[tuple, _LaunchPlan | None] = {}
_CACHE_LIMIT = 4096  # plans (and launchers) kept; past it both caches start over (shapes that vary a lot)
# Compiled kernels' launchers by (plan key, pointer alignments, seed source): called directly, with
# the signature Triton's own CompiledKernel runner uses, skipping the JIT's argument binding. The key
# holds every property Triton specializes our arguments on: dtypes, integer values (== 1, % 16,
# width: all fixed by the plan; the seed arguments are always i32, never specialized) and 16-byte
# alignment of the pointers.
_COMPILED: dict[tuple, object] = {}
# Launches handed to the C++ hot path (kernels/fast_path.py), by the same key: True if it took it.
_REGISTERED: dict[tuple, bool] = {}
DIRECT_LAUNCH = not _INTERPRETED


def clear_launch_caches() -> None:
    """Forget every plan, compiled launcher and C++ launch record: the next call of each layout plans
    it again (with the tile rule's constants as they are then)."""
    _PLANS.clear()
    _COMPILED.clear()
    _REGISTERED.clear()
    fast_path.clear()


def _launch_plan(x: torch.Tensor, out: torch.Tensor, shared_dims: Sequence[int]) -> _LaunchPlan | None:
    key = (x.shape, x.stride(), out.stride(), tuple(shared_dims), x.dtype, x.device.index)
    if key in _PLANS:
        return _PLANS[key]
    if len(_PLANS) >= _CACHE_LIMIT:
        clear_launch_caches()
    view = plan_view(x.shape, shared_dims, (x.stride(), out.stride()))
    plan = None
    if view is not None:
        block_o, block_s, block_c, lanes, num_warps = _tile(view, x.element_size(), _sm_count(x.device))
        size_o, size_s, size_i = view.sizes
        grid = (
            triton.cdiv(size_o, block_o) * triton.cdiv(size_s, block_s) * triton.cdiv(size_i, block_c * lanes), 1, 1
        )
        geometry = (*view.sizes, *view.strides[0], *view.strides[1])
        tile_extent = (block_o - 1, block_s - 1, block_c * lanes - 1)
        tile_span = max(sum(e * abs(st) for e, st in zip(tile_extent, st3, strict=True)) for st3 in view.strides)
        plan = _LaunchPlan(key, grid, geometry, (block_o, block_s, block_c, lanes), num_warps,
                           x.dtype == torch.float64, tile_span >= 2**31)  # fmt: skip
    _PLANS[key] = plan
    return plan


@dataclass(frozen=True)
class GeneratorState:
    """A seed that lives on the device: the generator's seed and Philox offset (one-element int64
    tensors; under capture they alias the generator's own memory, which each replay refreshes) and
    the offset inside the CUDA graph. The kernel derives the seed as `draw_seed` would (SEED_MODE 2),
    so each replay draws a fresh mask with no extra kernel."""

    seed: torch.Tensor
    offset: torch.Tensor
    offset_in_graph: int


def _seed_arguments(seed, x: torch.Tensor):
    """(seed_ptr, offset_ptr, seed_lo, seed_hi, SEED_MODE); unused pointers point at x."""
    if isinstance(seed, GeneratorState):
        return seed.seed, seed.offset, seed.offset_in_graph, 0, 2
    if isinstance(seed, torch.Tensor):
        return seed, x, 0, 0, 1
    low, high = split_seed(seed)
    return x, x, _as_int32(low), _as_int32(high), 0


def _launch(x: torch.Tensor, out: torch.Tensor, plan: _LaunchPlan, seed, p: float) -> None:
    """Run the kernel for a plan. `seed`: an int, an int64 tensor of one element on x's device, or
    a GeneratorState."""
    seed_ptr, offset_ptr, seed_lo, seed_hi, seed_mode = _seed_arguments(seed, x)
    args = (x, out, seed_ptr, offset_ptr, seed_lo, seed_hi, keep_threshold(p), _scale_bits(p), *plan.geometry)
    constexprs = (*plan.blocks, seed_mode, plan.compute_f64, PHILOX_ROUNDS, _INTERPRETED, plan.wide_offsets)
    compiled_key = (plan.key, x.data_ptr() % 16, out.data_ptr() % 16, seed_ptr.data_ptr() % 16,
                    offset_ptr.data_ptr() % 16, seed_mode)  # fmt: skip
    compiled = _COMPILED.get(compiled_key) if DIRECT_LAUNCH else None
    if compiled is None:
        block_o, block_s, block_c, lanes = plan.blocks
        compiled = _locked_dropout_kernel[plan.grid](
            *args, BLOCK_O=block_o, BLOCK_S=block_s, BLOCK_C=block_c, LANES=lanes, SEED_MODE=seed_mode,
            COMPUTE_F64=plan.compute_f64, ROUNDS=PHILOX_ROUNDS, BF16_ROUND_BY_HAND=_INTERPRETED,
            WIDE_OFFSETS=plan.wide_offsets, num_warps=plan.num_warps,
        )  # fmt: skip
        if DIRECT_LAUNCH and all(hasattr(compiled, a) for a in ("run", "function", "packed_metadata")):
            _COMPILED[compiled_key] = compiled
    elif _launch_hooks_set():  # a profiler listens: go through the compiled kernel's own runner
        compiled[plan.grid](*args, *constexprs)
    else:
        stream = _current_raw_stream(x.device.index)
        compiled.run(*plan.grid, stream, compiled.function, compiled.packed_metadata, None, None, None,
                     *args, *constexprs)  # fmt: skip
    if seed_mode == 0 and DIRECT_LAUNCH and compiled_key not in _REGISTERED:
        # Hand the launch to the C++ hot path: the next call with this layout skips Python. Both
        # sides start over together, so no layout is marked handed over that the C++ side forgot.
        if len(_REGISTERED) >= _CACHE_LIMIT:
            _REGISTERED.clear()
            fast_path.clear()
        _REGISTERED[compiled_key] = fast_path.register_launch(compiled, plan, x)


# The CUDA device and stream of this thread, as plain integers. torch's C entry points are what Triton's
# own launcher uses (a fraction of a microsecond); the public API, which builds Stream objects, is
# the fallback where they are missing.
_current_cuda_device = getattr(torch._C, "_cuda_getDevice", torch.cuda.current_device)
if hasattr(torch._C, "_cuda_getCurrentRawStream"):
    _current_raw_stream = torch._C._cuda_getCurrentRawStream
else:

    def _current_raw_stream(index: int) -> int:
        return torch.cuda.current_stream(index).cuda_stream


def _launch_hooks_set() -> bool:
    """Whether a Triton launch hook (e.g. a profiler's) is set: then launches use Triton's runner."""
    runtime = getattr(getattr(triton, "knobs", None), "runtime", None)
    holder = runtime if runtime is not None else getattr(triton.compiler, "CompiledKernel", None)
    hooks = (getattr(holder, "launch_enter_hook", None), getattr(holder, "launch_exit_hook", None))
    return any(hook is not None for hook in hooks)


def dropout_triton(x: torch.Tensor, seed, p: float, shared_dims: Sequence[int]) -> torch.Tensor:
    """The kernel path: a new tensor laid out like `torch.empty_like(x)`; `x` is only read.

    Works on any tensor Triton can address (CUDA tensors; CPU tensors under TRITON_INTERPRET=1).
    Layouts whose shared dims cannot be collapsed into one axis run on a contiguous copy, permuted
    so that the shared dims come first (same mask: the mask index depends on the kept dims only).
    """
    if x.is_cuda and x.device.index != _current_cuda_device():
        with torch.cuda.device(x.device):
            return dropout_triton(x, seed, p, shared_dims)
    out = torch.empty_like(x)
    if x.numel() == 0:
        return out
    plan = _launch_plan(x, out, shared_dims)
    if plan is not None:
        _launch(x, out, plan, seed, p)
        return out
    shared = sorted(shared_dims)
    order = shared + [d for d in range(x.dim()) if d not in shared]
    x_packed = x.permute(order).contiguous()
    out_packed = torch.empty_like(x_packed)
    _launch(x_packed, out_packed, _launch_plan(x_packed, out_packed, range(len(shared))), seed, p)
    out.permute(order).copy_(out_packed)
    return out


# ---------------------------------------------------------------------------------------------
# CPU path and dispatch on device
# ---------------------------------------------------------------------------------------------


def mask_shape_of(shape: Sequence[int], shared_dims: Sequence[int]) -> tuple[int, ...]:
    """x's shape with the shared dims set to 1."""
    return tuple(1 if d in shared_dims else size for d, size in enumerate(shape))


# Elements the CPU path handles at once: its temporaries (the random stream's int64s, a chunk of the
# product) stay a few tens of MB whatever x's size, and each torch call is still long enough that
# Python's share of the time is small.
CPU_CHUNK_ELEMENTS = 1 << 20


def _chunk_indices(shape: Sequence[int], chunk_elements: int):
    """Indices that cut a tensor of `shape` into pieces of at most `chunk_elements` elements (at
    least one row of the innermost dims), in row-major order: integer indices over the leading
    dims, then a slice of the first dim whose trailing dims fit in a chunk."""
    split = 0  # the first dim whose trailing dims hold at most chunk_elements elements
    while split < len(shape) and math.prod(shape[split + 1 :]) > chunk_elements:
        split += 1
    if split == len(shape):  # a 0-d tensor
        yield ()
        return
    inner = max(1, math.prod(shape[split + 1 :]))  # an empty tensor's inner dims may hold none
    rows = max(1, chunk_elements // inner)
    for leading in itertools.product(*(range(size) for size in shape[:split])):
        for start in range(0, shape[split], rows):
            yield (*leading, slice(start, start + rows))


def dropout_reference(
    x: torch.Tensor, seed: int, p: float, shared_dims: Sequence[int], chunk_elements: int = CPU_CHUNK_ELEMENTS
) -> torch.Tensor:
    """The same function as the kernel, in plain PyTorch on any device (the CPU path).

    Memory: the output, the bool mask (compact: x's size only for element-wise dropout) and
    temporaries of about `chunk_elements` elements: the mask is decided and applied chunk by chunk.
    The result does not depend on `chunk_elements`.
    """
    keep = keep_mask(seed, mask_shape_of(x.shape, shared_dims), p, device=x.device, chunk_elements=chunk_elements)
    out = torch.empty_like(x)
    for index in _chunk_indices(x.shape, chunk_elements):
        # The mask's part: the same index, but along shared dims (size 1 in the mask) the mask's only
        # row; an integer index drops that dim as it does in x[index], a slice keeps it to broadcast.
        mask_index = tuple(
            (0 if isinstance(i, int) else slice(None)) if d in shared_dims else i for d, i in enumerate(index)
        )
        apply_mask(x[index], keep[mask_index], p, out=out[index])
    return out


def dropout_any_device(x: torch.Tensor, seed, p: float, shared_dims: Sequence[int]) -> torch.Tensor:
    if x.device.type == "meta":  # shapes only (e.g. a model built on the meta device): no data, no mask
        return torch.empty_like(x)
    if p >= 1:
        return torch.zeros_like(x)  # every element dropped: zeros, never inf * 0
    if x.dim() == 0:  # one element: element-wise dropout of its 1-element view (same mask element 0)
        return dropout_any_device(x.reshape(1), seed, p, ()).reshape(())
    if x.device.type == "cpu":
        return dropout_reference(x, int(seed), p, shared_dims)
    return dropout_triton(x, seed, p, shared_dims)


# ---------------------------------------------------------------------------------------------
# Autograd: eager path (no dispatcher round trip) and torch.library op (torch.compile path)
# ---------------------------------------------------------------------------------------------


class _SeededDropoutFunction(torch.autograd.Function):
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
        # The op is linear, so its backward is itself; through autograd only for double backward.
        if torch.is_grad_enabled():
            return _SeededDropoutFunction.apply(grad_out, seed, ctx.p, ctx.shared_dims), None, None, None
        return dropout_any_device(grad_out, seed, ctx.p, ctx.shared_dims), None, None, None


@torch.library.custom_op("seeded_dropout::locked_dropout", mutates_args=())
def _locked_dropout_op(x: torch.Tensor, seed: torch.Tensor, p: float, shared_dims: list[int]) -> torch.Tensor:
    if x.device.type == "cpu" or seed.device != x.device:
        seed = int(seed.reshape(()).item())
    return dropout_any_device(x, seed, p, shared_dims)


@_locked_dropout_op.register_fake
def _(x, seed, p, shared_dims):
    return torch.empty_like(x)


def _op_setup_context(ctx, inputs, output):
    _, seed, p, shared_dims = inputs
    ctx.save_for_backward(seed)
    ctx.p, ctx.shared_dims = p, shared_dims


def _op_backward(ctx, grad_out):
    (seed,) = ctx.saved_tensors
    return _locked_dropout_op(grad_out, seed, ctx.p, ctx.shared_dims), None, None, None


_locked_dropout_op.register_autograd(_op_backward, setup_context=_op_setup_context)


# ---------------------------------------------------------------------------------------------
# Seeds
# ---------------------------------------------------------------------------------------------

_GOLDEN_GAMMA = 0x9E3779B97F4A7C15
_U64 = (1 << 64) - 1


def _splitmix64(state: int) -> int:
    z = state & _U64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _U64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _U64
    return z ^ (z >> 31)


def _to_int64(value: int) -> int:
    value &= _U64
    return value - (1 << 64) if value >= _SEED_BOUND else value


def draw_seed(device: torch.device):
    """A fresh seed from torch's generator of `device`: an int, or a device tensor under capture.

    CUDA: while a CUDA graph is being captured, the seed is the generator's graph-safe state
    (`GeneratorState`: the kernel derives the seed on the device by the formula below, so each
    replay draws a new mask and a replay after `torch.manual_seed(s)` draws the mask an eager call
    after `torch.manual_seed(s)` would); without the C++ extension, a `torch.randint` on the device.
    Otherwise no kernel is launched: the seed is splitmix64 of the
    generator's (initial seed, Philox offset), and the offset is advanced by 4 as any random op
    would; `torch.manual_seed`, `torch.cuda.set_rng_state` and checkpoint recomputation therefore
    reproduce it. CPU: one `torch.randint` from the default generator. Meta: 0, nothing drawn (a meta
    tensor has no data, so no seed changes what the op gives it).
    """
    if device.type == "cuda":
        if torch.cuda.is_current_stream_capturing():
            index = device.index if device.index is not None else torch.cuda.current_device()
            state = fast_path.philox_state(index)
            if state is not None:  # the kernel derives the seed from the generator's state
                return GeneratorState(*state)
            return torch.randint(-_SEED_BOUND, _SEED_BOUND - 1, (1,), device=device, dtype=torch.int64)
        generator = torch.cuda.default_generators[device.index if device.index is not None else 0]
        offset = generator.get_offset()
        generator.set_offset(offset + 4)
        return _to_int64(_splitmix64(generator.initial_seed() + _GOLDEN_GAMMA * (offset // 4 + 1)))
    if device.type == "cpu":
        return int(torch.randint(-_SEED_BOUND, _SEED_BOUND - 1, (1,), dtype=torch.int64))
    if device.type == "meta":
        return 0
    return int(torch.randint(-_SEED_BOUND, _SEED_BOUND - 1, (1,), device=device, dtype=torch.int64).item())


@torch.library.custom_op("seeded_dropout::draw_seed", mutates_args=(), tags=(torch.Tag.nondeterministic_seeded,))
def _draw_seed_op(call_index: int, *, device: torch.device) -> torch.Tensor:
    """`draw_seed` as one int64 on `device`, for compiled code: an op the compiler cannot see into,
    so the seed is drawn when the compiled code runs, from the same generator state an eager call
    reads. (A `torch.randint` in the graph is Inductor's to replace with its own random stream: its
    masks did not follow `torch.manual_seed` as eager ones do, and on a GPU they differed between a
    process that compiled the model and one that loaded it from the compile cache.)

    `call_index` differs between the draws of one graph (`_next_traced_draw`) and is otherwise unused:
    common-subexpression elimination merges identical op calls (it spares only aten's random ops),
    which would give two dropout calls on the same x one mask. The partitioner saves the seed for
    backward (it recomputes no op outside its allowlist); under activation checkpointing, where it
    must recompute, the `nondeterministic_seeded` tag makes it replay the generator state the forward
    draw saw, so backward still gets the forward's seed. `device` is keyword-only because that replay
    finds the device in a `device` keyword (or a tensor argument; this op has none).
    """
    if device.type == "cuda" and torch.cuda.is_current_stream_capturing():
        # A seed made on the host would be baked into the graph; a device randint is drawn per replay.
        return torch.randint(-_SEED_BOUND, _SEED_BOUND - 1, (1,), device=device, dtype=torch.int64)
    return torch.full((1,), draw_seed(device), dtype=torch.int64, device=device)


@_draw_seed_op.register_fake
def _(call_index, *, device):
    return torch.empty(1, dtype=torch.int64, device=device)


_traced_draws = itertools.count()


@torch.compiler.assume_constant_result
def _next_traced_draw() -> int:
    """A new number each time torch.compile traces a seed draw: run while tracing, a constant in the
    graph (no guard on it, so no recompilation), distinct for every draw the graph holds."""
    return next(_traced_draws)


# torch.manual_seed's range: a seed is a 64-bit value, negative ones taken modulo 2**64.
_SEED_MIN, _SEED_MAX = -(2**63), 2**64 - 1


def _checked_seed(seed):
    """seed as the op keeps it: None; an int, in int64 form; or a one-element integer tensor, as given.

    Ints (and numpy integers) outside [-2**63, 2**64 - 1] are a ValueError, as torch.manual_seed
    refuses them; within it, s and s - 2**64 are the same seed.
    """
    if seed is None:
        return None
    if type(seed) is int:
        value = seed
    elif isinstance(seed, torch.Tensor):
        if seed.dtype.is_floating_point or seed.dtype.is_complex or seed.dtype == torch.bool:
            raise TypeError(f"seed must be an integer tensor, got dtype {seed.dtype}")
        if seed.numel() != 1:
            raise ValueError(f"seed must hold one integer, got a tensor of shape {tuple(seed.shape)}")
        return seed
    elif isinstance(seed, bool) or not hasattr(type(seed), "__index__"):
        raise TypeError(f"seed must be None, an int or an integer tensor, got {type(seed).__name__}")
    else:
        value = operator.index(seed)  # numpy integers
    if not _SEED_MIN <= value <= _SEED_MAX:
        raise ValueError(f"seed must be in [-2**63, 2**64 - 1] (torch.manual_seed's range), got {value}")
    return _to_int64(value)


def _resolve_seed(seed, device: torch.device):
    """A checked seed (see _checked_seed) as the kernel takes it: an int, or an int64 tensor on the
    device when the seed lives there; None draws one (draw_seed)."""
    if seed is None:
        return draw_seed(device)
    if isinstance(seed, torch.Tensor):
        if seed.device == device and device.type != "cpu":
            return seed.reshape(1).to(torch.int64)
        return _to_int64(int(seed.reshape(()).item()))
    return seed


# ---------------------------------------------------------------------------------------------
# Arguments: p and dim
# ---------------------------------------------------------------------------------------------


def dropout_probability(p) -> float:
    """p as a float in [0, 1], accepted where torch.nn.functional.dropout accepts it: a real number
    (bools count as 0 and 1, numpy scalars too) or a 0-d real tensor. TypeError for anything else;
    ValueError naming p outside [0, 1] or for NaN. The function and the module share this check."""
    if isinstance(p, (float, int)):  # bool is an int
        value = float(p)
    elif isinstance(p, torch.Tensor):
        if p.dim() != 0 or p.is_complex():
            raise TypeError(
                f"dropout probability p must be a real number or a 0-d real tensor, got a tensor of "
                f"shape {tuple(p.shape)} and dtype {p.dtype}"
            )
        value = float(p)
    elif isinstance(p, numbers.Real):  # numpy floating and integer scalars, fractions
        value = float(p)
    else:
        raise TypeError(f"dropout probability p must be a real number, got {type(p).__name__}")
    if not 0.0 <= value <= 1.0:  # NaN fails the range test too
        raise ValueError(f"dropout probability p has to be between 0 and 1, but got p={value!r}")
    return value


def _dim_message(dim) -> str:
    return f"dim must be an int or a sequence of ints (() for element-wise dropout), got {dim!r}"


def _one_dim(d, dim) -> int:
    """One dim as a Python int: anything `operator.index` takes (ints, numpy integers, integer 0-d
    tensors) except bools: nn.Dropout's second argument is `inplace`, here it is `dim`, so
    SeededVariationalDropout(0.5, True) must not mean dim=1."""
    if isinstance(d, bool) or (isinstance(d, torch.Tensor) and d.dtype == torch.bool):
        raise TypeError(
            f"{_dim_message(dim)}: a bool is not a dim (SeededVariationalDropout's second argument is dim, "
            "not nn.Dropout's inplace)"
        )
    try:
        return operator.index(d)
    except TypeError:
        raise TypeError(_dim_message(dim)) from None


def canonical_dim(dim) -> int | tuple[int, ...]:
    """`dim` as a Python int or a tuple of Python ints, each element checked (TypeError otherwise);
    a generator or other iterable is read once, here. Ranges are checked against x (_shared_dims)."""
    if type(dim) is int:  # the common cases first, without the general checks' cost
        return dim
    if type(dim) is tuple and all(type(d) is int for d in dim):
        return dim
    if hasattr(type(dim), "__index__") and getattr(dim, "ndim", 0) == 0:  # one dim (ints, 0-d tensors)
        return _one_dim(dim, dim)
    if isinstance(dim, (str, bytes)) or not isinstance(dim, Iterable):
        raise TypeError(_dim_message(dim))
    items = tuple(dim)
    return tuple(_one_dim(d, dim) for d in items)


def _normalized_dims(dim: int | tuple[int, ...], ndim: int) -> tuple[int, ...]:
    """A canonical dim (negatives from the end) as sorted non-negative dims of a rank-`ndim` tensor.

    As in torch, a 0-d tensor has one dim to name (0 or -1); sharing a one-element mask along it
    changes nothing, so it shares none."""
    rank = max(ndim, 1)
    normalized = []
    for d in (dim,) if isinstance(dim, int) else dim:
        if not -rank <= d < rank:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-rank}, {rank - 1}], but got {d})")
        normalized.append(d % rank)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"dim {dim!r} names the same dimension more than once")
    return tuple(sorted(normalized)) if ndim > 0 else ()


# _normalized_dims by (canonical dim, rank), for eager calls. The keys hold Python ints only
# (canonical_dim), so no two different arguments share an entry.
_SHARED_DIMS: dict[tuple, tuple[int, ...]] = {}


def _shared_dims(dim: int | tuple[int, ...], ndim: int) -> tuple[int, ...]:
    key = (dim, ndim)
    if key not in _SHARED_DIMS:
        _SHARED_DIMS[key] = _normalized_dims(dim, ndim)
    return _SHARED_DIMS[key]


# ---------------------------------------------------------------------------------------------
# Public function
# ---------------------------------------------------------------------------------------------


def _check_input(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in SUPPORTED_DTYPES:
        names = ", ".join(str(d) for d in SUPPORTED_DTYPES)
        raise TypeError(f"seeded_variational_dropout does not support dtype {x.dtype}; supported: {names}")


def seeded_variational_dropout(
    x: torch.Tensor,
    p: float = 0.5,
    dim: int | Sequence[int] = 1,
    seed: int | torch.Tensor | None = None,
    training: bool = True,
) -> torch.Tensor:
    """Variational (locked) dropout: one mask shared along `dim`, kept in backward as a seed only.

    Args:
        x: a float16, bfloat16, float32 or float64 tensor of any rank, any strides; on a CUDA or
            CPU device, or the meta device (shapes only: the result is `torch.empty_like(x)`).
        p: the probability of dropping an element of the mask, in [0, 1] (resolved to 2**-16): what
            `torch.nn.functional.dropout` accepts (a real number, a numpy scalar, a 0-d real tensor;
            bools count as 0 and 1). TypeError for another type, ValueError outside [0, 1] or NaN.
        dim: the dimension(s) one mask is shared along (negative counts from the end): an int or a
            sequence of ints (numpy integers and integer 0-d tensors count as ints; bools are a
            TypeError); `()` is element-wise dropout. The mask has x's shape with these dims set to 1.
            A 0-d x has one element: `()`, 0 and -1 all drop it or keep it alone.
        seed: None draws from torch's generator of x's device (so `torch.manual_seed` reproduces
            the mask, in eager and compiled code alike); an int in [-2**63, 2**64 - 1] (torch's
            seed range; s and s - 2**64 are the same seed) or a one-element integer tensor is used
            as given.
        training: when False, or when p == 0, x itself is returned and no kernel runs (dim's range is
            not checked against x then, as nothing is dropped).

    Returns:
        x * mask / (1 - p) in x's dtype, laid out like `torch.empty_like(x)`. p == 1 gives zeros.

    Raises:
        RuntimeError under `torch.jit.trace` in training mode: a trace would record one seed, and
        every call of the traced code would drop the same elements (trace in eval mode, or use
        `torch.compile`).
    """
    _check_input(x)
    p = dropout_probability(p)
    dim = canonical_dim(dim)
    seed = _checked_seed(seed)
    if not training or p == 0:
        return x
    if torch.jit.is_tracing():
        raise RuntimeError(
            "seeded_variational_dropout cannot be traced by torch.jit.trace in training mode: the trace "
            "would keep one seed, so every call would drop the same elements. Trace in eval mode, or "
            "use torch.compile."
        )
    if torch.compiler.is_compiling():
        # Traced once per graph, so no cache: reading one would guard on its contents, and the entry
        # this call adds would fail that guard and compile the graph again.
        shared_dims = _normalized_dims(dim, x.dim())
        if seed is None:
            seed = _draw_seed_op(_next_traced_draw(), device=x.device)
        elif not isinstance(seed, torch.Tensor):
            seed = torch.tensor([seed], dtype=torch.int64, device=x.device)
        return _locked_dropout_op(x, seed.reshape(1).to(torch.int64), p, list(shared_dims))
    shared_dims = _shared_dims(dim, x.dim())
    if x.is_cuda and p < 1 and (seed is None or type(seed) is int):
        fast = fast_path.module()
        if fast is not None:  # the C++ hot path: None when it has no launch for x's layout yet
            y = fast.forward(x, p, shared_dims, seed)
            if y is not None:
                return y
    seed = _resolve_seed(seed, x.device)
    if x.requires_grad and torch.is_grad_enabled():
        return _SeededDropoutFunction.apply(x, seed, p, shared_dims)
    return dropout_any_device(x, seed, p, shared_dims)  # nothing to differentiate: skip autograd
