"""Probe: where a compiled training step that uses the seeded op spends its time (GPU only).

One process builds a model of `conf/model/<model>.yaml` with one dropout implementation, compiles
its loss as the model workload does (`runners.model_workload`), and reports:

- the step's time (CUDA events over `--steps` steps, after `--warmup` steps), and forward+backward
  alone (`triton.testing.do_bench`);
- the op's launches from Python during the timed steps (`kernels.launch.launch`; none where
  Inductor launches the kernel from its own code), the seed's form, and the host time of that
  launch function per call; with `--impl fused`, the fused op's calls of its Python launches too
  (`kernels.fused_launch.forward_triton` and `backward_triton`, not traced);
- a profiler table of three steps (self CPU and self CUDA time per op).

`--prewarm eager` runs one eager forward+backward of the model before compiling: the case in which
the compiled step was seen to be as fast as compiled mask-based dropout. Run each case in a process
of its own:

    python scripts/compiled_step_probe.py --impl seeded --prewarm none --out probe-cold
    python scripts/compiled_step_probe.py --impl seeded --prewarm eager --out probe-warm
    python scripts/compiled_step_probe.py --impl eager --out probe-mask
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import triton  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

import kernels.fused_launch as fused_launch  # noqa: E402
import kernels.launch as op_launch  # noqa: E402
from runners.model_workload import next_token_loss, time_steps  # noqa: E402
from runners.models import build_model, markov_corpus  # noqa: E402

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


class LaunchCounter:
    """Counts the op's launches from Python, wrapping kernels.launch's launch function."""

    def __init__(self):
        self.launches = 0
        self.seed_kinds = collections.Counter()
        self.layouts = collections.Counter()
        self.launch_us = []
        self._launch = op_launch.launch

        def counted_launch(x, out, plan, seed, p, policy):
            began = time.perf_counter()
            self._launch(x, out, plan, seed, p, policy)
            self.launch_us.append((time.perf_counter() - began) * 1e6)
            self.launches += 1
            self.seed_kinds[type(seed).__name__] += 1
            self.layouts[(tuple(x.shape), x.stride(), str(x.dtype), x.data_ptr() % 16)] += 1

        op_launch.launch = counted_launch
        self.fused_launches = 0

        def counted(function):
            def call(*args, traced=False, **kwargs):
                self.fused_launches += not traced
                return function(*args, traced=traced, **kwargs)
            return call

        # the fused op's launches from Python (a traced launch runs once, while Inductor traces it)
        fused_launch.forward_triton = counted(fused_launch.forward_triton)
        fused_launch.backward_triton = counted(fused_launch.backward_triton)

    def reset(self):
        self.launches = 0
        self.fused_launches = 0
        self.seed_kinds.clear()
        self.layouts.clear()
        self.launch_us.clear()

    def summary(self) -> dict:
        return {
            "launches": self.launches,
            "fused_python_launches": self.fused_launches,
            "seed_kinds": dict(self.seed_kinds),
            "layouts": len(self.layouts),
            "launch_us_median": statistics.median(self.launch_us) if self.launch_us else None,
            "compiled_cache_entries": len(op_launch._CACHE.compiled),
            "plans": len(op_launch._CACHE.plans),
            "hooks_set": op_launch._launch_hooks_set(),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="transformer")
    parser.add_argument("--impl", default="seeded", choices=("seeded", "eager", "fused"))
    parser.add_argument("--dtype", default="bf16", choices=tuple(DTYPES))
    parser.add_argument("--prewarm", default="none", choices=("none", "eager"))
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda")
    model_cfg = OmegaConf.load(ROOT / "conf" / "model" / f"{args.model}.yaml")
    counter = LaunchCounter()

    torch.manual_seed(0)
    model = build_model(model_cfg, args.impl).to(device=device, dtype=DTYPES[args.dtype])
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    corpus = markov_corpus(model_cfg.vocab_size, model_cfg.batch_size * 4, model_cfg.seq_len, seed=1).to(device)
    batches = corpus.view(4, model_cfg.batch_size, model_cfg.seq_len + 1)
    if args.prewarm == "eager":
        next_token_loss(model, batches[0]).backward()
        optimizer.zero_grad(set_to_none=True)
    loss_fn = torch.compile(next_token_loss)

    def step(tokens):
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model, tokens).backward()
        optimizer.step()

    def forward_backward():
        loss_fn(model, batches[0]).backward()

    began = time.perf_counter()
    for i in range(args.warmup):
        step(batches[i % 4])
    torch.cuda.synchronize()
    compile_s = time.perf_counter() - began
    after_warmup = counter.summary()
    counter.reset()
    step_ms = time_steps(step, [batches[i % 4] for i in range(args.steps)], device)
    timed = counter.summary()
    fwd_bwd_ms = triton.testing.do_bench(forward_backward, grad_to_none=list(model.parameters()),
                                         return_mode="median")  # fmt: skip

    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    ) as profile:
        for i in range(3):
            step(batches[i % 4])
        torch.cuda.synchronize()
    averages = profile.key_averages()
    tables = (
        averages.table(sort_by="self_cpu_time_total", row_limit=30)
        + "\n\n"
        + averages.table(sort_by="self_cuda_time_total", row_limit=30)
    )
    name = f"{args.model}-{args.dtype}-{args.impl}-{args.prewarm}"
    (args.out / f"{name}-profile.txt").write_text(tables)
    result = {
        "case": name,
        "torch": torch.__version__,
        "triton": triton.__version__,
        "warmup_s": round(compile_s, 1),
        "step_ms_median": statistics.median(step_ms),
        "fwd_bwd_ms": fwd_bwd_ms,
        "after_warmup": after_warmup,
        "timed_steps": timed,
    }
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
