"""Hydra callbacks of the benchmark app (`hydra.callbacks` in conf/bench.yaml).

`MergeParts`: when a multirun whose jobs each measured one part of a split sweep ends, upsert the
part files into `<dtype>.csv` beside them: what `make merge` does by hand, with the same keyed
upsert (`runners.results_io.merge`). Only parts of this sweep's split (`part-<i>-of-<part_count>`)
are merged; parts of another GPU sit in that GPU's folder and merge into that GPU's file.

Hydra calls `on_multirun_end` only when every job succeeded. When one dies, its finished rows stay
in its part file: the same command again resumes it and then merges, or `make merge` merges what
there is.
"""

from __future__ import annotations

from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from runners.merge import PART_NAME, find_parts, missing_parts
from runners.results_io import merge


def parts_folder(cfg: DictConfig) -> Path:
    """Where the sweep's part files are: under results_dir (one folder per GPU), or beside `output`."""
    return Path(cfg.output).parent if cfg.get("output") else Path(cfg.results_dir)


def merge_split_parts(folder, part_count: int) -> list[str]:
    """Merge every group of `*.part-<i>-of-<part_count>.csv` under `folder`; one line per merged file."""
    lines = []
    for out, parts in find_parts(folder).items():
        parts = [p for p in parts if int(PART_NAME.match(p.name)["count"]) == part_count]
        if not parts:
            continue
        rows = len(merge(out, parts))
        missing = missing_parts(parts)
        note = f" (missing parts {missing}: those jobs wrote nothing)" if missing else ""
        lines.append(f"{out}: {rows} rows after merging {len(parts)} part files{note}")
    return lines


class MergeParts(Callback):
    """At the end of a multirun over `part_index`, merge the parts it wrote (conf/bench.yaml)."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        part_count = int(config.get("part_count", 1))
        if part_count > 1:
            print(
                f"{part_count} jobs, each writing its own part file under {parts_folder(config)}; merged when all "
                "are done. If a job dies, its finished rows stay in its part: the same command again resumes "
                "(and merges), `make merge` merges what there is.",
                flush=True,
            )

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        part_count = int(config.get("part_count", 1))
        if part_count <= 1:
            return
        folder = parts_folder(config)
        lines = merge_split_parts(folder, part_count)
        print("\n".join(lines) if lines else f"no part files of {part_count} jobs under {folder}", flush=True)
