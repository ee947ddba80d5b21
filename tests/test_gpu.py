"""GPU-only behaviour: CUDA graphs, tensors past 2**31 elements, Inductor. Skipped (and said so)
without CUDA; the device run executes them (`scripts/gpu_tests.sh`)."""

import pytest
import torch

from kernels import seeded_variational_dropout
from kernels.mask_stream import dropout_scale, keep_threshold, random_halves
from kernels.seeded_dropout import dropout_reference

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_cuda_graph_replays_draw_fresh_masks():
    x = torch.randn(8, 32, 256, device="cuda")
    static_out = torch.empty_like(x)
    seeded_variational_dropout(x, 0.5, dim=1)  # warm up (compile) outside the capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out.copy_(seeded_variational_dropout(x, 0.5, dim=1))
    masks = []
    for _ in range(3):
        graph.replay()
        keep = static_out != 0
        assert torch.equal(keep, keep[:, :1].expand_as(keep))  # still a locked mask
        masks.append(keep.clone())
    assert not torch.equal(masks[0], masks[1]) and not torch.equal(masks[1], masks[2])


def test_cuda_graph_with_an_int_seed_replays_the_same_mask():
    x = torch.randn(4, 16, 128, device="cuda")
    expected = seeded_variational_dropout(x, 0.5, dim=1, seed=77)
    static_out = torch.empty_like(x)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out.copy_(seeded_variational_dropout(x, 0.5, dim=1, seed=77))
    graph.replay()
    assert torch.equal(static_out, expected)


def test_locked_mask_past_2_31_elements():
    # 2**31 + 2**20 fp16 elements (4.3 GB): offsets past int32; the mask is tiny, so the reference
    # checks the last rows exactly.
    x = torch.randn(2, 2**29 + 2**18, 2, device="cuda", dtype=torch.float16)
    assert x.numel() > 2**31
    y = seeded_variational_dropout(x, 0.5, dim=1, seed=5)
    tail = slice(x.shape[1] - 3, None)
    assert torch.equal(y[:, tail].cpu(), dropout_reference(x[:, tail].cpu(), 5, 0.5, (1,)))
    del x, y


def test_elementwise_past_2_31_elements_uses_64_bit_mask_indices():
    numel = 2**31 + 40
    x = torch.ones(numel, device="cuda", dtype=torch.float16)
    y = seeded_variational_dropout(x, 0.25, dim=(), seed=3)
    tail = 1000
    halves = random_halves(3, tail, start=numel - tail)
    expected = torch.where(halves >= keep_threshold(0.25), dropout_scale(0.25), 0.0).to(torch.float16)
    assert torch.equal(y[-tail:].cpu(), expected)
    del x, y
