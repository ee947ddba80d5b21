"""Probe (GPU): the fused op's backward kernel at several grids, warps, row tiles and loops, side by side.

The backward kernel runs a grid of `programs` programs, each looping over tiles of `rows_per_tile`
rows, with or without the next tile's loads issued ahead (`prefetch`) (kernels/fused_kernel.py); the
default is 2 programs per SM and `kernels.fused_launch.backward_loop`'s tile, warps and loop (16-bit
inputs: tiles of about 2048 elements, 8 warps, prefetch; fp32: one row, no prefetch). This probe
times `kernels.fused_launch.backward_triton` (the kernel and the sum of the per-program dweight
partials) for `programs = k * SMs`, a few warp counts, row tiles and both loops, RMSNorm with a
weight, p 0.5, mask shared along T, at (32, 512, D).

GPU time only: each candidate's calls are captured in a CUDA graph (CALLS calls back to back) and
the graph is replayed between two events, so the host's launch cost (which made an earlier version
of this probe read host time at small D) is not in the figure; no L2 flush between calls (the
tensors, 5 x 32 x 512 x D x 2 bytes, are larger than the H200's L2 from D = 768 up). Rounds are
interleaved: each round replays every candidate once. Reported per candidate: the median over rounds
of the per-call time, GB/s over the backward's bytes (5 N s: read dy, dh, h; write dx, dresidual),
% of a copy of the same bytes timed the same way (a copy replayed in a graph runs well below an
eager copy on the H200: 2.8 against 4.25 TB/s, so a kernel can read over 100%), and the time over
the default's. The default is
timed twice (`default` and `default again`): their ratio is this probe's A/A noise. `default, zero
fill` adds a zero fill of the dweight partials before each call: what the launch cost before it
stopped filling them.

Each candidate's compiled kernel is reported too: registers and spilled bytes per thread, shared
memory, and how many of its programs an SM can hold by its registers (65536 a SM, allocated per warp
in units of 256): a grid of 2 programs per SM runs in two waves when only one fits. `--maxnreg
128,96` adds candidates whose registers are capped (Triton's `maxnreg` launch option, which the
probe adds to the kernel's launch for those calls: `register_cap`): the default's loop on its tile
and on twice its rows (where that fits in MAX_TILE_ELEMENTS) at 1, 2 and 4 programs per SM, in its
warps and twice as many, so two programs may fit. `--chunked` adds
the prototype of scripts/fused_bwd_chunked.py (each row in chunks of 512, 1024 or 2048 columns, 4 or
8 warps, 2 or 4 programs per SM), timed and checked the same way.

Per width it also times the reduction of the dweight partials alone ((2 SMs, D) float32, rounded to
the dtype), torch's sum and cast against `fused_launch.summed_partials`'s one kernel (`tail:` rows).

`--norm layer` times LayerNorm's backward instead of RMSNorm's (the chunked prototype is RMSNorm's).
Where the default's loop caps its registers (kernels.fused_launch.backward_loop), `default, uncapped`
runs it without the cap: the cap's gain side by side.

    python3 scripts/fused_bwd_probe.py OUT_CSV [--dtype bf16] [--rounds 7] [--widths 768,2048,8192]
        [--maxnreg 128,96] [--stages 2,3,4] [--chunked] [--norm rms] [--no-grid]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import statistics

import torch

from kernels import fused_launch
from kernels.fused_kernel import dropout_add_norm_backward_kernel
from kernels.fused_launch import NORMS, backward_loop, backward_triton, row_plan
from kernels.launch import sm_count
from scripts.fused_bwd_chunked import chunked_rms_backward, chunked_rms_backward_kernel

WIDTHS = (768, 1024, 2048, 4096, 8192)
MULTIPLIERS = (2, 4, 8)
CHUNKS = (512, 1024, 2048)  # columns a step of the chunked prototype takes
ROW_TILES = (1, 2, 4, 8)
MAX_TILE_ELEMENTS = 8192  # rows_per_tile x BLOCK_D kept in registers
CALLS = 10  # calls per graph replay
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def candidates(d_model: int, sms: int, dtype: torch.dtype, maxnregs: tuple[int, ...] = (),
               chunked: bool = False, norm: str = "rms", grid: bool = True,
               stages: tuple[int, ...] = ()) -> list[tuple]:  # fmt: skip
    """(name, programs, num_warps, rows_per_tile, prefetch, zero_fill, maxnreg, chunk, stages); the default first
    and last. `zero_fill`: a zero fill of the dweight partials' size before the call, what the launch
    did before the kernel was relied on to write every partial (its cost side by side). `maxnregs`:
    register caps to try on the default's tile and loop; `chunked`: the prototype of
    scripts/fused_bwd_chunked.py in chunks of CHUNKS columns (`chunk` set; rows_per_tile, prefetch,
    maxnreg unused). Where the default's loop caps its registers, `default, uncapped` runs it without
    the cap (maxnreg 0). `stages`: the loop pipelined by the compiler (the kernel's STAGES, no
    PREFETCH) on the default's tile and twice its rows, in its warps and half as many, at 1, 2 and 4
    programs per SM. `grid=False` leaves out the uncapped grids, warps and row tiles (probed
    before: their figures are in docs/perf-notes.md). See the module's docstring."""
    plan = row_plan((32, 512, d_model), (1,))
    loop = backward_loop(plan, dtype, NORMS[norm])
    default = ("default", 2 * sms, loop.num_warps, loop.rows_per_tile, loop.prefetch, False, None, None, loop.stages)
    out = [default]
    for prefetch in (False, True) if grid else ():
        for rows in (r for r in ROW_TILES if r * plan.block_d <= MAX_TILE_ELEMENTS):
            for k in MULTIPLIERS:
                for warps in sorted({plan.num_warps, min(2 * plan.num_warps, 16), min(4 * plan.num_warps, 16)}):
                    if (k * sms, warps, rows, prefetch, False, None, None, 1) != default[1:]:
                        name = f"r{rows} k{k} w{warps}" + (" prefetch" if prefetch else "")
                        out.append((name, k * sms, warps, rows, prefetch, False, None, None, 1))
    # Capped: the default's tile, and twice its rows where that fits (more bytes a step in a program's
    # loop, if the cap keeps two programs an SM).
    tiles = [r for r in (loop.rows_per_tile, 2 * loop.rows_per_tile) if r * plan.block_d <= MAX_TILE_ELEMENTS]
    for cap in maxnregs:
        for rows in tiles:
            for warps in sorted({loop.num_warps, min(2 * loop.num_warps, 16)}):
                for k in (1, 2, 4):
                    loop_name = f"r{rows} k{k} w{warps}" + (" prefetch" if loop.prefetch else "")
                    name = f"{loop_name} maxnreg{cap}"
                    out.append((name, k * sms, warps, rows, loop.prefetch, False, cap, None, loop.stages))
    for stage_count in stages:
        for rows in tiles:
            for warps in sorted({max(loop.num_warps // 2, 1), loop.num_warps}):
                for k in (1, 2, 4):
                    name = f"r{rows} k{k} w{warps} stages{stage_count}"
                    out.append((name, k * sms, warps, rows, False, False, None, None, stage_count))
    if chunked:
        for chunk in (c for c in CHUNKS if c <= plan.block_d):
            for warps in (4, 8):
                for k in (2, 4):
                    out.append((f"chunked c{chunk} k{k} w{warps}", k * sms, warps, 1, False, False, None, chunk, 1))
    _, programs, warps, rows, prefetch, _, _, _, stage_count = default
    if loop.max_registers is not None:
        out.append(("default, uncapped", programs, warps, rows, prefetch, False, 0, None, stage_count))
    out.append(("default, zero fill", programs, warps, rows, prefetch, True, None, None, stage_count))
    out.append(("default again", *default[1:]))
    return out


def compiled_kernels(kernel) -> dict[int, object]:
    """The compiled kernels a Triton JIT function holds, by id (its per-device caches; the layout of
    that attribute differs between Triton versions, so every dict in them is searched)."""
    found = {}
    for caches in getattr(kernel, "device_caches", {}).values():
        for part in caches if isinstance(caches, tuple) else (caches,):
            if isinstance(part, dict):
                found.update({id(value): value for value in part.values() if hasattr(value, "metadata")})
    return found


def resident_programs(n_regs: int, num_warps: int) -> int:
    """Programs of `num_warps` warps an SM holds by registers: 65536 a SM, per warp in units of 256."""
    per_warp = -(-n_regs * 32 // 256) * 256
    return 65536 // (per_warp * num_warps) if n_regs else 0


def kernel_facts(compiled) -> dict:
    """Registers and spills per thread, shared memory, programs per SM by registers (None: unknown)."""
    if compiled is None:
        return dict(n_regs=None, n_spills=None, shared=None, resident_per_sm=None)
    n_regs = getattr(compiled, "n_regs", None)
    warps = compiled.metadata.num_warps
    return dict(n_regs=n_regs, n_spills=getattr(compiled, "n_spills", None),
                shared=getattr(compiled.metadata, "shared", None),
                resident_per_sm=resident_programs(n_regs, warps) if n_regs else None)  # fmt: skip


class RegisterCapped:
    """A Triton kernel whose every launch gets Triton's `maxnreg` (registers per thread at most), in
    place of the launch's own; a cap of 0 takes the launch's own cap off (the compiler's choice)."""

    def __init__(self, kernel, cap: int):
        self.kernel, self.cap = kernel, cap

    def __getitem__(self, grid):
        launch = self.kernel[grid]

        def capped(*args, **kwargs):
            kwargs.pop("maxnreg", None)
            return launch(*args, **kwargs, **({"maxnreg": self.cap} if self.cap else {}))

        return capped


@contextlib.contextmanager
def register_cap(cap: int | None):
    """While open, kernels.fused_launch launches its backward kernel with `maxnreg=cap` (None: as it is;
    0: without a cap)."""
    if cap is None:
        yield
        return
    kernel = fused_launch.dropout_add_norm_backward_kernel
    fused_launch.dropout_add_norm_backward_kernel = RegisterCapped(kernel, cap)
    try:
        yield
    finally:
        fused_launch.dropout_add_norm_backward_kernel = kernel


def graph_of(call) -> torch.cuda.CUDAGraph:
    """CALLS calls of `call` captured in one graph (after warm-up on the capture stream)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            call()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        for _ in range(CALLS):
            call()
    return graph


def per_call_ms(graph: torch.cuda.CUDAGraph, replays: int = 5) -> float:
    graph.replay()  # the first replay uploads the graph
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(replays):
        graph.replay()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / (replays * CALLS)


def probe_width(d_model: int, dtype_name: str, sms: int, rounds: int, maxnregs: tuple[int, ...],
                chunked: bool, norm: str = "rms", grid: bool = True, stages: tuple[int, ...] = ()) -> list[dict]:
    dtype = DTYPES[dtype_name]
    shape = (32, 512, d_model)
    grad_y, grad_h, h = (torch.randn(shape, device="cuda", dtype=dtype) for _ in range(3))
    weight = torch.randn(d_model, device="cuda", dtype=dtype)
    bytes_moved = 5 * h.numel() * h.element_size()
    src = torch.empty(h.numel() * 5 // 2, device="cuda", dtype=dtype)
    dst = torch.empty_like(src)  # copying 2.5 N elements moves the backward's 5 N s bytes

    partials = torch.empty(8 * sms, d_model, device="cuda", dtype=torch.float32)  # the most programs probed

    def call(programs, warps, rows, prefetch, zero_fill, maxnreg, chunk, stage_count):
        if chunk:
            return chunked_rms_backward(grad_y, grad_h, h, weight, 1234, 0.5, (1,), 1e-6, chunk=chunk,
                                        programs=programs, num_warps=warps)  # fmt: skip
        if zero_fill:
            partials[:programs].zero_()
        with register_cap(maxnreg):
            return backward_triton(grad_y, grad_h, h, weight, 1234, 0.5, (1,), NORMS[norm], 1e-6, True, False,
                                   programs=programs, num_warps=warps, rows_per_tile=rows,
                                   prefetch=prefetch, stages=stage_count)  # fmt: skip

    cands = candidates(d_model, sms, dtype, maxnregs, chunked and norm == "rms", norm, grid, stages)
    # (warps, rows, prefetch, maxnreg, chunk, stages): the compiled kernel's facts (the grid compiles nothing)
    facts = {}
    reference = None
    for _, *setting in cands:  # the same gradients (warps and tiles change the row sums' order: last bits)
        kernel = chunked_rms_backward_kernel if setting[6] else dropout_add_norm_backward_kernel
        before = compiled_kernels(kernel)
        got = call(*setting)
        torch.cuda.synchronize()
        new = [k for key, k in compiled_kernels(kernel).items() if key not in before]
        compile_key = (setting[1], setting[2], setting[3], setting[5], setting[6], setting[7])
        if compile_key not in facts or new:
            facts[compile_key] = kernel_facts(new[0] if new else None)
        if reference is None:
            reference = got
        for value, want in zip(got[:3], reference[:3], strict=True):
            torch.testing.assert_close(value, want, rtol=2e-2, atol=2e-2)
    graphs = {name: graph_of(lambda s=setting: call(*s)) for name, *setting in cands}
    # The reduction of the dweight partials alone (2 programs per SM), the two ways, side by side.
    tail = torch.randn(2 * sms, d_model, device="cuda", dtype=torch.float32)
    tails = {"tail: torch sum + cast": lambda: tail.sum(0).to(dtype),
             "tail: column_sums_kernel": lambda: fused_launch.summed_partials(tail, dtype)}
    torch.testing.assert_close(tails["tail: column_sums_kernel"](), tails["tail: torch sum + cast"](), rtol=1e-2,
                               atol=1e-2)  # fmt: skip
    graphs.update({name: graph_of(fn) for name, fn in tails.items()})
    copy_graph = graph_of(lambda: dst.copy_(src))
    times: dict[str, list[float]] = {name: [] for name in graphs}
    copy_ms = []
    for _ in range(rounds):
        copy_ms.append(per_call_ms(copy_graph))
        for name, graph in graphs.items():
            times[name].append(per_call_ms(graph))
    copy = statistics.median(copy_ms)
    default = statistics.median(times["default"])
    rows = []
    for name, programs, warps, tile, prefetch, _, maxnreg, chunk, stage_count in cands:
        ms = statistics.median(times[name])
        kernel = facts.get((warps, tile, prefetch, maxnreg, chunk, stage_count)) or kernel_facts(None)
        rows.append(dict(dtype=dtype_name, norm=norm, d_model=d_model, candidate=name, programs=programs,
                         num_warps=warps, rows_per_tile=tile, prefetch=prefetch, maxnreg=maxnreg, chunk=chunk,
                         stages=stage_count,
                         p50_ms=ms, gbps=bytes_moved / ms / 1e6, pct_of_copy=100 * copy / ms, over_default=ms / default,
                         rounds=rounds, copy_ms=copy, **kernel))  # fmt: skip
        print(f"{dtype_name} {norm} D={d_model:5d} {name:34s} programs={programs:5d} warps={warps:2d} rows={tile} "
              f"{ms * 1e3:8.1f} us  {100 * copy / ms:5.1f}% of copy  x{ms / default:.3f} of default  "
              f"regs={kernel['n_regs']} spills={kernel['n_spills']} per SM={kernel['resident_per_sm']}", flush=True)
    for name in tails:
        ms = statistics.median(times[name])
        rows.append(dict(dtype=dtype_name, norm=norm, d_model=d_model, candidate=name, programs=2 * sms, p50_ms=ms,
                         over_default=ms / default, rounds=rounds, copy_ms=copy))  # fmt: skip
        print(f"{dtype_name} {norm} D={d_model:5d} {name:34s} {ms * 1e3:8.2f} us", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_csv")
    parser.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--widths", default=",".join(map(str, WIDTHS)), help="comma-separated D values")
    parser.add_argument("--maxnreg", default="", help="comma-separated register caps to try (e.g. 128,96)")
    parser.add_argument("--chunked", action="store_true", help="time scripts/fused_bwd_chunked.py's prototype too")
    parser.add_argument("--norm", default="rms", choices=("rms", "layer"),
                        help="the norm's backward (the chunked prototype is RMSNorm only)")
    parser.add_argument("--stages", default="", help="comma-separated pipeline depths to try (e.g. 2,3,4)")
    parser.add_argument("--no-grid", action="store_true",
                        help="leave out the uncapped grids, warps and row tiles (time the capped and the default only)")
    args = parser.parse_args()
    sms = sm_count(torch.device("cuda"))
    widths = [int(w) for w in args.widths.split(",")]
    maxnregs = tuple(int(cap) for cap in args.maxnreg.split(",") if cap)
    stages = tuple(int(n) for n in args.stages.split(",") if n)
    rows = [row for d_model in widths
            for row in probe_width(d_model, args.dtype, sms, args.rounds, maxnregs, args.chunked, args.norm,
                                   not args.no_grid, stages)]
    with open(args.out_csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), restval="")
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
