"""The op: mask semantics, kernel == CPU path bit for bit, autograd, seeds, errors, layouts.

The Triton kernel runs on KERNEL_DEVICE: CUDA when present, else CPU tensors through the Triton
interpreter. Statistical checks use fixed seeds and a 5-sigma binomial bound (a correct
implementation fails one with probability below 1e-6).
"""

import math
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import KERNEL_DEVICE
from triton import cdiv as triton_cdiv

import kernels.launch as launch_module
from kernels import SeededVariationalDropout, seeded_variational_dropout
from kernels.cpu_path import dropout_reference, mask_shape_of
from kernels.launch import LaunchCache, dropout_triton, sm_count
from kernels.layout import plan_view
from kernels.mask_stream import keep_mask, keep_threshold
from kernels.tiling import DEFAULT_POLICY, TilePolicy, choose_tile, tile_elements

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# (shape, shared dims): odd sizes, several ranks, shared dims first / middle / last / several / none.
CASES = [
    ((1, 1, 1), (1,)),
    ((3, 17, 33), (1,)),
    ((3, 17, 33), ()),
    ((17, 3, 33), (0,)),
    ((5, 7), (1,)),
    ((1023,), ()),
    ((2, 3, 5, 7), (2, 3)),
    ((2, 3, 5, 7), (0, 2)),
    ((4, 9, 16), (1,)),
]


def _ids(case):
    shape, dims = case
    return f"{'x'.join(map(str, shape))}-dim{''.join(map(str, dims)) or 'none'}"


def kept_elements(y: torch.Tensor) -> torch.Tensor:
    return y != 0


# --- mask semantics -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=_ids)
@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_mask_is_constant_along_shared_dims(case, backend):
    shape, dims = case
    x = torch.rand(shape, device=KERNEL_DEVICE if backend == "triton" else "cpu") + 0.5  # no zeros
    run = dropout_triton if backend == "triton" else dropout_reference
    keep = kept_elements(run(x, 11, 0.5, dims))
    if dims:
        reduced = keep.amax(dim=dims, keepdim=True)
        assert torch.equal(keep, reduced.expand_as(keep))
    assert keep.shape == x.shape


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_kept_values_are_scaled_by_one_over_one_minus_p(dtype, p):
    x = torch.randn(4, 9, 40, dtype=dtype, device=KERNEL_DEVICE)
    y = dropout_triton(x, 5, p, (1,))
    keep = kept_elements(y) | (x == 0)
    expected = (x.double() / (1 - p)).to(dtype)  # correctly rounded x / (1 - p)
    # fp32 scale then one multiply in fp32 (fp64 for fp64): within one ulp of the dtype.
    tolerance = {torch.float16: 1e-3, torch.bfloat16: 8e-3, torch.float32: 2.5e-7, torch.float64: 1e-15}[dtype]
    torch.testing.assert_close(y[keep], expected[keep], rtol=tolerance, atol=0)
    assert torch.all(y[~keep] == 0)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_keep_rate_within_binomial_bound(p):
    mask_elements = 0
    kept = 0
    for seed in range(20):
        x = torch.ones(8, 3, 50, device=KERNEL_DEVICE)
        keep = kept_elements(dropout_triton(x, seed, p, (1,)))[:, 0, :]
        mask_elements += keep.numel()
        kept += int(keep.sum())
    p_drop = keep_threshold(p) / 65536
    mean = mask_elements * (1 - p_drop)
    sigma = math.sqrt(mask_elements * p_drop * (1 - p_drop))
    assert abs(kept - mean) <= 5 * sigma, (kept, mean, sigma)


def test_same_seed_same_mask_different_seed_different_mask():
    x = torch.randn(4, 6, 64, device=KERNEL_DEVICE)
    a = seeded_variational_dropout(x, 0.5, dim=1, seed=3)
    b = seeded_variational_dropout(x, 0.5, dim=1, seed=3)
    c = seeded_variational_dropout(x, 0.5, dim=1, seed=4)
    assert torch.equal(a, b)
    assert not torch.equal(kept_elements(a), kept_elements(c))


def test_seed_zero_is_a_valid_seed_and_tensor_seeds_match_int_seeds():
    x = torch.randn(3, 5, 16, device=KERNEL_DEVICE)
    from_int = seeded_variational_dropout(x, 0.5, dim=1, seed=0)
    assert 0 < int(kept_elements(from_int).sum()) < x.numel()
    for seed_tensor in (torch.tensor(0), torch.tensor([0], device=KERNEL_DEVICE), torch.tensor(0, dtype=torch.int32)):
        assert torch.equal(seeded_variational_dropout(x, 0.5, dim=1, seed=seed_tensor), from_int)


# --- the two implementations agree bit for bit -------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_kernel_equals_cpu_path_bit_for_bit(case, dtype):
    shape, dims = case
    x = torch.randn(shape, dtype=dtype)
    for seed, p in ((0, 0.5), (-7, 0.1), (2**62 + 3, 0.9)):
        expected = dropout_reference(x, seed, p, dims)
        actual = dropout_triton(x.to(KERNEL_DEVICE), seed, p, dims).cpu()
        assert torch.equal(actual.view(torch.uint8), expected.view(torch.uint8)), (seed, p)


# The default policy with the latency-bound tile rule off.
WITHOUT_SMALL_GRID_RULE = TilePolicy(small_grid_programs_per_sm=0)


def sized_between_the_tile_rules(shape, itemsize, sm_count):
    """`shape` with its leading size set so the tensor fills 4 full-size tiles per SM of the device: enough
    that small-tensor tiles (below programs_per_sm per SM) do not apply, few enough that the latency-bound
    rule (below small_grid_programs_per_sm per SM) does, so turning that rule off changes the tile."""
    assert DEFAULT_POLICY.programs_per_sm <= 4 < DEFAULT_POLICY.small_grid_programs_per_sm
    full_tile = DEFAULT_POLICY.tile_bytes // itemsize
    return (triton_cdiv(4 * full_tile * sm_count, math.prod(shape[1:])), *shape[1:])


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
@pytest.mark.parametrize("case", [((4, 33, 40), ()), ((4, 9, 16), (1,)), ((2, 3, 5, 7), (2, 3))], ids=_ids)
def test_mask_does_not_depend_on_the_tile_rule(case, dtype):
    # The latency-bound tile rule picks these tensors' tiles (their size follows the device's SM count);
    # with it off they get the streaming tiles of large tensors. Both must launch the same function of
    # (seed, p, shape).
    base_shape, dims = case
    itemsize = torch.empty((), dtype=dtype).element_size()
    shape = sized_between_the_tile_rules(base_shape, itemsize, sm_count(torch.device(KERNEL_DEVICE)))
    x = torch.randn(shape, dtype=dtype).to(KERNEL_DEVICE)
    plans = {}
    for policy in (DEFAULT_POLICY, WITHOUT_SMALL_GRID_RULE):
        plans[policy] = LaunchCache().plan(x, torch.empty_like(x), dims, policy)
        actual = dropout_triton(x, 11, 0.3, dims, policy).cpu()
        expected = dropout_reference(x.cpu(), 11, 0.3, dims)
        assert torch.equal(actual.view(torch.uint8), expected.view(torch.uint8)), policy
    assert len({(plan.blocks, plan.num_warps) for plan in plans.values()}) == 2, (shape, plans)  # two tiles


def test_a_policy_is_part_of_the_plans_key_so_no_cached_launch_crosses_policies():
    x = torch.randn(sized_between_the_tile_rules((4, 9, 16), 4, sm_count(torch.device(KERNEL_DEVICE))),
                    device=KERNEL_DEVICE)  # fmt: skip
    for policy in (DEFAULT_POLICY, WITHOUT_SMALL_GRID_RULE, DEFAULT_POLICY):
        dropout_triton(x, 5, 0.5, (1,), policy)
    keys = [key for key in launch_module._CACHE.plans if key[0] == x.shape and key[3] == (1,)]
    assert {key[-1] for key in keys} == {DEFAULT_POLICY, WITHOUT_SMALL_GRID_RULE}
    plans = {key[-1]: launch_module._CACHE.plans[key] for key in keys}
    assert plans[DEFAULT_POLICY].blocks != plans[WITHOUT_SMALL_GRID_RULE].blocks or (
        plans[DEFAULT_POLICY].num_warps != plans[WITHOUT_SMALL_GRID_RULE].num_warps)


@pytest.mark.parametrize("sms", [1, 80, 108, 132, 144])
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
@pytest.mark.parametrize("case", [((4, 33, 40), ()), ((4, 9, 16), (1,)), ((2, 3, 5, 7), (2, 3))], ids=_ids)
def test_the_tile_rule_test_sizes_its_tensors_for_any_sm_count(case, dtype, sms):
    # The test above runs on one device; its sizing must separate the two rules on every GPU.
    base_shape, dims = case
    itemsize = torch.empty((), dtype=dtype).element_size()
    shape = sized_between_the_tile_rules(base_shape, itemsize, sms)
    strides = torch.empty(shape, device="meta").stride()
    view = plan_view(shape, dims, (strides, strides))
    tiles = {choose_tile(view, itemsize, sms, policy) for policy in (DEFAULT_POLICY, WITHOUT_SMALL_GRID_RULE)}
    assert len(tiles) == 2, (shape, tiles)


def _strided_inputs():
    """(name, builder, shared dims): builders make the strided view from a base on any device."""
    yield "transposed", lambda base: base.transpose(0, 2), (1,)
    yield "permuted-shared-last", lambda base: base.permute(1, 2, 0), (2,)
    yield "sliced", lambda base: base[:, ::3, 1:], (1,)
    yield "sliced-elementwise", lambda base: base[::2, :, ::5], ()
    yield "expanded", lambda base: base[:, :1, :].expand(6, 10, 12), (1,)
    yield "transposed-shared-not-adjacent", lambda base: base.transpose(0, 1), (0, 2)


@pytest.mark.parametrize("name,make_view,dims", list(_strided_inputs()), ids=[c[0] for c in _strided_inputs()])
def test_strided_inputs_match_their_contiguous_copy(name, make_view, dims):
    base = torch.randn(6, 10, 12)
    x_cpu, x_kernel = make_view(base), make_view(base.to(KERNEL_DEVICE))
    expected = dropout_reference(x_cpu.contiguous(), 21, 0.5, dims)
    for run, x in ((dropout_reference, x_cpu), (dropout_triton, x_kernel)):
        y = run(x, 21, 0.5, dims)
        assert torch.equal(y.cpu(), expected), run.__name__
        assert y.stride() == torch.empty_like(x).stride()


def test_output_layout_follows_empty_like():
    x = torch.randn(4, 5, 6, device=KERNEL_DEVICE).transpose(0, 2)
    y = seeded_variational_dropout(x, 0.5, dim=1, seed=1)
    assert y.stride() == x.stride()
    channels_last = torch.randn(2, 3, 4, 5, device=KERNEL_DEVICE).to(memory_format=torch.channels_last)
    y = seeded_variational_dropout(channels_last, 0.5, dim=(2, 3), seed=1)
    assert y.is_contiguous(memory_format=torch.channels_last)


def test_input_is_never_modified():
    for device in {"cpu", KERNEL_DEVICE}:
        x = torch.randn(3, 7, 9, device=device, requires_grad=True)
        before = x.detach().clone()
        y = seeded_variational_dropout(x, 0.5, dim=1, seed=2)
        y.sum().backward()
        assert torch.equal(x.detach(), before)


# --- autograd -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", sorted({"cpu", KERNEL_DEVICE}))
@pytest.mark.parametrize("dims", [(1,), (), (0, 2)])
def test_backward_applies_exactly_the_forward_mask(device, dims):
    x = torch.randn(5, 6, 24, device=device, requires_grad=True)
    y = seeded_variational_dropout(x, 0.3, dim=dims, seed=99)
    grad_out = torch.randn_like(y)
    y.backward(grad_out)
    expected = dropout_reference(grad_out.cpu(), 99, 0.3, dims)
    assert torch.equal(x.grad.cpu(), expected)
    # y.sum().backward() hands backward an expanded (stride-0) gradient.
    x.grad = None
    seeded_variational_dropout(x, 0.3, dim=dims, seed=99).sum().backward()
    assert torch.equal(x.grad.cpu(), dropout_reference(torch.ones(5, 6, 24), 99, 0.3, dims))


@pytest.mark.parametrize("device", sorted({"cpu", KERNEL_DEVICE}))
def test_gradcheck_float64(device):
    x = torch.randn(3, 4, 10, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: seeded_variational_dropout(t, 0.4, dim=1, seed=8), (x,))
    assert torch.autograd.gradgradcheck(lambda t: seeded_variational_dropout(t, 0.4, dim=(0, 2), seed=8), (x,))


@pytest.mark.parametrize("device", sorted({"cpu", KERNEL_DEVICE}))
@pytest.mark.parametrize("seed", [None, 5, "tensor"])
def test_autograd_saves_only_the_seed(device, seed):
    if seed == "tensor":
        seed = torch.tensor([5], device=device)
    saved = []

    def pack(tensor):
        saved.append(tensor)
        return tensor

    x = torch.randn(8, 16, 32, device=device, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = seeded_variational_dropout(x, 0.5, dim=1, seed=seed)
    assert sum(t.numel() * t.element_size() for t in saved) <= 16
    assert all(t.numel() <= 2 and not t.dtype.is_floating_point for t in saved)
    y.sum().backward()


# --- seeds drawn from torch's generators --------------------------------------------------------------


@pytest.mark.parametrize("device", sorted({"cpu", KERNEL_DEVICE}))
def test_manual_seed_reproduces_and_calls_differ(device):
    x = torch.randn(4, 8, 32, device=device)
    torch.manual_seed(123)
    first, second = seeded_variational_dropout(x, dim=1), seeded_variational_dropout(x, dim=1)
    torch.manual_seed(123)
    again = seeded_variational_dropout(x, dim=1)
    assert torch.equal(first, again)
    assert not torch.equal(first, second)


@pytest.mark.parametrize("device", sorted({"cpu", KERNEL_DEVICE}))
def test_checkpoint_recomputation_sees_the_same_mask(device):
    from torch.utils.checkpoint import checkpoint

    layer = torch.nn.Linear(16, 16, dtype=torch.float64).to(device)
    x = torch.randn(3, 5, 16, dtype=torch.float64, device=device, requires_grad=True)

    def block(t):
        return layer(seeded_variational_dropout(torch.tanh(layer(t)), 0.5, dim=1))

    grads = []
    for use_checkpoint in (False, True):
        torch.manual_seed(7)
        x.grad = None
        out = checkpoint(block, x, use_reentrant=False) if use_checkpoint else block(x)
        out.square().sum().backward()
        grads.append(x.grad.clone())
    assert torch.equal(grads[0], grads[1])


# --- special values and bad input -------------------------------------------------------------------


def test_eval_mode_and_p_zero_return_x_without_a_kernel(monkeypatch):
    def no_kernel(*args, **kwargs):
        raise AssertionError("a kernel was launched")

    monkeypatch.setattr(launch_module, "launch", no_kernel)
    monkeypatch.setattr(launch_module, "dropout_reference", no_kernel)
    x = torch.randn(3, 4, 5, device=KERNEL_DEVICE)
    assert seeded_variational_dropout(x, 0.5, training=False) is x
    assert seeded_variational_dropout(x, 0.0) is x


@pytest.mark.parametrize("device", sorted({"cpu", KERNEL_DEVICE}))
def test_p_one_gives_zeros_never_nan(device):
    x = torch.tensor([[1.0, float("inf"), -2.0]], device=device, requires_grad=True)
    y = seeded_variational_dropout(x, 1.0, dim=0)
    assert torch.equal(y.detach(), torch.zeros_like(x))
    y.sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


@pytest.mark.parametrize("device", sorted({"cpu", KERNEL_DEVICE}))
@pytest.mark.parametrize("shape", [(0,), (3, 0, 5), (0, 4)])
def test_empty_tensors(device, shape):
    x = torch.randn(shape, dtype=torch.float16, device=device)
    y = seeded_variational_dropout(x, 0.5, dim=-1, seed=1)
    assert y.shape == x.shape and y.dtype == x.dtype


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_bad_p_is_a_value_error_naming_p(p):
    with pytest.raises(ValueError, match=r"p=") as info:
        seeded_variational_dropout(torch.randn(2, 3), p)
    assert repr(p) in str(info.value)
    with pytest.raises(ValueError, match="p="):
        SeededVariationalDropout(p)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.bool, torch.complex64, torch.uint8])
def test_non_float_x_is_a_type_error_naming_dtypes(dtype):
    with pytest.raises(TypeError, match=str(dtype)) as info:
        seeded_variational_dropout(torch.zeros(2, 3, dtype=dtype), 0.5)
    assert "torch.float16" in str(info.value) and "torch.float64" in str(info.value)


def test_dim_out_of_range_and_duplicates():
    x = torch.randn(2, 3, 4)
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-3, 2\], but got 3\)"):
        seeded_variational_dropout(x, 0.5, dim=3)
    with pytest.raises(IndexError, match="but got -4"):
        seeded_variational_dropout(x, 0.5, dim=(0, -4))
    with pytest.raises(ValueError, match="more than once"):
        seeded_variational_dropout(x, 0.5, dim=(1, -2))


def test_bad_seed():
    x = torch.randn(2, 3)
    with pytest.raises(TypeError, match="integer tensor"):
        seeded_variational_dropout(x, 0.5, seed=torch.tensor(1.0))
    with pytest.raises(TypeError, match="seed"):
        seeded_variational_dropout(x, 0.5, seed=1.5)
    with pytest.raises(TypeError, match="seed"):
        seeded_variational_dropout(x, 0.5, seed=True)
    with pytest.raises(ValueError, match="one integer"):
        seeded_variational_dropout(x, 0.5, seed=torch.tensor([1, 2]))


def test_a_numpy_array_seed_says_how_to_give_it():
    with pytest.raises(TypeError, match=re.escape("got a ndarray of shape (1,): give int(seed.item())")):
        seeded_variational_dropout(torch.randn(2, 3), 0.5, seed=np.array([5]))
    expected = seeded_variational_dropout(torch.ones(2, 3), 0.5, seed=5)
    assert torch.equal(seeded_variational_dropout(torch.ones(2, 3), 0.5, seed=np.array(5)), expected)  # 0-d: an int


def test_a_sparse_x_is_a_type_error_saying_what_to_give():
    with pytest.raises(TypeError, match=re.escape("x must be a dense (strided) tensor, got layout torch.sparse_coo")):
        seeded_variational_dropout(torch.randn(2, 3).to_sparse(), 0.5, seed=1)


def test_a_nested_x_is_a_type_error_saying_what_to_give():
    nested = torch.nested.nested_tensor([torch.randn(2), torch.randn(3)])
    with pytest.raises(TypeError, match=re.escape("x must be a dense (strided) tensor, got layout nested")):
        seeded_variational_dropout(nested, 0.5, dim=(), seed=1)


@pytest.mark.parametrize("training", ["False", "no", None, 0.5, 2, torch.tensor(True)])
def test_training_takes_a_bool_as_f_dropout_does_never_a_value_read_by_its_truthiness(training):
    with pytest.raises(TypeError, match="training must be a bool"):
        seeded_variational_dropout(torch.randn(2, 3), 0.5, seed=1, training=training)
    x = torch.randn(2, 3)
    assert seeded_variational_dropout(x, 0.5, seed=1, training=np.bool_(False)) is x


def test_torch_jit_script_is_refused_saying_what_to_use_instead():
    with pytest.raises(RuntimeError, match="cannot be compiled by torch.jit.script .* use torch.compile"):
        torch.jit.script(SeededVariationalDropout(0.5, 1))


TRANSFORMS = {
    "vmap": lambda f, x: torch.vmap(f)(x),
    "jvp": lambda f, x: torch.func.jvp(f, (x,), (torch.ones_like(x),)),
    "func.grad": lambda f, x: torch.func.grad(lambda a: f(a).sum())(x),
}


@pytest.mark.parametrize("transform", TRANSFORMS.values(), ids=TRANSFORMS.keys())
def test_function_transforms_are_refused_saying_what_to_use_instead(transform):
    def f(a):
        return seeded_variational_dropout(a, 0.5, dim=0, seed=1)

    with pytest.raises(RuntimeError, match="supports reverse-mode autograd only .* use torch.nn.functional.dropout"):
        transform(f, torch.randn(3, 4))


def test_forward_mode_ad_is_refused_on_a_dual_tensor_only():
    from torch.autograd import forward_ad

    x = torch.randn(3, 4)
    with forward_ad.dual_level():
        with pytest.raises(RuntimeError, match=re.escape("forward-mode AD (a dual tensor) is not supported")):
            seeded_variational_dropout(forward_ad.make_dual(x, torch.ones_like(x)), 0.5, seed=1)
        assert torch.equal(seeded_variational_dropout(x, 0.5, seed=1), seeded_variational_dropout(x, 0.5, seed=1))


def test_negative_dims_count_from_the_end():
    x = torch.randn(3, 4, 5, device=KERNEL_DEVICE)
    assert torch.equal(
        seeded_variational_dropout(x, 0.5, dim=-2, seed=4), seeded_variational_dropout(x, 0.5, dim=1, seed=4)
    )
    assert mask_shape_of((3, 4, 5), (0, 2)) == (1, 4, 1)


# --- dim: what is accepted, and no call changes how another is read ---------------------------------


def is_locked_along(y: torch.Tensor, dims) -> bool:
    keep = kept_elements(y)
    return torch.equal(keep, keep.amax(dim=dims, keepdim=True).expand_as(keep))


def test_a_generator_dim_is_read_once_and_changes_no_later_call():
    # A shape and dims no other test uses, so what the first call leaves behind is what is tested.
    x = torch.rand(2, 3, 4, 5, 6) + 0.5  # no zeros: a zero in y is a dropped element
    expected = dropout_reference(x, 5, 0.5, (1, 3))
    assert torch.equal(seeded_variational_dropout(x, 0.5, dim=(d for d in (1, 3)), seed=5), expected)
    assert torch.equal(seeded_variational_dropout(x, 0.5, dim=(1, 3), seed=5), expected)
    assert torch.equal(seeded_variational_dropout(x, 0.5, dim=[1, -2], seed=5), expected)
    assert is_locked_along(SeededVariationalDropout(0.5, dim=(1, 3))(x), (1, 3))
    x.requires_grad_(True)
    seeded_variational_dropout(x, 0.5, dim=(1, 3), seed=5).sum().backward()
    assert torch.equal(x.grad, dropout_reference(torch.ones_like(x), 5, 0.5, (1, 3)))


def test_dim_is_checked_the_same_whatever_came_before():
    x = torch.randn(2, 3, 4)
    seeded_variational_dropout(x, 0.5, dim=1, seed=1)  # valid calls first, with equal-comparing dims
    seeded_variational_dropout(x, 0.5, dim=(1,), seed=1)
    for bad in (True, (True,), 1.0, (1.0,)):
        with pytest.raises(TypeError, match="dim must be an int or a sequence of ints"):
            seeded_variational_dropout(x, 0.5, dim=bad, seed=1)


def test_bool_dims_are_a_type_error_in_the_function_and_the_module():
    # nn.Dropout(0.5, True) means inplace=True; here the second argument is dim.
    with pytest.raises(TypeError, match="bool"):
        SeededVariationalDropout(0.5, True)
    with pytest.raises(TypeError, match="bool"):
        SeededVariationalDropout(0.5, dim=(0, False))
    for bad in (True, False, (0, True), torch.tensor(True)):
        with pytest.raises(TypeError, match="bool"):
            seeded_variational_dropout(torch.randn(2, 3, 4), 0.5, dim=bad, seed=1)


BAD_DIMS = {
    "float": 1.0,
    "None": None,
    "str": "1",
    "tuple-with-str": (1, "2"),
    "nested": ((1,),),
    "object": object(),
    "float-tensor": torch.tensor(1.0),
    "numpy-bool": np.bool_(True),
    "numpy-float": np.float64(1.0),
    "2-d tensor": torch.tensor([[1]]),
    "2-d array": np.array([[1]]),
    "dict": {1: "a"},
}


@pytest.mark.parametrize("bad", BAD_DIMS.values(), ids=BAD_DIMS.keys())
def test_dims_of_another_type_say_what_dim_must_be(bad):
    with pytest.raises(TypeError, match=r"dim must be an int or a sequence of ints"):
        seeded_variational_dropout(torch.randn(2, 3, 4), 0.5, dim=bad, seed=1)
    with pytest.raises(TypeError, match=r"dim must be an int or a sequence of ints"):
        seeded_variational_dropout(torch.randn(2, 3, 4), 0.5, dim=bad, training=False)  # checked in eval too
    with pytest.raises(TypeError, match=r"dim must be an int or a sequence of ints"):
        SeededVariationalDropout(0.5, bad)


def test_numpy_and_tensor_integer_dims_work():
    x = torch.randn(3, 4, 5)
    expected = seeded_variational_dropout(x, 0.5, dim=1, seed=2)
    for dim in (np.int64(1), np.int32(-2), torch.tensor(1), (np.int64(1),), [torch.tensor(-2)], torch.tensor([1])):
        assert torch.equal(seeded_variational_dropout(x, 0.5, dim=dim, seed=2), expected), dim
    assert torch.equal(seeded_variational_dropout(x, 0.5, dim=np.array([0, 2]), seed=2),
                       seeded_variational_dropout(x, 0.5, dim=(0, 2), seed=2))  # fmt: skip
    assert repr(SeededVariationalDropout(0.5, np.int64(1))) == "SeededVariationalDropout(p=0.5, dim=1)"
    assert repr(SeededVariationalDropout(0.5, [np.int64(0), 2])) == "SeededVariationalDropout(p=0.5, dim=(0, 2))"


# --- p: what F.dropout accepts -----------------------------------------------------------------------

P_EQUAL_TO_HALF = {
    "tensor": torch.tensor(0.5),
    "float64-tensor": torch.tensor(0.5, dtype=torch.float64),
    "float16-tensor": torch.tensor(0.5, dtype=torch.float16),
    "numpy-float32": np.float32(0.5),
    "numpy-float64": np.float64(0.5),
}


@pytest.mark.parametrize("p", P_EQUAL_TO_HALF.values(), ids=P_EQUAL_TO_HALF.keys())
def test_p_is_taken_as_f_dropout_takes_it(p):
    x = torch.randn(3, 4, 5)
    torch.nn.functional.dropout(x, p)  # torch accepts it
    expected = seeded_variational_dropout(x, 0.5, dim=1, seed=3)
    assert torch.equal(seeded_variational_dropout(x, p, dim=1, seed=3), expected)
    layer = SeededVariationalDropout(p)
    assert type(layer.p) is float and layer.p == 0.5


def test_integer_and_bool_p_count_as_0_and_1_as_in_f_dropout():
    x = torch.randn(3, 4, 5)
    for p in (1, True, np.int64(1), np.bool_(True), torch.tensor(1), torch.tensor(True)):
        assert torch.equal(torch.nn.functional.dropout(x, p), torch.zeros_like(x))
        assert torch.equal(seeded_variational_dropout(x, p, seed=1), torch.zeros_like(x))
    for p in (0, False, np.bool_(False), torch.tensor(0)):
        assert torch.equal(torch.nn.functional.dropout(x, p), x)
        assert seeded_variational_dropout(x, p) is x
    assert SeededVariationalDropout(True).p == 1.0


BAD_P_TYPES = {
    "str": "0.5",
    "None": None,
    "complex": 0.5j,
    "1-d tensor": torch.tensor([0.5]),
    "complex tensor": torch.tensor(0.5j),
    "list": [0.5],
}


@pytest.mark.parametrize("p", BAD_P_TYPES.values(), ids=BAD_P_TYPES.keys())
def test_p_of_another_type_is_a_type_error_naming_p(p):
    with pytest.raises(TypeError, match="dropout probability p must be a real number") as from_function:
        seeded_variational_dropout(torch.randn(2, 3), p)
    with pytest.raises(TypeError) as from_module:
        SeededVariationalDropout(p)
    assert str(from_module.value) == str(from_function.value)  # one check for both


@pytest.mark.parametrize("p", [torch.tensor(1.5), np.float32(-0.25), torch.tensor(float("nan"))], ids=str)
def test_p_out_of_range_names_its_value(p):
    value = repr(float(p))
    with pytest.raises(ValueError, match=rf"between 0 and 1, but got p={value}$"):
        seeded_variational_dropout(torch.randn(2, 3), p)
    with pytest.raises(ValueError, match=rf"between 0 and 1, but got p={value}$"):
        SeededVariationalDropout(p)


# --- seeds: torch.manual_seed's range, in eager and compiled code ------------------------------------


def test_seeds_take_torch_manual_seeds_range():
    x = torch.randn(3, 4, 16)

    def run(seed):
        return seeded_variational_dropout(x, 0.5, dim=1, seed=seed)

    assert torch.equal(run(2**64 - 1), run(-1))  # negative seeds are taken modulo 2**64
    assert torch.equal(run(2**63), run(-(2**63)))
    assert torch.equal(run(np.uint64(2**64 - 1)), run(-1))
    assert torch.equal(run(np.int64(7)), run(7))
    assert not torch.equal(run(2**64 - 1), run(0))
    for bad in (2**64, 2**64 + 5, -(2**63) - 1, 2**100):
        with pytest.raises(ValueError, match=r"seed must be in \[-2\*\*63, 2\*\*64 - 1\]"):
            run(bad)
        with pytest.raises(ValueError):
            torch.Generator().manual_seed(bad)  # torch refuses it too


def test_compiled_code_takes_seeds_by_the_same_rule():
    def compiled_with_seed(seed, fullgraph=True):
        def dropout(t):
            return seeded_variational_dropout(t, 0.5, dim=1, seed=seed)

        return torch.compile(dropout, fullgraph=fullgraph, backend="aot_eager")

    x = torch.randn(3, 4, 16)
    for seed in (2**63 + 5, 2**64 - 1, -3):
        assert torch.equal(compiled_with_seed(seed)(x), seeded_variational_dropout(x, 0.5, dim=1, seed=seed)), seed
    with pytest.raises(ValueError, match="seed must be in"):  # (with fullgraph, dynamo reports it as Unsupported)
        compiled_with_seed(2**64, fullgraph=False)(x)


# --- meta and 0-d tensors, torch.jit.trace -----------------------------------------------------------


def test_meta_tensors_get_shapes_forward_and_backward_and_draw_no_seed():
    x = torch.empty(3, 4, 5, device="meta", requires_grad=True)
    rng_state = torch.get_rng_state()
    for dim, seed, p in (((1,), None, 0.5), ((), 7, 0.3), ((0, 2), torch.tensor(3), 0.5), (1, None, 1.0)):
        y = seeded_variational_dropout(x, p, dim=dim, seed=seed)
        assert y.device.type == "meta" and y.shape == x.shape and y.dtype == x.dtype
        y.sum().backward()
        assert x.grad.device.type == "meta" and x.grad.shape == x.shape
        x.grad = None
    assert SeededVariationalDropout(0.5)(torch.empty(2, 3, 4, device="meta")).shape == (2, 3, 4)
    assert torch.equal(torch.get_rng_state(), rng_state)  # nothing drawn


def test_a_0d_tensor_is_returned_in_eval_mode_and_at_p_zero():
    x = torch.tensor(2.0)
    assert torch.nn.functional.dropout(x, 0.5, training=False) is x
    assert seeded_variational_dropout(x, 0.5, training=False) is x
    assert seeded_variational_dropout(x, 0.0) is x
    assert SeededVariationalDropout(0.5).eval()(x) is x  # the default dim=1 is not checked against x there


@pytest.mark.parametrize("device", sorted({"cpu", KERNEL_DEVICE}))
def test_a_0d_tensor_in_training_drops_its_one_element(device):
    # As in torch, a 0-d tensor has one dim to name (0 or -1); sharing its mask along it changes nothing.
    x = torch.tensor(3.0, device=device, requires_grad=True)
    outcomes = set()
    for seed in range(6):
        element_wise = dropout_reference(torch.tensor([3.0]), seed, 0.5, ()).reshape(())
        for dim in ((), 0, -1, (0,)):
            y = seeded_variational_dropout(x, 0.5, dim=dim, seed=seed)
            assert y.shape == () and torch.equal(y.detach().cpu(), element_wise), (seed, dim)
        y.backward()
        assert torch.equal(x.grad.cpu(), element_wise / 3)
        x.grad = None
        outcomes.add(float(element_wise))
    assert outcomes == {0.0, 6.0}
    with pytest.raises(IndexError, match=r"range of \[-1, 0\], but got 1\)"):
        seeded_variational_dropout(x, 0.5, dim=1, seed=0)


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning")  # what this test checks is refused
def test_jit_trace_is_refused_in_training_mode():
    # A trace would record one seed: every call of the traced module would drop the same elements.
    layer = SeededVariationalDropout(0.5)
    x = torch.randn(2, 3, 4)
    with pytest.raises(RuntimeError, match="torch.jit.trace"):
        torch.jit.trace(layer, x)
    with pytest.raises(RuntimeError, match="torch.jit.trace"):
        torch.jit.trace(lambda t: seeded_variational_dropout(t, 0.5, dim=1, seed=3), x)
    traced = torch.jit.trace(torch.nn.Sequential(torch.nn.Identity(), layer.eval()), x, check_trace=False)
    assert torch.equal(traced(x), x)  # eval mode: the identity, nothing random to record


# --- the CPU path in chunks ---------------------------------------------------------------------------


def assert_same_bits_any_nan(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Bit for bit, except that a NaN matches any NaN: torch's float-to-half conversion gives NaN a
    different payload in its vectorized and scalar loops, so a NaN's bits follow where a chunk ends."""
    nan = expected.isnan()
    assert torch.equal(actual.isnan(), nan)
    assert torch.equal(actual[~nan].view(torch.uint8), expected[~nan].view(torch.uint8))


CHUNK_CASES = [((3, 7, 11), ()), ((3, 17, 33), (1,)), ((2, 3, 5, 7), (0, 2)), ((255,), ())]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CHUNK_CASES, ids=_ids)
def test_cpu_path_in_chunks_equals_one_piece_bit_for_bit(case, dtype):
    shape, dims = case
    x = torch.randn(shape).to(dtype)
    x.view(-1)[:4] = torch.tensor([float("inf"), -float("inf"), float("nan"), 0.0]).to(dtype)
    for view in (x, x.transpose(0, -1)):
        whole = dropout_reference(view, 7, 0.4, dims, chunk_elements=x.numel())
        assert whole.isnan().any()  # the infinities or the NaN, dropped, or the NaN kept
        for chunk in (1, 5, 8, 13, 100):
            assert_same_bits_any_nan(dropout_reference(view, 7, 0.4, dims, chunk_elements=chunk), whole)
    mask_shape = mask_shape_of(shape, dims)
    assert torch.equal(keep_mask(7, mask_shape, 0.4, chunk_elements=3), keep_mask(7, mask_shape, 0.4))


@pytest.mark.filterwarnings("ignore:invalid value encountered in multiply:RuntimeWarning")  # inf * 0, as meant
@pytest.mark.parametrize("dtype", DTYPES)
def test_inf_and_nan_inputs_give_what_the_kernel_gives(dtype):
    # A dropped element is x * 0: NaN for an infinite or NaN x, in the kernel and on the CPU path alike
    # (which NaN is not pinned: the interpreter's bfloat16 NaN has another payload than torch's).
    x = torch.tensor([float("inf"), -float("inf"), float("nan"), 1.0] * 16).reshape(4, 16).to(dtype)
    expected = dropout_triton(x.to(KERNEL_DEVICE), 3, 0.5, ()).cpu()
    actual = dropout_reference(x, 3, 0.5, ())
    torch.testing.assert_close(actual, expected, rtol=0, atol=0, equal_nan=True)
    assert torch.isnan(actual[:, :2]).any() and torch.isinf(actual[:, :2]).any()  # some dropped, some kept


# --- nn.Module -----------------------------------------------------------------------------------------


def test_module_eval_identity_repr_and_fresh_masks():
    layer = SeededVariationalDropout(p=0.25, dim=(0, 1))
    assert repr(layer) == "SeededVariationalDropout(p=0.25, dim=(0, 1))"
    x = torch.randn(4, 5, 64, device=KERNEL_DEVICE)
    first, second = layer(x), layer(x)
    assert not torch.equal(first, second)
    layer.eval()
    assert layer(x) is x


# --- torch.compile --------------------------------------------------------------------------------------


def test_compile_fullgraph_has_no_graph_break():
    # aot_eager traces through dynamo and AOT autograd (fake tensors, the registered autograd) without
    # needing Inductor's code generation; on the GPU the suite runs the default backend too.
    model = torch.nn.Sequential(torch.nn.Linear(32, 32), SeededVariationalDropout(0.5, dim=1))
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    x = torch.randn(2, 6, 32, requires_grad=True)
    y = compiled(x)
    y.sum().backward()
    keep = kept_elements(y)
    assert torch.equal(keep, keep[:, :1].expand_as(keep))
    assert x.grad is not None


@pytest.mark.parametrize(
    "dtype, shape, dims",
    [
        (torch.float32, (4, 5, 16), (1,)),
        (torch.bfloat16, (3, 4, 5, 6), (0, 2)),  # shared dims that are no single axis: the packed copy
        (torch.float16, (8, 33), ()),
    ],
)
def test_the_op_inductor_traces_gives_the_eager_masks_and_gradients(dtype, shape, dims):
    # dropout_kernel_op is what Inductor traces for CUDA tensors (it then launches the kernel itself);
    # run eagerly, its body launches the same kernel (here in the interpreter) with a device seed.
    from kernels.autograd import dropout_kernel_op

    x = torch.randn(shape, dtype=dtype, device=KERNEL_DEVICE, requires_grad=True)
    seed = torch.tensor([2024], dtype=torch.int64, device=KERNEL_DEVICE)
    y = dropout_kernel_op(x, seed, 0.3, list(dims))
    assert torch.equal(y.cpu(), dropout_reference(x.detach().cpu(), 2024, 0.3, dims))
    grad_out = torch.randn_like(y)
    y.backward(grad_out)
    assert torch.equal(x.grad.cpu(), dropout_reference(grad_out.cpu(), 2024, 0.3, dims))


def test_the_op_inductor_traces_takes_dynamic_shapes_through_the_opaque_op():
    # Dynamo marks sizes dynamic once a second shape is seen; the traced launch needs plain ints, so
    # dropout_kernel_op sends symbolic layouts to the opaque op (before, tracing it raised "unhashable
    # type: non-nested SymInt"). Forward and backward, two shapes through one dynamic graph.
    from kernels.autograd import dropout_kernel_op

    def step(t, s):
        return dropout_kernel_op(t, s, 0.3, [1])

    compiled = torch.compile(step, fullgraph=True, dynamic=True, backend="aot_eager")
    seed = torch.tensor([7], dtype=torch.int64, device=KERNEL_DEVICE)
    for shape in ((2, 5, 16), (3, 9, 16)):
        x = torch.randn(shape, device=KERNEL_DEVICE, requires_grad=True)
        y = compiled(x, seed)
        assert torch.equal(y.detach().cpu(), dropout_reference(x.detach().cpu(), 7, 0.3, (1,)))
        y.backward(torch.ones_like(y))
        assert torch.equal(x.grad.cpu(), dropout_reference(torch.ones(shape), 7, 0.3, (1,)))


@pytest.mark.gpu  # Inductor on the GPU
def test_compiled_op_under_inductor_recompiles_for_a_second_shape_as_a_dynamic_graph():
    # The failure the AWD-LSTM model workload met: a second sequence length makes Dynamo recompile
    # with dynamic sizes, and the compiled op must still give eager's masks and gradients.
    fn = torch.compile(lambda t: seeded_variational_dropout(t, 0.5, dim=0, seed=5), fullgraph=True)
    for seq in (16, 24, 40):
        x = torch.randn(seq, 4, 64, device="cuda", requires_grad=True)
        y = fn(x)
        assert torch.equal(y, seeded_variational_dropout(x, 0.5, dim=0, seed=5))
        y.sum().backward()
        assert torch.equal(x.grad, dropout_reference(torch.ones(seq, 4, 64), 5, 0.5, (0,)).cuda())


def test_an_empty_triton_hook_chain_is_no_hook():
    # Triton >= 3.5 keeps launch hooks in a HookChain that is never None: only one holding a call is
    # a hook (a profiler's), which sends launches through Triton's own runner.
    class Chain:
        def __init__(self, calls):
            self.calls = calls

    assert not launch_module._hook_is_set(Chain([]))
    assert launch_module._hook_is_set(Chain([print]))
    assert not launch_module._hook_is_set(None)  # Triton before 3.5: a callable or None
    assert launch_module._hook_is_set(print)


@pytest.mark.gpu  # Inductor on the GPU
def test_compile_inductor_on_gpu_matches_eager_with_a_seed():
    x = torch.randn(4, 16, 64, device="cuda", requires_grad=True)
    fn = torch.compile(lambda t: seeded_variational_dropout(t, 0.5, dim=1, seed=17), fullgraph=True)
    y = fn(x)
    assert torch.equal(y, seeded_variational_dropout(x, 0.5, dim=1, seed=17))
    y.sum().backward()
    assert torch.equal(x.grad, dropout_reference(torch.ones(4, 16, 64), 17, 0.5, (1,)).cuda())


def test_compiled_calls_draw_fresh_masks_and_backward_reuses_each():
    # Two identical calls in one graph: two seed draws (not merged by common-subexpression elimination),
    # each call's backward with its own forward's mask, and torch.manual_seed reproducing both.
    def two_dropouts(t):
        return seeded_variational_dropout(t, 0.5, dim=1), seeded_variational_dropout(t, 0.5, dim=1)

    compiled = torch.compile(two_dropouts, fullgraph=True, backend="aot_eager")
    x = (torch.rand(4, 6, 32) + 0.5).requires_grad_(True)  # no zeros: a zero in y is a dropped element
    torch.manual_seed(0)
    a, b = compiled(x)
    assert not torch.equal(kept_elements(a), kept_elements(b))
    grad_a, grad_b = torch.randn_like(a), torch.randn_like(b)
    torch.autograd.backward((a, b), (grad_a, grad_b))
    assert torch.equal(x.grad, torch.where(a != 0, grad_a * 2, 0) + torch.where(b != 0, grad_b * 2, 0))
    torch.manual_seed(0)
    again = compiled(x)
    torch.manual_seed(0)
    eager = two_dropouts(x)
    for compiled_y, again_y, eager_y in zip((a, b), again, eager, strict=True):
        assert torch.equal(again_y, compiled_y) and torch.equal(eager_y, compiled_y)


def test_compiled_calls_compile_once():
    frames = []

    def count_frames(graph_module, example_inputs):
        frames.append(graph_module)
        return graph_module.forward

    # Dims and a rank no other test uses: the first call is the first the op sees of them.
    compiled = torch.compile(lambda t: seeded_variational_dropout(t, 0.5, dim=(0, 3)), backend=count_frames)
    x = torch.randn(2, 3, 4, 5)
    masks = [kept_elements(compiled(x)) for _ in range(3)]
    assert len(frames) == 1
    assert not torch.equal(masks[0], masks[1]) and not torch.equal(masks[1], masks[2])


@pytest.mark.parametrize("device", sorted({"cpu", KERNEL_DEVICE}))
def test_inductor_compiled_masks_follow_manual_seed_as_eager_ones(device):
    # Inductor swaps random aten ops for its own generator; the op's seed draw must stay the eager one, so
    # a compiled model and an eager one see the same masks after the same torch.manual_seed.
    def dropout(t):
        return seeded_variational_dropout(t, 0.5, dim=1)

    compiled = torch.compile(dropout, fullgraph=True)
    x = (torch.rand(4, 6, 32, device=device) + 0.5).requires_grad_(True)  # no zeros: a zero in y is a dropped element
    torch.manual_seed(5)
    y = compiled(x)
    y.backward(torch.ones_like(y))
    torch.manual_seed(5)
    assert torch.equal(y, dropout(x))
    assert torch.equal(x.grad, (y != 0).to(x.dtype) * 2)


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compiled_activation_checkpointing_recomputes_the_forward_mask(backend):
    # Checkpointing makes the partitioner recompute the seed draw in backward: it must replay the
    # generator state the forward draw saw, so backward drops what forward dropped.
    def block(t):
        return seeded_variational_dropout(t * 3, 0.5, dim=1) * 2

    def checkpointed(t):
        return torch.utils.checkpoint.checkpoint(block, t, use_reentrant=False)

    compiled = torch.compile(checkpointed, fullgraph=True, backend=backend)
    x = (torch.rand(3, 5, 16, dtype=torch.float64) + 0.5).requires_grad_(True)
    torch.manual_seed(7)
    y = compiled(x)
    y.backward(torch.ones_like(y))
    assert torch.equal(x.grad, (y != 0).to(x.dtype) * 12)  # 3 * 2 * 1 / (1 - p) where kept
    torch.manual_seed(7)
    assert torch.equal(y, block(x))


# The child process of the test below: one tiny model, compiled, two training steps after torch.manual_seed(0).
COLD_WARM_SCRIPT = """
import sys

import torch
from torch._dynamo.utils import counters

from kernels import SeededVariationalDropout

device, out_path = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Linear(32, 64), SeededVariationalDropout(0.5, dim=1), torch.nn.GELU(),
    torch.nn.Linear(64, 32), SeededVariationalDropout(0.25, dim=()),
).to(device)
compiled = torch.compile(model, fullgraph=True)
x = torch.randn(4, 8, 32, device=device)
results = []
for step in range(2):
    y = compiled(x)
    y.square().mean().backward()
    results += [y.detach().cpu()] + [p.grad.detach().cpu().clone() for p in model.parameters()]
    model.zero_grad()
cache = {
    "hits": counters["inductor"]["fxgraph_cache_hit"] + counters["aot_autograd"]["autograd_cache_hit"],
    "misses": counters["inductor"]["fxgraph_cache_miss"] + counters["aot_autograd"]["autograd_cache_miss"],
}
torch.save({"results": results, "cache": cache}, out_path)
"""


@pytest.mark.gpu  # Inductor on the GPU
def test_compiled_model_is_reproducible_with_a_cold_and_a_warm_compile_cache(tmp_path):
    script = tmp_path / "two_steps.py"
    script.write_text(COLD_WARM_SCRIPT)
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}  # Inductor on the GPU
    env["TORCHINDUCTOR_CACHE_DIR"] = str(tmp_path / "inductor-cache")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    runs = []
    for name in ("cold", "warm"):
        out = tmp_path / f"{name}.pt"
        subprocess.run([sys.executable, str(script), "cuda", str(out)], env=env, check=True, timeout=600)
        runs.append(torch.load(out))
    cold, warm = runs
    assert cold["cache"]["misses"] > 0  # the first process compiled
    assert warm["cache"]["hits"] > 0 and warm["cache"]["misses"] == 0  # the second one loaded it all
    for cold_tensor, warm_tensor in zip(cold["results"], warm["results"], strict=True):
        assert torch.equal(cold_tensor, warm_tensor)


def test_small_tensors_get_smaller_tiles_and_large_ones_keep_theirs():
    def tile(numel, itemsize, sm_count):
        return tile_elements(numel, itemsize, sm_count, DEFAULT_POLICY)

    full = DEFAULT_POLICY.tile_bytes // 2
    assert tile(64 * 4096 * 768, 2, 132) == full  # fills the GPU many times over
    assert tile(64 * 1 * 768, 2, 132) == DEFAULT_POLICY.min_tile_bytes // 2  # never below the minimum
    assert tile(64 * 16 * 768, 2, 132) == 4096  # 786432 / 264 programs -> 2979 -> 4096
    small = tile(64 * 16 * 768, 2, 132)
    assert triton_cdiv(64 * 16 * 768, small) >= 132  # at least one program per SM


def test_latency_bound_grids_get_one_philox_call_per_thread_and_fewer_warps():
    def tile_of(t, itemsize, dims):
        shape, strides = (64, t, 768), (t * 768, 768, 1)
        tile = choose_tile(plan_view(shape, dims, (strides, strides)), itemsize, 132)
        return tile.block_o, tile.block_s, tile.block_c, tile.lanes, tile.num_warps

    # element-wise, 3 MB of float32 (a grid of 192 programs at full tiles): 1024-element grouped tiles
    block_o, block_s, block_c, lanes, warps = tile_of(16, 4, ())
    assert lanes == 8 and block_o * block_s * block_c * lanes == DEFAULT_POLICY.small_grid_tile
    assert warps == block_o * block_s * block_c // 32  # one Philox call (8 elements) per thread
    # shared dim, same size: the plain tile keeps its size, with 2 warps instead of 8
    assert tile_of(16, 4, (1,)) == (1, 16, 256, 1, 2)
    # 200 MB: the streaming tiles, unchanged
    assert tile_of(4096, 4, (1,)) == (1, 16, 256, 1, 8)
    assert tile_of(4096, 4, ()) == (1, 1, 512, 8, 8)
