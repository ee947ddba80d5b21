"""Compiles each kernel launch that torch.compile takes in for an sm_90 GPU, with the argument types
Inductor gives them, and prints one JSON line per launch. Run as a script, without TRITON_INTERPRET
(the interpreter has no compiler); no GPU is needed: Triton compiles for a target it is told.

A launch through `torch.library.wrap_triton` is traced by Inductor, which then builds the kernel
itself, typing each argument from its Python value (torch/_inductor/codegen/triton_utils.py,
`signature_of`): a tensor as a pointer to its dtype, a bool as i1, an int as i32 when it fits, and a
float as fp64 on a device with float64 (Triton's own launch types a float as fp32). Here every
traced launch of the package is recorded (wrap_triton replaced by a recorder), then compiled with
those types. Printed per launch: its name, whether it compiled (else the error's last line), and
whether its Triton IR computes on float64 tensors.
"""

from __future__ import annotations

import json
import os

assert os.environ.get("TRITON_INTERPRET") != "1", "run without TRITON_INTERPRET: the interpreter compiles nothing"

import torch  # noqa: E402
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

LAUNCH_OPTIONS = ("num_warps", "num_stages", "num_ctas")
POINTER_TYPES = {torch.float16: "*fp16", torch.bfloat16: "*bf16", torch.float32: "*fp32", torch.float64: "*fp64",
                 torch.int64: "*i64", torch.int32: "*i32"}  # fmt: skip
recorded: list[tuple] = []


class Recorder:
    """Stands in for `torch.library.wrap_triton(kernel)`: `[grid](*args, **kwargs)` is recorded."""

    def __init__(self, kernel):
        self.kernel = kernel

    def __getitem__(self, grid):
        return lambda *args, **kwargs: recorded.append((self.kernel, args, kwargs))


def inductor_type(value) -> str:
    if isinstance(value, torch.Tensor):
        return POINTER_TYPES[value.dtype]
    if isinstance(value, bool):
        return "i1"
    if isinstance(value, float):
        return "fp64"
    if isinstance(value, int):
        return "i32" if -(2**31) <= value < 2**31 else "i64"
    raise TypeError(f"no Inductor type for {value!r}")


def compiled(kernel, args, kwargs) -> dict:
    constexprs = {k: v for k, v in kwargs.items() if k not in LAUNCH_OPTIONS}
    constexprs["BF16_ROUND_BY_HAND"] = False  # recorded on CPU tensors; a CUDA tensor's launch passes False
    for param in kernel.params[len(args) :]:  # constexprs left at their defaults
        if param.name not in constexprs:
            constexprs[param.name] = param.default
    signature = {name: inductor_type(value) for name, value in zip(kernel.arg_names[: len(args)], args, strict=True)}
    signature.update({name: "constexpr" for name in constexprs})
    source = ASTSource(fn=kernel, signature=signature, constexprs=constexprs)
    options = {k: kwargs[k] for k in LAUNCH_OPTIONS if k in kwargs}
    try:
        ttir = triton.compile(source, target=GPUTarget("cuda", 90, 32), options=options).asm["ttir"]
    except Exception as error:  # reported, not raised: the test names every launch that fails
        lines = [line for line in str(error).splitlines() if line.strip().strip("^")]
        return {"compiled": False, "error": lines[-1][:300] if lines else type(error).__name__}
    return {"compiled": True, "float64_tensors": "xf64>" in ttir}


def traced_launches():
    """(name, compute_f64) of each traced launch the package makes, its calls recorded."""
    from kernels.fused_launch import NORMS, backward_triton, forward_triton
    from kernels.launch import dropout_traceable

    seed = torch.tensor([1234], dtype=torch.int64)
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        for shared in ((1,), ()):
            dropout_traceable(torch.randn(4, 16, 64, dtype=dtype), seed, 0.3, shared)
            yield f"dropout {dtype} shared={shared}"
    for dtype in (torch.float16, torch.bfloat16):
        x, residual = torch.randn(4, 16, 64, dtype=dtype), torch.randn(4, 16, 64, dtype=dtype)
        weight, bias = torch.randn(64, dtype=dtype), torch.randn(64, dtype=dtype)
        for norm in ("rms", "layer"):
            bias_or_none = bias if norm == "layer" else None
            forward_triton(x, residual, weight, bias_or_none, seed, 0.3, (1,), NORMS[norm], 1e-5, traced=True)
            yield f"fused forward {dtype} {norm}"
            backward_triton(x, residual, x, weight, seed, 0.3, (1,), NORMS[norm], 1e-5, True, norm == "layer",
                            traced=True)  # fmt: skip
            yield f"fused backward {dtype} {norm}"


def main() -> None:
    torch.library.wrap_triton = Recorder
    for name in traced_launches():
        assert len(recorded) == 1, f"{name}: {len(recorded)} launches recorded"
        kernel, args, kwargs = recorded.pop()
        result = compiled(kernel, args, kwargs)
        print(json.dumps({"launch": name, "kernel": kernel.__name__, "compute_f64": kwargs["COMPUTE_F64"], **result}))


if __name__ == "__main__":
    main()
