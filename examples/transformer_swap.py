"""A pre-norm transformer with seeded variational dropout on its residual branches: a one-line swap.

Each block adds dropout(attention(norm(x))) and dropout(mlp(norm(x))) to x. With `nn.Dropout` every
element draws its own decision and autograd keeps the mask for backward. `SeededVariationalDropout`
with `dim=1` draws one decision per (sequence, feature), shared along the sequence (locked
dropout), and keeps only a seed for backward; `dim=()` would keep `nn.Dropout`'s element-wise
masks instead. The swap is the line marked `# was:`.

Run (CPU is fine), with the package installed (`make install`, or `pip install .`):
    python examples/transformer_swap.py [--steps 40]
"""

from __future__ import annotations

import torch
from seeded_variational_dropout import SeededVariationalDropout
from torch import nn
from toy_training import example_arguments, train


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, p: float):
        super().__init__()
        self.attention_norm = nn.LayerNorm(d_model)
        self.attention = nn.MultiheadAttention(d_model, n_heads, batch_first=True)
        self.mlp_norm = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))
        self.dropout = SeededVariationalDropout(p, dim=1)  # was: self.dropout = nn.Dropout(p)

    def forward(self, x, causal_mask):
        h = self.attention_norm(x)
        x = x + self.dropout(self.attention(h, h, h, attn_mask=causal_mask, need_weights=False)[0])
        return x + self.dropout(self.mlp(self.mlp_norm(x)))


class TransformerLM(nn.Module):
    def __init__(self, vocab_size: int, max_len: int, d_model: int = 32, n_heads: int = 4, layers: int = 2, p=0.1):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.positions = nn.Parameter(torch.zeros(max_len, d_model))
        self.blocks = nn.ModuleList(Block(d_model, n_heads, p) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.decoder = nn.Linear(d_model, vocab_size)

    def forward(self, tokens):
        seq_len = tokens.shape[1]
        causal_mask = torch.ones(seq_len, seq_len, dtype=torch.bool, device=tokens.device).triu(1)
        x = self.embedding(tokens) + self.positions[:seq_len]
        for block in self.blocks:
            x = block(x, causal_mask)
        return self.decoder(self.norm(x))


def main() -> None:
    args = example_arguments(__doc__)
    torch.manual_seed(0)
    vocab_size, seq_len = 50, 20
    model = TransformerLM(vocab_size, max_len=seq_len).to(args.device)
    print(model.blocks[0].dropout)
    train(model, vocab_size, seq_len=seq_len, steps=args.steps, device=args.device, lr=3e-3)


if __name__ == "__main__":
    main()
