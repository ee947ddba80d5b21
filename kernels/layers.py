"""`SeededVariationalDropout`: the op as an `nn.Module`, a drop-in for LockedDropout."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .functional import canonical_dim, dropout_probability, seeded_variational_dropout


class SeededVariationalDropout(nn.Module):
    """Variational dropout with one mask shared along `dim`; identity in eval mode.

    Each training-mode call draws a fresh seed from torch's generator of the input's device. p and
    dim are checked here, as `seeded_variational_dropout` checks them, so a bad one fails at
    construction: in particular SeededVariationalDropout(0.5, True) is a TypeError (the second
    argument is dim, not nn.Dropout's inplace).
    """

    def __init__(self, p: float = 0.5, dim: int | Sequence[int] = 1) -> None:
        super().__init__()
        self.p = dropout_probability(p)
        self.dim = canonical_dim(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return seeded_variational_dropout(x, p=self.p, dim=self.dim, training=self.training)

    def __prepare_scriptable__(self):
        """torch.jit.script calls this first: refuse with a message instead of a TorchScript error."""
        raise RuntimeError(
            "SeededVariationalDropout cannot be compiled by torch.jit.script (the op is Python and C++, not "
            "TorchScript): use torch.compile, or torch.jit.trace in eval mode"
        )

    def extra_repr(self) -> str:
        return f"p={self.p}, dim={self.dim}"
