"""Activation checkpointing of one block, switched by a flag the workload sets."""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint


def maybe_checkpoint(block, x, enabled: bool):
    """block(x), recomputed in backward instead of stored when `enabled` and autograd is recording.

    Non-reentrant checkpointing saves and restores the RNG state around the recompute (CPU and the
    devices of x), so a dropout that draws from torch's generator draws the same mask twice.
    """
    if enabled and torch.is_grad_enabled():
        return checkpoint(block, x, use_reentrant=False)
    return block(x)
