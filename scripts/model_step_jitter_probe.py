"""Probe: why a compiled training step's time sometimes jumps by 10-70% (GPU only).

The model workload's compiled rows (`compile`, `seeded:compile`, `fused:compile`) of the bf16
transformer read 9.6-10.0 ms in most processes, and in about one process in three had a stretch of
steps at 10.5-16.8 ms; the eager rows never did. This probe trains one (model, impl) as the workload
does (`runners.model_workload.ModelTrainer`), then times `--steps` steps, one sample each:

- `event_ms`: the GPU time between events recorded before and after the step (what the workload
  records);
- `host_ms`: the host's wall time of the step call, without synchronizing (the host runs ahead of
  the GPU when the step is GPU-bound; a host-bound step's event time follows this);
- `behind_ms`: how far the GPU was behind the host when the step call returned (the time from then
  to the step's end event completing, read by synchronizing every `--sync-every` steps only);

and samples the SM clock with `nvidia-smi -lms` beside it, to tell a slow host from a slow GPU.

    python scripts/model_step_jitter_probe.py --impl compile --out jitter-compile.csv
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from runners.model_workload import ModelTrainer, RunSettings, parse_impl  # noqa: E402
from runners.plan import DTYPES  # noqa: E402


def deciles(values: list[float]) -> str:
    """p10/p50/p90 of `values`, formatted."""
    if not values:
        return "-"
    v = sorted(values)
    return "/".join(f"{v[min(len(v) - 1, int(q * len(v)))]:.2f}" for q in (0.1, 0.5, 0.9))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="compile")
    parser.add_argument("--model", default="transformer")
    parser.add_argument("--dtype", default="bf16")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--sync-every", type=int, default=25, help="synchronize after every n-th step")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    device = torch.device("cuda")
    model_cfg = OmegaConf.load(ROOT / "conf" / "model" / f"{args.model}.yaml")
    settings = RunSettings()
    trainer = ModelTrainer(model_cfg, parse_impl(args.impl), DTYPES[args.dtype], device, settings)
    for tokens in trainer.batches(0, settings.warmup_steps):
        trainer.step(tokens)
    torch.cuda.synchronize(device)

    clock_log = args.out.with_suffix(".clocks.csv")
    with open(clock_log, "w") as clock_file:
        clocks = subprocess.Popen(
            ["nvidia-smi", "--query-gpu=timestamp,clocks.sm,power.draw,utilization.gpu", "--format=csv,noheader",
             "-lms", "20"], stdout=clock_file, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        batches = trainer.batches(settings.warmup_steps, args.steps)
        starts = [torch.cuda.Event(enable_timing=True) for _ in batches]
        ends = [torch.cuda.Event(enable_timing=True) for _ in batches]
        host_ms, wall_s, behind_ms = [], [], []
        began = time.time()
        for i, (start, end, batch) in enumerate(zip(starts, ends, batches, strict=True)):
            t0 = time.perf_counter()
            start.record()
            trainer.step(batch)
            end.record()
            t1 = time.perf_counter()
            host_ms.append((t1 - t0) * 1e3)
            wall_s.append(time.time() - began)
            if (i + 1) % args.sync_every == 0:
                end.synchronize()
                behind_ms.append((time.perf_counter() - t1) * 1e3)
            else:
                behind_ms.append(float("nan"))
        torch.cuda.synchronize(device)
        time.sleep(0.3)
        clocks.terminate()
    event_ms = [s.elapsed_time(e) for s, e in zip(starts, ends, strict=True)]
    with open(args.out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "wall_s", "event_ms", "host_ms", "behind_ms"])
        for i, row in enumerate(zip(wall_s, event_ms, host_ms, behind_ms, strict=True)):
            writer.writerow([i, *(f"{v:.4f}" for v in row)])
    event_p10 = sorted(event_ms)[len(event_ms) // 10]
    print(f"{args.impl:16s} event p10/p50/p90 {deciles(event_ms)} ms, host {deciles(host_ms)} ms,"
          f" behind {deciles([v for v in behind_ms if v == v])} ms;"
          f" steps over 1.05x the event p10: {sum(v > 1.05 * event_p10 for v in event_ms)}/{len(event_ms)}")


if __name__ == "__main__":
    main()
