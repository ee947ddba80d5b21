"""Runnable examples: the one-line swap to seeded variational dropout in two standard models.

Run from the repo root: `python -m examples.awd_lstm_swap`, `python -m examples.transformer_swap`.
"""
