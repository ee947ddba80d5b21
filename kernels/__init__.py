"""Seeded variational (locked) dropout for PyTorch: one mask shared along chosen dims, kept for
backward as a seed only; Triton kernels on CUDA, the same random stream on CPU.

    from kernels import seeded_variational_dropout, SeededVariationalDropout       # in this repo
    from seeded_variational_dropout import seeded_variational_dropout             # installed

The modules, bottom up: `mask_stream` (the mask's specification and its PyTorch stream), `layout`
and `tiling` (how a tensor maps onto the kernel's view and tiles), `triton_kernel` (the kernel),
`cpu_path`, `seeds`, `fast_path` (the C++ hot path), `launch`, `autograd`, `functional` (the public
function) and `layers` (the nn.Modules).

A second op fuses the dropout into a transformer block's residual add and the norm after it:

    y, h = seeded_dropout_add_norm(x, residual, p=0.1, dim=1, norm="rms", weight=w)
    # h = residual + seeded_variational_dropout(x, 0.1, 1, seed) bit for bit; y = RMSNorm(h)

Its modules: `fused_kernel` (the Triton kernels, forward and backward, reusing `triton_kernel`'s
Philox), `fused_launch` (rows, launches, the CPU path) and `fused_residual_norm` (autograd, the
traced ops, the public function); the module `SeededDropoutAddNorm` is in `layers`.
docs/fused-op.md describes it.
"""

from .functional import seeded_variational_dropout
from .fused_residual_norm import seeded_dropout_add_norm
from .layers import SeededDropoutAddNorm, SeededVariationalDropout
from .mask_stream import MASK_STREAM_VERSION

__version__ = "0.2.0"

__all__ = [
    "MASK_STREAM_VERSION",
    "SeededDropoutAddNorm",
    "SeededVariationalDropout",
    "__version__",
    "seeded_dropout_add_norm",
    "seeded_variational_dropout",
]
