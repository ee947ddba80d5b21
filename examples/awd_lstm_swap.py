"""AWD-LSTM with seeded variational dropout: a one-line swap.

AWD-LSTM (Merity et al., 2017) applies `LockedDropout` to the embeddings, between LSTM layers and
to the output: one mask per sequence and feature, shared along time. Its `LockedDropout` stores
that mask for backward. `SeededVariationalDropout` draws the same kind of mask from torch's
generator but keeps only a seed, and regenerates the mask in backward. The model below is
batch-first, (batch, time, features), so time is dim 1. The swap is the line marked `# was:`.

Run (CPU is fine), with the package installed (`make install`, or `pip install .`):
    python examples/awd_lstm_swap.py [--steps 40]
"""

from __future__ import annotations

import torch
from seeded_variational_dropout import SeededVariationalDropout
from torch import nn
from toy_training import example_arguments, train


class LockedDropout(nn.Module):
    """AWD-LSTM's LockedDropout (batch-first): the (batch, 1, features) mask is kept for backward."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        mask = x.new_empty(x.size(0), 1, x.size(2)).bernoulli_(1 - self.p) / (1 - self.p)
        return x * mask


def locked_dropout(p: float) -> nn.Module:
    return SeededVariationalDropout(p, dim=1)  # was: return LockedDropout(p)


class AWDLSTM(nn.Module):
    def __init__(self, vocab_size: int, embed_size: int, hidden_size: int, num_layers: int = 3, p: float = 0.4):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        sizes = [embed_size] + [hidden_size] * (num_layers - 1) + [embed_size]
        self.lstms = nn.ModuleList(nn.LSTM(sizes[i], sizes[i + 1], batch_first=True) for i in range(num_layers))
        self.dropouts = nn.ModuleList(locked_dropout(p) for _ in range(num_layers + 1))
        self.decoder = nn.Linear(embed_size, vocab_size)
        self.decoder.weight = self.embedding.weight  # tied, as in AWD-LSTM
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)

    def forward(self, tokens):
        x = self.dropouts[0](self.embedding(tokens))
        for lstm, dropout in zip(self.lstms, self.dropouts[1:], strict=True):
            x = dropout(lstm(x)[0])
        return self.decoder(x)


def main() -> None:
    args = example_arguments(__doc__)
    torch.manual_seed(0)
    vocab_size = 50
    model = AWDLSTM(vocab_size, embed_size=32, hidden_size=64).to(args.device)
    print(model.dropouts[0])
    train(model, vocab_size, seq_len=20, steps=args.steps, device=args.device, lr=1e-2)


if __name__ == "__main__":
    main()
