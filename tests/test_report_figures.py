"""What the figures show, read off the drawn matplotlib objects (the fixture's rows and a model table
of 11 series): every series tellable from every other, no value label over another, plain tick
numbers on log axes, small sizes off the axis, and the CPU mark on CPU rows."""

import itertools
from pathlib import Path

import matplotlib.style
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reports import figures, render
from reports.results import load_gpu_results, provenance
from reports.sweeps import find_sweeps, sweep_timer

FIXTURE = Path(__file__).parent / "fixtures" / "report" / "fixture-h200"
MODEL_IMPLS = ["seeded", "eager", "compile", "native", "eager:autocast", "eager:ckpt", "native:autocast",
               "native:ckpt", "seeded:autocast", "seeded:ckpt", "seeded:compile"]


@pytest.fixture(scope="module")
def fp16():
    frame = load_gpu_results(FIXTURE)
    return frame[frame.dtype == "fp16"]


def drawn(build, *args, banner=""):
    with matplotlib.style.context(["default", figures.STYLE]):
        figure = figures.draw(build, *args, banner=banner)
        FigureCanvasAgg(figure).draw()  # lays the figure out: tick labels and text extents are final
    return figure


def sweep_args(frame, timer_arg=True):
    micro = frame[frame.workload == "micro"]
    sweep = find_sweeps(micro)[0]
    rows = sweep.rows(micro)
    footer = provenance(frame).footer()
    return (rows, sweep, "fp16", sweep_timer(rows), footer) if timer_arg else (rows, sweep, "fp16", footer)


def model_rows(fp16) -> pd.DataFrame:
    """The fixture's model rows stretched to the 11 series of a real model run, values close to each
    other (as the H200's are), the autocast ones skipped."""
    template = fp16[fp16.workload == "model"].iloc[0]
    rows = []
    for model, impl in itertools.product(("awd_lstm", "transformer"), MODEL_IMPLS):
        status = "skipped" if impl.endswith("autocast") else "ok"
        step = 32.9 + 0.1 * len(rows) % 0.5
        rows.append(template.copy().set_axis(template.index).to_dict() | {
            "shape": model, "impl": impl, "status": status, "p50_ms": step, "p20_ms": step - 0.1,
            "p80_ms": step + 0.1, "peak_mem_delta_bytes": 2.46 * 2**30})
    return pd.DataFrame(rows)


def test_the_model_figure_gives_each_series_its_own_colour_and_hatch_and_no_label_overlaps(fp16):
    figure = drawn(figures.model_figure, model_rows(fp16), "bf16", "footer")
    styles = {impl: (figures.impl_color(impl), figures.impl_hatch(impl)) for impl in MODEL_IMPLS}
    assert len(set(styles.values())) == len(MODEL_IMPLS)
    assert len({color for color, _ in styles.values()}) == len(MODEL_IMPLS)
    renderer = figure.canvas.get_renderer()
    for ax in figure.axes:
        labels = [text for text in ax.texts if text.get_text()]
        assert len(labels) >= len(MODEL_IMPLS) * 2
        boxes = [text.get_window_extent(renderer) for text in labels]
        for (i, a), (j, b) in itertools.combinations(enumerate(boxes), 2):
            assert not a.overlaps(b), (labels[i].get_text(), labels[j].get_text())


def test_the_model_figure_tells_apart_steps_a_tenth_of_a_millisecond_apart(fp16):
    rows = model_rows(fp16)
    for impl, step in (("compile", 9.96), ("seeded:compile", 10.04)):
        rows.loc[rows.impl == impl, ["p20_ms", "p50_ms", "p80_ms"]] = (step - 0.05, step, step + 0.05)
    figure = drawn(figures.model_figure, rows, "bf16", "footer")
    labels = {text.get_text() for text in figure.axes[0].texts}
    assert {"9.96", "10.04", "2.46"} <= labels | {text.get_text() for text in figure.axes[1].texts}


@pytest.mark.parametrize("kind", ["throughput", "timer", "host"])
def test_log_axes_read_plain_numbers_and_every_line_has_its_own_look(fp16, kind):
    build = getattr(figures, f"{kind}_figure")
    figure = drawn(build, *sweep_args(fp16, timer_arg=kind == "throughput"))
    ax = figure.axes[0]
    assert ax.get_yscale() == "log"  # the small sizes are not flattened onto zero
    labels = [label.get_text() for label in ax.get_yticklabels(minor=False) + ax.get_yticklabels(minor=True)]
    shown = [label for label in labels if label]
    assert shown and all(label.replace(".", "").isdigit() for label in shown), shown
    looks = {}
    for line in ax.get_lines():
        if line.get_label().startswith("_"):
            continue
        looks[line.get_label()] = (line.get_color(), line.get_marker(), str(line.get_linestyle()), line.get_linewidth())
    if kind != "timer":  # the timer figure's legend is built apart from its lines
        assert len(set(looks.values())) == len(looks) >= 5, looks


def test_a_log_axis_under_a_decade_and_a_half_labels_its_upper_half_too():
    def labels(low, high):
        with matplotlib.style.context(["default", figures.STYLE]):
            figure = Figure()
            ax = figure.add_subplot()
            ax.set_yscale("log")
            figures.plain_log_axis(ax.yaxis)
            ax.set_ylim(low, high)
            FigureCanvasAgg(figure).draw()
        ticks = ax.get_yticklabels(minor=False) + ax.get_yticklabels(minor=True)
        shown = (float(t.get_text()) for t in ticks if t.get_text())
        return sorted(value for value in shown if low <= value <= high)

    assert labels(600, 4500) == [1000, 2000, 3000, 4000]
    assert labels(1, 1000) == [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]  # wide axes keep 1, 2, 5 only


@pytest.mark.parametrize(("wide", "narrow"), [("eager", "native"), ("seeded", "compile")])
def test_a_line_that_often_lies_on_another_is_narrower_and_drawn_on_top_of_it(wide, narrow):
    below, above = figures.impl_line(wide), figures.impl_line(narrow)
    assert below["linewidth"] > above["linewidth"] and below["markersize"] > above["markersize"]
    assert below["zorder"] < above["zorder"]
    assert (below["marker"], below["linestyle"]) != (above["marker"], above["linestyle"])


def test_cpu_rows_get_the_cpu_banner_and_gpu_rows_do_not(fp16, tmp_path):
    assert render.figure_banner(tmp_path / "cpu-smoke", fp16) == figures.CPU_BANNER
    assert render.figure_banner(tmp_path / "nvidia-h200", fp16.assign(timer="cpu")) == figures.CPU_BANNER
    assert render.figure_banner(tmp_path / "nvidia-h200", fp16) == ""
    figure = drawn(figures.throughput_figure, *sweep_args(fp16), banner=figures.CPU_BANNER)
    assert figure.get_suptitle().startswith("CPU smoke — not GPU figures\n")


def test_size_ticks_never_crowd_two_labels_together():
    assert figures.size_ticks([768, 1024, 2048, 4096, 8192]) == [768, 2048, 4096, 8192]
    powers = [2**k for k in range(14)]
    assert figures.size_ticks(powers) == powers[::2]  # evenly spread sizes keep every other one
    assert figures.size_ticks([32]) == [32]


@pytest.mark.parametrize("kind", ["throughput", "host"])
def test_a_sweep_of_one_size_still_shows_the_lines_without_markers(fp16, kind):
    # A line through one point draws nothing: copy's roofline (and the product's GPU time in the host
    # figure) must still show, as a dash at that size.
    rows, sweep, dtype, timer, footer = sweep_args(fp16)
    one = rows[rows.x == rows.x.min()]
    args = (one, sweep, dtype, timer, footer) if kind == "throughput" else (one, sweep, dtype, footer)
    figure = drawn(getattr(figures, f"{kind}_figure"), *args)
    markerless = [line.get_label() for ax in figure.axes[:3] for line in ax.get_lines()
                  if not line.get_label().startswith("_") and line.get_marker() in (None, "None", "", " ")]
    assert markerless == []
    labels = {line.get_label() for line in figure.axes[0].get_lines()}
    assert ("copy (roofline)" if kind == "throughput" else "copy") in labels
