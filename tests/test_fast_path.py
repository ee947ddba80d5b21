"""The C++ hot path's inputs, and the kernel's seed taken from a generator's state (SEED_MODE 2).

The C++ extension itself is built and exercised on CUDA only (tests/test_gpu.py); here: the slot
table it is given, checked against the kernel's real argument list, and the device-side seed
derivation, run through the kernel (Triton's interpreter without CUDA) against `draw_seed`'s formula.
"""

import re
from pathlib import Path

import pytest
import torch
from conftest import KERNEL_DEVICE

from kernels import fast_path, mask_stream
from kernels.cpu_path import dropout_reference
from kernels.launch import dropout_any_device, dropout_triton, scale_bits
from kernels.mask_stream import keep_threshold, seed_from_generator
from kernels.seeds import GeneratorState
from kernels.triton_kernel import seeded_dropout_kernel

CPP_SOURCE = Path(fast_path.__file__).parent / "csrc" / "fast_path.cpp"


def _derived_seed(base: int, offset: int) -> int:
    return seed_from_generator(base, offset)


def test_the_cpp_seed_formula_uses_the_specs_constants():
    """fast_path.cpp repeats seed_from_generator in C++: its constants must be mask_stream's."""
    source = CPP_SOURCE.read_text()
    constants = {int(found, 16) for found in re.findall(r"0x([0-9A-Fa-f]{16})ull", source)}
    assert constants == {mask_stream.GOLDEN_GAMMA, mask_stream.SPLITMIX_MUL_A, mask_stream.SPLITMIX_MUL_B}
    assert "(offset / 4 + 1)" in source and "set_offset(offset + 4)" in source


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
@pytest.mark.parametrize(("base", "offset", "in_graph"), [(0, 0, 0), (123, 8, 4), (-(2**63) + 5, 2**40, 12)])
@pytest.mark.parametrize(("shape", "dims"), [((3, 17, 33), (1,)), ((64,), ()), ((4, 9, 16), (1,))])
def test_seed_from_generator_state_is_draw_seeds_formula(dtype, base, offset, in_graph, shape, dims):
    x = torch.randn(shape, device=KERNEL_DEVICE).to(dtype)
    state = GeneratorState(
        seed=torch.tensor([base], dtype=torch.int64, device=KERNEL_DEVICE),
        offset=torch.tensor([offset], dtype=torch.int64, device=KERNEL_DEVICE),
        offset_in_graph=in_graph,
    )
    y = dropout_triton(x, state, 0.5, dims)
    expected = dropout_reference(x.cpu(), _derived_seed(base, offset + in_graph), 0.5, dims)
    assert torch.equal(y.cpu(), expected)


def test_launch_slots_cover_every_kernel_argument():
    # The kernel's real argument list, none compiled in: every one must map to a slot.
    names = seeded_dropout_kernel.arg_names
    runtime = [n for n in names if n.upper() != n]  # constexprs are the upper-case ones
    geometry = tuple(range(2, 2 + len(fast_path.GEOMETRY_ARGUMENTS)))
    slots = fast_path.launch_slots(dict.fromkeys(runtime, "i64"), geometry)
    assert slots is not None and len(slots) == len(runtime)
    assert [s for s, _ in slots[:8]] == [
        fast_path.INPUT_PTR, fast_path.OUTPUT_PTR, fast_path.UNUSED_PTR, fast_path.UNUSED_PTR,
        fast_path.SEED_LOW, fast_path.SEED_HIGH, fast_path.THRESHOLD, fast_path.SCALE_BITS,
    ]  # fmt: skip
    assert slots[8:] == [(fast_path.CONST_I64, v) for v in geometry]


def test_launch_slots_drop_compiled_in_arguments_and_keep_widths():
    signature = {"x_ptr": "*fp16", "out_ptr": "*fp16", "seed_lo": "i32", "size_o": "constexpr",
                 "size_s": "i32", "size_i": "i64", "BLOCK_O": "constexpr"}  # fmt: skip
    geometry = (1, 40, 2**33, 0, 0, 0, 0, 0, 0)
    assert fast_path.launch_slots(signature, geometry) == [
        (fast_path.INPUT_PTR, 0), (fast_path.OUTPUT_PTR, 0), (fast_path.SEED_LOW, 0),
        (fast_path.CONST_I32, 40), (fast_path.CONST_I64, 2**33),
    ]  # fmt: skip


@pytest.mark.parametrize("signature", [{"x_ptr": "*fp16", "mystery": "i32"}, {"size_o": "fp32"}])
def test_launch_slots_refuse_what_they_do_not_know(signature):
    assert fast_path.launch_slots(signature, tuple(range(9))) is None


# --- the extension itself, built here too (its autograd node runs on CPU tensors via apply_with_seed) ---


@pytest.fixture(scope="module")
def extension():
    built = fast_path.module(dropout_any_device)  # the Python launch it falls back to, as the op hands it
    assert built is not None, "the C++ extension did not build (a warning says why)"
    return built


@pytest.mark.slow  # builds the C++ extension: about 50 s on 2 CPU cores, once per machine
def test_extension_numbers_match_python(extension):
    for p in (1e-9, 0.1, 0.25, 0.5, 0.7, 1 / 3, 0.99999, 2.5 / 65536, 3.5 / 65536):
        assert extension.call_scalars(p) == (keep_threshold(p), scale_bits(p))


@pytest.mark.slow  # builds the C++ extension: about 50 s on 2 CPU cores, once per machine
def test_extension_autograd_node_forward_backward_and_double_backward(extension):
    x = torch.randn(3, 5, 7, dtype=torch.float64, requires_grad=True)
    y = extension.apply_with_seed(x, 3, 0.4, [1])
    assert torch.equal(y, dropout_reference(x.detach(), 3, 0.4, (1,)))
    grad = torch.randn_like(x)
    (grad_x,) = torch.autograd.grad(y, x, grad)
    assert torch.equal(grad_x, dropout_reference(grad, 3, 0.4, (1,)))
    assert torch.autograd.gradgradcheck(lambda t: extension.apply_with_seed(t, 3, 0.4, [1]), (x,))


@pytest.mark.slow  # builds the C++ extension: about 50 s on 2 CPU cores, once per machine
def test_extension_leaves_cpu_tensors_to_python(extension):
    x = torch.randn(4, 8)
    assert extension.forward(x, 0.5, [1], 7) is None
    assert extension.register_launch(x, [1], 0, 1, 128, 0, [(fast_path.INPUT_PTR, 0)]) is False
