"""The correctness check fails each way a dropout can be wrong, and passes a correct one."""

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
