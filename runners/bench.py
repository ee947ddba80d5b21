"""The benchmark app: `python -m runners.bench [hydra overrides]` (config: conf/bench.yaml).

`run(cfg)` is the whole sweep as a plain function (tests call it with a composed config); the Hydra
entry point at the bottom only calls it. It checks the config, then runs the sweep in passes
(`runners.passes`) or in this process (`runners.one_process`, which each pass runs too). Without a
GPU, `python -m runners.bench` with no `experiment=` runs `experiment=cpu_smoke`: tiny shapes, the
CPU path and the Triton interpreter, written to results/cpu-smoke/, and loudly labelled as not GPU
figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from runners.context import resolve_device
from runners.launch import multirun_argv, override_value, pin_to_own_gpu, requested_launcher
from runners.lifetime import exit_with_ancestor
from runners.one_process import check_before_measuring, cpu_banner, run_one_process
from runners.passes import passes_of, run_passes
from runners.provenance import CPU_SLUG


def run(cfg: DictConfig) -> list[Path]:
    """Run the sweep `cfg` describes; returns the results files written (one per dtype)."""
    pin_to_own_gpu(cfg)  # job i of a local multi-GPU sweep: GPU i alone, before anything touches CUDA
    if cfg.get("launcher") == "local" and int(cfg.get("part_count", 1)) > 1:
        exit_with_ancestor(2)  # a local job ends with the Hydra process, above submitit's controller
    check_before_measuring(cfg)
    if passes_of(cfg) > 1:  # each pass a process of its own (runners/passes.py); this one touches no GPU
        written = run_passes(cfg)
        if resolve_device(str(cfg.device)).type == "cpu":
            print(cpu_banner(cfg).replace("\n\n", "\n"), flush=True)  # the pooled summary is CPU figures too
        return written
    return run_one_process(cfg)


@hydra.main(version_base="1.3", config_path="../conf", config_name="bench")
def main(cfg: DictConfig) -> None:
    run(cfg)


def default_to_cpu_smoke(argv: list[str]) -> list[str]:
    """Without a GPU and without a chosen experiment or device, run the CPU smoke experiment."""
    chosen = ("experiment=", "+experiment=", "device=")
    if torch.cuda.is_available() or any(a.startswith("-") or a.startswith(chosen) for a in argv[1:]):
        return argv
    into = override_value(argv, "output") or Path(override_value(argv, "results_dir") or "results") / CPU_SLUG
    print(f"no GPU: running experiment=cpu_smoke into {into}", flush=True)
    return [*argv, "experiment=cpu_smoke"]


QUOTING_HINT = """\
hint: an override holding spaces, braces or quotes must reach Hydra as one argument. Quote it whole:
    python -m runners.bench 'shape.cases=[{dim: [1], shapes: [[2, 3, 8]]}]' 'p=[0.1, 0.5]'
    make bench ARGS="'shape.cases=[{dim: [1], shapes: [[2, 3, 8]]}]' 'p=[0.1, 0.5]'"
or leave the spaces out: p=[0.1,0.5]"""


def check_override_syntax(argv: list[str]) -> None:
    """Exit with Hydra's parser error and a hint on shell quoting when an override does not parse
    (most often one the shell split at a space). Command lines with flags are left to Hydra."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    if any(arg.startswith("-") for arg in argv[1:]):
        return
    try:
        OverridesParser.create().parse_overrides(argv[1:])
    except OverrideParseException as error:
        raise SystemExit(f"error: {error}\n{QUOTING_HINT}") from None


def command_line(argv: list[str]) -> list[str]:
    """What Hydra gets: the CPU smoke default (not for SLURM jobs: they run on the cluster's GPU nodes,
    not here), then the multirun that `gpus=N` / `launcher=` ask for (runners/launch.py)."""
    check_override_syntax(argv)
    if requested_launcher(argv) != "slurm":
        argv = default_to_cpu_smoke(argv)
    return multirun_argv(argv)


if __name__ == "__main__":
    sys.argv = command_line(sys.argv)
    main()
