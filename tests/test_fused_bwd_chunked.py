"""scripts/fused_bwd_chunked.py, the chunked prototype of the fused backward that the probe times:
its gradients are the product backward's (to rounding: the row sums run in another order), dx is the
standalone op of dresidual bit for bit, and what it does not take it refuses."""


import pytest
import torch
from conftest import KERNEL_DEVICE, load_script

from kernels import seeded_variational_dropout
from kernels.fused_launch import NORMS, backward_triton, forward_triton

chunked = load_script("fused_bwd_chunked")

TOL = {torch.bfloat16: 3e-2, torch.float32: 1e-5}  # the product's gradients against the prototype's


def tensors(shape, dtype):
    generator = torch.Generator().manual_seed(3)
    x, residual, grad_y, grad_h = (torch.randn(shape, generator=generator).to(dtype).to(KERNEL_DEVICE)
                                   for _ in range(4))  # fmt: skip
    weight = torch.randn(shape[-1:], generator=generator).to(dtype).to(KERNEL_DEVICE)
    return x, residual, grad_y, grad_h, weight


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("shape, dims, chunk", [((2, 3, 64), (1,), 16), ((3, 2, 40), (0,), 8), ((5, 24), (0,), 32)])
def test_the_chunked_backward_gives_the_products_gradients(dtype, shape, dims, chunk):
    x, residual, grad_y, grad_h, weight = tensors(shape, dtype)
    _, h = forward_triton(x, residual, weight, None, 7, 0.5, dims, NORMS["rms"], 1e-6)
    want = backward_triton(grad_y, grad_h, h, weight, 7, 0.5, dims, NORMS["rms"], 1e-6, True, False)
    dx, dresidual, dweight = chunked.chunked_rms_backward(grad_y, grad_h, h, weight, 7, 0.5, dims, 1e-6,
                                                          chunk=chunk, programs=2, num_warps=4)  # fmt: skip
    assert torch.equal(dx.cpu(), seeded_variational_dropout(dresidual.cpu(), 0.5, dims, seed=7))
    for name, got, expected in zip(("dx", "dresidual", "dweight"), (dx, dresidual, dweight), want[:3], strict=True):
        assert got.dtype == expected.dtype and got.shape == expected.shape, name
        torch.testing.assert_close(got, expected, rtol=TOL[dtype], atol=TOL[dtype], msg=name)


def test_what_the_prototype_does_not_take_is_refused():
    x, residual, grad_y, grad_h, weight = tensors((2, 3, 12), torch.float32)
    _, h = forward_triton(x, residual, weight, None, 7, 0.5, (1,), NORMS["rms"], 1e-6)
    with pytest.raises(ValueError, match="D % 8 == 0"):  # 12 columns: not 8 decisions a Philox call
        chunked.chunked_rms_backward(grad_y, grad_h, h, weight, 7, 0.5, (1,), 1e-6, chunk=8, programs=2, num_warps=4)
    x, residual, grad_y, grad_h, weight = tensors((2, 3, 16), torch.float32)
    _, h = forward_triton(x, residual, weight, None, 7, 0.5, (1,), NORMS["rms"], 1e-6)
    for chunk in (12, 4, 32):
        with pytest.raises(ValueError, match="chunk must be a power of 2"):
            chunked.chunked_rms_backward(grad_y, grad_h, h, weight, 7, 0.5, (1,), 1e-6, chunk=chunk, programs=2,
                                         num_warps=4)  # fmt: skip
