"""What a run shares with whichever workload it runs: the device, the provenance of its rows and the
results files they go to (`RunContext`). Made once by `runners.bench.run`, handed to the workload
(`runners.sweep.run_sweep`, `runners.model_workload.run_model_sweep`), so neither reaches back into
the entry point for them."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from runners.plan import dtype_names
from runners.provenance import collect, results_slug
from runners.results_io import MixedGpuError, ResultsFile


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"device={name!r}: {error}; give auto, cpu or cuda") from None
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


def output_path(cfg: DictConfig, slug: str, dtype: str) -> Path:
    """results/<slug>/<dtype>.csv, or `output` as given; part files get `.part-<i>-of-<n>`."""
    path = Path(cfg.output) if cfg.get("output") else Path(cfg.results_dir) / slug / f"{dtype}.csv"
    if cfg.part_count > 1:
        path = path.with_name(f"{path.stem}.part-{cfg.part_index}-of-{cfg.part_count}{path.suffix}")
    return path


def open_writers(cfg: DictConfig, dtypes: list[str], slug: str, gpu: str) -> dict[str, ResultsFile]:
    """dtype -> its results file (dtypes may share one, with `output=`); another GPU's file refused."""
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


@dataclass
class RunContext:
    device: torch.device
    dtypes: list[str]
    provenance: dict  # the provenance columns of runners.rows.ResultRow (all but the timestamp)
    writers: dict[str, ResultsFile]  # dtype -> results file

    @classmethod
    def open(cls, cfg: DictConfig) -> RunContext:
        """The device (with Triton's interpreter chosen on CPU, before triton is imported), the
        provenance of this run's rows and the results files of its dtypes."""
        device = resolve_device(str(cfg.device))
        use_triton_interpreter_without_gpu(device)
        dtypes = dtype_names(cfg)
        provenance = collect(device, cfg.get("git_sha"))
        return cls(device, dtypes, provenance, open_writers(cfg, dtypes, results_slug(device), provenance["gpu"]))

    @property
    def paths(self) -> list[Path]:
        return list(dict.fromkeys(writer.path for writer in self.writers.values()))

    def files(self) -> list[ResultsFile]:
        return list(dict.fromkeys(self.writers.values()))
