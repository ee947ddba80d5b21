"""The locked-dropout layers the benchmark models choose between, by name.

Every layer here takes activations `x` of shape (B, T, D) and shares its mask along dim 1 (time for
the LSTM, sequence for the transformer): element (b, t, d) is kept iff mask (b, d) is kept.

- `seeded`: `kernels.SeededVariationalDropout`, the product op. Keeps only a seed for backward.
- `eager`: `LockedDropout`, what AWD-LSTM and AllenNLP code does today: dropout on a tensor of
  ones of the mask shape, times x. Autograd stores the (B, 1, D) mask for backward.
- `native`: `NativeLockedDropout`, the closest thing torch ships: `F.dropout1d` (per-channel
  dropout) on the transposed view (B, D, T), which zeroes channel (b, d) for every t.

`fused` is no layer: the transformer's blocks then use `kernels.SeededDropoutAddNorm`, the dropout
fused into the residual add and the norm after it (`runners.models.transformer.FusedPreNormBlock`).
The `compile` implementation is `eager` with the model's loss under `torch.compile`;
compiling is not a property of the layer, so the workload does it (`runners.model_workload`).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from kernels import SeededVariationalDropout

DROPOUT_IMPLS = ("seeded", "eager", "native")  # the layers
FUSED = "fused"  # not a layer: the transformer's blocks fuse it with the add and norm (FusedPreNormBlock)
MODEL_DROPOUTS = (*DROPOUT_IMPLS, FUSED)  # what a model workload impl may name
SHARED_DIM = 1  # (B, T, D): the mask is shared along T


class LockedDropout(nn.Module):
    """AWD-LSTM-style locked dropout: the mask is a tensor that autograd keeps for backward."""

    def __init__(self, p: float = 0.5, dim: int = SHARED_DIM):
        super().__init__()
        self.p = p
        self.dim = dim

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        mask_shape = list(x.shape)
        mask_shape[self.dim] = 1
        # mask = keep / (1 - p), one value per (b, d); saved by autograd for backward
        mask = F.dropout(x.new_ones(mask_shape), self.p, training=True)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}, dim={self.dim}"


class NativeLockedDropout(nn.Module):
    """Locked dropout from torch's own ops: `F.dropout1d` zeroes whole channels of (N, C, L).

    For x of shape (B, T, D) the channels of the transposed view (B, D, T) are the (b, d) pairs, so
    one decision per (b, d) holds for every t. Only 3-D inputs with the mask shared along dim 1.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = p

    def forward(self, x):
        if x.dim() != 3:
            raise ValueError(f"NativeLockedDropout takes (B, T, D) inputs, got shape {tuple(x.shape)}")
        return F.dropout1d(x.transpose(1, 2), self.p, self.training).transpose(1, 2)

    def extra_repr(self) -> str:
        return f"p={self.p}, dim={SHARED_DIM}"


def make_locked_dropout(dropout_impl: str, p: float) -> nn.Module:
    """A locked-dropout layer for (B, T, D) activations, its mask shared along T."""
    if dropout_impl == "seeded":
        return SeededVariationalDropout(p=p, dim=SHARED_DIM)
    if dropout_impl == "eager":
        return LockedDropout(p=p, dim=SHARED_DIM)
    if dropout_impl == "native":
        return NativeLockedDropout(p=p)
    raise ValueError(f"unknown dropout implementation {dropout_impl!r}; expected one of {DROPOUT_IMPLS}")
