"""Markdown from result rows: the per-sweep summary table, its two-sentence reading, the model
table and the count of rows that are not ok. Every number is read from the rows given; text from
the CSVs goes through `markdown.escape`."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from reports import markdown
from reports.markdown import escape
from reports.sweeps import (
    MODES,
    ROOFLINE_IMPL,
    Sweep,
    extreme,
    format_size,
    ordered_impls,
    product_of,
    speedups,
)

SPEEDUP_BASELINES = ("eager", "compile")
NEAR_FASTEST = 0.01  # "within 1% of the fastest baseline": the product's p50 <= 1.01 x the fastest baseline's
NOT_OK_LISTED = 20


def host_impls(product: str) -> tuple[str, str]:
    """The implementations whose host time per call the summary shows: the product and eager."""
    return product, "eager"


@dataclass(frozen=True)
class SummaryLine:
    """One (dtype, mode) of one sweep."""

    dtype: str
    mode: str
    largest: int
    pct_of_copy: float  # the product at the largest size
    speedup_range: dict  # baseline -> (worst, best), each (speedup, size) or None
    host_us: dict  # impl -> p50 microseconds per call of the host timer, NaN if absent
    near_fastest: tuple[int, int] = (0, 0)  # (sizes where the product is within NEAR_FASTEST of the fastest
    #                                           baseline or faster, sizes where both were measured ok)
    host_ratio: dict | None = None  # impl -> the host timer's host_ratio (over copy's call), NaN if absent


def near_fastest(rows: pd.DataFrame, mode: str, timer: str) -> tuple[int, int]:
    """(sizes at which the product's p50 is at most (1 + NEAR_FASTEST) x the fastest baseline's,
    sizes where the product and at least one baseline are ok); baselines: every impl but the product
    and copy."""
    timed = rows[(rows["mode"] == mode) & (rows.timer == timer) & (rows.status == "ok")]
    product_impl = product_of(rows)
    product = timed[timed.impl == product_impl].groupby("x").p50_ms.min()
    fastest = timed[~timed.impl.isin([product_impl, ROOFLINE_IMPL])].groupby("x").p50_ms.min()
    sizes = product.index.intersection(fastest.index)
    return int((product[sizes] <= fastest[sizes] * (1 + NEAR_FASTEST)).sum()), len(sizes)


def summarize(rows: pd.DataFrame, host_rows: pd.DataFrame, dtype: str, timer: str) -> list[SummaryLine]:
    """`rows`: one dtype of one sweep (`Sweep.rows`); `host_rows`: the same dtype's host timer rows."""
    lines = []
    product_impl = product_of(rows)
    for mode in (mode for mode in MODES if mode in set(rows["mode"])):
        largest = int(rows.x.max())
        product = rows[(rows.impl == product_impl) & (rows["mode"] == mode) & (rows.timer == timer)
                       & (rows.x == largest) & (rows.status == "ok")]
        speedup_range = {}
        for baseline in SPEEDUP_BASELINES:
            speedup = speedups(rows, baseline, mode, timer)
            speedup_range[baseline] = (extreme(speedup, worst=True), extreme(speedup, worst=False))
        host_us, host_ratio = {}, {}
        for impl in host_impls(product_impl):
            host = host_rows[(host_rows.impl == impl) & (host_rows["mode"] == mode)
                             & (host_rows.status == "ok")].sort_values("shape")
            host_us[impl] = float(host.p50_ms.iloc[0]) * 1e3 if not host.empty else math.nan
            ratio = float(host.host_ratio.iloc[0]) if not host.empty and "host_ratio" in host else math.nan
            host_ratio[impl] = ratio if ratio > 0 else math.nan
        lines.append(SummaryLine(dtype, mode, largest,
                                 float(product.pct_of_copy.iloc[0]) if not product.empty else math.nan,
                                 speedup_range, host_us, near_fastest(rows, mode, timer), host_ratio))
    return lines


def format_number(value: float, fmt: str) -> str:
    return format(value, fmt) if math.isfinite(value) else "–"


def format_speedup(found, symbol: str) -> str:
    return f"{found[0]:.2f}x ({symbol}={format_size(found[1])})" if found else "–"


def host_columns(lines: list[SummaryLine], sweep: Sweep) -> list[str]:
    """The impls whose host figure some line has (a sweep without a host-timed size has none)."""
    return [impl for impl in host_impls(sweep.product)
            if any(math.isfinite(line.host_us.get(impl, math.nan)) for line in lines)]


def host_cell(line: SummaryLine, impl: str) -> str:
    """The host figure that does not move with the CPU's clock, the call's time over copy's
    (`host_ratio`), then the absolute µs per call as context: `0.88x (17.8)`; `– (16.0)` for rows
    from before the ratio was measured."""
    ratio = (line.host_ratio or {}).get(impl, math.nan)
    ratio_text = f"{ratio:.2f}x" if math.isfinite(ratio) else "–"
    return f"{ratio_text} ({format_number(line.host_us[impl], '.1f')})"


def summary_table(lines: list[SummaryLine], sweep: Sweep) -> str:
    symbol = sweep.symbol
    header = ["dtype", "mode", f"{sweep.product} % of copy, largest size"]
    for baseline in SPEEDUP_BASELINES:
        header += [f"vs {baseline}: worst", f"vs {baseline}: best"]
    hosts = host_columns(lines, sweep)
    header += [f"host, x copy's call (µs): {impl}" for impl in hosts]
    rows = []
    for line in lines:
        pct = (f"{line.pct_of_copy:.1f}% ({symbol}={format_size(line.largest)})"
               if math.isfinite(line.pct_of_copy) else "–")
        cells = [line.dtype, line.mode, pct]
        for baseline in SPEEDUP_BASELINES:
            worst, best = line.speedup_range[baseline]
            cells += [format_speedup(worst, symbol), format_speedup(best, symbol)]
        cells += [host_cell(line, impl) for impl in hosts]
        rows.append(cells)
    return markdown.table(header, rows)


def value_range(values: list[float], fmt: str) -> str:
    low, high = format(min(values), fmt), format(max(values), fmt)
    return low if low == high else f"{low}-{high}"


def findings(lines: list[SummaryLine], sweep: Sweep, timer: str) -> str:
    """Two sentences reading the summary of one sweep over all its dtypes and modes; `timer` is
    markdown already."""
    pcts = [line.pct_of_copy for line in lines if math.isfinite(line.pct_of_copy)]
    dtypes = ", ".join(dict.fromkeys(escape(line.dtype) for line in lines))
    modes = ", ".join(dict.fromkeys(escape(line.mode) for line in lines))
    sentences = []
    largest = sorted({line.largest for line in lines})
    where = f"{sweep.symbol} = {format_size(largest[0])}" if len(largest) == 1 else "the largest size of each dtype"
    if pcts:
        sentences.append(f"At {where}, {sweep.product} runs at {value_range(pcts, '.0f')}% of copy bandwidth "
                         f"over {dtypes} and {modes} (timer {timer}).")
    ranges, worst_cases = [], []
    for baseline in SPEEDUP_BASELINES:
        worsts = [(line.speedup_range[baseline][0], line) for line in lines
                  if line.speedup_range[baseline][0]]
        bests = [line.speedup_range[baseline][1][0] for line in lines if line.speedup_range[baseline][1]]
        if worsts:
            ranges.append(f"{value_range([w[0][0] for w in worsts] + bests, '.2f')}x the speed of {baseline}")
            (value, size), line = min(worsts, key=lambda found: found[0][0])
            worst_cases.append((value, f"{value:.2f}x vs {baseline} at {sweep.symbol} = {format_size(size)} "
                                       f"({escape(line.dtype)} {escape(line.mode)})"))
    if ranges:
        worst = min(worst_cases)[1]
        sentences.append(f"Over the sweep it runs at {' and '.join(ranges)}; its worst case is {worst}.")
    near = {}
    for line in lines:
        within, compared = near.get(line.mode, (0, 0))
        near[line.mode] = (within + line.near_fastest[0], compared + line.near_fastest[1])
    counts = [f"{within} of {compared} in {escape(mode)}" for mode, (within, compared) in near.items() if compared]
    if counts:
        sentences.append(f"Against the fastest baseline at each size it is faster or within {NEAR_FASTEST:.0%} at "
                         f"{', '.join(counts)} (sizes x dtypes).")
    return " ".join(sentences)


def host_table(rows: pd.DataFrame, host_rows: pd.DataFrame, dtype: str) -> list[list[str]]:
    """Per (mode, impl) of one dtype of one sweep: the host timer's µs per call on the smallest tensor,
    the event rows' median time to issue one call over the sweep, and the largest size at which the
    host paces back-to-back calls (`bound` = host). Rows of a table whose header is HOST_HEADER."""
    event = rows[(rows.timer == "event") & (rows.status == "ok")]
    lines = []
    for mode in (mode for mode in MODES if mode in set(event["mode"])):
        for impl in ordered_impls(set(event.impl)):
            mine = event[(event["mode"] == mode) & (event.impl == impl)]
            host = host_rows[(host_rows.impl == impl) & (host_rows["mode"] == mode) & (host_rows.status == "ok")]
            host_bound = mine[mine.bound.astype(str) == "host"]
            lines.append([dtype, mode, impl,
                          format_number(float(host.p50_ms.min()) * 1e3 if not host.empty else math.nan, ".1f"),
                          format_number(float(mine.host_us.median()) if not mine.empty else math.nan, ".1f"),
                          format_size(host_bound.x.max()) if not host_bound.empty else "none"])  # fmt: skip
    return lines


HOST_HEADER = ["dtype", "mode", "impl", "host timer µs/call, smallest tensor", "issue µs/call, median over sizes",
               "host-bound up to"]


def not_ok_summary(frame: pd.DataFrame) -> str:
    """One line counting the rows that are not ok, by status, then (at most 20 of) those rows."""
    failed = frame[frame.status != "ok"].sort_values(["dtype", "workload", "impl", "mode", "timer", "shape"],
                                                     kind="stable")
    if failed.empty:
        return f"All {len(frame)} rows are ok."
    counts = ", ".join(f"{escape(status)} {count}" for status, count in sorted(failed.status.value_counts().items()))
    lines = [f"Rows not ok: {len(failed)} of {len(frame)} ({counts}); the figures show them as gaps "
             "marked x with their status.", ""]
    for row in failed.head(NOT_OK_LISTED).itertuples():
        error = f": {escape(row.error.splitlines()[0][:100])}" if row.error else ""
        key = " ".join(escape(text) for text in (row.dtype, row.workload, row.impl, row.mode, row.timer, row.shape))
        lines.append(f"- {key} dim {escape(row.dim)} p {row.p:g}: {escape(row.status)}{error}")
    if len(failed) > NOT_OK_LISTED:
        lines.append(f"- and {len(failed) - NOT_OK_LISTED} more (see the CSVs)")
    return "\n".join(lines)


# (eager step, the whole step compiled); the fused op's pair where a model has it (the transformer)
COMPILED = (("eager", "compile"), ("seeded", "seeded:compile"), ("fused", "fused:compile"))
# A model row whose p20-p80 spans more than this fraction of its p50 is marked unsteady: steady rows
# of the H200 runs span 0.1-3%; the compiled rows that a stretch of slow steps moved by 7-23%
# spanned 14% and more (docs/harness.md, the model workload).
UNSTEADY_SPAN = 0.10


def change(before: float, after: float) -> str:
    return f"{format_number(before, '.2f')} → {format_number(after, '.2f')} ({(after / before - 1):+.1%})"


def compile_table(rows: pd.DataFrame) -> tuple[str, str]:
    """(a sentence, a table): per dtype and model, what compiling the whole step did to the step time
    and peak memory with the eager code's dropout (eager -> compile) and with the seeded op (seeded ->
    seeded:compile); ("", "") when no model has both of a pair ok."""
    header = ["dtype", "model", "impl → compiled impl", "step ms", "peak memory delta, GiB"]
    table, faster, slower = [], {dropout: [0, 0] for dropout, _ in COMPILED}, []
    for (dtype, model), of_model in rows[rows.status == "ok"].groupby(["dtype", "shape"], sort=True):
        for dropout, compiled in COMPILED:
            pair = [of_model[of_model.impl == impl] for impl in (dropout, compiled)]
            if any(found.empty for found in pair):
                continue
            before, after = (found.iloc[-1] for found in pair)
            faster[dropout][0] += bool(after.p50_ms < before.p50_ms)
            faster[dropout][1] += 1
            if after.p50_ms >= before.p50_ms:
                ratio = after.p50_ms / before.p50_ms
                slower.append(f"{escape(dtype)} {escape(model)} with {dropout} ({ratio - 1:+.1%})")
            mark = " †" if unsteady(before) or unsteady(after) else ""  # the note under the model table
            table.append([dtype, model, f"{dropout} → {compiled}", change(before.p50_ms, after.p50_ms) + mark,
                          change(before.peak_mem_delta_bytes / 2**30, after.peak_mem_delta_bytes / 2**30)])
    if not table:
        return "", ""
    parts = [f"{done} of {pairs} (dtype, model) pairs with the {dropout} dropout"
             for dropout, (done, pairs) in faster.items() if pairs]
    counts = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
    fused = " and `fused:compile` with the fused dropout + add + norm op" if faster["fused"][1] else ""
    sentence = ("Compiling the whole training step (`compile`: the step with the eager dropout under "
                f"`torch.compile`; `seeded:compile`: the step with the seeded op under it{fused}) made the step "
                f"faster in {counts}" + (f"; it was not faster in {', '.join(slower)}." if slower else ".")
                + compiled_against_compiled(rows))
    return sentence, markdown.table(header, table)


def compiled_against_compiled(rows: pd.DataFrame) -> str:
    """A sentence on what a user who compiles the step gets from the seeded op: per (dtype, model),
    the `seeded:compile` step time over the `compile` step time, their range and where each end is;
    "" when no pair has both rows ok."""
    ratios = []
    for (dtype, model), of_model in rows[rows.status == "ok"].groupby(["dtype", "shape"], sort=True):
        pair = [of_model[of_model.impl == impl] for impl in ("seeded:compile", "compile")]
        if not any(found.empty for found in pair):
            ratios.append((pair[0].iloc[-1].p50_ms / pair[1].iloc[-1].p50_ms, f"{escape(dtype)} {escape(model)}"))
    if not ratios:
        return ""
    (low, low_at), (high, high_at) = min(ratios), max(ratios)
    return (f" With the whole step compiled, the step with the seeded op took {low:.3f}x ({low_at}) to "
            f"{high:.3f}x ({high_at}) the time of the step with the eager dropout (`seeded:compile` over "
            f"`compile`, {len(ratios)} (dtype, model) pairs).")


def unsteady(row) -> bool:
    """Whether a model row's p20-p80 spans more than UNSTEADY_SPAN of its p50 (False without them)."""
    low, mid, high = (getattr(row, name, math.nan) for name in ("p20_ms", "p50_ms", "p80_ms"))
    return bool(mid > 0 and (high - low) / mid > UNSTEADY_SPAN)


def model_table(rows: pd.DataFrame) -> str:
    """Per dtype, model config and dropout impl: step time, tokens/s, peak memory, loss; rows whose
    steps were unsteady are marked, with a note under the table."""
    header = ["dtype", "model", "impl", "step ms, p50 (p20-p80)", "tokens/s", "peak memory delta, GiB",
              "loss", "status"]
    table, marked = [], 0
    for (dtype, model), of_model in rows.groupby(["dtype", "shape"], sort=True):
        for impl in ordered_impls(set(of_model.impl)):
            for row in of_model[of_model.impl == impl].sort_values(["dim", "p"]).itertuples():
                names = [dtype, model, impl]
                if row.status != "ok":
                    table.append(names + ["–"] * 4 + [row.status])
                    continue
                mark = " †" if unsteady(row) else ""
                marked += bool(mark)
                table.append([*names,
                              f"{format_number(row.p50_ms, '.2f')} ({format_number(row.p20_ms, '.2f')}-"
                              f"{format_number(row.p80_ms, '.2f')}){mark}",
                              format_number(row.tokens_per_s, ",.0f"),
                              format_number(row.peak_mem_delta_bytes / 2**30, ".2f"),
                              format_number(row.loss, ".4f"), row.status])  # fmt: skip
    note = (f"\n\n† Unsteady ({marked} row{'s' if marked != 1 else ''}): p20-p80 spans more than "
            f"{UNSTEADY_SPAN:.0%} of p50, so the run's steps were not alike; its p50 may not reproduce "
            "in another run (docs/harness.md, the model workload).") if marked else ""
    loss_note = ("\n\nLoss: the held-out loss after the run's steps, a check that training ran (finite, below the "
                 "loss before training); it compares only within one run: runs are not bit-reproducible between "
                 "processes, and older runs trained fewer steps (docs/harness.md, the model workload).")
    return markdown.table(header, table) + note + loss_note
