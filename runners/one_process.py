"""One process's sweep: the run that `runners.bench` does when there is one pass, and that each
pass of a sweep in passes (`runners.passes`) does in its own process.

A leaf below both: `runners.bench` (the command line, and the choice between one process and
passes) and `runners.passes` (a pass's entry point) import this module, and it imports neither, so
neither of them imports the other back.
"""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from runners.context import RunContext, resolve_device, use_triton_interpreter_without_gpu
from runners.plan import flag
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
    results file, a flag that is no boolean, (micro sweep) every setting `check_sweep` checks, and
    (model workload) an op family, which only the micro sweep measures."""
    flag(cfg, "overwrite")
    if cfg.get("output"):
        refuse_what_is_no_results_file(Path(cfg.output), COLUMNS)
    if cfg.workload.name == "micro":
        device = resolve_device(str(cfg.device))
        use_triton_interpreter_without_gpu(device)  # before runners.sweep imports triton
        from runners.sweep import check_sweep

        check_sweep(cfg, device)
    elif str(OmegaConf.select(cfg, "op.name", default="dropout")) != "dropout":
        raise ValueError(f"op={cfg.op.name} picks the micro sweep's op family; the model workload picks its dropout "
                         "by workload.impls (fused: the transformer with the fused dropout + add + norm op)")


def run_one_process(cfg: DictConfig) -> list[Path]:
    """The sweep `cfg` describes, measured in this process; returns the results files written."""
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
