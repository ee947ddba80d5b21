"""Probe: two compiled training steps side by side in one process (an Inductor setting, or another impl).

The host machine's speed moves between processes by up to 1.7x (docs/harness.md, host cost), and a
compiled step that uses the seeded or the fused op is paced by the host, so two processes cannot
tell a 2-3% change, nor compare two profiles' host times. This probe builds the model twice, as the
model workload does (`runners.model_workload.ModelTrainer`): side A is `--impl` compiled with
Inductor's settings as they are, side B is `--impl-b` (default: the same impl) compiled with the
settings given by `--set key=value` (torch._inductor.config; a value is read as Python: True, 1,
'text'). Each side compiles its own copy of the loss function, so neither finds the other's graphs
in its compile cache. Then `--rounds` rounds of `--steps` steps, the two trainers alternating in
the order ABBA... (`runners.host_ratio.burst_order`), each step timed by CUDA events (the GPU's
time per step, what the workload records) and by the host's wall time of the step call.

It prints, for A and B, the median over rounds of each round's median step time (event and host),
and the median of the per-pair ratios B/A with their lowest and highest; the noise floor is what
the same impl and settings on both sides read (`--impl-b` the same impl and a `--set` that changes
nothing, e.g. a setting's default). Inductor's reasons for launching a kernel through Triton's own
launcher instead of its static one ("Bypassing StaticallyLaunchedCudaKernel due to ...") are counted
per side, which shows whether a launcher setting took effect.

    python scripts/compiled_step_ab_probe.py --impl fused:compile \\
        --set static_launch_user_defined_triton_kernels=True --out ab-static-fused.json
    python scripts/compiled_step_ab_probe.py --impl compile --impl-b fused:compile --out ab-fused-vs-mask.json

`--tiny` runs the model's tiny sizes with the aot_eager backend (no Inductor code), on any device:
a check that the probe runs, not a measurement.
"""

from __future__ import annotations

import argparse
import ast
import collections
import json
import logging
import math
import statistics
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from runners.host_ratio import RatioSummary, burst_order, pair_ratios  # noqa: E402
from runners.model_workload import ModelTrainer, RunSettings, next_token_loss, parse_impl  # noqa: E402
from runners.plan import DTYPES  # noqa: E402
from runners.rounds import RoundSummary  # noqa: E402

BYPASS_LOGGER = "torch._inductor.runtime.triton_heuristics"


def parse_setting(text: str) -> tuple[str, object]:
    """`key=value` as (key, value), the value read as a Python literal (else kept as text)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: give key=value")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def is_inductor_setting(key: str) -> bool:
    """Whether torch._inductor.config has `key` (dotted for a nested one: triton.cudagraphs)."""
    holder = torch._inductor.config
    for part in key.split("."):
        if not hasattr(holder, part):
            return False
        holder = getattr(holder, part)
    return True


def own_copy(function):
    """`function` with a code object of its own: dynamo keeps compiled graphs per code object, so a
    copy compiles (and guards) apart from the original."""
    return types.FunctionType(function.__code__.replace(), function.__globals__, function.__name__)


class BypassCounter(logging.Handler):
    """Counts Inductor's reasons for not launching a kernel statically."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.reasons = collections.Counter()

    def emit(self, record):
        message = record.getMessage()
        if "Bypassing Statically" in message:
            self.reasons[message.split(" due to ", 1)[-1]] += 1


def timed_round(trainer: ModelTrainer, batches, device: torch.device) -> tuple[list[float], list[float]]:
    """(event ms, host ms) of each step of one round; event times need CUDA (else they are the host's)."""
    host_ms, events = [], []
    for batch in batches:
        start = end = None
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        began = time.perf_counter()
        trainer.step(batch)
        host_ms.append((time.perf_counter() - began) * 1e3)
        if end is not None:
            end.record()
        events.append((start, end))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return [s.elapsed_time(e) for s, e in events], host_ms
    return list(host_ms), host_ms


def summary(values_by_round: list[list[float]]) -> float:
    """The median of the round medians, as a row's p50 (runners.rounds.RoundSummary)."""
    return RoundSummary.from_rounds(values_by_round).p50_ms


def ratio_summary(a_rounds: list[list[float]], b_rounds: list[list[float]]) -> dict:
    """B/A of each pair of rounds' medians: their median, lowest and highest (runners.host_ratio's
    RatioSummary; None where no pair has a ratio)."""
    ratios = pair_ratios([statistics.median(v) for v in b_rounds], [statistics.median(v) for v in a_rounds])
    found = RatioSummary.from_rounds(ratios)
    return {key: None if math.isnan(value) else value
            for key, value in (("median", found.ratio), ("low", found.low), ("high", found.high))}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impl", default="fused:compile", help="side A: a compiled model-workload impl")
    parser.add_argument("--impl-b", help="side B's impl (default: --impl)")
    parser.add_argument("--set", dest="settings", type=parse_setting, action="append", default=[],
                        metavar="KEY=VALUE", help="an Inductor setting of side B (repeatable)")
    parser.add_argument("--model", default="transformer")
    parser.add_argument("--dtype", default="bf16", choices=tuple(DTYPES))
    parser.add_argument("--rounds", type=int, default=10, help="rounds per side (even: ABBA balances)")
    parser.add_argument("--steps", type=int, default=20, help="steps per round")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes, aot_eager backend: a run check")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, required=True, help="the JSON summary")
    args = parser.parse_args(argv)
    impls = {"A": parse_impl(args.impl), "B": parse_impl(args.impl_b or args.impl)}
    for impl in impls.values():
        if not impl.compiled:
            parser.error(f"impl {impl.name}: give a compiled impl (compile, seeded:compile, fused:compile)")
    if impls["A"] == impls["B"] and not args.settings:
        parser.error("the two sides are the same: give --impl-b, --set, or both")
    if args.rounds < 2 or args.steps < 1:
        parser.error("--rounds must be >= 2 and --steps >= 1")
    settings_b = dict(args.settings)
    unknown = [key for key in settings_b if not is_inductor_setting(key)]
    if unknown:
        parser.error(f"not Inductor settings: {unknown}")

    device = torch.device(args.device)
    model_cfg = OmegaConf.load(ROOT / "conf" / "model" / f"{args.model}.yaml")
    run = RunSettings(compile_backend="aot_eager") if args.tiny else RunSettings()
    if args.tiny:
        model_cfg = OmegaConf.merge(model_cfg, model_cfg.get("tiny") or {})  # as the workload's tiny run
    trainers = {side: ModelTrainer(model_cfg, impl, DTYPES[args.dtype], device, run) for side, impl in impls.items()}
    for trainer in trainers.values():  # each its own copy of the loss: graphs compiled apart
        trainer.loss_fn = torch.compile(own_copy(next_token_loss), backend=run.compile_backend)

    counters = {side: BypassCounter() for side in "AB"}
    logger = logging.getLogger(BYPASS_LOGGER)
    level = logger.level
    logger.setLevel(logging.INFO)
    side_settings = {"A": {"compile_threads": 1}, "B": {"compile_threads": 1, **settings_b}}
    try:
        for side, trainer in trainers.items():  # compile: one worker thread, so the log reaches us
            logger.addHandler(counters[side])
            with torch._inductor.config.patch(side_settings[side]):
                for batch in trainer.batches(0, run.warmup_steps or 1):
                    trainer.step(batch)
            logger.removeHandler(counters[side])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        rounds = {"A": ([], []), "B": ([], [])}
        order = burst_order(args.rounds)
        for index, a_first in enumerate(order):
            for side in ("AB" if a_first else "BA"):
                event_ms, host_ms = timed_round(trainers[side], trainers[side].batches(index, args.steps), device)
                rounds[side][0].append(event_ms)
                rounds[side][1].append(host_ms)
    finally:
        logger.setLevel(level)
        for counter in counters.values():
            logger.removeHandler(counter)

    result = {
        "impl": {side: impl.name for side, impl in impls.items()},
        "dtype": args.dtype,
        "model": args.model,
        "tiny": args.tiny,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type,
        "torch": torch.__version__,
        "settings_b": {key: repr(value) for key, value in settings_b.items()},
        "rounds": args.rounds,
        "steps_per_round": args.steps,
        "event_ms": {side: summary(rounds[side][0]) for side in "AB"},
        "host_ms": {side: summary(rounds[side][1]) for side in "AB"},
        "event_ratio_b_over_a": ratio_summary(rounds["A"][0], rounds["B"][0]),
        "host_ratio_b_over_a": ratio_summary(rounds["A"][1], rounds["B"][1]),
        "static_launch_bypassed": {side: dict(counters[side].reasons) for side in "AB"},
    }
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
