"""The public function: argument checks (x, p, dim, seed, as torch's dropout checks them), then the
dispatch of a call to the C++ hot path, the eager autograd Function, or the custom op that
`torch.compile` traces."""

from __future__ import annotations

import functools
import numbers
import operator
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch.autograd import forward_ad

from . import fast_path
from .autograd import SeededDropoutFunction, dropout_kernel_op, dropout_op
from .launch import dropout_any_device
from .seeds import checked_seed, resolved_seed, traced_seed

SUPPORTED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _is_numpy_bool(value) -> bool:
    """numpy's bool scalar (`np.bool_`), told without importing numpy: no number, no Python bool."""
    return type(value).__module__ == "numpy" and type(value).__name__ in ("bool_", "bool")


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
    elif _is_numpy_bool(p):  # 0 or 1
        value = float(bool(p))
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
    if getattr(d, "ndim", 0) != 0:  # a tensor or array of one element in a sequence: a nested sequence
        raise TypeError(_dim_message(dim))
    try:
        return operator.index(d)
    except TypeError:
        raise TypeError(_dim_message(dim)) from None


def canonical_dim(dim) -> int | tuple[int, ...]:
    """`dim` as a Python int or a tuple of Python ints, each element checked (TypeError otherwise);
    a generator or other iterable is read once, here. Ranges are checked against x (_normalized_dims)."""
    if type(dim) is int:  # the common cases first, without the general checks' cost
        return dim
    if type(dim) is tuple and all(type(d) is int for d in dim):
        return dim
    if hasattr(type(dim), "__index__") and getattr(dim, "ndim", 0) == 0:  # one dim (ints, 0-d tensors)
        return _one_dim(dim, dim)
    if isinstance(dim, (str, bytes, Mapping)) or not isinstance(dim, Iterable):  # a dict's keys are no dims
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
        normalized.append(int(d) % rank)  # int(): a dim traced as a symbolic int is specialized
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"dim {dim!r} names the same dimension more than once")
    return tuple(sorted(normalized)) if ndim > 0 else ()


# _normalized_dims for eager calls, by (canonical dim, rank): keys hold Python ints only
# (canonical_dim), so no two different arguments share an entry.
_shared_dims = functools.lru_cache(maxsize=4096)(_normalized_dims)


_TRANSFORMS_MESSAGE = (
    "{op} supports reverse-mode autograd only (loss.backward(), torch.autograd.grad, torch.compile): "
    "{what} is not supported. Call it outside the transform, or use {instead} there"
)


def _refuse_function_transforms(x: torch.Tensor, *others: torch.Tensor | None, op: str = "seeded_variational_dropout",
                                instead: str = "torch.nn.functional.dropout") -> None:  # fmt: skip
    """A clear RuntimeError under torch.func transforms (vmap, grad, jvp) and forward-mode AD (a dual
    tensor among x and `others`), which the op's autograd Function does not implement (they would
    fail deep inside, or lose the tangent). `op` and `instead` name the op and what to use there."""
    if torch._C._functorch.maybe_current_level() is not None:
        raise RuntimeError(_TRANSFORMS_MESSAGE.format(op=op, what="a torch.func transform (vmap, grad, jvp, ...)",
                                                      instead=instead))  # fmt: skip
    if forward_ad._current_level >= 0 and any(
        t is not None and forward_ad.unpack_dual(t).tangent is not None for t in (x, *others)
    ):
        raise RuntimeError(_TRANSFORMS_MESSAGE.format(op=op, what="forward-mode AD (a dual tensor)", instead=instead))


def _check_dense(tensor: torch.Tensor, name: str) -> None:
    if tensor.layout is not torch.strided or tensor.is_nested:
        layout = "nested" if tensor.is_nested else tensor.layout
        raise TypeError(f"{name} must be a dense (strided) tensor, got layout {layout}: give a dense tensor "
                        f"({name}.to_dense())")  # fmt: skip


def _training_flag(training) -> bool:
    """`training` as F.dropout takes it: a bool (numpy's too); anything else, a string such as
    "False" above all, is a TypeError rather than read by its truthiness."""
    if _is_numpy_bool(training):
        return bool(training)
    raise TypeError(f"training must be a bool, got {type(training).__name__} ({training!r})")


def _check_input(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    _check_dense(x, "x")
    if x.dtype not in SUPPORTED_DTYPES:
        names = ", ".join(str(d) for d in SUPPORTED_DTYPES)
        raise TypeError(f"seeded_variational_dropout does not support dtype {x.dtype}; supported: {names}")


def _inductor_can_launch(x: torch.Tensor, p: float, seed: torch.Tensor) -> bool:
    """Whether a traced call can go to `dropout_kernel_op`, whose launch Inductor generates: a 16- or
    32-bit CUDA tensor of more than 0 dims, the seed on its device, and 0 < p < 1. float64 needs the
    scale's 64-bit pattern: the custom op. Sizes are not read here: under Dynamo a symbolic size
    passes any test of its type, and a comparison would guard on it; the op itself sends dynamic or
    too-large layouts to the custom op (`autograd.dropout_kernel_op`)."""
    return x.is_cuda and x.dtype != torch.float64 and x.dim() > 0 and p < 1 and seed.device == x.device


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
    seed = checked_seed(seed)
    if type(training) is not bool:
        training = _training_flag(training)
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
        seed = traced_seed(seed, x.device)
        if _inductor_can_launch(x, p, seed):
            return dropout_kernel_op(x, seed, p, list(shared_dims))
        return dropout_op(x, seed, p, list(shared_dims))
    _refuse_function_transforms(x)
    shared_dims = _shared_dims(dim, x.dim())
    if x.is_cuda and p < 1 and (seed is None or type(seed) is int):
        fast = fast_path.module(dropout_any_device)
        if fast is not None:  # the C++ hot path: None when it has no launch for x's layout yet
            y = fast.forward(x, p, shared_dims, seed)
            if y is not None:
                return y
    seed = resolved_seed(seed, x.device)
    if x.requires_grad and torch.is_grad_enabled():
        return SeededDropoutFunction.apply(x, seed, p, shared_dims)
    return dropout_any_device(x, seed, p, shared_dims)  # nothing to differentiate: skip autograd
