"""The implementations the harness times: each is a correct locked dropout on CPU, with the bytes
model its docstring states, and the ways they refuse a case or a broken compile are recorded."""

import pytest
import torch
from conftest import KERNEL_DEVICE

from baselines import DropoutCase, NotApplicable, per_element_rng
from baselines.mask_based import CompileFallback
from baselines.per_element_rng import dim_groups
from runners import implementations
from runners.checks import PASS, check

CPU = torch.device("cpu")
# per_element_rng is a Triton kernel: CUDA tensors where there is a GPU, else the interpreter on CPU.
TRITON_DEVICE = torch.device(KERNEL_DEVICE)
# (shape, shared dims): (B, T, D) sharing T with odd sizes, (T, B, D) sharing T, element-wise,
# and (N, C, H, W) sharing H and W.
CASES = [((3, 17, 24), (1,)), ((9, 2, 8), (0,)), ((2, 5, 8), ()), ((2, 3, 5, 4), (2, 3))]
OPTIONS = {"compile": {"backend": "aot_eager"}}


def make_case(shape, dims, p=0.5, dtype=torch.float32, device=CPU):
    return DropoutCase(tuple(shape), tuple(dims), p, dtype, device)


def device_for(name):
    return TRITON_DEVICE if name == "per_element_rng" else CPU


def test_registry_holds_the_issues_implementations():
    expected = {"copy", "seeded", "eager", "compile", "native", "per_element_rng"}
    assert set(implementations.IMPLEMENTATIONS) >= expected
    with pytest.raises(KeyError, match="registered"):
        implementations.get("no_such_impl")


@pytest.mark.parametrize("shape,dims", CASES, ids=str)
@pytest.mark.parametrize("name", ["copy", "seeded", "eager", "native", "per_element_rng"])
def test_implementation_passes_the_correctness_check(name, shape, dims):
    torch.manual_seed(0)
    impl = implementations.get(name)
    case = make_case(shape, dims, device=device_for(name))
    assert check(impl.build(case), case, impl.is_dropout) == PASS


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64], ids=str)
@pytest.mark.parametrize("name", ["seeded", "eager", "native", "per_element_rng"])
def test_implementation_passes_in_every_dtype(name, dtype):
    torch.manual_seed(0)
    case = make_case((4, 9, 16), (1,), p=0.3, dtype=dtype, device=device_for(name))
    assert check(implementations.get(name).build(case), case, True) == PASS


def test_compile_passes_and_compiles_one_graph_per_case():
    torch.manual_seed(0)
    for shape, dims in CASES[:2]:
        case = make_case(shape, dims)
        assert check(implementations.get("compile").build(case, **OPTIONS["compile"]), case, True) == PASS


def test_compile_that_falls_back_to_eager_is_an_error(monkeypatch):
    # A torch.compile that returns the function unchanged compiles nothing: what the recompile
    # limit's silent fallback looks like from outside.
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: fn)
    with pytest.raises(CompileFallback):
        implementations.get("compile").build(make_case((2, 3, 4), (1,)), backend="aot_eager")


def test_native_refuses_cases_no_torch_op_fits():
    with pytest.raises(NotApplicable):
        implementations.get("native").build(make_case((2, 3, 4, 5), (1,)))  # 4-d sharing one dim
    with pytest.raises(NotApplicable):
        implementations.get("native").build(make_case((2, 3, 4), (0, 2)))


def test_per_element_rng_groups_and_its_limit():
    assert dim_groups((4, 5, 6), (1,)) == [(4, 6), (5, 0), (6, 1)]
    assert dim_groups((5, 4, 6), (0,)) == [(5, 0), (24, 1)]
    assert dim_groups((2, 3, 4, 4), (2, 3)) == [(6, 1), (16, 0)]
    assert dim_groups((4, 1, 6), (1,)) == [(24, 1)]  # a size-1 shared dim shares nothing
    with pytest.raises(NotApplicable):
        implementations.get("per_element_rng").build(make_case((2, 2, 2, 2, 2), (1, 3)))  # 5 groups


def test_per_element_rng_masks_depend_on_the_mask_index_only():
    # Same mask for x of shape (B, T, D) and its first time step (B, 1, D), under the same seed.
    torch.manual_seed(1)
    forward = implementations.get("per_element_rng").build(make_case((3, 7, 16), (1,), device=TRITON_DEVICE))
    x = torch.ones(3, 7, 16, device=TRITON_DEVICE)
    torch.manual_seed(5)
    y = forward(x)
    forward_one_step = implementations.get("per_element_rng").build(make_case((3, 1, 16), (1,), device=TRITON_DEVICE))
    torch.manual_seed(5)
    assert torch.equal(forward_one_step(x[:, :1].contiguous()), y[:, :1])


def test_per_element_rng_refuses_cpu_tensors_without_the_interpreter(monkeypatch):
    monkeypatch.setattr(per_element_rng, "_INTERPRETED", False)
    with pytest.raises(NotApplicable, match="TRITON_INTERPRET"):
        implementations.get("per_element_rng").build(make_case((2, 3, 4), (1,)))


def test_per_element_rng_kernel_is_not_specialized_on_its_seed():
    # Triton specializes an int argument equal to 1 or divisible by 16; a seed drawn per call would
    # then compile new kernel variants during the sweep, inside timed calls.
    kernel = per_element_rng._per_element_rng_dropout_kernel
    if hasattr(kernel, "params"):  # compiled (GPU): JITFunction
        unspecialized = {param.name for param in kernel.params if param.do_not_specialize}
    else:  # TRITON_INTERPRET=1: InterpretedFunction keeps the decorator's arguments
        unspecialized = set(kernel.kwargs.get("do_not_specialize") or ())
    assert "seed" in unspecialized


def test_bytes_models():
    case = make_case((8, 16, 32), (1,), dtype=torch.float16)
    n, m = 8 * 16 * 32 * 2, 8 * 32 * 2
    for name in ("seeded", "copy", "per_element_rng", "compile"):  # read x + write y per pass (compile: a bound)
        impl = implementations.get(name)
        assert impl.bytes_moved(case, "fwd") == impl.bytes_moved(case, "bwd") == 2 * n
        assert impl.bytes_moved(case, "fwd_bwd") == 4 * n
    for name in ("eager", "native"):  # + write the mask and read it; bwd reads it again
        impl = implementations.get(name)
        assert impl.bytes_moved(case, "fwd") == 2 * n + 2 * m
        assert impl.bytes_moved(case, "bwd") == 2 * n + m
        assert impl.bytes_moved(case, "fwd_bwd") == 4 * n + 3 * m
    elementwise = make_case((8, 16, 32), (), dtype=torch.float16)
    assert implementations.get("native").bytes_moved(elementwise, "fwd") == 2 * n + 8 * 16 * 32  # bool mask


def test_case_shapes():
    case = make_case((2, 3, 4, 5), (1, 3), dtype=torch.bfloat16)
    assert case.mask_shape == (2, 1, 4, 1) and case.mask_numel == 8
    assert case.numel == 120 and case.itemsize == 2
