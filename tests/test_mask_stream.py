"""The mask stream spec (version 1): Philox core, test vectors, and both implementations of it."""

import json
import math
import pathlib

import pytest
import torch
from conftest import KERNEL_DEVICE
from make_mask_vectors import mask_digest

from kernels.launch import dropout_triton
from kernels.mask_stream import (
    DECISIONS_PER_CALL,
    MASK_STREAM_VERSION,
    PYTHON_STREAM_MAX_CALLS,
    keep_mask,
    keep_threshold,
    philox4x32,
    philox4x32_lanes,
    random_halves,
    split_seed,
)

VECTORS = json.loads(pathlib.Path(__file__).with_name("mask_stream_vectors.json").read_text())


def test_philox_matches_the_random123_known_answer():
    # Random123 kat_vectors, philox4x32 10 rounds: counter 0, key 0.
    words = philox4x32(torch.tensor([0]), seed=0)
    assert [int(w) for w in words] == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]


def test_philox_on_python_ints_matches_the_known_answer_and_the_tensor_stream():
    assert philox4x32_lanes(0, 1, seed=0).tolist() == [[0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]]
    for first in (0, 2**32 - 3, 2**61 + 12345):  # counters past 2**32 use the counter's high word
        counters = torch.arange(first, first + 7)
        for seed in (0, 1, -1, 2**63 - 1, -(2**63), 0x1234_5678_9ABC_DEF0):
            expected = torch.stack(philox4x32(counters, seed), dim=1)
            assert torch.equal(philox4x32_lanes(first, 7, seed), expected)


@pytest.mark.parametrize("seed", [5, -3, 2**63 - 1])
def test_small_counts_on_python_ints_give_the_tensor_streams_halves(seed):
    """Counts of up to PYTHON_STREAM_MAX_CALLS Philox calls run on Python ints, larger ones on tensors:
    pieces of a large (tensor) draw must equal small (Python) draws of the same span."""
    largest_small = PYTHON_STREAM_MAX_CALLS * DECISIONS_PER_CALL
    start = 2**35 - 21  # counters past 2**32: the counter's high word is used
    whole = random_halves(seed, largest_small + 100, start=start)
    for offset, count in ((0, 1), (3, 70), (5, largest_small - 5), (8, largest_small), (1000, 300)):
        assert torch.equal(random_halves(seed, count, start=start + offset), whole[offset : offset + count])


def test_seed_split_takes_the_seed_modulo_2_64():
    assert split_seed(0) == (0, 0)
    assert split_seed(-1) == (0xFFFFFFFF, 0xFFFFFFFF)
    assert split_seed(2**32 + 5) == (5, 1)


def test_threshold_resolves_p_to_16_bits():
    assert keep_threshold(0.0) == 0
    assert keep_threshold(0.5) == 32768
    assert keep_threshold(1.0) == 65536
    assert keep_threshold(0.1) == 6554


def test_halves_are_uniform_16_bit_values():
    halves = random_halves(seed=42, count=80_000)
    assert halves.min() >= 0 and halves.max() <= 0xFFFF
    # Mean of U{0..65535} is 32767.5 with sd 18918; 5 standard errors over 80k draws.
    assert abs(halves.double().mean().item() - 32767.5) < 5 * 18918 / math.sqrt(80_000)


def test_vectors_are_for_this_stream_version():
    assert VECTORS["mask_stream_version"] == MASK_STREAM_VERSION


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: f"{v['seed']}-{v['mask_shape']}-{v['p']:.4g}")
def test_cpu_reference_reproduces_vector(vector):
    keep = keep_mask(vector["seed"], vector["mask_shape"], vector["p"])
    assert int(keep.sum()) == vector["kept"]
    assert mask_digest(keep) == vector["sha256"]


@pytest.mark.parametrize("vector", VECTORS["vectors"][::3], ids=lambda v: f"{v['seed']}-{v['mask_shape']}-{v['p']:.4g}")
def test_triton_kernel_reproduces_vector(vector):
    # The kernel's mask, read off element-wise dropout of ones: kept elements are nonzero.
    ones = torch.ones(vector["mask_shape"], device=KERNEL_DEVICE)
    keep = dropout_triton(ones, vector["seed"], vector["p"], shared_dims=()) != 0
    assert mask_digest(keep.cpu()) == vector["sha256"]


def test_halves_from_any_start_match_the_whole_stream():
    whole = random_halves(seed=9, count=100)
    for start in (0, 1, 7, 8, 13, 64):
        assert torch.equal(random_halves(seed=9, count=100 - start, start=start), whole[start:])
