"""Test set-up: without CUDA, Triton kernels run on CPU tensors through the interpreter.

TRITON_INTERPRET must be set before triton is first imported, so it is set here, at collection.
Without CUDA, the tests marked `gpu` are deselected, and one line at the end says how many and why
(scripts/gpu_tests.sh runs them on the GPU machine).
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
GPU_DESELECTED = pytest.StashKey[int]()  # how many tests marked gpu were deselected


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


def pytest_collection_modifyitems(config, items):
    if HAS_CUDA:
        return
    gpu_only = [item for item in items if item.get_closest_marker("gpu")]
    if gpu_only:
        config.hook.pytest_deselected(items=gpu_only)
        items[:] = [item for item in items if not item.get_closest_marker("gpu")]
    config.stash[GPU_DESELECTED] = len(gpu_only)


def pytest_terminal_summary(terminalreporter, config):
    count = config.stash.get(GPU_DESELECTED, 0)
    if count:
        terminalreporter.write_line(f"{count} tests marked gpu deselected: no CUDA device here "
                                    "(scripts/gpu_tests.sh runs them on the GPU machine)")

