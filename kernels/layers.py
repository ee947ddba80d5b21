"""`SeededVariationalDropout`: the op as an `nn.Module`, a drop-in for LockedDropout."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from kernels.seeded_dropout import seeded_variational_dropout


class SeededVariationalDropout(nn.Module):
    """Variational dropout with one mask shared along `dim`; identity in eval mode.

    Each training-mode call draws a fresh seed from torch's generator of the input's device.
    """

    def __init__(self, p: float = 0.5, dim: int | Sequence[int] = 1) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability p has to be between 0 and 1, but got p={p!r}")
        self.p = float(p)
        self.dim = dim if isinstance(dim, int) else tuple(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return seeded_variational_dropout(x, p=self.p, dim=self.dim, training=self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, dim={self.dim}"
