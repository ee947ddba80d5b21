"""Small standard models in which locked dropout is used in practice, built from a model config.

A model config (`conf/model/*.yaml`) names its architecture (`arch`: `awd_lstm` or `transformer`),
its sizes, the drop probability `p` of every locked dropout in it, and the batch it trains on
(`batch_size`, `seq_len`). `build_model(model_cfg, dropout_impl)` returns the model with every
locked dropout made by `make_locked_dropout(dropout_impl, p)`.
"""

from __future__ import annotations

import functools

from torch import nn

from runners.models.awd_lstm import AWDLSTMLanguageModel
from runners.models.corpus import markov_corpus
from runners.models.dropout import (
    DROPOUT_IMPLS,
    FUSED,
    MODEL_DROPOUTS,
    SHARED_DIM,
    LockedDropout,
    NativeLockedDropout,
    make_locked_dropout,
)
from runners.models.transformer import PreNormTransformerLM

ARCHS = ("awd_lstm", "transformer")

__all__ = [
    "ARCHS",
    "DROPOUT_IMPLS",
    "FUSED",
    "MODEL_DROPOUTS",
    "SHARED_DIM",
    "AWDLSTMLanguageModel",
    "LockedDropout",
    "NativeLockedDropout",
    "PreNormTransformerLM",
    "build_model",
    "make_locked_dropout",
    "markov_corpus",
]


def build_model(model_cfg, dropout_impl: str) -> nn.Module:
    """The model `model_cfg` describes, its locked dropouts of implementation `dropout_impl`."""
    if dropout_impl == FUSED and model_cfg.arch != "transformer":
        raise ValueError(f"the fused dropout + add + norm op has no place in the {model_cfg.arch} model: "
                         "it fuses a transformer block's residual add and norm")  # fmt: skip
    make_dropout = functools.partial(make_locked_dropout, dropout_impl, float(model_cfg.p))
    if model_cfg.arch == "awd_lstm":
        return AWDLSTMLanguageModel(
            vocab_size=model_cfg.vocab_size,
            embed_size=model_cfg.embed_size,
            hidden_size=model_cfg.hidden_size,
            num_layers=model_cfg.num_layers,
            make_dropout=make_dropout,
        )
    if model_cfg.arch == "transformer":
        return PreNormTransformerLM(
            vocab_size=model_cfg.vocab_size,
            max_seq_len=model_cfg.seq_len,
            d_model=model_cfg.d_model,
            n_heads=model_cfg.n_heads,
            d_ff=model_cfg.d_ff,
            num_layers=model_cfg.num_layers,
            make_dropout=None if dropout_impl == FUSED else make_dropout,
            fused_p=float(model_cfg.p) if dropout_impl == FUSED else None,
        )
    raise ValueError(f"unknown model arch {model_cfg.arch!r}; expected one of {ARCHS}")
