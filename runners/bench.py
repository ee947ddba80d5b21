"""The benchmark app: `python -m runners.bench [hydra overrides]` (config: conf/bench.yaml).

`run(cfg)` is the whole sweep as a plain function (tests call it with a composed config); the Hydra
entry point at the bottom only calls it. Without a GPU, `python -m runners.bench` with no
`experiment=` runs `experiment=cpu_smoke`: tiny shapes, the CPU path and the Triton interpreter,
written to results/cpu-smoke/, and loudly labelled as not GPU figures.
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from runners.launch import multirun_argv, pin_to_own_gpu, requested_launcher
from runners.plan import as_list, dtype_names, impl_names, mode_names, part_of, sweep_points, timer_names
from runners.provenance import CPU_SLUG, collect, results_slug
from runners.results_io import MixedGpuError, ResultsFile

CPU_BANNER = """
================================================================================
  CPU SMOKE SWEEP: there is no GPU here. These are CPU / Triton-interpreter times,
  NOT GPU figures: they show that every stage runs, nothing about speed.
================================================================================
"""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda asked for, but torch sees no GPU")
    return device


def use_triton_interpreter_without_gpu(device: torch.device) -> None:
    """Triton kernels run on CPU tensors only in its interpreter, chosen before triton is imported."""
    if device.type != "cpu":
        return
    if "triton" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1":
        print("warning: triton was imported before TRITON_INTERPRET=1 could be set; Triton baselines will fail")
    os.environ.setdefault("TRITON_INTERPRET", "1")


def workload_name(cfg: DictConfig) -> str:
    """`workload: micro` / `workload: model` (conf/workload/), or a node with a `name`."""
    workload = cfg.get("workload", "micro")
    return str(workload.name if isinstance(workload, DictConfig) else workload)


def output_path(cfg: DictConfig, slug: str, dtype: str) -> Path:
    """results/<slug>/<dtype>.csv, or `output` as given; part files get `.part-<i>-of-<n>`."""
    path = Path(cfg.output) if cfg.get("output") else Path(cfg.results_dir) / slug / f"{dtype}.csv"
    if cfg.part_count > 1:
        path = path.with_name(f"{path.stem}.part-{cfg.part_index}-of-{cfg.part_count}{path.suffix}")
    return path


def _options(node) -> dict:
    return OmegaConf.to_container(node, resolve=True) if node is not None else {}


def _writers(cfg, dtypes, slug, gpu) -> dict[str, ResultsFile]:
    writers, by_path = {}, {}
    for dtype in dtypes:
        path = output_path(cfg, slug, dtype)
        if path not in by_path:
            by_path[path] = ResultsFile(path)
            other = by_path[path].gpus() - {gpu}
            if other:
                raise MixedGpuError(f"{path} holds results of {sorted(other)}; this is {gpu!r}: pick another output")
        writers[dtype] = by_path[path]
    return writers


def run_model_workload(cfg: DictConfig, writers: dict[str, ResultsFile]) -> list[Path]:
    # Dispatch point of `workload=model` (end-to-end training steps): runners/model_workload.py,
    # owned by its own module; called once per dtype with that dtype's results file.
    from runners import model_workload

    rows = []
    for dtype, writer in writers.items():
        cfg_one_dtype = copy.deepcopy(cfg)
        cfg_one_dtype.dtype.names = [dtype]
        rows += model_workload.run_model_sweep(cfg_one_dtype, writer)
    finish_run(writers, rows)
    return list(dict.fromkeys(w.path for w in writers.values()))


def run(cfg: DictConfig) -> list[Path]:
    """Run the sweep `cfg` describes; returns the results files written (one per dtype)."""
    pin_to_own_gpu(cfg)  # job i of a local multi-GPU sweep: GPU i alone, before anything touches CUDA
    device = resolve_device(str(cfg.device))
    use_triton_interpreter_without_gpu(device)
    from tqdm.auto import tqdm

    import baselines
    from runners import gpu_state
    from runners.summary import summary_text
    from runners.sweep import SweepSettings, count_rows, run_point

    if device.type == "cpu":
        print(CPU_BANNER, flush=True)
    if int(cfg.get("gpus", 1)) > 1 and not cfg.get("launcher"):
        print(f"note: gpus={cfg.gpus} spreads jobs from the command line (runners/launch.py); this run uses one GPU")
    dtypes = dtype_names(cfg)
    provenance = collect(device, cfg.get("git_sha"))
    writers = _writers(cfg, dtypes, results_slug(device), provenance["gpu"])
    paths = list(dict.fromkeys(w.path for w in writers.values()))

    workload = workload_name(cfg)
    if workload == "model":
        return run_model_workload(cfg, writers)
    if workload != "micro":
        raise ValueError(f"unknown workload {workload!r}: micro or model")

    settings = SweepSettings(
        impls=impl_names(cfg),
        modes=mode_names(cfg),
        timers=timer_names(cfg, device),
        device=device,
        impl_options=_options(cfg.impl.get("options")),
        timer_settings=_options(cfg.timer.get("settings")),
        host_max_numel=int(cfg.timer.host_max_numel),
        overwrite=bool(cfg.overwrite),
        workload=workload,
        rounds=int(cfg.timer.rounds),
        shuffle_seed=int(cfg.timer.shuffle_seed),
    )
    for name in settings.impls:
        baselines.get(name)  # an unknown name fails here, before anything runs
    all_points = sweep_points(cfg, dtypes)
    points = part_of(all_points, int(cfg.part_index), int(cfg.part_count))
    total = count_rows(points, settings)
    print(
        f"{len(points)} points x {settings.impls} x {settings.modes} x {settings.timers}: "
        f"{total} rows of {settings.rounds} rounds (p={as_list(cfg.p)}) -> {', '.join(map(str, paths))}",
        flush=True,
    )
    gpu_state.warm_up(device, float(cfg.timer.gpu_warmup_s))
    rows = []
    interactive = sys.stderr.isatty()
    progress = tqdm(
        total=total * settings.rounds, unit="timing", dynamic_ncols=True, mininterval=0.5 if interactive else 15
    )
    try:
        for point in points:
            # the point's place in the whole sweep seeds its rounds' order, whichever part runs it
            point_index = all_points.index(point)
            rows += run_point(point, settings, writers[point.dtype], provenance, progress, point_index)
    except KeyboardInterrupt:
        progress.close()
        for writer in dict.fromkeys(writers.values()):
            writer.compact()
        print(f"\ninterrupted: every finished row is in {', '.join(map(str, paths))}; run again to resume")
        raise
    progress.close()
    print(summary_text(rows), flush=True)
    print("written: " + ", ".join(map(str, paths)))
    if device.type == "cpu":
        print(CPU_BANNER.replace("\n\n", "\n"), flush=True)
    finish_run(writers, rows)
    return paths


# ---- the end of a run: the results files compacted, the exit status ---------------------------------


def finish_run(writers: dict[str, ResultsFile], rows: list) -> None:
    """What a run does last: compact each results file (one row per key; rows other processes
    appended meanwhile are kept), then exit with status 1 when every row this run wrote failed."""
    for writer in dict.fromkeys(writers.values()):
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
    print(f"no GPU: running experiment=cpu_smoke into {Path('results') / CPU_SLUG}", flush=True)
    return [*argv, "experiment=cpu_smoke"]


def command_line(argv: list[str]) -> list[str]:
    """What Hydra gets: the CPU smoke default (not for SLURM jobs: they run on the cluster's GPU nodes,
    not here), then the multirun that `gpus=N` / `launcher=` ask for (runners/launch.py)."""
    if requested_launcher(argv) != "slurm":
        argv = default_to_cpu_smoke(argv)
    return multirun_argv(argv)


if __name__ == "__main__":
    sys.argv = command_line(sys.argv)
    main()
