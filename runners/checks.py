"""Correctness before timing: an implementation that fails here is not timed at that point.

For a dropout implementation, on x with every element in [1, 2) (none is zero, so y == 0 exactly
where the mask drops):
1. the mask is constant along the shared dims;
2. the keep rate lies within 6 standard deviations (+1) of 1 - p for the mask's element count
   (binomial; a correct implementation fails with probability about 2e-9);
3. kept values equal x / (1 - p) within the dtype's tolerance, dropped values are exactly 0;
4. backward uses the forward's mask: dx is dy / (1 - p) where y was kept and 0 where it was not.
The copy roofline is checked as an exact copy both ways.

No check may pass vacuously: every comparison with NaN is false, so a NaN p or a NaN output would
slip through the bounds above. A p outside [0, 1] (NaN included) and a non-finite output or
gradient fail explicitly, first.
"""

from __future__ import annotations

import math

import torch

from baselines.case import DropoutCase

# Relative tolerance of a kept value against x / (1 - p) in float64: the scale may be rounded to
# float32 and the product is rounded to the dtype (half an ulp at most, with margin).
RTOL = {torch.float16: 2e-3, torch.bfloat16: 1.6e-2, torch.float32: 1e-6, torch.float64: 1e-6}
Z_BOUND = 6.0

PASS = "pass"


def keep_rate_bound(n: int, p: float) -> float:
    """Largest allowed |kept - (1 - p) n| for n mask elements."""
    return Z_BOUND * math.sqrt(n * p * (1 - p)) + 1


def _positive(case: DropoutCase) -> torch.Tensor:
    return (torch.rand(case.shape, device=case.device) + 1).to(case.dtype)


def _scaled_right(out, source, kept, p, dtype) -> bool:
    """out == source / (1 - p) where kept (within RTOL), out == 0 elsewhere."""
    if bool((out[~kept] != 0).any()):
        return False
    if p >= 1 or not bool(kept.any()):
        return True
    expected = source.double() / (1 - p)
    error = ((out.double() - expected).abs() / expected)[kept]
    return float(error.max()) <= RTOL[dtype]


def check_dropout(forward, case: DropoutCase) -> str:
    """'pass', or 'fail: <what>'."""
    if not 0 <= case.p <= 1:  # false for NaN too
        return f"fail: p={case.p} is no drop probability in [0, 1]"
    x = _positive(case).requires_grad_()
    y = forward(x)
    if y.shape != x.shape or y.dtype != x.dtype:
        return f"fail: output {tuple(y.shape)} {y.dtype}, expected {tuple(x.shape)} {x.dtype}"
    if not bool(torch.isfinite(y).all()):
        return "fail: output holds NaN or inf"
    kept = (y != 0).detach()
    dims = case.shared_dims
    if dims:
        kept_bytes = kept.to(torch.uint8)
        if not torch.equal(kept_bytes.amax(dim=dims, keepdim=True), kept_bytes.amin(dim=dims, keepdim=True)):
            return f"fail: mask not constant along shared dims {dims}"
        mask = kept_bytes.amax(dim=dims, keepdim=True)
    else:
        mask = kept
    n, n_kept = mask.numel(), int(mask.sum())
    expected_kept = (1 - case.p) * n
    if abs(n_kept - expected_kept) > keep_rate_bound(n, case.p):
        return f"fail: kept {n_kept} of {n} mask elements, expected {expected_kept:.1f} for p={case.p}"
    if not _scaled_right(y.detach(), x.detach(), kept, case.p, case.dtype):
        return "fail: kept values not x / (1 - p), or dropped values not 0"
    grad_out = _positive(case)
    (grad_in,) = torch.autograd.grad(y, x, grad_out)
    if not bool(torch.isfinite(grad_in).all()):
        return "fail: backward output holds NaN or inf"
    if not torch.equal(grad_in != 0, kept):
        return "fail: backward drops other elements than forward"
    if not _scaled_right(grad_in, grad_out, kept, case.p, case.dtype):
        return "fail: backward values not dy / (1 - p)"
    return PASS


def check_copy(forward, case: DropoutCase) -> str:
    x = _positive(case).requires_grad_()
    y = forward(x)
    if not torch.equal(y, x.detach()):
        return "fail: copy differs from x"
    grad_out = _positive(case)
    (grad_in,) = torch.autograd.grad(y, x, grad_out)
    if not torch.equal(grad_in, grad_out):
        return "fail: backward copy differs from dy"
    return PASS


def check(forward, case: DropoutCase, is_dropout: bool) -> str:
    return check_dropout(forward, case) if is_dropout else check_copy(forward, case)
