"""Test set-up: without CUDA, Triton kernels run on CPU tensors through the interpreter.

TRITON_INTERPRET must be set before triton is first imported, so it is set here, at collection.
"""

import os
import sys

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()

if not HAS_CUDA:
    if "triton" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError("triton was imported before TRITON_INTERPRET=1 could be set")
    os.environ["TRITON_INTERPRET"] = "1"

# Where the Triton kernel runs in tests: the GPU when there is one, else the interpreter on CPU.
KERNEL_DEVICE = "cuda" if HAS_CUDA else "cpu"


@pytest.fixture(autouse=True)
def keep_triton_interpret_as_it_was():
    """A CPU sweep run in-process chooses Triton's interpreter by setting TRITON_INTERPRET
    (runners/context.py); on a CUDA machine that must not leak into later tests' subprocesses, whose
    Inductor and Triton kernels would then run interpreted."""
    before = os.environ.get("TRITON_INTERPRET")
    yield
    if before is None:
        os.environ.pop("TRITON_INTERPRET", None)
    else:
        os.environ["TRITON_INTERPRET"] = before
