"""A sweep in passes: the same sweep run `passes` times, each pass a process of its own, one after
the other on the same GPU, and each key's rounds pooled over the passes into one row.

Why: on the H200 the times of small calls shift by a few percent from one process to the next,
more than the rounds of one process spread (docs/harness.md, "How far two sweeps of the same code
agree"). Rounds inside one process cannot average such an offset out; rounds from several
processes can. `passes=1` is one process, as without this module.

Pass i is the sweep's own config with `passes=1`, `pass_index=i` (which shifts the rounds' shuffled
order, runners.rounds.round_order) and its rows written under
`<results_dir>/.passes/<sweep id>/pass-<i>/` (or beside `output=`), the id a hash of the sweep's
config and of the code's state (commit and uncommitted changes): a pass cut off midway resumes from
its own files when the same command runs again on the same code, and another sweep never pools
them. Once pooled, the folder is renamed `<sweep id>-pooled-<run id>` (kept, never resumed from), so
the same sweep run again measures afresh. A pass ends when the sweep's process does, even when that
one is killed (runners/lifetime.py). When every pass has finished, each key that every pass holds is
pooled into the file the sweep writes without passes:

- rounds: every pass's rounds, renumbered in pass order; the figures of runners.rounds computed
  over all of them (p50: the median of every round median);
- `host_us`, `host_ratio`: the median of the passes'; `host_ratio_lo`, `host_ratio_hi`: the lowest
  and highest of the passes'; `starved`: their mean; `bound` from the pooled p50;
  `sm_clock_mhz`, `gpu_temp_c`: medians; peak memory: the largest; gbps and % of copy from the
  pooled p50s;
- a key that is not `ok` in some pass takes that pass's row (its status and error);
- `run_id`: the passes' run ids joined by "+"; `timestamp`: the last pass's.

Keys already in the sweep's file from an earlier run are measured again by every pass and replaced
(resuming works per pass). Only the micro workload on one GPU runs in passes; `passes=auto`, the
default, is two passes for it and one pass for the model workload and for sweeps split over jobs.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from runners.lifetime import WITH_PARENT, exit_with_ancestor
from runners.provenance import code_state, new_run_id
from runners.results_io import (
    ResultsFile,
    format_samples,
    format_value,
    key_of,
    last_row_per_key,
    read_results,
    read_table,
)
from runners.rounds import RoundSummary, bound_of, median_or_nan
from runners.rows import COLUMNS, KEY_COLUMNS, SAMPLES_COLUMNS, ResultRow, gbps_of, percent_of_copy, samples_by_round
from runners.summary import summary_text

PASSES_FOLDER = ".passes"


class PassesError(SystemExit):
    """A sweep that cannot run in passes, or a pass that failed; the message says which (exit 1)."""

    def __init__(self, message: str):
        super().__init__(f"error: {message}")


AUTO_PASSES = 2  # passes=auto: two processes agree on far more rows than one (docs/harness.md)


def passes_of(cfg: DictConfig) -> int:
    """The number of passes asked for, checked against what can run in passes. `auto` (the default)
    is AUTO_PASSES for the micro sweep on one job and 1 for what cannot run in passes."""
    value = cfg.get("passes", 1)
    split = int(cfg.get("gpus", 1)) > 1 or bool(cfg.get("launcher")) or int(cfg.get("part_count", 1)) > 1
    if value == "auto":
        return 1 if cfg.workload.name != "micro" or split else AUTO_PASSES
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PassesError(f"passes={value}: give a whole number of passes, 1 or more, or auto")
    if value > 1:
        if cfg.workload.name != "micro":
            raise PassesError(f"passes={value}: only the micro workload runs in passes, not {cfg.workload.name}")
        if split:
            raise PassesError(f"passes={value}: a sweep split over jobs (gpus, launcher, part_count) runs in one pass")
    return value


def sweep_id(cfg: DictConfig) -> str:
    """A short hash of the sweep's config (all but `passes`) and of the code's state (commit and
    uncommitted changes): the same command on the same code finds its passes' files again and
    resumes; another sweep, or the same one after the code changed, gets folders of its own."""
    settings = OmegaConf.to_container(cfg, resolve=True)
    settings.pop("passes", None)
    settings.pop("pass_index", None)
    settings["code state"] = code_state(cfg.get("git_sha"))
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]


def pass_folder(cfg: DictConfig, index: int, sweep_dir: Path | None = None) -> Path:
    """Where pass `index` writes: under results_dir, or beside the `output=` file; in `sweep_dir`
    when given (a run fixes its sweep's folder once, at its start: see `run_passes`)."""
    if sweep_dir is None:
        base = Path(cfg.output).parent if cfg.get("output") else Path(cfg.results_dir)
        sweep_dir = base / PASSES_FOLDER / sweep_id(cfg)
    return sweep_dir / f"pass-{index}"


def pass_config(cfg: DictConfig, index: int, sweep_dir: Path | None = None) -> DictConfig:
    """The config of pass `index`: the sweep's own, in one pass of its own, into its own folder."""
    config = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    folder = pass_folder(cfg, index, sweep_dir)
    config.passes = 1
    config.pass_index = index
    if cfg.get("output"):
        config.output = str(folder / Path(cfg.output).name)
    else:
        config.results_dir = str(folder)
    return config


def run_passes(cfg: DictConfig) -> list[Path]:
    """Run every pass in a process of its own, one after the other, then pool them; returns the
    results files written. A pass that fails stops the sweep: what it and earlier passes wrote stays,
    and running the same command again resumes. The sweep's folder is fixed here, once: the code's
    state is part of its name, and a file edited while the passes run must not move the later
    passes (or the pooling) to another folder."""
    count = passes_of(cfg)
    sweep_dir = pass_folder(cfg, 0).parent
    for index in range(count):
        config_path = pass_folder(cfg, index, sweep_dir) / "config.yaml"
        config_path.parent.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(pass_config(cfg, index, sweep_dir), config_path)
        print(f"=== pass {index + 1} of {count}: {config_path.parent}", flush=True)
        status = subprocess.call([sys.executable, "-m", "runners.passes", str(config_path), WITH_PARENT])
        if status != 0:
            kept = sweep_dir
            raise PassesError(
                f"pass {index + 1} of {count} exited with status {status}; its rows and those of the passes "
                f"before it are kept under {kept}: run the same command again to resume"
            )
    written, rows = [], []
    for target, sources in pass_files(cfg, count, sweep_dir).items():
        pooled, left_out = pool_files(sources, target)
        note = f"; {left_out} key(s) not in every pass left out (run again to finish them)" if left_out else ""
        print(f"{target}: {len(pooled)} rows pooled from {count} passes{note}", flush=True)
        written.append(target)
        records = read_results(target).to_dict("records")  # typed; the file may hold other sweeps' rows too
        rows += [ResultRow(**{name: r[name] for name in COLUMNS}) for r in records if key_of(r) in pooled]
    print(f"pooled over {count} passes:\n{summary_text(rows)}", flush=True)
    retire_passes(cfg, sweep_dir)
    return written


def retire_passes(cfg: DictConfig, sweep_dir: Path | None = None) -> Path:
    """Rename the sweep's pass folder once its passes are pooled (`<id>` -> `<id>-pooled-<time>`):
    the pass files belong to that one run and are kept, but no later run resumes from them, so
    running the same sweep again measures afresh."""
    folder = pass_folder(cfg, 0, sweep_dir).parent
    retired = folder.with_name(f"{folder.name}-pooled-{new_run_id()}")
    folder.rename(retired)
    return retired


def pass_files(cfg: DictConfig, count: int, sweep_dir: Path | None = None) -> dict[Path, list[Path]]:
    """The sweep's results file -> the matching file of every pass (files every pass wrote)."""
    first = pass_folder(cfg, 0, sweep_dir)
    if cfg.get("output"):
        relative = [Path(Path(cfg.output).name)]
        target_of = {relative[0]: Path(cfg.output)}
    else:
        relative = sorted(path.relative_to(first) for path in first.glob("*/*.csv") if is_results_file(path))
        target_of = {path: Path(cfg.results_dir) / path for path in relative}
    files = {}
    for path in relative:
        sources = [pass_folder(cfg, index, sweep_dir) / path for index in range(count)]
        if all(source.exists() for source in sources):
            files[target_of[path]] = sources
    return files


def is_results_file(path: Path) -> bool:
    return not path.name.endswith(".samples.csv")  # a pass is one job: it writes no part files


# ---- pooling ---------------------------------------------------------------------------------------


def pool_files(sources: list[Path], target: Path) -> tuple[set[tuple], int]:
    """Pool the rows of `sources` (one results file per pass) into `target`; returns (the keys
    pooled, how many keys were left out because some pass lacks them)."""
    passes = [read_pass(source) for source in sources]
    common = set.intersection(*(set(rows) for rows, _ in passes))
    every = set.union(*(set(rows) for rows, _ in passes))
    pooled = {key: pool_row([rows[key] for rows, _ in passes], [samples.get(key) for _, samples in passes])
              for key in sorted(common)}  # fmt: skip
    add_throughput([fields for fields, _ in pooled.values()])
    writer = ResultsFile(target)
    writer.append(list(pooled.values()))
    writer.compact()
    return set(pooled), len(every - common)


def read_pass(path: Path) -> tuple[dict[tuple, dict[str, str]], dict[tuple, dict[str, str]]]:
    """One pass's rows and samples by key (the last row of each key)."""
    writer = ResultsFile(path)
    samples = last_row_per_key(read_table(writer.samples_path, SAMPLES_COLUMNS).rows)
    return last_row_per_key(writer.rows()), samples


def pool_row(rows: list[dict[str, str]], samples: list[dict[str, str] | None]) -> tuple[dict, dict | None]:
    """One key's rows of every pass (text fields, in pass order) and their samples -> the pooled
    row and its samples. A row not `ok` in some pass is returned as that pass wrote it."""
    failed = next((i for i, fields in enumerate(rows) if fields.get("status") != "ok"), None)
    if failed is not None:
        return dict(rows[failed]), samples[failed]
    if any(s is None for s in samples):
        missing = [i for i, s in enumerate(samples) if s is None]
        raise ValueError(f"{key_of(rows[0])}: passes {missing} have a row but no samples")
    by_round = []
    for pass_samples in samples:
        times = [float(v) for v in pass_samples["samples_ms"].split()]
        rounds = [int(v) for v in pass_samples["sample_rounds"].split()] or [0] * len(times)
        by_round += samples_by_round(times, rounds)
    summary = RoundSummary.from_rounds(by_round)

    def each(name: str) -> list[float]:
        return [float(fields.get(name) or "nan") for fields in rows]

    host_us = median_or_nan(each("host_us"))
    starved = [value for value in each("starved") if math.isfinite(value)]
    pooled = dict(rows[-1])  # provenance of the last pass; the figures below replace the measured ones
    pooled.update(
        run_id="+".join(fields.get("run_id", "") for fields in rows),
        p20_ms=summary.p20_ms, p50_ms=summary.p50_ms, p80_ms=summary.p80_ms, ci_lo_ms=summary.ci_lo_ms,
        ci_hi_ms=summary.ci_hi_ms, rounds=summary.rounds, n_samples=summary.n_samples, host_us=host_us,
        starved=statistics.fmean(starved) if starved else math.nan,
        bound=bound_of(rows[0]["timer"], summary.p50_ms, host_us),
        sm_clock_mhz=median_or_nan(each("sm_clock_mhz")), gpu_temp_c=median_or_nan(each("gpu_temp_c")),
        peak_mem_delta_bytes=max_or_nan(each("peak_mem_delta_bytes")),
        host_ratio=median_or_nan(each("host_ratio")), host_ratio_lo=min_or_nan(each("host_ratio_lo")),
        host_ratio_hi=max_or_nan(each("host_ratio_hi")),
    )  # fmt: skip
    fields = {name: format_value(value) for name, value in pooled.items()}
    pooled_samples = {"samples_ms": format_samples(summary.samples_ms),
                      "sample_rounds": " ".join(str(r) for r in summary.sample_rounds)}  # fmt: skip
    return fields, pooled_samples


def max_or_nan(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return max(finite) if finite else math.nan


def min_or_nan(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return min(finite) if finite else math.nan


def add_throughput(rows: list[dict[str, str]]) -> None:
    """gbps from each ok row's pooled p50, and % of copy against copy's pooled row of the same point,
    mode and timer (as runners.sweep writes them)."""
    point = [c for c in KEY_COLUMNS if c != "impl"]
    copy_p50 = {
        tuple(f[c] for c in point): float(f["p50_ms"]) for f in rows if f["impl"] == "copy" and f["status"] == "ok"
    }
    for fields in rows:
        if fields.get("status") != "ok":
            continue
        p50_ms = float(fields["p50_ms"])
        fields["gbps"] = format_value(gbps_of(float(fields["bytes_moved"]), p50_ms))
        copy_ms = copy_p50.get(tuple(fields[c] for c in point))
        fields["pct_of_copy"] = format_value(percent_of_copy(copy_ms, p50_ms)) if copy_ms is not None else "nan"


def main(argv: list[str] | None = None) -> int:
    """A pass: `python -m runners.passes <pass-config.yaml>`, started by `run_passes`."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2) or args[1:] not in ([], [WITH_PARENT]):
        print(f"usage: python -m runners.passes PASS_CONFIG.yaml [{WITH_PARENT}] (run_passes writes it and gives "
              f"{WITH_PARENT}: the pass ends when the sweep's process does; see runners/passes.py)")  # fmt: skip
        return 2
    if args[1:] == [WITH_PARENT]:
        exit_with_ancestor(1)  # a sweep killed (even by SIGKILL) takes its running pass with it
    from runners.one_process import check_before_measuring, run_one_process  # imports torch: after the usage check

    cfg = OmegaConf.load(args[0])
    check_before_measuring(cfg)
    run_one_process(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
