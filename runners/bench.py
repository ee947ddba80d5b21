"""The benchmark app: `python -m runners.bench [hydra overrides]` (config: conf/bench.yaml).

`run(cfg)` is the whole sweep as a plain function (tests call it with a composed config); the Hydra
entry point at the bottom only calls it. Without a GPU, `python -m runners.bench` with no
`experiment=` runs `experiment=cpu_smoke`: tiny shapes, the CPU path and the Triton interpreter,
written to results/cpu-smoke/, and loudly labelled as not GPU figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from runners.context import RunContext, resolve_device, use_triton_interpreter_without_gpu
from runners.launch import multirun_argv, override_value, pin_to_own_gpu, requested_launcher
from runners.lifetime import exit_with_ancestor
from runners.passes import passes_of, run_passes
from runners.plan import flag
from runners.provenance import CPU_SLUG
from runners.results_io import ResultsFile, refuse_what_is_no_results_file
from runners.rows import COLUMNS

CPU_BANNER = """
================================================================================
  CPU SMOKE SWEEP: there is no GPU here. These are CPU / Triton-interpreter times,
  NOT GPU figures: they show that every stage runs, nothing about speed.
================================================================================
"""


CPU_NOTE = "note: device=cpu: CPU times, NOT GPU figures (the CPU smoke sweep is experiment=cpu_smoke)"


def cpu_banner(cfg: DictConfig) -> str:
    """What a run on CPU prints before and after: the smoke sweep's banner, or a note for any other
    sweep run on CPU (the banner would say a smoke sweep ran)."""
    return CPU_BANNER if cfg.get("cpu_smoke", False) else CPU_NOTE


def check_before_measuring(cfg: DictConfig) -> None:
    """Refuse what cannot run before anything is measured or a pass started: an `output` that is no
    results file, a flag that is no boolean, and (micro sweep) every setting `check_sweep` checks."""
    flag(cfg, "overwrite")
    if cfg.get("output"):
        refuse_what_is_no_results_file(Path(cfg.output), COLUMNS)
    if cfg.workload.name == "micro":
        device = resolve_device(str(cfg.device))
        use_triton_interpreter_without_gpu(device)  # before runners.sweep imports triton
        from runners.sweep import check_sweep

        check_sweep(cfg, device)


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
    context = RunContext.open(cfg)  # chooses Triton's interpreter on CPU: triton is imported after it
    if context.device.type == "cpu":
        print(cpu_banner(cfg), flush=True)
    if int(cfg.get("gpus", 1)) > 1 and not cfg.get("launcher"):
        print(f"note: gpus={cfg.gpus} spreads jobs from the command line (runners/launch.py); this run uses one GPU")
    if cfg.workload.name == "model":
        from runners.model_workload import run_model_sweep as run_workload
    elif cfg.workload.name == "micro":
        from runners.sweep import run_sweep as run_workload
    else:
        raise ValueError(f"unknown workload {cfg.workload.name!r}: micro or model")
    try:
        rows = run_workload(cfg, context)
    except KeyboardInterrupt:
        for writer in context.files():
            writer.compact()
        print(f"\ninterrupted: every finished row is in {', '.join(map(str, context.paths))}; run again to resume")
        raise
    written = [path for path in context.paths if path.exists()]
    print(f"written: {', '.join(map(str, written))}" if written else "nothing written (no point to measure here)")
    if context.device.type == "cpu":
        print(cpu_banner(cfg).replace("\n\n", "\n"), flush=True)
    finish_run(context.files(), rows)
    return written


# ---- the end of a run: the results files compacted, the exit status ---------------------------------


def finish_run(files: list[ResultsFile], rows: list) -> None:
    """What a run does last: compact each results file (one row per key; rows other processes
    appended meanwhile are kept), then exit with status 1 when every row this run wrote failed."""
    for writer in files:
        writer.compact()
    exit_if_every_row_failed(rows)


def exit_if_every_row_failed(rows: list) -> None:
    """A sweep that measured nothing (every row it wrote `error` or `oom`) is a failed command, not a
    result: exit 1, so scripts and CI see it. Rows skipped or already on disk are not failures."""
    failed = [row for row in rows if row.status in ("error", "oom")]
    if rows and len(failed) == len(rows):
        print(f"error: every row of this run failed ({len(failed)} error/oom rows; the first are listed above)",
              file=sys.stderr, flush=True)  # fmt: skip
        raise SystemExit(1)


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
