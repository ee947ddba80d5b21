"""`make report`: result CSVs to figures, a markdown summary per GPU, and the README's results.

    python -m reports.render [PATH ...] [--readme README.md | --no-readme] [--allow-drop GPU ...]

Each PATH is a GPU folder (`results/<gpu>/` holding `<dtype>.csv`) or a folder of them (default
`results`), which stands for its GPU folders except cpu-smoke and ci (rendered only when named
themselves). The `results/` beside the README is always a folder of GPU folders: a `<dtype>.csv`
directly in it is stray, reported and never rendered. Each GPU folder rendered gets
`<gpu>/figures/*.png` (PNGs there that no longer come from the CSVs are removed) and
`<gpu>/summary.md`.

The README's results region (between its markers) shows published results only, and always all of
them: whichever PATHs are named, it is rebuilt from every published GPU folder of the `results/`
folder beside the README, and those folders are rendered too, so that its links and numbers agree.
Published: `results/<gpu-slug>/`, other than cpu-smoke and ci, whose rows all come from the GPU it
is named after (the folder `make bench` writes to). Any other folder rendered (cpu-smoke, ci, one
named after another GPU, one elsewhere) gets its own figures and summary.md only, and is reported.

Refused, before any file is written, with exit status 1 and a message on stderr: a CSV the report
cannot use (`reports/results.py`: its file, and for a bad value the CSV line and column); a PATH
with nothing to render (other than the README's `results/`); a README showing a GPU this render
would leave out (its folder gone, without CSVs, or no longer published). Name such a GPU's folder
with --allow-drop to remove its section from the README on purpose.

Text from the CSVs (GPU names, versions, impl names, errors) is escaped where it lands in markdown
(`reports/markdown.py`). A file is written only when its bytes change: a re-run on unchanged CSVs
leaves every file as it was.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from reports import figures, fused_targets, markdown, readme, tables, targets
from reports.markdown import escape
from reports.results import (
    DTYPES,
    NOT_PUBLISHED,
    Provenance,
    ResultsError,
    find_gpu_dirs,
    gpu_subfolders,
    load_gpu_results,
    provenance,
    unpublished_reason,
)
from reports.sweeps import HOST_TIMER, ROOFLINE_IMPL, Sweep, find_sweeps, sweep_timer

REPO_ROOT = Path(__file__).resolve().parent.parent
# The README shows the first sweep in full (its table and these figure kinds) and only the reading
# of the others; summary.md shows everything.
README_FIGURES = ("throughput",)
README_LEVEL = 3  # the heading level of a GPU's section in the README
# a GPU section's heading in the README: `### <GPU name> (`<folder>`)`, as gpu_markdown writes it
GPU_HEADING = re.compile("^" + "#" * README_LEVEL + r" .*\(`([^`]+)`\)$", re.MULTILINE)


class DropRefusedError(RuntimeError):
    """The README shows a GPU that this render would leave out."""


@dataclass(frozen=True)
class FigureFile:
    kind: str  # throughput, speedup, memory, timers, model
    dtype: str
    sweep: str  # the sweep's slug; "" for the model figure
    caption: str
    path: Path


@dataclass
class SweepSummary:
    sweep: Sweep
    timers: set[str] = field(default_factory=set)
    lines: list[tables.SummaryLine] = field(default_factory=list)
    host_lines: list[list[str]] = field(default_factory=list)


@dataclass
class GpuReport:
    gpu_dir: Path
    provenance: Provenance
    sweeps: list[SweepSummary]
    figures: list[FigureFile]
    not_ok: str
    models: str | None
    targets: str  # the performance targets' table; "" without micro-benchmark rows
    fused_targets: str = ""  # the fused family's targets' table; "" without its rows
    method: str = ""  # how the micro-benchmark rows were measured (method_note)
    compiled: tuple[str, str] = ("", "")  # what compiling the whole training step did (tables.compile_table)


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write `data` atomically unless the file already holds exactly it; True if written."""
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
    return True


def sweep_figures(rows: pd.DataFrame, sweep: Sweep, dtype: str, timer: str, footer: str):
    """(kind, caption, build, args) for each figure the rows of one sweep can fill."""
    impls = set(rows.impl)
    yield ("throughput", f"{dtype} throughput, {sweep.title}", figures.throughput_figure,
           (rows, sweep, dtype, timer, footer))
    if sweep.product in impls and impls - {sweep.product, ROOFLINE_IMPL}:
        yield ("speedup", f"{dtype} speedup of {sweep.product}, {sweep.title}", figures.speedup_figure,
               (rows, sweep, dtype, timer, footer))
    if rows[["saved_for_backward_bytes", "peak_mem_delta_bytes"]].notna().to_numpy().any():
        yield ("memory", f"{dtype} memory, {sweep.title}", figures.memory_figure,
               (rows, sweep, dtype, timer, footer))
    if set(figures.TIMER_LINESTYLES) <= set(rows.timer):
        yield ("timers", f"{dtype} event vs CUDA graph timer, {sweep.title}", figures.timer_figure,
               (rows, sweep, dtype, footer))
    if rows[rows.timer == "event"].host_us.notna().any():
        yield ("host", f"{dtype} host overhead, {sweep.title}", figures.host_figure, (rows, sweep, dtype, footer))


def figure_banner(gpu_dir: Path, frame: pd.DataFrame) -> str:
    """CPU_BANNER for rows measured on the CPU (`make bench` without a GPU writes them to cpu-smoke/),
    else ""."""
    return figures.CPU_BANNER if gpu_dir.name == "cpu-smoke" or frame.timer.eq("cpu").any() else ""


def render_gpu(gpu_dir: Path, frame: pd.DataFrame | None = None) -> GpuReport:
    """Draws every figure of one GPU folder, writes the changed ones and its summary.md; `frame`:
    its rows, if already loaded."""
    frame = load_gpu_results(gpu_dir) if frame is None else frame
    figures_dir = gpu_dir / "figures"
    banner = figure_banner(gpu_dir, frame)
    pngs: dict[Path, bytes] = {}
    listed: list[FigureFile] = []
    summaries: dict[str, SweepSummary] = {}
    for dtype in (dtype for dtype in DTYPES if dtype in set(frame.dtype)):
        of_dtype = frame[frame.dtype == dtype]
        micro = of_dtype[of_dtype.workload != "model"]  # every op family of the micro sweep
        for sweep in find_sweeps(micro):
            rows = sweep.rows(micro)
            timer = sweep_timer(rows) or sorted(set(rows.timer))[0]
            host_rows = micro[(micro.timer == HOST_TIMER) & (micro.dim == sweep.dim) & (micro.p == sweep.p)
                              & (micro.workload == sweep.workload)]
            summary = summaries.setdefault(sweep.slug, SweepSummary(sweep))
            summary.timers.add(timer)
            summary.lines += tables.summarize(rows, host_rows, dtype, timer)
            if "host_us" in rows and rows.host_us.notna().any():
                summary.host_lines += tables.host_table(rows, host_rows, dtype)
            footer = provenance(pd.concat([rows, host_rows])).footer()  # where the figures' own rows come from
            for kind, caption, build, args in sweep_figures(rows, sweep, dtype, timer, footer):
                path = figures_dir / f"{dtype}_{kind}_{sweep.slug}.png"
                pngs[path] = figures.png_bytes(build, *args, banner=banner)
                listed.append(FigureFile(kind, dtype, sweep.slug, caption, path))
        model = of_dtype[of_dtype.workload == "model"]
        if not model.empty:
            path = figures_dir / f"{dtype}_model.png"
            pngs[path] = figures.png_bytes(figures.model_figure, model, dtype, provenance(model).footer(),
                                           banner=banner)
            listed.append(FigureFile("model", dtype, "", f"{dtype} model training step", path))

    written = [path for path, data in pngs.items() if write_if_changed(path, data)]
    stale = sorted(set(figures_dir.glob("*.png")) - set(pngs)) if figures_dir.is_dir() else []
    for path in stale:
        path.unlink()
    model_rows = frame[frame.workload == "model"]
    report = GpuReport(
        gpu_dir=gpu_dir, provenance=provenance(frame), sweeps=list(summaries.values()), figures=listed,
        not_ok=tables.not_ok_summary(frame),
        models=tables.model_table(model_rows) if len(model_rows) else None,
        compiled=tables.compile_table(model_rows) if len(model_rows) else ("", ""),
        targets=targets.targets_table(frame),
        fused_targets=fused_targets.fused_targets_table(frame),
        method=method_note(frame),
    )
    summary_path = gpu_dir / "summary.md"
    summary = gpu_markdown(report, summary_path.parent, level=1, readme_view=False)
    if write_if_changed(summary_path, summary.encode("utf-8")):
        written.append(summary_path)
    for path in written:
        print(f"wrote {path}")
    for path in stale:
        print(f"removed {path} (no longer drawn from the CSVs)")
    print(f"{gpu_dir}: {len(pngs) + 1} files, {len(written)} changed")
    return report


def method_note(frame: pd.DataFrame) -> str:
    """How the micro-benchmark rows were measured: in rounds with the event timer's head start, or
    (rows without `rounds`, from before it) with an event timer that could include host time."""
    micro = frame[(frame.workload == "micro") & (frame.timer != "cpu")]
    if micro.empty:
        return ""
    earlier = micro[~(pd.to_numeric(micro.rounds, errors="coerce") > 0)]
    if earlier.empty:
        return ("Method: every point measured in rounds, implementations shuffled each round; a row is the median "
                "of its round medians (docs/harness.md). `event` is the GPU time of an eagerly issued call, "
                "`cuda_graph` of a graph replay, `host` the host's time per call of back-to-back calls.")
    return (f"Method: {len(earlier)} of {len(micro)} micro-benchmark rows were measured before rounds and the event "
            "timer's head start (docs/harness.md, the method): their `event` times include host time wherever "
            "issuing a call took the host longer than the L2 flush before it, so read their small sizes as "
            "host-inclusive; `cuda_graph` is GPU time either way.")


def link(path: Path, from_dir: Path) -> str:
    return Path(os.path.relpath(path, from_dir)).as_posix()


def gpu_markdown(report: GpuReport, from_dir: Path, level: int, readme_view: bool) -> str:
    """One GPU's results as markdown, figure links relative to `from_dir`: provenance, per sweep its
    reading and table, the rows not ok, the model table, the figures. The README view keeps the
    tables and figures (README_FIGURES) of each op family's first sweep only and links to summary.md."""
    heading = "#" * level
    summary_link = link(report.gpu_dir / "summary.md", from_dir)
    parts = [f"{heading} {escape(report.provenance.gpu)} (`{report.gpu_dir.name}`)",
             f"Provenance: {escape(report.provenance.footer())}.", report.method]
    first_sweeps = first_sweep_of_each_family(report.sweeps)
    for summary in report.sweeps:
        timers = ", ".join(escape(timer) for timer in sorted(summary.timers))
        parts += [f"{heading}# {escape(summary.sweep.title)}",
                  tables.findings(summary.lines, summary.sweep, timers)]
        if summary.sweep.slug in first_sweeps or not readme_view:
            host_note = ("; host: on one small tensor, the call's host time over copy's call, the two timed in "
                         "alternating bursts in one process (a ratio that does not move with the CPU's clock: "
                         "docs/harness.md), then in brackets the absolute µs per call of back-to-back calls, "
                         "context only (it moves with the CPU); – where the rows predate the ratio"
                         if tables.host_columns(summary.lines, summary.sweep) else "")
            parts += [tables.summary_table(summary.lines, summary.sweep),
                      f"Speedup = baseline p50 time / {summary.sweep.product} p50 time (timer {timers}), over the "
                      f"sweep of {summary.sweep.symbol}{host_note}."]
        if summary.host_lines and not readme_view:
            parts += [f"Host overhead, {escape(summary.sweep.title)}: the host timer on the smallest tensor, the "
                      "host's time to issue one call (event rows, median over the sweep), and the largest size "
                      "at which issuing a call takes the host longer than the GPU runs it (back-to-back calls "
                      "are then paced by the host; such points are hollow in the throughput figure).",
                      markdown.table(tables.HOST_HEADER, summary.host_lines)]
    parts.append(report.not_ok.split("\n")[0] if readme_view else report.not_ok)
    if report.targets:
        parts += [f"{heading}# Performance targets",
                  "Sweep points meeting each performance target, per dtype, with the figure that decides it "
                  "(`python -m reports.targets`): `event` is the GPU time of an eager call, `cuda_graph` of a "
                  "graph replay, `host` the host's time per call. docs/perf-notes.md says why each miss is missed.",
                  report.targets]
    if report.fused_targets:
        parts += [f"{heading}# Fused dropout + add + RMSNorm: targets",
                  "Sweep points of the fused op (`op=dropout_add_norm`, RMSNorm) meeting each of its targets, "
                  "per dtype, forward + backward, event timer (`python -m reports.fused_targets`).",
                  report.fused_targets]
    if report.models:
        parts += [f"{heading}# Model training step", *report.compiled, report.models]
    shown = [figure for figure in report.figures
             if not readme_view or (figure.kind in README_FIGURES and figure.sweep in first_sweeps)]
    if shown:
        parts.append(f"{heading}# Figures")
        parts += [f"![{escape(figure.caption)}]({link(figure.path, from_dir)})" for figure in shown]
    if readme_view:
        parts.append(f"Every table and figure of this GPU: [{summary_link}]({summary_link}).")
    return "\n\n".join(part for part in parts if part) + "\n"


def first_sweep_of_each_family(summaries: list[SweepSummary]) -> set[str]:
    """The slugs of the first sweep of each op family (`workload`), in the report's order."""
    firsts: dict[str, str] = {}
    for summary in summaries:
        firsts.setdefault(summary.sweep.workload, summary.sweep.slug)
    return set(firsts.values())


def readme_section(reports: list[GpuReport], readme_dir: Path) -> str:
    parts = ["## Results",
             "Generated by `make report` from the CSVs in `results/`; edits here are overwritten."]
    if not reports:
        parts.append("No GPU results yet: `make bench` on a GPU writes `results/<gpu>/<dtype>.csv`, "
                     "then `make report` fills this section.")
    parts += [gpu_markdown(report, readme_dir, level=README_LEVEL, readme_view=True).strip() for report in reports]
    return "\n\n".join(parts)


def shown_gpus(readme_text: str, source: str = "README") -> list[str]:
    """The GPU folders whose sections the README's results region shows, read off their headings."""
    return GPU_HEADING.findall(readme.region(readme_text, source))


def readme_exclusion(gpu_dir: Path, frame: pd.DataFrame, results_dir: Path) -> str | None:
    """Why the README leaves `gpu_dir` out; None: it shows it."""
    if gpu_dir.resolve().parent != results_dir.resolve():
        return f"not a folder of {results_dir}"
    return unpublished_reason(gpu_dir, frame)


def check_nothing_dropped(readme_path: Path, shown_next: list[str], left_out: dict[str, str],
                          allow_drop: tuple[str, ...]) -> None:
    """Raises DropRefusedError if the README shows a GPU folder that is not in `shown_next` (the
    folders the new section shows) and not in `allow_drop`; `left_out`: the README's results
    folders it leaves out, by name, and why."""
    dropped = [name for name in shown_gpus(readme_path.read_text(encoding="utf-8"), str(readme_path))
               if name not in shown_next and name not in allow_drop]
    if not dropped:
        return
    results_dir = readme_path.parent / "results"
    whys = [f"{results_dir / name}: {left_out.get(name, 'no <dtype>.csv there')}" for name in dropped]
    raise DropRefusedError(
        f"{readme_path}: not rewritten: this render would drop {', '.join(dropped)}, shown in its results "
        "section now:\n  " + "\n  ".join(whys) + "\nRestore those results, or remove the section on purpose: "
        + " ".join(f"--allow-drop {name}" for name in dropped))


def render(paths: list[Path], readme_path: Path | None, allow_drop: tuple[str, ...] = ()) -> list[GpuReport]:
    """Renders the GPU folders of `paths`; with a README, also every published folder of the
    `results/` beside it, from which the README's results region is rebuilt (module docstring).
    Every CSV is read and checked, and the README's sections compared, before any file is written."""
    results_dir = None if readme_path is None else readme_path.parent / "results"
    readme_candidates = [] if results_dir is None else [
        gpu_dir for gpu_dir in gpu_subfolders(results_dir) if gpu_dir.name not in NOT_PUBLISHED]
    gpu_dirs: dict[Path, Path] = {}  # keyed by the folder itself, however spelled; the first spelling kept
    for gpu_dir in find_gpu_dirs(paths, results_dir) + readme_candidates:
        gpu_dirs.setdefault(gpu_dir.resolve(), gpu_dir)
    frames = {key: load_gpu_results(gpu_dir) for key, gpu_dir in gpu_dirs.items()}

    left_out: dict[Path, str] = {}
    if readme_path is not None:
        for key, gpu_dir in gpu_dirs.items():
            why = readme_exclusion(gpu_dir, frames[key], results_dir)
            if why is not None:
                left_out[key] = why
        in_readme = sorted((key for key in gpu_dirs if key not in left_out), key=lambda key: gpu_dirs[key].name)
        left_out_of_results = {gpu_dirs[key].name: why for key, why in left_out.items()
                               if key.parent == results_dir.resolve()}
        check_nothing_dropped(readme_path, [gpu_dirs[key].name for key in in_readme], left_out_of_results,
                              allow_drop)

    reports = {key: render_gpu(gpu_dir, frames[key]) for key, gpu_dir in gpu_dirs.items()}
    if readme_path is not None:
        for key, why in left_out.items():
            print(f"{gpu_dirs[key]}: rendered, not in the README: {why}", file=sys.stderr)
        section = readme_section([reports[key] for key in in_readme], readme_path.parent)
        text = readme.update_readme(readme_path, section)
        if write_if_changed(readme_path, text.encode("utf-8")):
            print(f"wrote {readme_path}")
    return list(reports.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports.render", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", type=Path, default=[Path("results")],
                        help="GPU result folders, or folders of them (default: results)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--readme", type=Path, default=REPO_ROOT / "README.md",
                        help="the README whose results region is rewritten (default: the repo's)")
    target.add_argument("--no-readme", action="store_true", help="leave the README alone")
    parser.add_argument("--allow-drop", action="append", default=[], metavar="GPU",
                        help="a GPU folder name (e.g. nvidia-h200) whose README section may go; repeatable")
    args = parser.parse_args(argv)
    try:
        render(args.paths, None if args.no_readme else args.readme, tuple(args.allow_drop))
    except (ResultsError, DropRefusedError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
