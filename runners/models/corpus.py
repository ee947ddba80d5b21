"""A tiny synthetic language, generated in code: nothing is downloaded.

Tokens follow a first-order Markov chain in which every token has `successors_per_token` possible
next tokens, each equally likely. A model that learns the chain reaches a cross-entropy of
ln(successors_per_token) nats; an untrained one sits near ln(vocab_size). The chain and the
sequences come from their own generator, so the corpus is the same whatever torch's global seed.
"""

from __future__ import annotations

import torch


def markov_corpus(
    vocab_size: int, n_sequences: int, seq_len: int, successors_per_token: int = 4, seed: int = 0
) -> torch.Tensor:
    """Token ids of shape (n_sequences, seq_len + 1): inputs are [:, :-1], next-token targets [:, 1:]."""
    generator = torch.Generator().manual_seed(seed)
    successors = torch.randint(vocab_size, (vocab_size, successors_per_token), generator=generator)
    choices = torch.randint(successors_per_token, (n_sequences, seq_len), generator=generator)
    tokens = torch.empty(n_sequences, seq_len + 1, dtype=torch.long)
    tokens[:, 0] = torch.randint(vocab_size, (n_sequences,), generator=generator)
    for t in range(seq_len):
        tokens[:, t + 1] = successors[tokens[:, t], choices[:, t]]
    return tokens
