"""The op on CPU tensors: the mask stream (`kernels/mask_stream.py`) applied to x in plain PyTorch,
bit for bit what the Triton kernel computes on a GPU, in bounded memory."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch

from .mask_stream import apply_mask, keep_mask

# Elements the CPU path handles at once: its temporaries (the random stream's int64s, a chunk of the
# product) stay a few tens of MB whatever x's size, and each torch call is still long enough that
# Python's share of the time is small.
CPU_CHUNK_ELEMENTS = 1 << 20


def mask_shape_of(shape: Sequence[int], shared_dims: Sequence[int]) -> tuple[int, ...]:
    """x's shape with the shared dims set to 1."""
    return tuple(1 if d in shared_dims else size for d, size in enumerate(shape))


def chunk_indices(shape: Sequence[int], chunk_elements: int):
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
    if x.numel() <= chunk_elements:  # one chunk: the mask broadcasts against x itself, no indexing
        apply_mask(x, keep, p, out=out)
        return out
    for index in chunk_indices(x.shape, chunk_elements):
        # The mask's part: the same index, but along shared dims (size 1 in the mask) the mask's only
        # row; an integer index drops that dim as it does in x[index], a slice keeps it to broadcast.
        mask_index = tuple(
            (0 if isinstance(i, int) else slice(None)) if d in shared_dims else i for d, i in enumerate(index)
        )
        apply_mask(x[index], keep[mask_index], p, out=out[index])
    return out
