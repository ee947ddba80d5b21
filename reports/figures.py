"""Figures: each `*_figure` function draws one figure from result rows and returns it.

`png_bytes` renders one under a fixed style (matplotlib's defaults, DejaVu Sans, which ships
with matplotlib, fixed sizes and dpi) with Agg and without the PNG "Software" entry, so the same
rows give the same bytes. Rows that are not `ok` leave a gap in their line and are marked with an
x and their status at the bottom of the panel.
"""

from __future__ import annotations

import io
import math

import matplotlib.colors
import matplotlib.style
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

from reports.sweeps import MODES, ROOFLINE_IMPL, Sweep, format_size, is_ok, ordered_impls, speedups

DPI = 100
STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.xmargin": 0.07,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
COLORS = {
    "seeded": "#d62728", "eager": "#1f77b4", "compile": "#2ca02c", "native": "#9467bd",
    "per_element_rng": "#ff7f0e", "copy": "#000000", "fused": "#e377c2", "seeded+liger": "#8c564b",
    "liger:no_dropout": "#17becf",
}
OTHER_COLORS = ("#7f7f7f", "#bcbd22", "#aec7e8", "#ffbb78")  # none of COLORS
# Lines that may lie on top of each other (eager and native often do) stay visible: each impl has its
# own marker and line style, and seeded is drawn last, on top.
MARKERS = {
    "seeded": "o", "seeded:compile": "p", "eager": "s", "compile": "^", "native": "D", "per_element_rng": "v",
    "copy": None, "fused": "*", "seeded+liger": "X", "liger:no_dropout": "P",
}
OTHER_MARKERS = ("P", "X", "*", "h", "<")
LINESTYLES = {
    "seeded:compile": (0, (5, 1.5)), "eager": "-", "compile": "-", "native": (0, (4, 2)),
    "per_element_rng": (0, (1, 1.5)), "seeded+liger": (0, (3, 1, 1, 1)), "liger:no_dropout": (0, (6, 2)),
}
# eager's and seeded's lines and markers are wider than the rest and drawn below them: where a narrower
# line lies on one of them (native on eager, compile on seeded), the wider shows as a border around it.
LINE_WIDTHS = {"seeded": 2.2, "eager": 3.2}
MARKER_SIZES = {"seeded": 4.0, "eager": 6.0}
# Model-step variants of an impl ("seeded:ckpt"): the impl's colour, lightened or darkened, and a hatch.
VARIANTS = {"": (0.0, ""), "autocast": (0.45, "///"), "ckpt": (0.7, "..."), "compile": (-0.45, "xxx")}
CPU_BANNER = "CPU smoke — not GPU figures"
FOOTER_STYLE = {"fontsize": 8, "color": "0.35"}
TIMER_LINESTYLES = {"event": "-", "cuda_graph": "--"}
BYTE_UNITS = (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10), ("B", 1))


def draw(build, *args, banner: str = "") -> Figure:
    """`build(*args)` under the fixed style (call inside it); `banner`: a red line above the title
    (CPU_BANNER on figures of CPU rows)."""
    figure = build(*args)
    if banner:
        figure.suptitle(f"{banner}\n{figure.get_suptitle()}", fontweight="bold", color="#b00000")
    return figure


def png_bytes(build, *args, banner: str = "") -> bytes:
    """The PNG of `draw(build, *args, banner=banner)`, drawn under the fixed style."""
    with matplotlib.style.context(["default", STYLE]):
        figure = draw(build, *args, banner=banner)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None}, bbox_inches="tight",
                       pad_inches=0.08)
    return buffer.getvalue()


def impl_color(impl: str) -> str:
    if impl in COLORS:
        return COLORS[impl]
    base, _, variant = impl.partition(":")
    if variant in VARIANTS and base in COLORS:
        amount = VARIANTS[variant][0]
        rgb = np.array(matplotlib.colors.to_rgb(COLORS[base]))
        mixed = rgb + (1 - rgb) * amount if amount >= 0 else rgb * (1 + amount)
        return matplotlib.colors.to_hex(mixed)
    return OTHER_COLORS[sum(map(ord, impl)) % len(OTHER_COLORS)]


def impl_hatch(impl: str) -> str:
    return VARIANTS.get(impl.partition(":")[2], (0.0, ""))[1]


def impl_marker(impl: str) -> str:
    if impl in MARKERS:
        return MARKERS[impl]
    return OTHER_MARKERS[sum(map(ord, impl)) % len(OTHER_MARKERS)]


def impl_line(impl: str, width: float = 1.4) -> dict:
    """Keyword arguments of `plot` for one impl's line: colour, marker and line style of its own."""
    return {"color": impl_color(impl), "marker": impl_marker(impl), "markersize": MARKER_SIZES.get(impl, 3.5),
            "linestyle": LINESTYLES.get(impl, "-"), "linewidth": LINE_WIDTHS.get(impl, width),
            "zorder": 3 - LINE_WIDTHS.get(impl, width) / 4}  # the wider, the lower


def seen_alone(style: dict, x) -> dict:
    """`style` for a line over `x`; where `x` holds a single size a line draws nothing, so a line without
    a marker of its own gets a dash there (a one-size sweep still shows copy's roofline)."""
    if pd.Series(x).nunique() < 2 and not style.get("marker"):
        return {**style, "marker": "_", "markersize": 16, "markeredgewidth": 2.0}
    return style


def plain_log_axis(axis) -> None:
    """A log10 axis with plain numbers at 1, 2 and 5 times each power of ten ("20", never "2x10^1");
    on an axis spanning less than a decade and a half, at 3 and 4 times too, so that its upper half
    is not left unlabelled (a view of 600-4500 reads 1000, 2000, 3000, 4000, not 1000 and 2000)."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_locator(LogLocator(base=10, subs=(3.0, 4.0, 6.0, 7.0, 8.0, 9.0)))

    def minor_label(value, _):
        low, high = sorted(axis.get_view_interval())
        leading = round(value / 10 ** math.floor(math.log10(value)), 6) if value > 0 else 0
        return f"{value:g}" if low > 0 and high / low < 10**1.5 and leading in (3, 4) else ""

    axis.set_minor_formatter(FuncFormatter(minor_label))


def panels(count: int, title: str, footer: str, sharey: bool, width: float = 3.4, height: float = 3.6,
           legend_width: float = 2.4):
    """A row of `count` panels under a title, the provenance footer below, room for a legend right."""
    figure = Figure(figsize=(width * count + legend_width, height), layout="constrained")
    axes = figure.subplots(1, count, sharey=sharey, squeeze=False)[0]
    figure.suptitle(title, fontweight="bold")
    figure.supxlabel(footer, **FOOTER_STYLE)  # placed by the layout, below everything else
    return figure, list(axes)


def legend(figure: Figure, handles: list, marked_not_ok: bool) -> None:
    if marked_not_ok:
        handles = handles + [Line2D([], [], color="0.3", marker="x", linestyle="none",
                                    label="not ok (status above the x)")]
    # right of the panels, centred: above or below them the layout engine stacks it into the footer or
    # the title, and at the top a long title runs into it
    figure.legend(handles=handles, loc="outside right center", frameon=False)


def mark_not_ok(ax, rows: pd.DataFrame, color: str) -> bool:
    """An x and the status at the bottom of the panel for each row that is not ok."""
    failed = rows[~is_ok(rows)]
    for x, status in zip(failed.x, failed.status, strict=True):
        ax.plot([x], [0.03], transform=ax.get_xaxis_transform(), color=color, marker="x",
                markersize=7, markeredgewidth=1.6, linestyle="none", clip_on=False)
        ax.annotate(status or "?", (x, 0.03), xycoords=ax.get_xaxis_transform(), xytext=(0, 6),
                    textcoords="offset points", ha="center", va="bottom", rotation=90, fontsize=7,
                    color=color)
    return not failed.empty


def size_ticks(sizes) -> list:
    """At most about 8 of the swept sizes, no two closer than a seventh of the axis (in octaves), so
    that no two labels run together (768 and 1024 on an axis up to 8192 would)."""
    sizes = sorted(sizes)
    span = math.log2(sizes[-1] / sizes[0])
    ticks: list = []
    for size in sizes[:: math.ceil(len(sizes) / 8)]:
        if not ticks or math.log2(size / ticks[-1]) >= span / 7:
            ticks.append(size)
    return ticks


def size_axis(ax, sizes, sweep: Sweep) -> None:
    """Log2 x axis labelled with (some of) the swept sizes themselves (`size_ticks`)."""
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(size_ticks(sizes)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: format_size(value)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(sweep.x_label)


def modes_of(rows: pd.DataFrame) -> list[str]:
    return [mode for mode in MODES if mode in set(rows["mode"])]


def host_bound(rows: pd.DataFrame) -> pd.Series:
    """Rows whose back-to-back calls the host paces (`bound` column; absent in older CSVs: none)."""
    if "bound" not in rows:
        return pd.Series(False, index=rows.index)
    return rows["bound"].fillna("").astype(str).eq("host")


def mark_host_bound(ax, x, gbps, bound: pd.Series, color: str, marker: str | None = "o", size: float = 7) -> bool:
    """Hollow markers (the line's own shape) over the host-bound points of a line; True when there were any."""
    if not bound.any():
        return False
    ax.plot(x[bound], gbps[bound], color=color, marker=marker or "o", markersize=size, markerfacecolor="white",
            markeredgewidth=1.4, linestyle="none", zorder=3)
    return True


HOST_BOUND_HANDLE = Line2D([], [], color="0.3", marker="o", markersize=7, markerfacecolor="white",
                           linestyle="none", label="hollow: host-bound (issuing the call takes\n"
                                                   "the host longer than the GPU runs it)")


def throughput_figure(rows: pd.DataFrame, sweep: Sweep, dtype: str, timer: str, footer: str) -> Figure:
    """GB/s per mode: a line per impl with its p20-p80 band, copy as the roofline; host-bound points
    hollow (their GB/s is the GPU's, not what back-to-back calls would reach)."""
    modes = modes_of(rows)
    figure, axes = panels(len(modes), f"{dtype} throughput: {sweep.title} (timer {timer})", footer,
                          sharey=True)
    impls = ordered_impls(set(rows.impl) - {ROOFLINE_IMPL})
    marked = hollow = False
    for ax, mode in zip(axes, modes, strict=True):
        timed = rows[(rows["mode"] == mode) & (rows.timer == timer)]
        roofline = timed[timed.impl == ROOFLINE_IMPL]
        roofline_label = "copy (roofline)"
        if roofline.empty:  # a roofline measured in fwd only still bounds the other modes
            roofline = rows[(rows["mode"] == "fwd") & (rows.timer == timer) & (rows.impl == ROOFLINE_IMPL)]
            roofline_label = "copy, fwd (roofline)"
        ax.plot(roofline.x, roofline.gbps.where(is_ok(roofline)), label=roofline_label,
                **seen_alone({"color": COLORS["copy"], "linestyle": "--", "linewidth": 1.2}, roofline.x))
        hollow |= mark_host_bound(ax, roofline.x, roofline.gbps, host_bound(roofline) & is_ok(roofline),
                                  COLORS["copy"])
        marked |= mark_not_ok(ax, roofline, COLORS["copy"])
        for impl in impls:
            line = timed[timed.impl == impl]
            gbps = line.gbps.where(is_ok(line))
            color = impl_color(impl)
            # GB/s scales as 1/time: the p80 time is the band's low edge, the p20 time its high edge
            ax.fill_between(line.x, gbps * line.p50_ms / line.p80_ms, gbps * line.p50_ms / line.p20_ms,
                            color=color, alpha=0.18, linewidth=0)
            ax.plot(line.x, gbps, **impl_line(impl), label=impl)
            hollow |= mark_host_bound(ax, line.x, gbps, host_bound(line) & is_ok(line), color, impl_marker(impl),
                                      MARKER_SIZES.get(impl, 3.5) + 3.5)
            marked |= mark_not_ok(ax, line, color)
        size_axis(ax, rows.x.unique(), sweep)
        ax.set_title(mode)
        # log: GB/s spans two orders of magnitude, and the small sizes must not sit on the axis
        ax.set_yscale("log")
        plain_log_axis(ax.yaxis)
    axes[0].set_ylabel("GB/s (bytes read + written, log scale)\np50, band p20-p80")
    handles = axes[0].get_legend_handles_labels()[0]
    legend(figure, handles + [HOST_BOUND_HANDLE] if hollow else handles, marked)
    return figure


def speedup_figure(rows: pd.DataFrame, sweep: Sweep, dtype: str, timer: str, footer: str) -> Figure:
    """Per mode: baseline p50 / the product's p50 against size, one line per baseline; 1.0 drawn."""
    modes = modes_of(rows)
    product = sweep.product
    figure, axes = panels(len(modes), f"{dtype} speedup of {product}: {sweep.title} (timer {timer})", footer,
                          sharey=True)
    baselines = [impl for impl in ordered_impls(set(rows.impl)) if impl not in (product, ROOFLINE_IMPL)]
    marked = False
    finite = []
    for ax, mode in zip(axes, modes, strict=True):
        ax.axhline(1.0, color="black", linewidth=1.0, label=f"1.0: as fast as {product}")
        timed = rows[(rows["mode"] == mode) & (rows.timer == timer)]
        marked |= mark_not_ok(ax, timed[timed.impl == product], impl_color(product))
        for baseline in baselines:
            speedup = speedups(rows, baseline, mode, timer)
            finite += [value for value in speedup.speedup if math.isfinite(value)]
            ax.plot(speedup.x, speedup.speedup, **impl_line(baseline), label=f"vs {baseline}")
            marked |= mark_not_ok(ax, timed[timed.impl == baseline], impl_color(baseline))
        size_axis(ax, rows.x.unique(), sweep)
        ax.set_title(mode)
        ax.set_yscale("log", base=2)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}x"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
    if finite:
        axes[0].set_ylim(min(0.5, min(finite) / 1.2), max(2.0, max(finite) * 1.2))
    axes[0].set_ylabel(f"baseline time / {product} time, p50\n(above 1: {product} is faster)")
    legend(figure, axes[0].get_legend_handles_labels()[0], marked)
    return figure


def no_data(ax, what: str) -> None:
    ax.set_title(what)
    ax.text(0.5, 0.5, "not measured in these rows", transform=ax.transAxes, ha="center", va="center",
            color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def byte_unit(largest: float) -> tuple[str, int]:
    return next(((name, size) for name, size in BYTE_UNITS if largest >= size), BYTE_UNITS[-1])


def first_mode_with(rows: pd.DataFrame, column: str, preference: tuple[str, ...]) -> str | None:
    return next((mode for mode in preference
                 if rows[(rows["mode"] == mode)][column].map(math.isfinite).any()), None)


def bars(ax, values: list[float], statuses: list[str], colors: list[str], unit: tuple[str, int]) -> None:
    """Bars of `values / unit`, each labelled with its value, or with its status where not ok (and
    an x)."""
    positions = np.arange(len(values))
    heights = [value / unit[1] if status == "ok" else math.nan
               for value, status in zip(values, statuses, strict=True)]
    ax.bar(positions, np.nan_to_num(heights), width=0.8, color=colors)
    for position, height, status in zip(positions, heights, statuses, strict=True):
        if status != "ok":
            ax.plot([position], [0], color="0.3", marker="x", markersize=7, linestyle="none", clip_on=False)
            text, top, lift = status, 0.0, 6
        elif not math.isfinite(height):
            text, top, lift = "n/a", 0.0, 2
        else:
            text, top, lift = f"{height:.3g}", height, 2
        ax.annotate(text, (position, top), xytext=(0, lift), textcoords="offset points", ha="center",
                    va="bottom", fontsize=8)


def memory_figure(rows: pd.DataFrame, sweep: Sweep, dtype: str, timer: str, footer: str) -> Figure:
    """At the largest swept size: bytes saved for backward and peak memory, one bar per impl."""
    largest = int(rows.x.max())
    at_largest = rows[(rows.x == largest) & (rows.timer == timer) & (rows.impl != ROOFLINE_IMPL)]
    figure, axes = panels(2, f"{dtype} memory at {sweep.symbol} = {format_size(largest)}: {sweep.title}", footer,
                          sharey=False, width=4.6, legend_width=0.4)
    for ax, column, what, preference in (
        (axes[0], "saved_for_backward_bytes", "saved for backward", ("fwd", "fwd_bwd", "bwd")),
        (axes[1], "peak_mem_delta_bytes", "peak memory delta", ("fwd_bwd", "fwd", "bwd")),
    ):
        mode = first_mode_with(at_largest, column, preference)
        if mode is None:
            no_data(ax, what)
            continue
        of_mode = at_largest[at_largest["mode"] == mode]
        impls = ordered_impls(set(of_mode.impl))
        by_impl = {impl: of_mode[of_mode.impl == impl].iloc[0] for impl in impls}
        values = [float(by_impl[impl][column]) for impl in impls]
        unit = byte_unit(max([value for value in values if math.isfinite(value)] + [1.0]))
        bars(ax, values, [by_impl[impl].status for impl in impls], [impl_color(impl) for impl in impls], unit)
        ax.set_xticks(range(len(impls)), impls, rotation=20, ha="right")
        ax.grid(axis="x", visible=False)
        ax.set_title(f"{what} ({mode})")
        ax.set_ylabel(unit[0])
    return figure


def timer_figure(rows: pd.DataFrame, sweep: Sweep, dtype: str, footer: str) -> Figure:
    """The smaller half of the sweep, per mode: GPU time of an eager call (event) vs a graph replay."""
    sizes = sorted(rows.x.unique())
    small = sizes[: max(3, (len(sizes) + 1) // 2)]
    shown = rows[rows.x.isin(small)]
    modes = modes_of(shown)
    figure, axes = panels(len(modes), f"{dtype} timers: {sweep.title}, {sweep.symbol} <= {format_size(small[-1])}",
                          footer, sharey=True)
    impls = ordered_impls(set(shown.impl))
    marked = False
    for ax, mode in zip(axes, modes, strict=True):
        for impl in impls:
            for timer, linestyle in TIMER_LINESTYLES.items():
                line = shown[(shown.impl == impl) & (shown["mode"] == mode) & (shown.timer == timer)]
                ax.plot(line.x, line.p50_ms.where(is_ok(line)) * 1e3, color=impl_color(impl),
                        marker=impl_marker(impl) or "o", markersize=MARKER_SIZES.get(impl, 3.5),
                        linewidth=LINE_WIDTHS.get(impl, 1.3), linestyle=linestyle,
                        zorder=3 - LINE_WIDTHS.get(impl, 1.3) / 4)
                marked |= mark_not_ok(ax, line, impl_color(impl))
        size_axis(ax, small, sweep)
        ax.set_title(mode)
        # log: times span two orders of magnitude over the sizes shown
        ax.set_yscale("log")
        plain_log_axis(ax.yaxis)
    axes[0].set_ylabel("µs per call, p50 (log scale)")
    handles = [Line2D([], [], color=impl_color(impl), marker=impl_marker(impl) or "o", linewidth=3, label=impl)
               for impl in impls] + [
        Line2D([], [], color="0.5", linestyle="-", label="solid: event timer (GPU time, eager call)"),
        Line2D([], [], color="0.5", linestyle="--", label="dashed: cuda_graph timer (GPU time, graph replay)"),
    ]
    legend(figure, handles, marked)
    return figure


def host_figure(rows: pd.DataFrame, sweep: Sweep, dtype: str, footer: str) -> Figure:
    """Per mode: the host's time to issue one call (event rows' `host_us`) against size, one line per
    impl, with the GPU time of the product's call dotted: where a line runs above the dotted one,
    back-to-back calls of that impl are paced by the host."""
    event = rows[(rows.timer == "event") & is_ok(rows)]
    modes = modes_of(event)
    figure, axes = panels(len(modes), f"{dtype} host overhead: {sweep.title}", footer, sharey=True)
    impls = ordered_impls(set(event.impl))
    for ax, mode in zip(axes, modes, strict=True):
        of_mode = event[event["mode"] == mode]
        for impl in impls:
            line = of_mode[of_mode.impl == impl]
            ax.plot(line.x, line.host_us, **seen_alone(impl_line(impl), line.x), label=impl)
        product = of_mode[of_mode.impl == sweep.product]
        ax.plot(product.x, product.p50_ms * 1e3, label=f"{sweep.product}'s GPU time (event)",
                **seen_alone({"color": impl_color(sweep.product), "linestyle": ":", "linewidth": 1.4}, product.x))
        size_axis(ax, sorted(event.x.unique()), sweep)
        ax.set_title(mode)
        ax.set_yscale("log")
        plain_log_axis(ax.yaxis)
    axes[0].set_ylabel("µs per call (log scale)\nhost: median time to issue one call")
    legend(figure, axes[0].get_legend_handles_labels()[0], False)
    return figure


def model_impl_order(impl: str) -> tuple:
    """The model figure's order: the plain steps, then compiled (`compile` is the eager code compiled),
    checkpointed and autocast ones, seeded first in each; unknown names last, alphabetically."""
    base, _, variant = ("eager:compile" if impl == "compile" else impl).partition(":")
    variants = ("", "compile", "ckpt", "autocast")
    bases = ("seeded", "fused", "eager", "native")
    return (variants.index(variant) if variant in variants else len(variants),
            bases.index(base) if base in bases else len(bases), impl)


def model_figure(rows: pd.DataFrame, dtype: str, footer: str) -> Figure:
    """Training step time and peak memory per model config, one horizontal bar per dropout impl (its
    own colour and hatch), each labelled at its end with its value, or with its status where not ok."""
    models = sorted(set(rows["shape"]))
    impls = sorted(set(rows.impl), key=model_impl_order)
    measured_memory = bool(rows.peak_mem_delta_bytes.notna().any())
    memory_unit = byte_unit(rows.peak_mem_delta_bytes.max() if measured_memory else 1.0)
    gap = 1.0  # between the models' blocks of bars
    positions = {(model, impl): index * (len(impls) + gap) + rank
                 for index, model in enumerate(models) for rank, impl in enumerate(impls)}
    figure, axes = panels(2, f"{dtype} model training step", footer, sharey=False, width=5.2,
                          height=1.4 + 0.2 * len(positions), legend_width=0.2)
    panels_drawn = [(axes[0], "p50_ms", "step time, p50 (error bars p20-p80)", ("ms", 1))]
    if measured_memory:
        panels_drawn.append((axes[1], "peak_mem_delta_bytes", "peak memory delta", memory_unit))
    else:
        no_data(axes[1], "peak memory delta")
    for ax, column, title, unit in panels_drawn:
        largest = 0.0
        for (model, impl), y in positions.items():
            found = rows[(rows["shape"] == model) & (rows.impl == impl)]
            row = found.iloc[-1] if not found.empty else None
            status = row.status if row is not None else "missing"
            value = float(row[column]) / unit[1] if row is not None and status == "ok" else math.nan
            if not math.isfinite(value):
                ax.plot([0], [y], color="0.3", marker="x", markersize=6, linestyle="none", clip_on=False)
                ax.annotate(status if status != "ok" else "n/a", (0, y), xytext=(6, 0), textcoords="offset points",
                            va="center", fontsize=8, color="0.3")
                continue
            error = None
            if column == "p50_ms":
                error = [[row.p50_ms - row.p20_ms], [row.p80_ms - row.p50_ms]]
            ax.barh(y, value, height=0.8, color=impl_color(impl), hatch=impl_hatch(impl), edgecolor="white",
                    linewidth=0, xerr=error, capsize=2, error_kw={"linewidth": 0.8})
            end = value + (error[1][0] if error else 0.0)
            largest = max(largest, end)
            # Two decimals, as the model table gives them: compiled steps of about 10 ms lie 0.1-1% apart,
            # which three significant digits would print alike ("10").
            ax.annotate(f"{value:.2f}", (end, y), xytext=(3, 0), textcoords="offset points", va="center",
                        fontsize=8)
        ax.set_xlim(0, largest * 1.15 if largest > 0 else 1)
        ax.set_yticks(list(positions.values()), [impl for _, impl in positions])
        ax.set_ylim(max(positions.values()) + 0.6, -gap - 0.4)  # top to bottom, room for the first model's name
        ax.grid(axis="y", visible=False)
        ax.set_title(title)
        ax.set_xlabel(unit[0])
        for model in models:  # the model's name beside its block of bars
            ax.annotate(model, (0.5, positions[(model, impls[0])] - 0.55), xycoords=("axes fraction", "data"),
                        ha="center", va="bottom", fontsize=9, fontweight="bold", annotation_clip=False)
    return figure
