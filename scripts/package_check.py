"""Check the installed op the way a user meets it: imported by its package name, from outside the
repository, forward and backward on CPU and, where there is one, on a CUDA GPU with the C++ hot path
built from the installed package's own source.

    python scripts/package_check.py          (run by tests/test_package.py in a fresh virtual
                                               environment, and on the GPU machine against the wheel)

Prints what it checked; exits non-zero at the first thing that is wrong.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import seeded_variational_dropout as svd
import torch
from seeded_variational_dropout import (
    MASK_STREAM_VERSION,
    SeededVariationalDropout,
    fast_path,
    seeded_variational_dropout,
)
from seeded_variational_dropout.cpu_path import dropout_reference


def check(condition: bool, what: str) -> None:
    if not condition:
        sys.exit(f"package check FAILED: {what}")
    print(f"ok: {what}", flush=True)


def forward_and_backward(device: str) -> torch.Tensor:
    # Inputs without zeros, so a zero in y or in x.grad is a dropped element (torch.randn gives an
    # exact 0.0 about once in 17 million draws on CPU).
    x = (torch.rand(4, 16, 32, device=device) + 0.5).requires_grad_(True)
    layer = SeededVariationalDropout(0.3, dim=1)
    y = layer(x)
    keep = y != 0
    check(torch.equal(keep, keep[:, :1].expand_as(keep)), f"{device}: the mask is shared along dim 1")
    grad = torch.rand_like(x) + 0.5
    y.backward(grad)
    check(torch.equal(x.grad != 0, keep), f"{device}: backward drops exactly the forward's elements")
    seeded = seeded_variational_dropout(x.detach(), 0.3, dim=1, seed=7)
    check(torch.equal(seeded.cpu(), dropout_reference(x.detach().cpu(), 7, 0.3, (1,))),
          f"{device}: a given seed gives the reference mask bit for bit")  # fmt: skip
    return x


def main() -> int:
    package_dir = Path(svd.__file__).resolve().parent
    repo_root = Path(__file__).resolve().parent.parent
    print(f"seeded_variational_dropout {svd.__version__} (mask stream v{MASK_STREAM_VERSION}) from {package_dir}")
    check(package_dir.name == "seeded_variational_dropout" and repo_root not in package_dir.parents,
          "imported from an installed package, not from this repository")  # fmt: skip
    check((package_dir / "csrc" / "fast_path.cpp").is_file(), "the package carries the C++ hot path's source")
    forward_and_backward("cpu")
    if torch.cuda.is_available():
        forward_and_backward("cuda")
        extension = fast_path.module()
        check(extension is not None, "the C++ hot path built on this CUDA machine")
        check(Path(fast_path._SOURCE).resolve().parent.parent == package_dir,
              f"built from the installed source ({fast_path._SOURCE})")  # fmt: skip
        check(Path(extension.__file__).is_file(), f"the built extension: {extension.__file__}")
        x = (torch.rand(8, 16, 64, device="cuda") + 0.5).requires_grad_(True)  # no zeros
        seeded_variational_dropout(x, 0.5, dim=1)  # plans, compiles and hands the launch to C++
        y = seeded_variational_dropout(x, 0.5, dim=1)  # runs in C++
        check(type(y.grad_fn).__name__ != "SeededDropoutFunctionBackward", "the second call runs in C++")
        y.sum().backward()
        check(torch.equal(x.grad != 0, y != 0), "cuda: the C++ backward drops the forward's elements")
    else:
        print("no CUDA device here: the GPU checks did not run", flush=True)
    print(f"package check passed ({os.getcwd()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
