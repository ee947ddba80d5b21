"""Seeded variational (locked) dropout: Triton kernels on CUDA, the same random stream on CPU."""

from kernels.layers import SeededVariationalDropout
from kernels.mask_stream import MASK_STREAM_VERSION
from kernels.seeded_dropout import seeded_variational_dropout

__all__ = ["MASK_STREAM_VERSION", "SeededVariationalDropout", "seeded_variational_dropout"]
