"""The C++ hot path (`kernels/csrc/fast_path.cpp`): loading it and handing it launches.

Python plans each layout and compiles the kernel once (`kernels/launch.py`); `register_launch` then
gives the C++ side a launch record for that layout (function handle, grid, block, and a slot per
kernel parameter), and from the next call on the op runs without Python: seed drawn in C++ from
torch's CUDA generator, `cuLaunchKernel`, and a C++ autograd node (its backward does not take the
GIL on autograd's device thread). Without a record, or on a capturing stream, the C++ side returns
None and Python runs.

Built on first use with `torch.utils.cpp_extension.load`, from the source beside this file wherever
the package lives (a C++ compiler and ninja are needed; the CUDA driver is opened at run time, no
CUDA toolkit is). If the build fails the op warns once and keeps the Python launch: same results,
more host time. A leaf module: the Python launch the C++ side falls back to is handed in
(`module(fallback)`), not imported.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import torch

_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc", "fast_path.cpp")

# Slot numbers: the `Slot` enum of fast_path.cpp.
INPUT_PTR, OUTPUT_PTR, UNUSED_PTR, SEED_LOW, SEED_HIGH, THRESHOLD, SCALE_BITS, CONST_I32, CONST_I64 = range(9)
_SLOT_OF_ARGUMENT = {
    "x_ptr": INPUT_PTR,
    "out_ptr": OUTPUT_PTR,
    "seed_ptr": UNUSED_PTR,  # the registered launches take the seed by value (SEED_MODE 0)
    "offset_ptr": UNUSED_PTR,
    "seed_lo": SEED_LOW,
    "seed_hi": SEED_HIGH,
    "threshold": THRESHOLD,
    "scale_bits": SCALE_BITS,
}
GEOMETRY_ARGUMENTS = (
    "size_o", "size_s", "size_i",
    "x_stride_o", "x_stride_s", "x_stride_i",
    "out_stride_o", "out_stride_s", "out_stride_i",
)  # fmt: skip

_loaded = {"tried": False, "module": None, "fallback": False}


def module(fallback: Callable | None = None):
    """The compiled extension, or None (the build failed: then a warning says why). `fallback`, the
    Python launch `fallback(x, seed, p, dims)` the C++ side calls for layouts it has no record of,
    is handed over at the first load that has one.

    Built on CPU builds of torch too (tests reach its autograd node there); the op uses it only for
    CUDA tensors. On CUDA builds it also reads the CUDA generator's graph-safe state."""
    if _loaded["tried"]:
        if fallback is not None and not _loaded["fallback"] and _loaded["module"] is not None:
            _loaded["module"].set_fallback(fallback)
            _loaded["fallback"] = True
        return _loaded["module"]
    _loaded["tried"] = True
    try:
        from torch.utils.cpp_extension import load

        with_cuda = torch.version.cuda is not None
        torch_lib = os.path.join(os.path.dirname(torch.__file__), "lib")
        extension = load(
            name="seeded_variational_dropout_fast_path" + ("" if with_cuda else "_cpu"),
            sources=[_SOURCE],
            extra_cflags=["-O3"] + (["-DSEEDED_DROPOUT_WITH_CUDA"] if with_cuda else []),
            extra_ldflags=[f"-L{torch_lib}", "-ltorch_cuda", "-lc10_cuda"] if with_cuda else [],
        )
    except Exception as error:  # a missing compiler or headers: the Python launch still works
        warnings.warn(f"seeded_variational_dropout: C++ hot path unavailable, using the Python launch ({error})",
                      stacklevel=2)  # fmt: skip
        return None
    _loaded["module"] = extension
    return module(fallback)


def launch_slots(signature: dict[str, str], geometry: tuple[int, ...]) -> list[tuple[int, int]] | None:
    """(slot, constant) per kernel parameter, from the compiled kernel's signature (argument name ->
    Triton type; "constexpr" for arguments compiled in, which are no parameter). None if an argument
    is unknown or typed other than expected; Triton's trailing scratch pointers are added in C++."""
    constants = dict(zip(GEOMETRY_ARGUMENTS, geometry, strict=True))
    slots = []
    for name, kind in signature.items():
        if kind == "constexpr":
            continue
        if name in _SLOT_OF_ARGUMENT:
            slots.append((_SLOT_OF_ARGUMENT[name], 0))
        elif name in constants and kind in ("i32", "i64"):
            slots.append((CONST_I32 if kind == "i32" else CONST_I64, constants[name]))
        else:
            return None
    return slots


def register_launch(compiled, x: torch.Tensor, shared_dims, grid: int, geometry: tuple[int, ...]) -> bool:
    """Give the C++ side the launch just made for x's layout: Triton's compiled kernel, the grid (a
    program count) and the geometry arguments (GEOMETRY_ARGUMENTS' values). False where it cannot
    take it."""
    extension = module()
    if extension is None:
        return False
    metadata = compiled.metadata
    plain_launch = (
        getattr(metadata, "num_ctas", 1) == 1
        and not getattr(metadata, "launch_pdl", False)
        and not getattr(metadata, "launch_cooperative_grid", False)
        and getattr(metadata, "global_scratch_size", 0) == 0
        and getattr(metadata, "profile_scratch_size", 0) == 0
        and metadata.shared <= 48 * 1024
    )
    signature = getattr(getattr(compiled, "src", None), "signature", None)
    slots = launch_slots(signature, geometry) if plain_launch and isinstance(signature, dict) else None
    if slots is None:
        return False
    return extension.register_launch(x, list(shared_dims), compiled.function, grid, metadata.num_warps * 32,
                                     metadata.shared, slots)  # fmt: skip


def clear() -> None:
    if _loaded["module"] is not None:
        _loaded["module"].clear()


def philox_state(device_index: int):
    """(seed, offset, offset inside the graph) of the device's generator under capture (the first
    two: int64 tensors aliasing the generator's memory); None without the extension."""
    extension = module()
    if extension is None or not hasattr(extension, "philox_state"):
        return None
    return extension.philox_state(device_index)
