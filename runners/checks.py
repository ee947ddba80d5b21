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

from baselines.add_norm import norm_of
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


# ---- the dropout + residual add + norm family ----------------------------------------------------
#
# On x and residual with every element in [1, 2), h == residual exactly where the mask drops and
# h > residual where it keeps, so the mask is read from h. Checked: the mask as for dropout (constant
# along the shared dims, its keep rate); h against residual + x / (1 - p) and y against torch's norm
# of h in float64; backward against autograd of the same float64 function of (x, residual, weight,
# bias) with the mask found, within tolerances of the dtype's rounding (the norm's reductions run in
# the implementation's own order). An implementation that does not drop (`is_dropout` false) is
# checked the same way with nothing dropped.

ADD_NORM_RTOL = {torch.float16: 1e-2, torch.bfloat16: 6e-2, torch.float32: 1e-4, torch.float64: 1e-9}


def _close(got: torch.Tensor, want: torch.Tensor) -> bool:
    """Within `got`'s dtype's tolerance, relative to the largest magnitude of `want` (norm outputs and
    their gradients hold values near zero, where an element-wise relative error means nothing)."""
    want = want.detach()
    scale = float(want.abs().max()) or 1.0
    return float((got.detach().double() - want).abs().max()) <= ADD_NORM_RTOL[got.dtype] * scale


def _add_norm_inputs(case) -> tuple[torch.Tensor, ...]:
    def uniform(shape):
        return (torch.rand(shape, device=case.device) + 1).to(case.dtype).requires_grad_()

    return (uniform(case.shape), uniform(case.shape), *(uniform((case.width,)) for _ in range(case.norm_vectors)))


def check_add_norm(forward, case, is_dropout: bool = True) -> str:
    """'pass', or 'fail: <what>', for `forward(x, residual, weight, bias) -> (y, h)` of an
    `AddNormCase`."""
    p = case.p if is_dropout else 0.0
    if not 0 <= p <= 1:
        return f"fail: p={case.p} is no drop probability in [0, 1]"
    inputs = _add_norm_inputs(case)
    x, residual = inputs[:2]
    y, h = forward(*inputs)
    for name, out in (("y", y), ("h", h)):
        if out.shape != x.shape or out.dtype != x.dtype:
            return f"fail: {name} {tuple(out.shape)} {out.dtype}, expected {tuple(x.shape)} {x.dtype}"
        if not bool(torch.isfinite(out).all()):
            return f"fail: {name} holds NaN or inf"
    kept = (h != residual).detach()
    if is_dropout:
        dims = case.shared_dims
        kept_bytes = kept.to(torch.uint8)
        if dims and not torch.equal(kept_bytes.amax(dim=dims, keepdim=True), kept_bytes.amin(dim=dims, keepdim=True)):
            return f"fail: mask not constant along shared dims {dims}"
        mask = kept_bytes.amax(dim=dims, keepdim=True) if dims else kept
        n, n_kept = mask.numel(), int(mask.sum())
        if abs(n_kept - (1 - p) * n) > keep_rate_bound(n, p):
            return f"fail: kept {n_kept} of {n} mask elements, expected {(1 - p) * n:.1f} for p={p}"
    elif not bool(kept.all()):
        return "fail: h equals residual somewhere, but nothing is dropped"
    reference = [t.detach().double().requires_grad_() for t in inputs]
    scale = 1 / (1 - p) if p < 1 else 0.0
    h64 = reference[1] + reference[0] * kept.double() * scale
    weight, bias = (reference[2:4] + [None, None])[:2]
    y64 = norm_of(case, h64, weight, bias)
    if not _close(h, h64):
        return "fail: h is not residual + x / (1 - p) where kept and residual where dropped"
    if not _close(y, y64):
        return f"fail: y is not the {case.norm} norm of h"
    grads = (torch.rand_like(y), torch.rand_like(h))
    got = torch.autograd.grad((y, h), inputs, grads, allow_unused=True)
    expected = torch.autograd.grad((y64, h64), reference, [g.double() for g in grads])
    names = ("dx", "dresidual", "dweight", "dbias")
    for name, mine, theirs in zip(names, got, expected, strict=False):
        if mine is None:
            return f"fail: no {name}"
        if not bool(torch.isfinite(mine).all()):
            return f"fail: {name} holds NaN or inf"
        if name == "dx" and bool((mine[~kept] != 0).any()):
            return "fail: backward drops other elements than forward"
        if not _close(mine, theirs):
            return f"fail: {name} differs from the float64 reference"
    return PASS
