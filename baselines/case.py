"""What every implementation is given: one dropout problem, described, not yet allocated."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from kernels.cpu_path import mask_shape_of


@dataclass(frozen=True)
class DropoutCase:
    """Drop elements of an `x` of `shape` and `dtype` with probability `p`, one mask shared along
    `shared_dims` (`()` = element-wise dropout)."""

    shape: tuple[int, ...]
    shared_dims: tuple[int, ...]
    p: float
    dtype: torch.dtype
    device: torch.device

    @property
    def mask_shape(self) -> tuple[int, ...]:
        """x's shape with the shared dims set to 1 (the op's own definition)."""
        return mask_shape_of(self.shape, self.shared_dims)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def mask_numel(self) -> int:
        return math.prod(self.mask_shape)

    @property
    def itemsize(self) -> int:
        return torch.empty((), dtype=self.dtype).element_size()


@dataclass(frozen=True)
class AddNormCase(DropoutCase):
    """The fused family's problem: `h = residual + dropout(x); y = norm(h)` over the last dim of
    `shape` (D), with `norm` "rms", "layer" or "none" and its `eps`; x and residual of one shape
    and dtype, the norm's weight (and LayerNorm's bias) of shape (D,)."""

    norm: str = "rms"
    eps: float = 1e-6

    @property
    def width(self) -> int:
        return self.shape[-1]

    @property
    def norm_vectors(self) -> int:
        """The norm's (D,) parameters an implementation takes after x and residual: RMSNorm's
        weight, LayerNorm's weight and bias, none without a norm."""
        return {"rms": 1, "layer": 2, "none": 0}[self.norm]


class NotApplicable(Exception):
    """An implementation has no way to run this case (recorded as a `skipped` row, with the reason)."""
