"""Seeded variational (locked) dropout for PyTorch: one mask shared along chosen dims, kept for
backward as a seed only; Triton kernels on CUDA, the same random stream on CPU.

    from kernels import seeded_variational_dropout, SeededVariationalDropout       # in this repo
    from seeded_variational_dropout import seeded_variational_dropout             # installed

The modules, bottom up: `mask_stream` (the mask's specification and its PyTorch stream), `layout`
and `tiling` (how a tensor maps onto the kernel's view and tiles), `triton_kernel` (the kernel),
`cpu_path`, `seeds`, `fast_path` (the C++ hot path), `launch`, `autograd`, `functional` (the public
function) and `layers` (the nn.Module).
"""

from .functional import seeded_variational_dropout
from .layers import SeededVariationalDropout
from .mask_stream import MASK_STREAM_VERSION

__version__ = "0.2.0"

__all__ = ["MASK_STREAM_VERSION", "SeededVariationalDropout", "__version__", "seeded_variational_dropout"]
