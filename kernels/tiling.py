"""Which tile a launch uses: a frozen `TilePolicy` (the heuristic's knobs, data that a probe or test
passes in) and `choose_tile`, the rule that turns a view, a dtype and the GPU's size into a tile.

The default policy is what the op launches with; launches are planned and cached per policy, so a
different policy never meets a cached launch of another (`kernels/launch.py`). The figures behind
each knob are in docs/perf-notes.md (changes 04, 07, 08).
"""

from __future__ import annotations

from dataclasses import dataclass

import triton

from .layout import View3


@dataclass(frozen=True)
class TilePolicy:
    """The knobs of the tile rule. Every field is part of a launch plan's cache key."""

    # Bytes of input one program handles: enough in flight per SM without spilling registers.
    tile_bytes: int = 16384
    # Small tensors: tiles shrink (down to min_tile_bytes) until the grid has this many programs per
    # SM, so a tensor of a few hundred KB is read by many SMs at once instead of a handful
    # (change 07). 0 turns the rule off.
    programs_per_sm: int = 2
    min_tile_bytes: int = 2048
    # Below this many programs per SM (at tile_bytes) a grid is latency-bound (change 08): grouped-RNG
    # tiles shrink to small_grid_tile elements (8 per thread), plain tiles run fewer warps. 0: off.
    small_grid_programs_per_sm: int = 16
    small_grid_tile: int = 1024


DEFAULT_POLICY = TilePolicy()


@dataclass(frozen=True)
class Tile:
    """A program's tile [block_o, block_s, block_c * lanes] and its warps (the kernel's constexprs)."""

    block_o: int
    block_s: int
    block_c: int
    lanes: int
    num_warps: int

    @property
    def block_i(self) -> int:
        return self.block_c * self.lanes


def inner_block(size_i: int, cap: int) -> int:
    """The inner tile width: the largest power of two <= cap dividing size_i (no idle lanes), if
    one of at least 64 exists; else the power of two covering size_i, capped."""
    block = min(triton.next_power_of_2(size_i), cap)
    while block >= 64:
        if size_i % block == 0:
            return block
        block //= 2
    return min(triton.next_power_of_2(size_i), cap)


def tile_elements(numel: int, itemsize: int, sm_count: int, policy: TilePolicy) -> int:
    """Elements per program: tile_bytes worth, fewer for tensors too small to fill the GPU."""
    tile_elems = policy.tile_bytes // itemsize
    wanted_programs = policy.programs_per_sm * sm_count
    if wanted_programs > 1 and numel < tile_elems * wanted_programs:
        wanted = triton.next_power_of_2(triton.cdiv(numel, wanted_programs))
        tile_elems = max(policy.min_tile_bytes // itemsize, wanted)
    return tile_elems


def blocks(view: View3, tile_elems: int) -> tuple[int, int, int, int]:
    """(block_o, block_s, block_i, lanes) of a tile of about `tile_elems` elements."""
    size_o, size_s, size_i = view.sizes
    block_i = inner_block(size_i, tile_elems if size_s == 1 else min(1024, tile_elems))
    block_s = max(1, min(triton.next_power_of_2(size_s), tile_elems // block_i))
    aligned = size_i >= 8 and block_i >= 8 and (size_o == 1 or size_i % 8 == 0)
    lanes = 8 if aligned and block_s < 8 else 1  # grouped RNG only where the mask row is reused < 8 times
    block_o = max(1, min(triton.next_power_of_2(size_o), tile_elems // (block_i * block_s)))
    return block_o, block_s, block_i, lanes


def choose_tile(view: View3, itemsize: int, sm_count: int, policy: TilePolicy = DEFAULT_POLICY) -> Tile:
    """The tile of a view: a cheap rule, no autotuning.

    The inner axis gets up to 1024 elements (the whole tile when nothing is shared); the shared axis
    fills the tile (the mask row is reused along it); leftover room goes to the outer axis. The
    grouped-RNG layout (lanes = 8) is used only where it is aligned and a mask row serves fewer than
    8 rows of the tile; elsewhere the plain 3-D layout (change 04).

    Grids of fewer than `small_grid_programs_per_sm` programs per SM (tensors up to a few MB) are
    latency-bound, not bandwidth-bound (change 08): grouped-RNG tiles shrink to `small_grid_tile`
    elements, one Philox call per thread; plain tiles keep their size with fewer warps, so fewer
    threads compute the same mask row again.
    """
    size_o, size_s, size_i = view.sizes
    numel = size_o * size_s * size_i
    tile_elems = tile_elements(numel, itemsize, sm_count, policy)
    block_o, block_s, block_i, lanes = blocks(view, tile_elems)
    small_grid = numel < policy.tile_bytes // itemsize * policy.small_grid_programs_per_sm * sm_count
    if small_grid and lanes == 8 and tile_elems > policy.small_grid_tile:
        block_o, block_s, block_i, lanes = blocks(view, policy.small_grid_tile)
    tile = block_o * block_s * block_i
    if not small_grid:
        num_warps = 8 if tile * itemsize >= 16384 else 4
    elif lanes == 8:
        num_warps = max(1, min(8, tile // (32 * 8)))  # eight elements (one Philox call) per thread
    else:
        num_warps = max(2, min(8, tile // (32 * 64)))  # at most 64 elements per thread
    return Tile(block_o, block_s, block_i // lanes, lanes, num_warps)
