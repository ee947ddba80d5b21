"""What both examples share: a toy language to learn, their command line, and the training loop."""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn


def counting_sequences(vocab_size: int, batch: int, seq_len: int) -> torch.Tensor:
    """A learnable toy language: each sequence counts up from a random start by a stride of 1-3."""
    starts = torch.randint(vocab_size, (batch, 1))
    strides = torch.randint(1, 4, (batch, 1))
    return (starts + strides * torch.arange(seq_len + 1)) % vocab_size


def example_arguments(doc: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return parser.parse_args()


def train(model: nn.Module, vocab_size: int, seq_len: int, steps: int, device: str, lr: float) -> None:
    """Next-token training with Adam on counting sequences; prints the loss every 10 steps."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for step in range(1, steps + 1):
        tokens = counting_sequences(vocab_size, batch=16, seq_len=seq_len).to(device)
        logits = model(tokens[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step == 1 or step % 10 == 0 or step == steps:
            print(f"step {step:3d}  loss {loss.item():.3f}")
