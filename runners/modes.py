"""fwd, bwd and fwd_bwd as calls a timer can repeat: `reset()` between calls, then `call()`.

Inputs are built by the caller, outside every timed region, the same way for every implementation.
`reset()` sets `x.grad = None` (grad_to_none), so a backward writes a fresh gradient instead of
accumulating into the last one (which would add a read and a write to every call).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class ModeCall:
    call: Callable[[], object]
    reset: Callable[[], None]


def make_mode_call(forward, x: torch.Tensor, grad_out: torch.Tensor, mode: str) -> ModeCall:
    """`x` must require grad: every mode runs the training forward (autograd records the graph)."""

    def reset():
        x.grad = None

    if mode == "fwd":
        return ModeCall(call=lambda: forward(x), reset=reset)
    if mode == "bwd":
        # The forward runs once, here, outside the timed region; each call reuses its graph.
        y = forward(x)
        return ModeCall(call=lambda: y.backward(grad_out, retain_graph=True), reset=reset)
    if mode == "fwd_bwd":
        return ModeCall(call=lambda: forward(x).backward(grad_out), reset=reset)
    raise ValueError(f"unknown mode {mode!r}")


@dataclass
class Inputs:
    """What a forward takes (`tensors`, the first is x; those that require grad get gradients) and
    the gradients of its outputs (`grad_outs`, one per output)."""

    tensors: tuple[torch.Tensor, ...]
    grad_outs: tuple[torch.Tensor, ...]

    @property
    def x(self) -> torch.Tensor:
        return self.tensors[0]

    @property
    def grad_out(self) -> torch.Tensor:
        return self.grad_outs[0]


def make_inputs(shape, dtype: torch.dtype, device: torch.device) -> Inputs:
    """The standalone op's: x requiring grad and the gradient of y."""
    x = torch.randn(shape, dtype=dtype, device=device, requires_grad=True)
    return Inputs(tensors=(x,), grad_outs=(torch.randn(shape, dtype=dtype, device=device),))


def fresh_leaves(tensors: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """New leaf tensors over the same memory, for one mode call. Autograd keeps one gradient
    accumulator per leaf while any graph refers to it, and it belongs to the stream it was made on.
    A graph left alive by an earlier call on the default stream (a build's check, a graph in a
    reference cycle not yet collected) would hand its accumulator to a CUDA-graph capture on a side
    stream: the backward then waits on the default stream, which invalidates the capture (and leaves
    the process's RNG and memory pool in capture state). A fresh leaf has no accumulator yet."""
    return tuple(t.detach().requires_grad_() if t.requires_grad else t for t in tensors)


def make_family_mode_call(forward, inputs: Inputs, mode: str) -> ModeCall:
    """As `make_mode_call`, for a forward of several inputs and outputs: `forward(*inputs.tensors)`,
    backward through every output with `inputs.grad_outs`."""
    tensors, grad_outs = fresh_leaves(inputs.tensors), inputs.grad_outs
    if len(tensors) == 1 and len(grad_outs) == 1:
        return make_mode_call(forward, tensors[0], grad_outs[0], mode)

    def reset():
        for tensor in tensors:
            tensor.grad = None

    def backward(outputs, retain_graph=False):
        torch.autograd.backward(outputs, grad_outs, retain_graph=retain_graph)

    if mode == "fwd":
        return ModeCall(call=lambda: forward(*tensors), reset=reset)
    if mode == "bwd":
        outputs = forward(*tensors)  # once, outside the timed region; each call reuses its graph
        return ModeCall(call=lambda: backward(outputs, retain_graph=True), reset=reset)
    if mode == "fwd_bwd":
        return ModeCall(call=lambda: backward(forward(*tensors)), reset=reset)
    raise ValueError(f"unknown mode {mode!r}")


def mode_call_factory(forward, inputs: Inputs, mode: str) -> Callable[[], ModeCall]:
    """A timer makes the call itself (the CUDA-graph timer must run bwd's forward on its stream)."""
    return lambda: make_family_mode_call(forward, inputs, mode)
