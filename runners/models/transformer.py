"""A pre-norm transformer block stack with locked dropout on the residual branches.

Each block: x = x + dropout(attention(norm(x))); x = x + dropout(mlp(norm(x))), the dropout mask
shared along the sequence (dim 1 of (B, T, D)). The blocks are encoder blocks (self-attention and
an MLP, no cross-attention); the attention is causal so that the same next-token corpus as the
LSTM trains them. Learned position embeddings, a final norm, a decoder tied to the embedding.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import nn

from kernels import SeededDropoutAddNorm
from runners.models.checkpointing import maybe_checkpoint


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not a multiple of n_heads={n_heads}")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x):
        batch, seq_len, d_model = x.shape
        # (B, T, 3D) -> three of (B, heads, T, D / heads)
        q, k, v = self.qkv(x).view(batch, seq_len, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(attended.transpose(1, 2).reshape(batch, seq_len, d_model))


class PreNormBlock(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int, make_dropout: Callable[[], nn.Module]):
        super().__init__()
        self.attention_norm = nn.LayerNorm(d_model)
        self.attention = CausalSelfAttention(d_model, n_heads)
        self.attention_dropout = make_dropout()
        self.mlp_norm = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))
        self.mlp_dropout = make_dropout()

    def forward(self, x):
        x = x + self.attention_dropout(self.attention(self.attention_norm(x)))
        return x + self.mlp_dropout(self.mlp(self.mlp_norm(x)))


class FusedPreNormBlock(nn.Module):
    """`PreNormBlock` with the fused op (`kernels.SeededDropoutAddNorm`): the attention branch's
    dropout, the residual add and the MLP's LayerNorm in one op, which returns the MLP's input and
    the new residual; the MLP branch's dropout and add in another (no norm: the next block's
    attention norm is its own module). Same parameters and shapes as `PreNormBlock`."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, p: float):
        super().__init__()
        self.attention_norm = nn.LayerNorm(d_model)
        self.attention = CausalSelfAttention(d_model, n_heads)
        # nn.LayerNorm's eps and affine parameters (weight ones, bias zeros), as mlp_norm above
        self.attention_dropout_add_mlp_norm = SeededDropoutAddNorm(d_model, p, dim=1, norm="layer", eps=1e-5)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))
        self.mlp_dropout_add = SeededDropoutAddNorm(d_model, p, dim=1, norm=None)

    def forward(self, x):
        mlp_input, x = self.attention_dropout_add_mlp_norm(self.attention(self.attention_norm(x)), x)
        _, x = self.mlp_dropout_add(self.mlp(mlp_input), x)
        return x


class PreNormTransformerLM(nn.Module):
    """tokens (B, T) -> logits (B, T, vocab_size); T at most max_seq_len."""

    def __init__(
        self,
        vocab_size: int,
        max_seq_len: int,
        d_model: int,
        n_heads: int,
        d_ff: int,
        num_layers: int,
        make_dropout: Callable[[], nn.Module] | None,
        fused_p: float | None = None,
    ):
        """`fused_p`: blocks with the fused dropout + add + norm op of that p (`FusedPreNormBlock`)
        instead of `make_dropout`'s layers."""
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Embedding(max_seq_len, d_model)
        self.blocks = nn.ModuleList(
            PreNormBlock(d_model, n_heads, d_ff, make_dropout) if fused_p is None
            else FusedPreNormBlock(d_model, n_heads, d_ff, fused_p)
            for _ in range(num_layers)
        )  # fmt: skip
        self.final_norm = nn.LayerNorm(d_model)
        self.decoder = nn.Linear(d_model, vocab_size)
        self.decoder.weight = self.embedding.weight
        # GPT-2's initialisation of the embeddings: small, so that the tied decoder starts near
        # uniform logits (loss ~ ln(vocab_size)) instead of N(0, 1) * sqrt(d_model)
        nn.init.normal_(self.embedding.weight, std=0.02)
        nn.init.normal_(self.position_embedding.weight, std=0.02)
        nn.init.zeros_(self.decoder.bias)
        self.checkpoint_layers = False

    def forward(self, tokens):
        positions = self.position_embedding.weight[: tokens.shape[1]]
        x = self.embedding(tokens) + positions
        for block in self.blocks:
            x = maybe_checkpoint(block, x, self.checkpoint_layers)
        return self.decoder(self.final_norm(x))
