"""Running the op on a device: the Triton launch (a plan per layout and tile policy, cached; the
compiled kernel called directly; the launch handed to the C++ hot path), and the dispatch of a call
to the kernel, the CPU path or the meta device."""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import triton

from . import fast_path
from .cpu_path import dropout_reference
from .layout import plan_view
from .mask_stream import PHILOX_ROUNDS, dropout_scale, keep_threshold, split_seed
from .seeds import GeneratorState
from .tiling import DEFAULT_POLICY, TilePolicy, choose_tile
from .triton_kernel import seeded_dropout_kernel


def scale_bits(p: float) -> int:
    """The float64 scale's bit pattern as a signed int64: the kernel bitcasts it back exactly."""
    return struct.unpack("<q", struct.pack("<d", dropout_scale(p)))[0]


def _as_int32(word: int) -> int:
    """A 32-bit word as a signed value, so Triton always types the seed arguments as i32."""
    return word - (1 << 32) if word >= 1 << 31 else word


@functools.cache
def sm_count(device: torch.device) -> int:
    """Streaming multiprocessors of a CUDA device; 1 elsewhere (the interpreter)."""
    if device.type != "cuda":
        return 1
    index = device.index if device.index is not None else torch.cuda.current_device()
    return torch.cuda.get_device_properties(index).multi_processor_count


@dataclass(frozen=True)
class LaunchPlan:
    """Everything about a launch that depends on shape, strides, shared dims, dtype and policy only."""

    key: tuple
    grid: tuple[int, int, int]
    geometry: tuple[int, ...]  # size_o, size_s, size_i, then x's and out's (o, s, i) strides
    blocks: tuple[int, int, int, int]  # BLOCK_O, BLOCK_S, BLOCK_C, LANES
    num_warps: int
    compute_f64: bool
    wide_offsets: bool  # an offset inside one tile may pass 2**31 elements


class LaunchCache:
    """What the launch remembers, in one place: plans by layout and policy; compiled kernels by plan,
    pointer alignments and seed source; which of them the C++ hot path took. Bounded: past `limit`
    plans everything starts over, the C++ side's records too, so no layout is marked handed over
    that the C++ side forgot.

    A compiled kernel is called directly, with the signature Triton's own CompiledKernel runner
    uses, skipping the JIT's argument binding. Its key holds every property Triton specializes our
    arguments on: dtypes, integer values (== 1, % 16, width: all fixed by the plan; the seed
    arguments are always i32, never specialized) and 16-byte alignment of the pointers.
    """

    def __init__(self, limit: int = 4096):
        self.limit = limit
        self.plans: dict[tuple, LaunchPlan | None] = {}
        self.compiled: dict[tuple, object] = {}
        self.registered: dict[tuple, bool] = {}

    def clear(self) -> None:
        self.plans.clear()
        self.compiled.clear()
        self.registered.clear()
        fast_path.clear()

    def plan(self, x: torch.Tensor, out: torch.Tensor, shared_dims: Sequence[int], policy: TilePolicy):
        key = (x.shape, x.stride(), out.stride(), tuple(shared_dims), x.dtype, x.device.index, policy)
        if key not in self.plans:
            if len(self.plans) >= self.limit:
                self.clear()
            self.plans[key] = make_plan(key, x, out, shared_dims, policy)
        return self.plans[key]


_CACHE = LaunchCache()


def make_plan(key: tuple, x: torch.Tensor, out: torch.Tensor, shared_dims, policy: TilePolicy) -> LaunchPlan | None:
    """The plan of x's layout, or None when its shared dims cannot be one axis of a strided view."""
    view = plan_view(x.shape, shared_dims, (x.stride(), out.stride()))
    if view is None:
        return None
    tile = choose_tile(view, x.element_size(), sm_count(x.device), policy)
    size_o, size_s, size_i = view.sizes
    programs = triton.cdiv(size_o, tile.block_o) * triton.cdiv(size_s, tile.block_s) * triton.cdiv(size_i, tile.block_i)
    tile_extent = (tile.block_o - 1, tile.block_s - 1, tile.block_i - 1)
    tile_span = max(sum(e * abs(st) for e, st in zip(tile_extent, strides, strict=True)) for strides in view.strides)
    return LaunchPlan(key, (programs, 1, 1), (*view.sizes, *view.strides[0], *view.strides[1]),
                      (tile.block_o, tile.block_s, tile.block_c, tile.lanes), tile.num_warps,
                      x.dtype == torch.float64, tile_span >= 2**31)  # fmt: skip


def _seed_arguments(seed, x: torch.Tensor):
    """(seed_ptr, offset_ptr, seed_lo, seed_hi, SEED_MODE); unused pointers point at x."""
    if isinstance(seed, GeneratorState):
        return seed.seed, seed.offset, seed.offset_in_graph, 0, 2
    if isinstance(seed, torch.Tensor):
        return seed, x, 0, 0, 1
    low, high = split_seed(seed)
    return x, x, _as_int32(low), _as_int32(high), 0


# The CUDA device and stream of this thread, as plain integers. torch's C entry points are what Triton's
# own launcher uses (a fraction of a microsecond); the public API, which builds Stream objects, is
# the fallback where they are missing.
_current_cuda_device = getattr(torch._C, "_cuda_getDevice", torch.cuda.current_device)
if hasattr(torch._C, "_cuda_getCurrentRawStream"):
    _current_raw_stream = torch._C._cuda_getCurrentRawStream
else:

    def _current_raw_stream(index: int) -> int:
        return torch.cuda.current_stream(index).cuda_stream


def _hook_is_set(hook) -> bool:
    """Whether a launch hook holds a call. Triton 3.5 and later keep each hook as a `HookChain`, an
    object that is never None: it is set when its list of calls is not empty. Earlier versions
    keep a callable or None."""
    calls = getattr(hook, "calls", None)
    return bool(calls) if calls is not None else hook is not None


def _launch_hooks_set() -> bool:
    """Whether a Triton launch hook (e.g. a profiler's) is set: then launches use Triton's runner."""
    runtime = getattr(getattr(triton, "knobs", None), "runtime", None)
    holder = runtime if runtime is not None else getattr(triton.compiler, "CompiledKernel", None)
    hooks = (getattr(holder, "launch_enter_hook", None), getattr(holder, "launch_exit_hook", None))
    return any(_hook_is_set(hook) for hook in hooks)


def launch(x: torch.Tensor, out: torch.Tensor, plan: LaunchPlan, seed, p: float, policy: TilePolicy) -> None:
    """Run the kernel for a plan. `seed`: an int, an int64 tensor of one element on x's device, or
    a GeneratorState. CUDA launches of the default policy are handed to the C++ hot path."""
    seed_ptr, offset_ptr, seed_lo, seed_hi, seed_mode = _seed_arguments(seed, x)
    args = (x, out, seed_ptr, offset_ptr, seed_lo, seed_hi, keep_threshold(p), scale_bits(p), *plan.geometry)
    # A CPU tensor reaches a Triton kernel only through Triton's interpreter: no compiled kernel to
    # call directly, and bfloat16 must be rounded by hand there (the kernel's BF16_ROUND_BY_HAND).
    on_gpu = x.is_cuda
    scale_as_float = False  # the scale's float64 bits in scale_bits
    constexprs = (*plan.blocks, seed_mode, plan.compute_f64, PHILOX_ROUNDS, not on_gpu, plan.wide_offsets,
                  scale_as_float)  # fmt: skip
    compiled_key = (plan.key, x.data_ptr() % 16, out.data_ptr() % 16, seed_ptr.data_ptr() % 16,
                    offset_ptr.data_ptr() % 16, seed_mode)  # fmt: skip
    compiled = _CACHE.compiled.get(compiled_key) if on_gpu else None
    if compiled is None:
        block_o, block_s, block_c, lanes = plan.blocks
        compiled = seeded_dropout_kernel[plan.grid](
            *args, BLOCK_O=block_o, BLOCK_S=block_s, BLOCK_C=block_c, LANES=lanes, SEED_MODE=seed_mode,
            COMPUTE_F64=plan.compute_f64, ROUNDS=PHILOX_ROUNDS, BF16_ROUND_BY_HAND=not on_gpu,
            WIDE_OFFSETS=plan.wide_offsets, num_warps=plan.num_warps,
        )  # fmt: skip
        if on_gpu and all(hasattr(compiled, a) for a in ("run", "function", "packed_metadata")):
            _CACHE.compiled[compiled_key] = compiled
    elif _launch_hooks_set():  # a profiler listens: go through the compiled kernel's own runner
        compiled[plan.grid](*args, *constexprs)
    else:
        stream = _current_raw_stream(x.device.index)
        compiled.run(*plan.grid, stream, compiled.function, compiled.packed_metadata, None, None, None,
                     *args, *constexprs)  # fmt: skip
    if seed_mode == 0 and on_gpu and policy == DEFAULT_POLICY and compiled_key not in _CACHE.registered:
        # Hand the launch to the C++ hot path: the next call with this layout skips Python.
        shared_dims = plan.key[3]
        _CACHE.registered[compiled_key] = fast_path.register_launch(compiled, x, shared_dims, plan.grid[0],
                                                                    plan.geometry)  # fmt: skip


def dropout_triton(
    x: torch.Tensor, seed, p: float, shared_dims: Sequence[int], policy: TilePolicy = DEFAULT_POLICY
) -> torch.Tensor:
    """The kernel path: a new tensor laid out like `torch.empty_like(x)`; `x` is only read.

    Works on any tensor Triton can address (CUDA tensors; CPU tensors under TRITON_INTERPRET=1).
    Layouts whose shared dims cannot be collapsed into one axis run on a contiguous copy, permuted
    so that the shared dims come first (same mask: the mask index depends on the kept dims only).
    `policy` chooses the tiles (kernels/tiling.py); the mask never depends on it.
    """
    if x.is_cuda and x.device.index != _current_cuda_device():
        with torch.cuda.device(x.device):
            return dropout_triton(x, seed, p, shared_dims, policy)
    out = torch.empty_like(x)
    if x.numel() == 0:
        return out
    plan = _CACHE.plan(x, out, shared_dims, policy)
    if plan is not None:
        launch(x, out, plan, seed, p, policy)
        return out
    order = shared_dims_first(shared_dims, x.dim())
    x_packed = x.permute(order).contiguous()
    out_packed = torch.empty_like(x_packed)
    packed_dims = tuple(range(len(shared_dims)))
    launch(x_packed, out_packed, _CACHE.plan(x_packed, out_packed, packed_dims, policy), seed, p, policy)
    out.permute(order).copy_(out_packed)
    return out


def shared_dims_first(shared_dims: Sequence[int], ndim: int) -> list[int]:
    """The permutation that puts the shared dims first: a contiguous copy in that order collapses
    them into one axis (and gives the same mask: the mask index depends on the kept dims only)."""
    shared = sorted(shared_dims)
    return shared + [d for d in range(ndim) if d not in shared]


def dropout_traceable(
    x: torch.Tensor, seed: torch.Tensor, p: float, shared_dims: Sequence[int], policy: TilePolicy = DEFAULT_POLICY
) -> torch.Tensor:
    """The kernel path as `torch.compile` takes it in: the launch through `torch.library.wrap_triton`,
    so Inductor traces it (shapes and strides only: no data pointers are read here) and launches the
    kernel from its own generated code, with no Python of this package per call. `seed`: a
    one-element int64 tensor on x's device (SEED_MODE 1); 0 < p < 1, x.dim() > 0, x of 16 or 32
    bits with sizes, strides and element count below 2**31 (the caller's checks). Same plan, tiles,
    mask and numbers as `dropout_triton`.

    Every integer argument must fit in 32 bits: Inductor (torch 2.11) fails to generate the launch of
    a user kernel given a larger Python int. So the scale goes as a float (SCALE_AS_FLOAT), which
    the kernel rounds to float32: exactly the value it multiplies 16- and 32-bit inputs by."""
    out = torch.empty_like(x)
    if x.numel() == 0:
        return out
    plan = _CACHE.plan(x, out, shared_dims, policy)
    if plan is None:  # shared dims that cannot be one axis of a view: a packed copy, as dropout_triton
        order = shared_dims_first(shared_dims, x.dim())
        packed_dims = tuple(range(len(shared_dims)))
        out.permute(order).copy_(dropout_traceable(x.permute(order).contiguous(), seed, p, packed_dims, policy))
        return out
    block_o, block_s, block_c, lanes = plan.blocks
    # The unused offset pointer points at the seed (SEED_MODE 1 reads seed_ptr only).
    torch.library.wrap_triton(seeded_dropout_kernel)[plan.grid](
        x, out, seed, seed, 0, 0, keep_threshold(p), dropout_scale(p), *plan.geometry,
        BLOCK_O=block_o, BLOCK_S=block_s, BLOCK_C=block_c, LANES=lanes, SEED_MODE=1,
        COMPUTE_F64=plan.compute_f64, ROUNDS=PHILOX_ROUNDS, BF16_ROUND_BY_HAND=not x.is_cuda,
        WIDE_OFFSETS=plan.wide_offsets, SCALE_AS_FLOAT=True, num_warps=plan.num_warps,
    )  # fmt: skip
    return out


def dropout_any_device(x: torch.Tensor, seed, p: float, shared_dims: Sequence[int]) -> torch.Tensor:
    """The op on x with a resolved seed: the kernel on a GPU, the CPU path on CPU, shapes on meta."""
    if x.device.type == "meta":  # shapes only (e.g. a model built on the meta device): no data, no mask
        return torch.empty_like(x)
    if p >= 1:
        return torch.zeros_like(x)  # every element dropped: zeros, never inf * 0
    if x.dim() == 0:  # one element: element-wise dropout of its 1-element view (same mask element 0)
        return dropout_any_device(x.reshape(1), seed, p, ()).reshape(())
    if x.device.type == "cpu":
        return dropout_reference(x, int(seed), p, shared_dims)
    return dropout_triton(x, seed, p, shared_dims)
