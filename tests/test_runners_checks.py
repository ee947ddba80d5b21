"""The correctness check fails each way a dropout can be wrong, and passes a correct one."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from baselines import DropoutCase
from runners.checks import PASS, check, keep_rate_bound

CASE = DropoutCase((16, 12, 64), (1,), 0.5, torch.float32, torch.device("cpu"))


def locked(mask_fn):
    """forward(x) = x * mask_fn(x) for a mask built from the case's mask shape."""
    return lambda x: x * mask_fn(x)


def reference(x):
    return x * F.dropout(x.new_ones(CASE.mask_shape), CASE.p, training=True)


def test_reference_passes():
    torch.manual_seed(0)
    assert check(reference, CASE, is_dropout=True) == PASS


def test_mask_not_shared_fails():
    torch.manual_seed(0)
    assert "not constant along shared dims" in check(lambda x: F.dropout(x, CASE.p, True), CASE, True)


def test_wrong_keep_rate_fails():
    torch.manual_seed(0)
    drops_a_tenth = lambda x: x * F.dropout(x.new_ones(CASE.mask_shape), 0.1, training=True) * 0.9 / 0.5
    assert "kept" in check(drops_a_tenth, CASE, True)


def test_unscaled_values_fail():
    torch.manual_seed(0)
    unscaled = lambda x: x * (torch.rand(CASE.mask_shape) >= CASE.p).to(x.dtype)
    assert "x / (1 - p)" in check(unscaled, CASE, True)


class _FreshMaskInBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * F.dropout(x.new_ones(CASE.mask_shape), CASE.p, training=True)

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out * F.dropout(grad_out.new_ones(CASE.mask_shape), CASE.p, training=True)


def test_backward_with_another_mask_fails():
    torch.manual_seed(0)
    assert "backward drops other elements" in check(_FreshMaskInBackward.apply, CASE, True)


class _InfiniteGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y):
        return y.clone()

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out * float("inf")


@pytest.mark.parametrize("p", [float("nan"), 1.5, -0.5])
def test_a_p_that_is_no_probability_fails_instead_of_passing_vacuously(p):
    # With p NaN every bound compares false, so an all-zero output used to pass.
    case = dataclasses.replace(CASE, p=p)
    assert check(lambda x: x * 0, case, True) == f"fail: p={p} is no drop probability in [0, 1]"


def test_non_finite_outputs_fail_explicitly():
    torch.manual_seed(0)
    some_nan = lambda x: reference(x).masked_fill(x.detach() > 1.9, float("nan"))
    assert check(some_nan, CASE, True) == "fail: output holds NaN or inf"
    infinite_gradient = lambda x: _InfiniteGradient.apply(reference(x))
    assert check(infinite_gradient, CASE, True) == "fail: backward output holds NaN or inf"


def test_copy_check():
    assert check(lambda x: x.clone(), CASE, is_dropout=False) == PASS
    assert check(lambda x: x * 2, CASE, is_dropout=False).startswith("fail")


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_keep_rate_bound_holds_for_a_fair_coin(p):
    torch.manual_seed(0)
    n = 10_000
    kept = int((torch.rand(200, n) >= p).sum(dim=1).sub((1 - p) * n).abs().max())
    assert kept <= keep_rate_bound(n, p)
    assert keep_rate_bound(n, p) < 0.05 * n  # and still tight enough to catch a wrong p
