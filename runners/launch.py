"""One sweep spread over jobs: `gpus=N` and `launcher=local|slurm` (`make bench GPUS=4`, `LAUNCHER=slurm`).

Hydra picks its launcher before it composes a config, so these two keys are read from the command
line here, before Hydra sees it, and turned into a multirun of N jobs: job i runs part i of N
(`part_index=0,...,N-1 part_count=N`, see `runners.plan.part_of`) into its own part files, through
Hydra's submitit launcher (`hydra/launcher=local|slurm`, conf/hydra/launcher/). When the jobs are
done, the `MergeParts` callback (runners/callbacks.py) merges the parts into `<dtype>.csv`.

- `gpus=N`, no launcher: `launcher=local`, N jobs on this machine at once, job i on GPU i alone.
- `launcher=local`: submitit's local executor (the same code path as SLURM, without a cluster).
- `launcher=slurm`: N SLURM jobs of one GPU each (`hydra.launcher.partition=...`).
- `gpus=1` without a launcher: the command line is left as it is (one process, no submitit).

The launchers are the optional `launchers` extra (hydra-submitit-launcher, submitit); the default
path does not import them.
"""

from __future__ import annotations

import importlib.util
import os

import torch
from omegaconf import DictConfig

LAUNCHERS = ("local", "slurm")
EXTRA_MISSING = """\
{what} runs its jobs through Hydra's submitit launcher, which is not installed here.
It is the optional `launchers` extra: `make install` installs it into .venv, or
    python -m pip install hydra-submitit-launcher submitit
(`GPUS=1` without `LAUNCHER` needs neither: one process measures the whole sweep.)"""


class LaunchError(SystemExit):
    """A command line the launchers cannot run; the message says why (exits with status 1)."""

    def __init__(self, message: str):
        super().__init__(f"error: {message}")


def override_value(argv: list[str], key: str) -> str | None:
    """The value of the last `key=value` on the command line, or None."""
    values = [arg.split("=", 1)[1] for arg in argv[1:] if arg.startswith(f"{key}=")]
    return values[-1] if values else None


def requested_gpus(argv: list[str]) -> int:
    text = override_value(argv, "gpus") or "1"
    if not text.isdigit() or int(text) < 1:
        raise LaunchError(f"gpus={text}: give a whole number of GPUs (jobs), 1 or more")
    return int(text)


def requested_launcher(argv: list[str]) -> str | None:
    """`local`, `slurm`, or None (no launcher asked for; `launcher=null` is the same)."""
    name = override_value(argv, "launcher")
    if name in (None, "", "null"):
        return None
    if name not in LAUNCHERS:
        raise LaunchError(f"launcher={name}: choose from {', '.join(LAUNCHERS)} (conf/hydra/launcher/)")
    return name


def require_submitit(what: str) -> None:
    missing = [m for m in ("submitit", "hydra_plugins.hydra_submitit_launcher") if not _importable(m)]
    if missing:
        raise LaunchError(EXTRA_MISSING.format(what=what))


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


def check_local_gpus(gpus: int) -> None:
    """Submitit's local executor shows every job GPUs 0..N-1 of the machine, whatever was visible here."""
    count = torch.cuda.device_count()
    if count == 0:
        return  # no GPU: the CPU smoke sweep, split into N jobs
    if gpus > count:
        raise LaunchError(f"gpus={gpus}, but this machine shows {count} GPU(s)")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    expected = [str(i) for i in range(gpus)]
    if visible and [d.strip() for d in visible.split(",")][:gpus] != expected:
        raise LaunchError(
            f"CUDA_VISIBLE_DEVICES={visible}, but the local launcher's jobs get GPUs {','.join(expected)} "
            "of the machine (submitit sets them): unset it, or use launcher=slurm"
        )


def multirun_argv(argv: list[str]) -> list[str]:
    """The command line Hydra gets: `argv` itself, or the multirun of the jobs `gpus`/`launcher` ask for."""
    gpus, launcher = requested_gpus(argv), requested_launcher(argv)
    if gpus == 1 and launcher is None:
        return argv
    launcher = launcher or "local"
    what = f"gpus={gpus} launcher={launcher}"
    taken = [a for a in argv[1:] if a.split("=", 1)[0] in ("part_index", "part_count", "hydra/launcher")]
    if taken:
        raise LaunchError(f"{what} sets part_index, part_count and hydra/launcher itself: drop {' '.join(taken)}")
    require_submitit(what)
    if launcher == "local":
        check_local_gpus(gpus)
    multirun = [] if any(a in ("-m", "--multirun") for a in argv[1:]) else ["--multirun"]
    return [
        argv[0],
        *multirun,  # before the overrides: Hydra's argument parser takes no flag after them
        *argv[1:],
        f"launcher={launcher}",
        f"hydra/launcher={launcher}",
        f"part_count={gpus}",
        "part_index=" + ",".join(str(i) for i in range(gpus)),
    ]


def pin_to_own_gpu(cfg: DictConfig) -> None:
    """In job i of a local multi-GPU sweep, keep GPU i visible alone, so the job measures on it only.

    Submitit's local executor gives every job `CUDA_VISIBLE_DEVICES=0,...,N-1`; this must run before
    anything in the job touches CUDA (it is the first thing `runners.bench.run` does). SLURM jobs are
    given their one GPU by SLURM, so nothing is done there.
    """
    gpus, index = int(cfg.get("gpus", 1)), int(cfg.get("part_index", 0))
    if cfg.get("launcher") != "local" or gpus <= 1:
        return
    if torch.cuda.is_initialized():
        raise RuntimeError("CUDA was initialised before this job could keep its own GPU alone")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    devices = [d.strip() for d in visible.split(",")] if visible else [str(i) for i in range(gpus)]
    if index >= len(devices):
        raise RuntimeError(f"job {index} of {gpus} has no GPU of its own: CUDA_VISIBLE_DEVICES={visible}")
    os.environ["CUDA_VISIBLE_DEVICES"] = devices[index]
