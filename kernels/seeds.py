"""Seeds: the forms a seed takes, the range a given one must lie in, and drawing one from torch's
generator (in eager code, under CUDA-graph capture, and in compiled code by a custom op).

A seed is a 64-bit value (kernels/mask_stream.py). The op keeps it as a Python int in int64 form,
as a one-element int64 tensor on the device (a seed given as a tensor, or drawn in compiled code),
or, under CUDA-graph capture, as a `GeneratorState` from which the kernel derives it per replay.
"""

from __future__ import annotations

import itertools
import operator
from dataclasses import dataclass

import torch

from . import fast_path
from .mask_stream import seed_from_generator, to_int64

# torch.manual_seed's range: a seed is a 64-bit value, negative ones taken modulo 2**64.
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class GeneratorState:
    """A seed that lives on the device: the generator's seed and Philox offset (one-element int64
    tensors; under capture they alias the generator's own memory, which each replay refreshes) and
    the offset inside the CUDA graph. The kernel derives the seed as `draw_seed` would (SEED_MODE 2),
    so each replay draws a fresh mask with no extra kernel."""

    seed: torch.Tensor
    offset: torch.Tensor
    offset_in_graph: int


def _device_randint(device: torch.device) -> torch.Tensor:
    return torch.randint(_INT64_MIN, _INT64_MAX, (1,), device=device, dtype=torch.int64)


def draw_seed(device: torch.device):
    """A fresh seed from torch's generator of `device`: an int, or a device seed under capture.

    CUDA: while a CUDA graph is being captured, the seed is the generator's graph-safe state
    (`GeneratorState`: the kernel derives the seed on the device, so each replay draws a new mask and
    a replay after `torch.manual_seed(s)` draws the mask an eager call after `torch.manual_seed(s)`
    would); without the C++ extension, a `torch.randint` on the device. Otherwise no kernel is
    launched: the seed is `mask_stream.seed_from_generator` of the generator's (initial seed, Philox
    offset), and the offset advances by 4 as any random op's would; `torch.manual_seed`,
    `torch.cuda.set_rng_state` and checkpoint recomputation therefore reproduce it. CPU: one
    `torch.randint` from the default generator. Meta: 0, nothing drawn (a meta tensor has no data,
    so no seed changes what the op gives it).
    """
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        if torch.cuda.is_current_stream_capturing():
            state = fast_path.philox_state(index)
            return GeneratorState(*state) if state is not None else _device_randint(device)
        generator = torch.cuda.default_generators[index]
        offset = generator.get_offset()
        generator.set_offset(offset + 4)
        return seed_from_generator(generator.initial_seed(), offset)
    if device.type == "cpu":
        return int(torch.randint(_INT64_MIN, _INT64_MAX, (1,), dtype=torch.int64))
    if device.type == "meta":
        return 0
    return int(_device_randint(device).item())


def checked_seed(seed):
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
    elif getattr(seed, "ndim", 0) != 0:  # a numpy array of any shape
        raise TypeError(
            f"seed must be None, an int or an integer tensor, got a {type(seed).__name__} of shape "
            f"{tuple(seed.shape)}: give int(seed.item()) or torch.as_tensor(seed) for a one-element array"
        )
    else:
        value = operator.index(seed)  # numpy integers
    if not SEED_MIN <= value <= SEED_MAX:
        raise ValueError(f"seed must be in [-2**63, 2**64 - 1] (torch.manual_seed's range), got {value}")
    return to_int64(value)


def resolved_seed(seed, device: torch.device):
    """A checked seed (see checked_seed) as the kernel takes it: an int, or an int64 tensor on the
    device when the seed lives there; None draws one (draw_seed)."""
    if seed is None:
        return draw_seed(device)
    if isinstance(seed, torch.Tensor):
        if seed.device == device and device.type != "cpu":
            return seed.reshape(1).to(torch.int64)
        return to_int64(int(seed.reshape(()).item()))
    return seed


# ---- the seed of compiled code -------------------------------------------------------------------


@torch.library.custom_op(
    "seeded_variational_dropout::draw_seed", mutates_args=(), tags=(torch.Tag.nondeterministic_seeded,)
)
def draw_seed_op(call_index: int, *, device: torch.device) -> torch.Tensor:
    """`draw_seed` as one int64 on `device`, for compiled code: an op the compiler cannot see into,
    so the seed is drawn when the compiled code runs, from the same generator state an eager call
    reads. (A `torch.randint` in the graph is Inductor's to replace with its own random stream: its
    masks did not follow `torch.manual_seed` as eager ones do, and on a GPU they differed between a
    process that compiled the model and one that loaded it from the compile cache.)

    `call_index` differs between the draws of one graph (`next_traced_draw`) and is otherwise unused:
    common-subexpression elimination merges identical op calls (it spares only aten's random ops),
    which would give two dropout calls on the same x one mask. The partitioner saves the seed for
    backward (it recomputes no op outside its allowlist); under activation checkpointing, where it
    must recompute, the `nondeterministic_seeded` tag makes it replay the generator state the forward
    draw saw, so backward still gets the forward's seed. `device` is keyword-only because that replay
    finds the device in a `device` keyword (or a tensor argument; this op has none).
    """
    if device.type == "cuda" and torch.cuda.is_current_stream_capturing():
        # A seed made on the host would be baked into the graph; a device randint is drawn per replay.
        return _device_randint(device)
    return torch.full((1,), draw_seed(device), dtype=torch.int64, device=device)


@draw_seed_op.register_fake
def _(call_index, *, device):
    return torch.empty(1, dtype=torch.int64, device=device)


def traced_seed(seed, device: torch.device) -> torch.Tensor:
    """The seed of a call traced by torch.compile, as the one-element int64 tensor on `device` the
    traced ops take: None draws one when the compiled code runs (`draw_seed_op`), an int becomes a
    constant tensor, a tensor is used as given."""
    if seed is None:
        seed = draw_seed_op(next_traced_draw(), device=device)
    elif not isinstance(seed, torch.Tensor):
        seed = torch.tensor([seed], dtype=torch.int64, device=device)
    return seed.reshape(1).to(torch.int64)


_traced_draws = itertools.count()


@torch.compiler.assume_constant_result
def next_traced_draw() -> int:
    """A new number each time torch.compile traces a seed draw: run while tracing, a constant in the
    graph (no guard on it, so no recompilation), distinct for every draw the graph holds."""
    return next(_traced_draws)
