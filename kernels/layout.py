"""How a strided tensor with shared dims maps onto the kernel's three-axis view.

The dropout kernels see every problem as a view `[O, S, I]`: `O` and `I` are the kept dims before
and after the shared ones (each collapsed into one axis), `S` the shared dims (collapsed too). Mask
element `m = o * I + i` is then exactly the row-major index into the compact mask shape (the
shared dims contribute nothing to it), so any split of the kept dims into a leading and a trailing
group gives the same mask. Offsets are `o * stride_o + s * stride_s + i * stride_i`, one set of
strides per tensor (input and output may differ).

`plan_view` finds such a view in the tensors' own strides, so transposed, sliced and expanded
(stride-0) tensors need no copy; it returns None when the shared dims are not adjacent or a group
is not collapsible, and the caller falls back to a contiguous copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class View3:
    """Sizes (O, S, I) and, per tensor, strides (stride_o, stride_s, stride_i) in elements."""

    sizes: tuple[int, int, int]
    strides: tuple[tuple[int, int, int], ...]


def _collapse(dims: Sequence[int], shape: Sequence[int], strides: Sequence[int]) -> tuple[int, int] | None:
    """(size, innermost stride) of dims collapsed into one axis, or None if the strides forbid it."""
    if not dims:
        return 1, 0
    for outer, inner in zip(dims, dims[1:], strict=False):
        if strides[outer] != strides[inner] * shape[inner]:
            return None
    size = 1
    for d in dims:
        size *= shape[d]
    return size, strides[dims[-1]]


def _view_from_groups(groups, shape, strides_per_tensor) -> View3 | None:
    collapsed = []
    for strides in strides_per_tensor:
        per_group = [_collapse(g, shape, strides) for g in groups]
        if any(c is None for c in per_group):
            return None
        collapsed.append(per_group)
    sizes = tuple(c[0] for c in collapsed[0])
    return View3(sizes, tuple(tuple(c[1] for c in per_group) for per_group in collapsed))


def plan_view(shape: Sequence[int], shared_dims: Sequence[int], strides_per_tensor) -> View3 | None:
    """The [O, S, I] view of tensors of `shape` with the given strides, or None.

    Size-1 dims are dropped first (they move no offset and no mask index). The remaining dims must
    read kept*, shared*, kept*; with no shared dims, the kept dims may split anywhere between O and
    I, and the split that leaves the longest collapsible I is taken.
    """
    shared = set(shared_dims)
    dims = [d for d in range(len(shape)) if shape[d] != 1]
    is_shared = [d in shared for d in dims]
    if any(is_shared):
        first = is_shared.index(True)
        last = len(is_shared) - 1 - is_shared[::-1].index(True)
        if not all(is_shared[first : last + 1]):
            return None
        splits = [(dims[:first], dims[first : last + 1], dims[last + 1 :])]
    else:
        splits = [(dims[:k], [], dims[k:]) for k in range(len(dims) + 1)]
    for groups in splits:
        view = _view_from_groups(groups, shape, strides_per_tensor)
        if view is not None:
            return view
    return None
