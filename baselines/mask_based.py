"""The mask-based implementations users pick today: a mask tensor in memory, kept for backward.

- `eager`: dropout of a tensor of ones of the mask shape, times x (AllenNLP's
  `InputVariationalDropout`, AWD-LSTM's `LockedDropout`).
- `compile`: the same function under `torch.compile(fullgraph=True)`, compiled afresh per case
  (`compiled_for_case`, which the harness's compiled seeded op uses too).
- `native`: torch's own ops where one fits: `F.dropout1d` on a view whose last dim is the shared
  one, `F.dropout2d` for (N, C, H, W) sharing H and W, `F.dropout` for element-wise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from baselines.case import DropoutCase, NotApplicable
from baselines.registry import fused_dropout_bytes, mask_based_bytes, register, streaming_bytes


@register("eager", bytes_moved=mask_based_bytes)
def build_eager(case: DropoutCase):
    mask_shape, p = case.mask_shape, case.p

    def eager_locked_dropout(x):
        # mask = keep / (1 - p) per mask element; autograd saves it for backward
        mask = F.dropout(x.new_ones(mask_shape), p, training=True)
        return x * mask

    return eager_locked_dropout


class CompileFallback(RuntimeError):
    """torch.compile ran the function without compiling it (e.g. past its recompile limit)."""


def _raise_recompile_limit(limit: int) -> None:
    # The name changed across torch versions (cache_size_limit -> recompile_limit).
    config = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(config, name):
            setattr(config, name, max(getattr(config, name), limit))


def compiled_graph_count() -> int:
    """Graphs torch.compile has compiled in this process so far."""
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


# Inductor fuses the mask into its kernels, and what it saves for backward (a bool or float mask)
# is its partitioner's choice: only the x/y traffic every implementation must move is counted, a lower
# bound. (Charging the eager mask model measured element-wise bf16 bwd above copy bandwidth on the
# H200: Inductor saved a 1-byte mask. The CSVs up to git 5ef4727 were written with that model.)
@register("compile", bytes_moved=streaming_bytes)
def build_compile(case: DropoutCase, backend="inductor", mode=None, dynamic=False, recompile_limit=64):
    """`eager` under torch.compile, compiled here (forward and backward), outside any timed region."""
    return compiled_for_case(build_eager(case), case, backend, mode, dynamic, recompile_limit)


def compiled_for_case(function, case: DropoutCase, backend="inductor", mode=None, dynamic=False, recompile_limit=64,
                      example=None):  # fmt: skip
    """`function` (x -> y) under torch.compile(fullgraph=True), compiled here for the case's shape,
    forward and backward, outside any timed region. `example`: a function of the case giving the
    inputs to compile with (tensors that require grad; the function may return a tuple), for
    functions of more than x.

    The runner resets Dynamo's caches once per case, before it builds the case's implementations
    (`runners.sweep.run_point`; a reset here would drop the graphs of another compiled
    implementation built before this one), so every case compiles afresh instead of silently
    falling back to eager past the recompile limit, which is raised here as well; a call that
    compiles no graph raises CompileFallback. One compiled function serves fwd, bwd and fwd_bwd:
    x requires grad in every mode, so no mode recompiles (the runner also fails a row if anything
    compiles while it is being timed).
    """
    _raise_recompile_limit(recompile_limit)
    if hasattr(torch._functorch.config, "donated_buffer"):
        # bwd mode times backward alone with retain_graph=True, which a backward compiled with
        # donated buffers refuses; donation only lets backward reuse a saved tensor's memory.
        torch._functorch.config.donated_buffer = False
    compiled = torch.compile(function, fullgraph=True, dynamic=dynamic, backend=backend, mode=mode)

    graphs_before = compiled_graph_count()
    inputs = example(case) if example else (torch.randn(case.shape, dtype=case.dtype, device=case.device,
                                                        requires_grad=True),)  # fmt: skip
    outputs = compiled(*inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    torch.autograd.backward(outputs, [torch.ones_like(out) for out in outputs])
    if compiled_graph_count() == graphs_before:
        raise CompileFallback("torch.compile compiled no graph for this case: it ran eagerly")
    return compiled


def native_bytes(case: DropoutCase, mode: str) -> int:
    # dropout1d / dropout2d: their noise tensor (one value per channel) is the mask of the
    # mask-based model. Element-wise F.dropout is one fused kernel that keeps a bool mask.
    return fused_dropout_bytes(case, mode) if not case.shared_dims else mask_based_bytes(case, mode)


@register("native", bytes_moved=native_bytes)
def build_native(case: DropoutCase):
    p, dims, ndim = case.p, case.shared_dims, len(case.shape)
    if not dims:
        return lambda x: F.dropout(x, p, training=True)
    if ndim == 4 and dims == (2, 3):
        return lambda x: F.dropout2d(x, p, training=True)
    if ndim == 3 and len(dims) == 1:
        # dropout1d zeroes whole channels of (N, C, L): move the shared dim last, as a view.
        order = [d for d in range(3) if d != dims[0]] + [dims[0]]
        inverse = [order.index(d) for d in range(3)]
        return lambda x: F.dropout1d(x.permute(order), p, training=True).permute(inverse)
    raise NotApplicable(f"no torch op shares one mask along dims {dims} of a {ndim}-d tensor")
