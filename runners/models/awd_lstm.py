"""An AWD-LSTM-style language model (Merity et al., 2017) with a pluggable locked dropout.

embedding -> locked dropout -> [LSTM -> locked dropout] x num_layers -> decoder tied to the
embedding. The dropout after the last layer is AWD-LSTM's output dropout, the others its dropout
between layers. Every mask is shared along time (dim 1 of the batch-first (B, T, D) activations).

Left out of AWD-LSTM on purpose: weight drop (DropConnect on the hidden-to-hidden weights) and
embedding dropout; neither is the op under test. One `p` serves every locked dropout.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from runners.models.checkpointing import maybe_checkpoint


class LSTMLayer(nn.Module):
    """One LSTM layer and the locked dropout on its output: the unit that checkpointing wraps."""

    def __init__(self, input_size: int, hidden_size: int, dropout: nn.Module):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.dropout = dropout

    def forward(self, x):
        output, _ = self.lstm(x)
        return self.dropout(output)


class AWDLSTMLanguageModel(nn.Module):
    """tokens (B, T) -> logits (B, T, vocab_size)."""

    def __init__(
        self,
        vocab_size: int,
        embed_size: int,
        hidden_size: int,
        num_layers: int,
        make_dropout: Callable[[], nn.Module],
    ):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.input_dropout = make_dropout()
        # the last layer returns to embed_size so the decoder can share the embedding's weight
        sizes = [embed_size] + [hidden_size] * (num_layers - 1) + [embed_size]
        self.layers = nn.ModuleList(
            LSTMLayer(sizes[i], sizes[i + 1], make_dropout()) for i in range(num_layers)
        )
        self.decoder = nn.Linear(embed_size, vocab_size)
        self.decoder.weight = self.embedding.weight
        # AWD-LSTM's initialisation of the shared embedding and the decoder bias
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        self.checkpoint_layers = False

    def forward(self, tokens):
        x = self.input_dropout(self.embedding(tokens))
        for layer in self.layers:
            x = maybe_checkpoint(layer, x, self.checkpoint_layers)
        return self.decoder(x)
