"""The fused op `h = residual + dropout(x); y = norm(h)`: its mask is the standalone op's, h is
`residual + seeded_variational_dropout(x)` bit for bit, y and the gradients match an fp64
reference, backward saves h, the weight and the seed only, and the compiled, seeded, eval and bad-
input behaviours.

The Triton kernels run on KERNEL_DEVICE (CUDA when present, else CPU tensors through Triton's
interpreter) by calling the launch functions directly, as tests/test_seeded_dropout.py does; the
public function runs the CPU path on CPU tensors. Shapes are small: the interpreter runs one
program per row.
"""

import pytest
import torch
import torch.nn.functional as F
from conftest import KERNEL_DEVICE
from functorch.compile import make_boxed_func
from torch._dynamo.backends.common import aot_autograd

from kernels import SeededDropoutAddNorm, fused_launch, seeded_dropout_add_norm, seeded_variational_dropout
from kernels.fused_launch import MAX_D, NORMS, BackwardLoop, backward_loop, backward_triton, forward_triton, row_plan

DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# (shape, shared dims): shared dims in the middle, none, two that are not adjacent (a packed copy),
# the last dim (one decision per row), a rank-1 x, size-1 dims; D % 8 == 0 (eight decisions per
# Philox call) and not.
CASES = [
    ((2, 3, 16), (1,)),
    ((2, 3, 13), ()),
    ((2, 2, 2, 8), (0, 2)),
    ((3, 8), (1,)),
    ((5,), ()),
    ((1, 1, 12), (1,)),
]
# y and the gradients against the fp64 reference: within a few roundings of the dtype (y is rounded
# once from float32; h, rounded to the dtype, feeds the norm, so 16-bit gradients carry h's rounding).
Y_TOL = {torch.float16: (2e-3, 2e-3), torch.bfloat16: (1.6e-2, 1.6e-2), torch.float32: (2e-5, 2e-5),
         torch.float64: (1e-12, 1e-12)}  # fmt: skip
GRAD_TOL = {torch.float16: (2e-2, 2e-2), torch.bfloat16: (8e-2, 8e-2), torch.float32: (1e-4, 1e-4),
            torch.float64: (1e-10, 1e-10)}  # fmt: skip


def _ids(case):
    shape, dims = case
    return f"{'x'.join(map(str, shape))}-dim{''.join(map(str, dims)) or 'none'}"


def inputs(shape, dtype, device=KERNEL_DEVICE, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x, residual = (torch.randn(shape, generator=generator, dtype=torch.float64) for _ in range(2))
    weight, bias = (torch.randn(shape[-1:], generator=generator, dtype=torch.float64) for _ in range(2))
    return [t.to(dtype).to(device) for t in (x, residual, weight, bias)]


def norm64(h, weight, bias, norm, eps=1e-6):
    """torch's own norm in float64: the reference for y."""
    h, weight, bias = (None if t is None else t.double() for t in (h, weight, bias))
    if norm == "layer":
        return F.layer_norm(h, h.shape[-1:], weight, bias, eps)
    y = F.rms_norm(h, h.shape[-1:], weight, eps)
    return y if bias is None else y + bias


# --- the mask and h: the standalone op's, bit for bit -------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_h_is_residual_plus_the_standalone_dropout_bit_for_bit(case, dtype):
    shape, dims = case
    x, residual, weight, bias = inputs(shape, dtype)
    expected_h = residual.cpu() + seeded_variational_dropout(x.cpu(), 0.3, dims, seed=1234)
    y, h = forward_triton(x, residual, weight, bias, 1234, 0.3, dims, NORMS["layer"], 1e-6)
    assert torch.equal(h.cpu(), expected_h)
    assert h.is_contiguous() and y.is_contiguous()
    rtol, atol = Y_TOL[dtype]
    torch.testing.assert_close(y.cpu().double(), norm64(expected_h, weight.cpu(), bias.cpu(), "layer"), rtol=rtol,
                               atol=atol)  # fmt: skip
    # The public function (the CPU path on CPU) gives the same h.
    _, h_public = seeded_dropout_add_norm(x, residual, 0.3, dims, seed=1234, norm="layer", weight=weight, bias=bias)
    assert torch.equal(h_public.cpu(), expected_h)


def test_the_mask_is_shared_along_dim_and_differs_between_seeds():
    x = torch.rand(2, 5, 16, device=KERNEL_DEVICE) + 0.5  # no zeros: a dropped element leaves h == residual
    residual = torch.zeros_like(x)
    _, h = forward_triton(x, residual, None, None, 7, 0.5, (1,), NORMS[None], 1e-6)
    _, other = forward_triton(x, residual, None, None, 8, 0.5, (1,), NORMS[None], 1e-6)
    keep = h != 0
    assert torch.equal(keep, keep[:, :1].expand_as(keep))
    assert 0 < int(keep.sum()) < keep.numel()
    assert not torch.equal(keep, other != 0)


def test_non_contiguous_inputs_give_the_contiguous_results():
    x, residual, weight, _ = inputs((3, 2, 16), torch.float32)
    x_t, residual_t = x.transpose(0, 1), residual.transpose(0, 1)  # (2, 3, 16), not contiguous
    y, h = forward_triton(x_t, residual_t, weight, None, 5, 0.4, (1,), NORMS["rms"], 1e-6)
    y_c, h_c = forward_triton(x_t.contiguous(), residual_t.contiguous(), weight, None, 5, 0.4, (1,), NORMS["rms"], 1e-6)
    assert torch.equal(h, h_c) and torch.equal(y, y_c) and h.is_contiguous()


def test_a_row_of_8192_and_the_widest_row():
    x, residual, weight, bias = inputs((2, 8192), torch.bfloat16)
    y, h = forward_triton(x, residual, weight, bias, 3, 0.1, (), NORMS["rms"], 1e-6)
    assert torch.equal(h.cpu(), residual.cpu() + seeded_variational_dropout(x.cpu(), 0.1, (), seed=3))
    rtol, atol = Y_TOL[torch.bfloat16]
    torch.testing.assert_close(y.cpu().double(), norm64(h.cpu(), weight.cpu(), bias.cpu(), "rms"), rtol=rtol, atol=atol)
    wide = torch.zeros(1, MAX_D + 1, device=KERNEL_DEVICE)
    with pytest.raises(ValueError, match=f"at most {MAX_D}"):
        forward_triton(wide, wide, None, None, 3, 0.1, (), NORMS["rms"], 1e-6)


def test_row_plan_maps_rows_onto_the_mask():
    plan = row_plan((4, 6, 32), (1,))  # [O, S, K] = [4, 6, 1]; eight decisions per Philox call
    assert (plan.rows, plan.size_s, plan.size_k, plan.mask_row_len, plan.mask_col_stride, plan.lanes) == (
        24, 6, 1, 32, 1, 8)  # fmt: skip
    plan = row_plan((6, 4, 30), (0,))  # [1, 6, 4]; D % 8 != 0: one Philox call per element
    assert (plan.size_s, plan.size_k, plan.lanes, plan.order) == (6, 4, 1, None)
    plan = row_plan((4, 8), (1,))  # the last dim shared: one mask element per row
    assert (plan.mask_row_len, plan.mask_col_stride, plan.lanes) == (1, 0, 1)
    assert row_plan((2, 3, 5, 8), (0, 2)).order == (0, 2, 1, 3)  # not adjacent: shared dims first


# --- gradients ------------------------------------------------------------------------------------


def reference_gradients(x, residual, weight, bias, grad_y, grad_h, seed, p, dims, norm):
    """Torch autograd in float64 through the unfused composition with the same mask."""
    multiplier = seeded_variational_dropout(torch.ones(x.shape, dtype=torch.float64), p, dims, seed=seed)
    x64, residual64, weight64, bias64 = (t.cpu().double().requires_grad_(True) for t in (x, residual, weight, bias))
    h = residual64 + x64 * multiplier
    y = norm64(h, weight64, bias64, norm)
    torch.autograd.backward((y, h), (grad_y.cpu().double(), grad_h.cpu().double()))
    return x64.grad, residual64.grad, weight64.grad, bias64.grad


@pytest.mark.parametrize("backend", ["kernel", "public"])
@pytest.mark.parametrize("norm", ["rms", "layer"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gradients_match_an_fp64_reference(dtype, norm, backend):
    # "kernel": the Triton launches on KERNEL_DEVICE; "public": the function's autograd (the CPU path
    # on CPU). dx is the standalone op applied to dresidual, bit for bit.
    shape, dims, seed, p = (2, 3, 24), (1,), 99, 0.25
    x, residual, weight, bias = inputs(shape, dtype)
    grad_y, grad_h = inputs(shape, dtype, seed=1)[:2]
    if backend == "kernel":
        _, h = forward_triton(x, residual, weight, bias, seed, p, dims, NORMS[norm], 1e-6)
        dx, dresidual, dweight, dbias = backward_triton(grad_y, grad_h, h, weight, seed, p, dims, NORMS[norm], 1e-6,
                                                        True, True)  # fmt: skip
    else:
        leaves = [t.clone().requires_grad_(True) for t in (x, residual, weight, bias)]
        y, h = seeded_dropout_add_norm(*leaves[:2], p, dims, seed=seed, norm=norm, weight=leaves[2], bias=leaves[3])
        torch.autograd.backward((y, h), (grad_y, grad_h))
        dx, dresidual, dweight, dbias = (t.grad for t in leaves)
    assert torch.equal(dx.cpu(), seeded_variational_dropout(dresidual.cpu(), p, dims, seed=seed))
    rtol, atol = GRAD_TOL[dtype]
    expected = reference_gradients(x, residual, weight, bias, grad_y, grad_h, seed, p, dims, norm)
    for name, got, want in zip(("dx", "dresidual", "dweight", "dbias"), (dx, dresidual, dweight, dbias), expected,
                               strict=True):  # fmt: skip
        assert got.dtype == dtype and got.shape == want.shape, name
        torch.testing.assert_close(got.cpu().double(), want, rtol=rtol, atol=atol, msg=name)


@pytest.mark.parametrize("case", CASES[:4], ids=_ids)
@pytest.mark.parametrize("rows_per_tile, programs, prefetch, stages", [
    (2, 3, False, 1), (4, 1, False, 1), (8, None, False, 1), (1, 2, True, 1), (2, 3, True, 1), (2, 3, False, 3),
])  # fmt: skip
def test_row_tiles_give_the_one_row_gradients(case, rows_per_tile, programs, prefetch, stages):
    # The backward taking several rows per step of a program's loop (tiles past the last row
    # included), loading the next tile ahead, or its loop pipelined by the compiler (which the
    # interpreter runs as written: what is checked is that STAGES reaches the kernel and leaves the
    # loop's arithmetic alone): the gradients of one row at a time, dx still the standalone op of dresidual.
    shape, dims = case
    x, residual, weight, bias = inputs(shape, torch.bfloat16)
    grad_y, grad_h = inputs(shape, torch.bfloat16, seed=1)[:2]
    _, h = forward_triton(x, residual, weight, bias, 5, 0.5, dims, NORMS["layer"], 1e-6)
    one_row = backward_triton(grad_y, grad_h, h, weight, 5, 0.5, dims, NORMS["layer"], 1e-6, True, True,
                              rows_per_tile=1, prefetch=False)  # fmt: skip
    tiled = backward_triton(grad_y, grad_h, h, weight, 5, 0.5, dims, NORMS["layer"], 1e-6, True, True,
                            programs=programs, rows_per_tile=rows_per_tile, prefetch=prefetch,
                            stages=stages)  # fmt: skip
    assert torch.equal(tiled[0].cpu(), seeded_variational_dropout(tiled[1].cpu(), 0.5, dims, seed=5))
    for name, got, want in zip(("dx", "dresidual", "dweight", "dbias"), tiled, one_row, strict=True):
        torch.testing.assert_close(got, want, rtol=1.6e-2, atol=1.6e-2, msg=name)


@pytest.mark.parametrize("d_model, dtype, loop", [
    (768, torch.bfloat16, BackwardLoop(2, 8, True)),  # 2 x 1024 elements
    (2048, torch.float16, BackwardLoop(1, 4, False, stages=4)),  # pipelined: three rows ahead in shared memory
    (2048, torch.bfloat16, BackwardLoop(1, 4, False, stages=4)),
    (1024, torch.bfloat16, BackwardLoop(2, 8, True)),  # not measured pipelined
    (4096, torch.bfloat16, BackwardLoop(1, 8, True, 128)),  # 16 elements a thread: two programs an SM
    (4096, torch.float16, BackwardLoop(1, 8, True, 128)),
    (8192, torch.bfloat16, BackwardLoop(1, 8, True)),  # 32 elements a thread: capped, it spills
    (8, torch.bfloat16, BackwardLoop(256, 8, True)),
    (768, torch.float32, BackwardLoop(2, 4, True)),  # a warp per 512 float32 elements
    (4096, torch.float32, BackwardLoop(1, 8, True)),
    (8192, torch.float32, BackwardLoop(1, 16, False)),  # a prefetched row this wide spills
    (8, torch.float32, BackwardLoop(256, 4, True)),
    (768, torch.float64, BackwardLoop(1, 4, False)),  # the one-row loop, the row plan's warps
])  # fmt: skip
def test_the_backward_loop_takes_tiles_of_2048_elements_and_prefetches_or_pipelines_where_measured_faster(
        d_model, dtype, loop):  # fmt: skip
    assert backward_loop(row_plan((4, 16, d_model), (1,)), dtype, NORMS["rms"]) == loop


def test_layer_norm_keeps_the_prefetched_loop_at_2048_where_the_pipelined_one_was_not_measured():
    assert backward_loop(row_plan((4, 16, 2048), (1,)), torch.bfloat16, NORMS["layer"]) == BackwardLoop(1, 8, True)


def test_only_the_rmsnorm_loop_measured_short_of_registers_is_capped():
    plan = row_plan((4, 16, 4096), (1,))
    assert backward_loop(plan, torch.bfloat16, NORMS["rms"]).max_registers == 128
    assert backward_loop(plan, torch.bfloat16, NORMS["layer"]).max_registers is None  # not measured


class LaunchSpy:
    """Stands in for `fused_launch._kernel`: records each launch's keyword arguments, runs nothing."""

    def __init__(self):
        self.launches = []

    def __call__(self, kernel, traced):
        return self

    def __getitem__(self, grid):
        return lambda *args, **kwargs: self.launches.append(kwargs)


@pytest.mark.parametrize("options, cap", [
    ({}, 128),  # the loop's own tile, warps and prefetch: capped
    ({"programs": 132}, 128),  # a grid of its own changes no thread's registers
    ({"num_warps": 16}, None),  # other warps: as the compiler chooses
    ({"prefetch": False}, None),
    ({"traced": True}, None),  # Inductor's launch takes no maxnreg
])  # fmt: skip
def test_the_register_cap_reaches_the_launch_of_the_loop_it_was_measured_for(monkeypatch, options, cap):
    spy = LaunchSpy()
    monkeypatch.setattr(fused_launch, "_kernel", spy)
    # on the kernels' device: the partial sums' own kernel (not spied) runs on them
    h, grad_y = (torch.randn(1, 2, 4096, dtype=torch.bfloat16, device=KERNEL_DEVICE) for _ in range(2))
    weight = torch.ones(4096, dtype=torch.bfloat16, device=KERNEL_DEVICE)
    seed = torch.tensor([5], dtype=torch.int64, device=KERNEL_DEVICE) if options.get("traced") else 5
    backward_triton(grad_y, None, h, weight, seed, 0.5, (1,), NORMS["rms"], 1e-6, True, False, **options)
    [launch] = spy.launches
    assert launch.get("maxnreg") == cap


def test_no_rows_give_zero_weight_and_bias_gradients():
    # No kernel runs without elements, so the per-program partial sums are never written: they
    # must start at zero there (where the kernel runs, every program writes its own row).
    h = torch.empty(0, 3, 8, device=KERNEL_DEVICE)
    weight = torch.randn(8, device=KERNEL_DEVICE)
    dx, dresidual, dweight, dbias = backward_triton(h, h, h, weight, 5, 0.5, (1,), NORMS["layer"], 1e-6, True, True)
    assert dx.shape == dresidual.shape == h.shape
    assert torch.equal(dweight.cpu(), torch.zeros(8)) and torch.equal(dbias.cpu(), torch.zeros(8))


def test_a_row_tile_that_is_no_power_of_two_is_refused():
    x, residual, weight, bias = inputs((2, 3, 8), torch.float32)
    _, h = forward_triton(x, residual, weight, bias, 5, 0.5, (1,), NORMS["rms"], 1e-6)
    with pytest.raises(ValueError, match="rows_per_tile must be a power of 2, got 3"):
        backward_triton(x, None, h, weight, 5, 0.5, (1,), NORMS["rms"], 1e-6, True, False, rows_per_tile=3)


@pytest.mark.parametrize("norm", ["rms", "layer", None])
@pytest.mark.parametrize("case", [((2, 3, 16), (1,)), ((2, 2, 2, 8), (0, 2))], ids=_ids)
def test_the_ops_inductor_traces_give_the_eager_results(norm, case):
    # dropout_add_norm_kernel_op is what Inductor traces for 16-bit CUDA tensors (it then launches the
    # kernels itself); run eagerly, its body launches the same kernels (here in the interpreter) with
    # a device seed and the scale as a float: the eager launch's outputs and gradients, bit for bit.
    from kernels.fused_residual_norm import dropout_add_norm_kernel_op

    shape, dims = case
    x, residual, weight, bias = (t.requires_grad_() for t in inputs(shape, torch.bfloat16))
    grad_y, grad_h = inputs(shape, torch.bfloat16, seed=1)[:2]
    weight, bias = (weight, bias) if norm else (None, None)
    seed = torch.tensor([31], dtype=torch.int64, device=KERNEL_DEVICE)
    y, h = dropout_add_norm_kernel_op(x, residual, weight, bias, seed, 0.3, list(dims), NORMS[norm], 1e-6)
    with torch.no_grad():
        y_e, h_e = forward_triton(x, residual, weight, bias, 31, 0.3, dims, NORMS[norm], 1e-6)
    assert torch.equal(h, h_e) and torch.equal(y, y_e)
    torch.autograd.backward((y, h) if norm else (h,), (grad_y, grad_h) if norm else (grad_h,))
    if norm:
        expected = backward_triton(grad_y, grad_h, h_e, weight, 31, 0.3, dims, NORMS[norm], 1e-6, True, True)
    else:  # h = residual + dropout(x): dx is the standalone op of grad_h
        expected = (seeded_variational_dropout(grad_h, 0.3, dims, seed=31), grad_h, None, None)
    for name, leaf, want in zip(("dx", "dresidual", "dweight", "dbias"), (x, residual, weight, bias), expected,
                                strict=True):  # fmt: skip
        assert (leaf is None and want is None) or torch.equal(leaf.grad, want), name


def test_the_op_inductor_traces_takes_dynamic_shapes_through_the_custom_op():
    # Symbolic sizes (Dynamo's second shape) cannot be constants of a traced launch: the kernel op
    # hands them to the opaque custom op, forward and backward, with the same results.
    from kernels.fused_residual_norm import dropout_add_norm_kernel_op

    seed = torch.tensor([7], dtype=torch.int64, device=KERNEL_DEVICE)

    def block(t, r, w):
        return dropout_add_norm_kernel_op(t, r, w, None, seed, 0.3, [1], NORMS["rms"], 1e-6)

    compiled = torch.compile(block, fullgraph=True, dynamic=True, backend="aot_eager")
    for shape in ((2, 5, 16), (3, 9, 16)):
        x, residual, weight, _ = (t.requires_grad_() for t in inputs(shape, torch.bfloat16))
        y, h = compiled(x, residual, weight)
        y_e, h_e = forward_triton(x.detach(), residual.detach(), weight.detach(), None, 7, 0.3, (1,), NORMS["rms"],
                                  1e-6)  # fmt: skip
        assert torch.equal(h.detach(), h_e) and torch.equal(y.detach(), y_e)
        y.float().sum().backward()
        assert x.grad is not None and weight.grad is not None


def test_unused_outputs_and_no_norm():
    # Post-norm use (h unused), a norm without weight, and norm=None (y is h; backward is the standalone op).
    x, residual, _, _ = inputs((2, 3, 16), torch.float32)
    grad = inputs((2, 3, 16), torch.float32, seed=1)[0]
    _, h = forward_triton(x, residual, None, None, 4, 0.5, (1,), NORMS["rms"], 1e-6)
    dx, dresidual, dweight, dbias = backward_triton(grad, None, h, None, 4, 0.5, (1,), NORMS["rms"], 1e-6, True, False)
    expected = reference_gradients(x, residual, torch.ones(16), torch.zeros(16), grad, torch.zeros_like(grad), 4, 0.5,
                                   (1,), "rms")  # fmt: skip
    torch.testing.assert_close(dx.cpu().double(), expected[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(dresidual.cpu().double(), expected[1], rtol=1e-4, atol=1e-4)
    assert dweight is None and dbias is None

    leaves = [t.clone().requires_grad_(True) for t in (x, residual)]
    y, h = seeded_dropout_add_norm(*leaves, 0.5, 1, seed=4, norm=None)
    assert y is h
    h.backward(grad)
    assert torch.equal(leaves[1].grad, grad)
    assert torch.equal(leaves[0].grad.cpu(), seeded_variational_dropout(grad.cpu(), 0.5, 1, seed=4))


@pytest.mark.parametrize("norm", ["rms", "layer", None])
@pytest.mark.parametrize("seed", [5, None, "tensor"])
def test_backward_saves_h_the_weight_and_the_seed_only(norm, seed):
    if seed == "tensor":
        seed = torch.tensor([5], device=KERNEL_DEVICE)
    saved = []
    x, residual, weight, bias = (t.requires_grad_(True) for t in inputs((4, 6, 32), torch.float32))
    if norm is None:
        weight = bias = None
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y, h = seeded_dropout_add_norm(x, residual, 0.5, 1, seed=seed, norm=norm, weight=weight, bias=bias)
    # A seed tensor on the GPU is kept as it is (8 bytes); on CPU the op reads it once, as an int.
    seed_bytes = 8 if isinstance(seed, torch.Tensor) and seed.is_cuda else 0
    expected = seed_bytes if norm is None else h.nbytes + weight.nbytes + seed_bytes
    assert sum(t.numel() * t.element_size() for t in saved) == expected
    (y.sum() + h.sum()).backward()


# --- seeds, eval mode, p -----------------------------------------------------------------------------


@pytest.mark.parametrize("device", sorted({"cpu", KERNEL_DEVICE}))
def test_manual_seed_reproduces_and_calls_differ(device):
    x, residual, weight, _ = inputs((2, 4, 16), torch.float32, device)
    torch.manual_seed(11)
    first = seeded_dropout_add_norm(x, residual, 0.5, weight=weight)
    second = seeded_dropout_add_norm(x, residual, 0.5, weight=weight)
    torch.manual_seed(11)
    again = seeded_dropout_add_norm(x, residual, 0.5, weight=weight)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[1], second[1])
    torch.manual_seed(11)  # the seed drawn is the standalone op's: the same mask
    assert torch.equal(first[1], residual + seeded_variational_dropout(x, 0.5, 1))


def test_training_is_a_bool_as_the_standalone_op_takes_it():
    x, residual = torch.ones(2, 3, 4), torch.ones(2, 3, 4)
    with pytest.raises(TypeError, match="training must be a bool, got str"):
        seeded_dropout_add_norm(x, residual, 0.5, training="False")
    np = pytest.importorskip("numpy")
    y, h = seeded_dropout_add_norm(x, residual, 0.5, training=np.bool_(False), norm=None)
    assert torch.equal(h, x + residual)


@pytest.mark.parametrize("p, training", [(0.0, True), (0.5, False)])
def test_eval_mode_and_p_zero_add_and_normalize_without_a_mask(p, training):
    x, residual, weight, bias = inputs((2, 3, 16), torch.float32)
    before = torch.get_rng_state()
    y, h = seeded_dropout_add_norm(x, residual, p, training=training, norm="layer", weight=weight, bias=bias)
    assert torch.equal(torch.get_rng_state(), before)  # no seed drawn
    assert torch.equal(h, residual + x)
    torch.testing.assert_close(y.cpu().double(), norm64(h.cpu(), weight.cpu(), bias.cpu(), "layer"), rtol=2e-5,
                               atol=2e-5)  # fmt: skip
    y_k, h_k = forward_triton(x, residual, weight, bias, 0, 0.0, (), NORMS["layer"], 1e-6)
    assert torch.equal(h_k, residual + x)


def test_p_one_drops_everything():
    x, residual, weight, _ = inputs((2, 3, 16), torch.float32)
    x[0, 0, 0] = float("inf")  # zeros, never inf * 0, as the standalone op gives
    _, h = forward_triton(x, residual, weight, None, 1, 1.0, (1,), NORMS["rms"], 1e-6)
    assert torch.equal(h, residual)
    dx, dresidual, _, _ = backward_triton(torch.ones_like(h), None, h, weight, 1, 1.0, (1,), NORMS["rms"], 1e-6,
                                          False, False)  # fmt: skip
    assert torch.equal(dx, torch.zeros_like(dx)) and dresidual.abs().sum() > 0


# --- torch.compile ------------------------------------------------------------------------------------


def test_compile_without_graph_break_gives_the_eager_results():
    # aot_eager, counting the graphs dynamo hands it: one, with fullgraph=True (no graph break).
    frames = []

    def backend(graph_module, example_inputs):
        frames.append(graph_module)
        def boxed(gm, _):
            return make_boxed_func(gm.forward)

        return aot_autograd(fw_compiler=boxed, bw_compiler=boxed)(graph_module, example_inputs)

    layer = SeededDropoutAddNorm(16, 0.5, dim=1, norm="layer")

    def block(x, residual):
        y, h = layer(x * 2, residual)
        return y.square().sum() + h.sum()

    compiled = torch.compile(block, fullgraph=True, backend=backend)
    grads = []
    for fn in (compiled, block):
        x, residual = (t.requires_grad_(True) for t in inputs((2, 3, 16), torch.float32, "cpu")[:2])
        layer.zero_grad()
        torch.manual_seed(3)
        fn(x, residual).backward()
        grads.append((x.grad, residual.grad, layer.weight.grad.clone(), layer.bias.grad.clone()))
    assert len(frames) == 1
    for got, want in zip(*grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    assert torch.equal(grads[0][0] == 0, grads[1][0] == 0)  # the same mask


def test_compiled_code_with_an_int_seed_and_aot_eager():
    x, residual, weight, _ = inputs((2, 3, 16), torch.float32, "cpu")
    fn = torch.compile(lambda a, b: seeded_dropout_add_norm(a, b, 0.3, seed=21, norm="rms", weight=weight),
                       fullgraph=True, backend="aot_eager")  # fmt: skip
    y, h = fn(x, residual)
    y_e, h_e = seeded_dropout_add_norm(x, residual, 0.3, seed=21, norm="rms", weight=weight)
    assert torch.equal(h, h_e) and torch.equal(y, y_e)


# --- the module and bad input --------------------------------------------------------------------------


def test_module_parameters_repr_and_eval():
    rms = SeededDropoutAddNorm(16, 0.2)
    assert rms.bias is None and rms.weight.shape == (16,)
    assert repr(rms) == "SeededDropoutAddNorm(16, p=0.2, dim=1, norm='rms', eps=1e-06, bias=False)"
    assert SeededDropoutAddNorm(16, norm="layer").bias is not None
    assert list(SeededDropoutAddNorm(16, norm=None).parameters()) == []
    x, residual, _, _ = inputs((2, 3, 16), torch.float32)
    rms.to(KERNEL_DEVICE).eval()
    y, h = rms(x, residual)
    assert torch.equal(h, residual + x)
    with pytest.raises(ValueError, match="norm must be"):
        SeededDropoutAddNorm(16, norm="batch")
    with pytest.raises(TypeError, match="a bool is not a dim"):
        SeededDropoutAddNorm(16, 0.1, True)


def _bad_calls():
    x = torch.zeros(2, 3, 8)
    return [
        (dict(residual=torch.zeros(2, 3, 9)), ValueError, "residual must match x"),
        (dict(residual=torch.zeros(2, 3, 8, dtype=torch.float64)), ValueError, "residual must match x"),
        (dict(x=x.long(), residual=x.long()), TypeError, "does not support dtype torch.int64"),
        (dict(x=torch.zeros(()), residual=torch.zeros(())), ValueError, "at least one dim"),
        (dict(x=[1.0]), TypeError, "x must be a torch.Tensor"),
        (dict(norm="batch"), ValueError, "norm must be 'rms', 'layer' or None"),
        (dict(weight=torch.ones(9)), ValueError, r"weight must have shape \(8,\)"),
        (dict(bias=torch.ones(8, dtype=torch.float64)), ValueError, "bias must have shape"),
        (dict(norm=None, weight=torch.ones(8)), ValueError, "weight given with norm=None"),
        (dict(eps=0.0), ValueError, "eps must be a finite real number > 0"),
        (dict(eps=float("nan")), ValueError, "eps must be"),
        (dict(p=1.5), ValueError, "between 0 and 1"),
        (dict(dim=3), IndexError, "Dimension out of range"),
        (dict(seed=2.5), TypeError, "seed must be None, an int or an integer tensor"),
        (dict(x=x.to_sparse(), residual=x.to_sparse()), TypeError, r"x must be a dense \(strided\) tensor, got "
         r"layout torch.sparse_coo: give a dense tensor \(x.to_dense\(\)\)"),
        (dict(residual=x.to_sparse()), TypeError, "residual must be a dense"),
        (dict(weight=torch.ones(8).to_sparse()), TypeError, "weight must be a dense"),
    ]


@pytest.mark.parametrize("index", range(len(_bad_calls())))
def test_bad_input_gets_a_clear_error(index):
    overrides, error, message = _bad_calls()[index]
    arguments = dict(x=torch.zeros(2, 3, 8), residual=torch.zeros(2, 3, 8), p=0.1, dim=1) | overrides
    with pytest.raises(error, match=message):
        seeded_dropout_add_norm(**arguments)


def test_a_nested_x_is_a_type_error_saying_what_to_give():
    nested = torch.nested.nested_tensor([torch.randn(2, 8), torch.randn(3, 8)])
    with pytest.raises(TypeError, match=r"x must be a dense \(strided\) tensor, got layout nested"):
        seeded_dropout_add_norm(nested, nested, 0.5, dim=(), seed=1)


@pytest.mark.parametrize("transform", [torch.func.vmap, torch.func.grad, torch.func.jacrev])
def test_function_transforms_are_refused_saying_what_to_use_instead(transform):
    residual = torch.randn(8)

    def f(a):
        return seeded_dropout_add_norm(a, residual, 0.5, dim=(), seed=1)[0].sum()

    with pytest.raises(RuntimeError, match="seeded_dropout_add_norm supports reverse-mode autograd only .* use "
                                           "torch.nn.functional.dropout, the add and the norm there"):  # fmt: skip
        transform(f)(torch.randn(3, 8) if transform is torch.func.vmap else torch.randn(8))


@pytest.mark.parametrize("dual", ["x", "residual", "weight", "bias"])
def test_forward_mode_ad_is_refused_on_any_dual_argument(dual):
    from torch.autograd import forward_ad

    x, residual, weight, bias = inputs((2, 3, 8), torch.float32, "cpu")
    arguments = dict(x=x, residual=residual, weight=weight, bias=bias)
    with forward_ad.dual_level():
        arguments[dual] = forward_ad.make_dual(arguments[dual], torch.ones_like(arguments[dual]))
        with pytest.raises(RuntimeError, match=r"forward-mode AD \(a dual tensor\) is not supported"):
            seeded_dropout_add_norm(p=0.5, seed=1, norm="layer", **arguments)
        plain = seeded_dropout_add_norm(x, residual, 0.5, seed=1, norm="layer", weight=weight, bias=bias)
        assert torch.equal(plain[1], seeded_dropout_add_norm(x, residual, 0.5, seed=1, norm="layer")[1])


# --- GPU only: CUDA graphs, Inductor (run by the device suite) ------------------------------------------

needs_cuda = pytest.mark.gpu  # deselected without CUDA (conftest.py)


@needs_cuda
def test_cuda_graph_replays_draw_fresh_masks_and_backward_follows():
    # |x| in [0.5, 1.5), either sign: a kept element's residual + 2x never rounds back to residual, so
    # h != residual is the mask. Standard-normal x broke that about once in a thousand runs: torch.randn
    # on CUDA gives exact zeros (one in 4.2M elements in scripts/graph_mask_probe.py on the H200), and
    # fp32 rounds residual + 2x to residual where |2x| is under half an ulp of residual.
    sign = torch.randint(0, 2, (4, 8, 64), device="cuda") * 2 - 1
    x = ((torch.rand(4, 8, 64, device="cuda") + 0.5) * sign).requires_grad_(True)
    residual = torch.randn(4, 8, 64, device="cuda")
    weight = torch.randn(64, device="cuda", requires_grad=True)
    grad = torch.randn(4, 8, 64, device="cuda")
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):  # warm up (compile the kernels) outside the capture
            seeded_dropout_add_norm(x, residual, 0.5, weight=weight)[0].backward(grad)
    torch.cuda.current_stream().wait_stream(stream)
    x.grad = None
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        static_y, static_h = seeded_dropout_add_norm(x, residual, 0.5, weight=weight)
        static_y.backward(grad)
    masks = []
    for _ in range(3):
        graph.replay()
        torch.cuda.synchronize()
        keep = static_h != residual
        assert torch.equal(keep, keep[:, :1].expand_as(keep))
        assert torch.equal(x.grad == 0, ~keep)  # backward regenerated the replay's mask
        masks.append(keep.clone())
    assert not torch.equal(masks[0], masks[1]) and not torch.equal(masks[1], masks[2])


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_inductor_compiled_op_matches_eager(dtype):
    from torch._inductor.utils import run_and_get_code

    layer = SeededDropoutAddNorm(256, 0.3, norm="layer", device="cuda", dtype=dtype)
    # Fixed inputs, and an upstream gradient of unit scale: the gradient of a LayerNorm output's sum of
    # squares (about D whatever the input) is rounding noise near zero, whose zeros tell nothing of the mask.
    generator = torch.Generator().manual_seed(11)
    x, residual, grad_y = (torch.randn(4, 16, 256, generator=generator).to(device="cuda", dtype=dtype)
                           for _ in range(3))  # fmt: skip
    x.requires_grad_(True)
    compiled = torch.compile(layer, fullgraph=True)
    torch.manual_seed(5)
    (y, h), code = run_and_get_code(compiled, x, residual)
    # 16-bit: Inductor launches the fused kernel from its own code; fp32 goes through the custom op.
    assert ("dropout_add_norm_forward_kernel" in "".join(code)) == (dtype != torch.float32)
    y.backward(grad_y)
    compiled_grad = x.grad.clone()
    x.grad = None
    torch.manual_seed(5)
    y_e, h_e = layer(x, residual)
    y_e.backward(grad_y)
    assert torch.equal(h, h_e)  # the same mask and the same two roundings
    # y: the same kernel, built by Inductor with its own compile options for 16-bit inputs (fused
    # multiply-adds in the norm's float32 arithmetic may move a rounding of y by one unit).
    torch.testing.assert_close(y, y_e, rtol=Y_TOL[dtype][0], atol=Y_TOL[dtype][1])
    # The gradients: the same mask exactly; values within Inductor's own fusion of y's gradient.
    assert torch.equal(compiled_grad == 0, x.grad == 0)
    rtol, atol = GRAD_TOL[dtype]
    torch.testing.assert_close(compiled_grad, x.grad, rtol=rtol, atol=atol)


@needs_cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_gpu_kernel_equals_cpu_path_at_d_8192(dtype):
    x, residual, weight, bias = inputs((2, 3, 8192), dtype, "cuda")
    y, h = seeded_dropout_add_norm(x, residual, 0.1, seed=8, norm="layer", weight=weight, bias=bias)
    y_cpu, h_cpu = seeded_dropout_add_norm(x.cpu(), residual.cpu(), 0.1, seed=8, norm="layer", weight=weight.cpu(),
                                           bias=bias.cpu())  # fmt: skip
    assert torch.equal(h.cpu(), h_cpu)
    rtol, atol = Y_TOL[dtype]
    torch.testing.assert_close(y.cpu(), y_cpu, rtol=rtol, atol=atol)


@needs_cuda
@pytest.mark.parametrize("d_model", [768, 2048, 4096, 8192])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_gpu_backward_loop_of_each_width_gives_the_cpu_paths_gradients(d_model, dtype):
    # The backward's own loop at each width (D = 768: two rows prefetched; 2048: pipelined by the
    # compiler; 4096: registers capped; 8192: one row prefetched), 2048 rows so that every program
    # loops: the CPU path's gradients, and dx the standalone op of dresidual bit for bit.
    shape = (16, 128, d_model)
    h, _, weight, _ = inputs(shape, dtype, "cuda")
    grad_y, grad_h = inputs(shape, dtype, "cuda", seed=2)[:2]
    got = backward_triton(grad_y, grad_h, h, weight, 11, 0.3, (1,), NORMS["rms"], 1e-6, True, False)
    want = fused_launch.backward_reference(grad_y.cpu(), grad_h.cpu(), h.cpu(), weight.cpu(), 11, 0.3, (1,),
                                           NORMS["rms"], 1e-6, True, False)  # fmt: skip
    assert torch.equal(got[0].cpu(), seeded_variational_dropout(got[1].cpu(), 0.3, (1,), seed=11))
    rtol, atol = GRAD_TOL[dtype]
    for name, value, reference in zip(("dx", "dresidual"), got[:2], want[:2], strict=True):
        torch.testing.assert_close(value.cpu(), reference, rtol=rtol, atol=atol, msg=name)
    # dweight sums 2048 rows: relative to its size
    torch.testing.assert_close(got[2].cpu().float(), want[2].float(), rtol=2e-2, atol=2e-2 * want[2].abs().max().item())


@pytest.mark.parametrize("rows, d_model, dtype", [
    (264, 40, torch.bfloat16),  # the H200's grid: every row in one step, columns past D masked
    (1500, 9, torch.float16),  # more rows than one step takes: the loop
    (3, 5, torch.float32),
    (7, 3, torch.float64),
])  # fmt: skip
def test_the_partial_sums_reduce_in_one_kernel_as_torchs_sum_and_cast(rows, d_model, dtype):
    # The backward's (programs, D) partials of dweight / dbias, reduced by column_sums_kernel: torch's
    # sum rounded once to the dtype, up to the order of the float32 (float64) additions.
    compute = torch.float64 if dtype == torch.float64 else torch.float32
    partials = torch.randn(rows, d_model, generator=torch.Generator().manual_seed(3), dtype=compute)
    got = fused_launch.summed_partials(partials.to(KERNEL_DEVICE), dtype).cpu()
    want = partials.sum(0)
    assert got.dtype == dtype and got.shape == (d_model,)
    # 16-bit: within one rounding (the two sums may round to neighbours); wider: the additions' order
    rtol = 1e-2 if dtype.itemsize == 2 else 1e-5
    torch.testing.assert_close(got.to(compute), want.to(dtype).to(compute), rtol=rtol, atol=1e-6)
    assert torch.equal(fused_launch.summed_partials(partials, dtype, traced=True), want.to(dtype))
