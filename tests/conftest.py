"""Test set-up: without CUDA, Triton kernels run on CPU tensors through the interpreter.

TRITON_INTERPRET must be set before triton is first imported, so it is set here, at collection.
Without CUDA, the tests marked `gpu` are deselected, and one line at the end says how many and why
(scripts/gpu_tests.sh runs them on the GPU machine).
"""

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

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


SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str) -> ModuleType:
    """scripts/<name>.py loaded as a module, for its tests (scripts/ is no package: each script runs
    as a file on the GPU machine)."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# TRITON_INTERPRET as this session began: "1" without CUDA, else as the caller set it (unset).
TRITON_INTERPRET_AT_START = os.environ.get("TRITON_INTERPRET")


def restore_triton_interpret() -> None:
    if TRITON_INTERPRET_AT_START is None:
        os.environ.pop("TRITON_INTERPRET", None)
    else:
        os.environ["TRITON_INTERPRET"] = TRITON_INTERPRET_AT_START


@pytest.fixture(autouse=True)
def triton_interpret_as_the_session_began():
    """Each test starts and ends with TRITON_INTERPRET as the session began. A CPU sweep run
    in-process sets it (runners/context.py), and on a CUDA machine whatever runs later in the same
    worker with it set runs its Inductor and Triton kernels interpreted. Reset before the test as well
    as after: fixtures of wider scope are set up before this one, and in the H200 suite a
    module-scoped fixture's CPU sweep (tests/test_launchers.py) left it set for every later test of
    its worker, where compiled graphs then failed in Triton's interpreter."""
    restore_triton_interpret()
    yield
    restore_triton_interpret()


def pytest_collection_modifyitems(config, items):
    if HAS_CUDA:
        return
    gpu_only = [item for item in items if item.get_closest_marker("gpu")]
    if gpu_only:
        config.hook.pytest_deselected(items=gpu_only)
        items[:] = [item for item in items if not item.get_closest_marker("gpu")]
    config.stash[GPU_DESELECTED] = len(gpu_only)
    if hasattr(config, "workeroutput"):  # a pytest-xdist worker: the controller writes the summary
        config.workeroutput["gpu_deselected"] = len(gpu_only)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """pytest-xdist's controller, as a worker ends: the count of gpu tests it deselected (every worker
    collects every test, so they agree)."""
    count = getattr(node, "workeroutput", {}).get("gpu_deselected", 0)
    node.config.stash[GPU_DESELECTED] = max(count, node.config.stash.get(GPU_DESELECTED, 0))


def pytest_terminal_summary(terminalreporter, config):
    count = config.stash.get(GPU_DESELECTED, 0)
    if count:
        terminalreporter.write_line(f"{count} tests marked gpu deselected: no CUDA device here "
                                    "(scripts/gpu_tests.sh runs them on the GPU machine)")

