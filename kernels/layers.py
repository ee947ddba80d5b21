"""The ops as `nn.Module`s: `SeededVariationalDropout`, a drop-in for LockedDropout, and
`SeededDropoutAddNorm`, the residual add with its dropout and norm fused."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .functional import canonical_dim, dropout_probability, seeded_variational_dropout
from .fused_launch import NORMS
from .fused_residual_norm import seeded_dropout_add_norm


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


class SeededDropoutAddNorm(nn.Module):
    """`y, h = seeded_dropout_add_norm(x, residual, ...)` with the norm's weight (and bias) as
    parameters: the residual add of a transformer block with its dropout and the next norm fused.

    `forward(x, residual)` returns (y, h): pre-norm blocks feed y to the next sublayer and carry h;
    post-norm blocks take y. Each training-mode call draws a fresh seed from torch's generator of
    x's device; eval mode gives h = residual + x. `norm=None` has no parameters (y is h). `bias`:
    None gives LayerNorm a bias and RMSNorm none, as torch's modules have.
    """

    def __init__(
        self,
        d_model: int,
        p: float = 0.1,
        dim: int | Sequence[int] = 1,
        norm: str | None = "rms",
        eps: float = 1e-6,
        bias: bool | None = None,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be 'rms', 'layer' or None, got {norm!r}")
        self.d_model, self.norm, self.eps = d_model, norm, eps
        self.p = dropout_probability(p)
        self.dim = canonical_dim(dim)
        has_bias = norm == "layer" if bias is None else bool(bias) and norm is not None
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.ones(d_model, **factory)) if norm is not None else None
        self.bias = nn.Parameter(torch.zeros(d_model, **factory)) if has_bias else None

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return seeded_dropout_add_norm(x, residual, p=self.p, dim=self.dim, training=self.training,
                                       norm=self.norm, weight=self.weight, bias=self.bias, eps=self.eps)  # fmt: skip

    def extra_repr(self) -> str:
        return (f"{self.d_model}, p={self.p}, dim={self.dim}, norm={self.norm!r}, eps={self.eps}, "
                f"bias={self.bias is not None}")  # fmt: skip
