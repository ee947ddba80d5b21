"""The `model` workload: timed training steps of small models, one result row per (model, impl).

A step is forward, backward and an AdamW step of a language model (`runners.models`) on a batch
of a synthetic Markov corpus (`runners.models.corpus`). Each run builds the model from the same
seed, trains `warmup_steps + timed_rounds * timed_steps` steps from the same RNG state and times
the last `timed_rounds * timed_steps`, back to back, grouped into `timed_rounds` rounds of
`timed_steps`; so every implementation starts from the same weights and sees the same batches.

Row contract (`runners.rows.ResultRow`): workload `model`, mode `step`, timer `event` (CUDA
events around each step, no L2 flush: a step is far larger than L2) or `cpu` (wall clock),
shape = the model config's name (`awd_lstm`, `transformer`), dim `(1,)` (every mask is shared
along dim 1 of (B, T, D)), p = the model's dropout probability, dtype = the parameter dtype.
Filled as the micro rows are (`runners.rounds.RoundSummary`): p50_ms the median of the round
medians, ci_lo/ci_hi_ms the lowest and highest round median, p20/p80_ms percentiles of all the
steps, samples per step with their round; `tokens_per_s` (batch * seq_len / p50),
`peak_mem_delta_bytes` (CUDA: peak allocated during the timed steps above what was allocated
before them, i.e. with parameters and optimizer state, without gradients; NaN on CPU), and
`loss` (cross-entropy on a held-out batch, dropout off, after all the steps). `check` is `pass`
when that loss is finite and below the held-out loss before training, else `fail`.

impl names: `<dropout>[:<variant>...]`.
- dropout: `seeded` (the product op), `eager` (AWD-LSTM's mask-based LockedDropout), `native`
  (`F.dropout1d` on the transposed view), and `compile`, which is `eager` with the
  loss under `torch.compile`: it is spelled `compile`, never `eager:compile`.
- variants: `compile` (forward + loss under `torch.compile`, so backward too through
  AOTAutograd; the optimizer step stays eager), `autocast` (fp32 parameters, bf16 autocast;
  runs only for dtype fp32, a `skipped` row elsewhere), `ckpt` (every LSTM layer / transformer
  block under non-reentrant activation checkpointing).
So each key (workload, impl, mode, timer, dtype, shape, dim, p) names one row.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from baselines.mask_based import compiled_graph_count
from runners.context import RunContext
from runners.lifetime import WITH_PARENT
from runners.models import FUSED, MODEL_DROPOUTS, SHARED_DIM, build_model, markov_corpus
from runners.plan import DTYPES, chosen, flag
from runners.provenance import utc_now
from runners.results_io import key_of, read_results
from runners.rounds import RoundSummary
from runners.rows import COLUMNS, KEY_COLUMNS, ResultRow, format_dim

VARIANTS = ("compile", "autocast", "ckpt")
AUTOCAST_DTYPE = torch.bfloat16


@dataclass(frozen=True)
class RunSettings:
    """How every (model, impl) run trains: `workload.*` of conf/workload/model.yaml."""

    warmup_steps: int = 5
    timed_steps: int = 20  # per round
    timed_rounds: int = 5
    train_batches: int = 4
    lr: float = 2e-3
    seed: int = 0
    corpus_seed: int = 1
    compile_backend: str = "inductor"

    def __post_init__(self):
        for name in ("warmup_steps", "timed_steps", "timed_rounds", "train_batches"):
            value, least = getattr(self, name), 0 if name == "warmup_steps" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"workload.{name} must be an integer >= {least}, got {value!r}")

    @classmethod
    def from_config(cls, workload, tiny: bool) -> RunSettings:
        values = {name: workload[name] for name in cls.__dataclass_fields__ if name in workload}
        if tiny:
            values.update(workload.get("tiny_run") or {})
        return cls(**values)


@dataclass(frozen=True)
class ModelImpl:
    """An impl name taken apart: which dropout layer, and how the step runs."""

    name: str
    dropout: str
    compiled: bool
    autocast: bool
    checkpointed: bool


def parse_impl(name: str) -> ModelImpl:
    dropout, *variants = name.split(":")
    if dropout == "compile":  # the `compile` implementation: eager dropout, compiled step
        dropout, variants = "eager", ["compile", *variants]
    elif dropout == "eager" and "compile" in variants:
        raise ValueError(f"impl {name!r}: eager dropout under torch.compile is spelled 'compile'")
    if dropout not in MODEL_DROPOUTS:
        raise ValueError(f"impl {name!r}: unknown dropout {dropout!r}; expected one of {MODEL_DROPOUTS}")
    unknown = set(variants) - set(VARIANTS)
    if unknown or len(set(variants)) != len(variants):
        raise ValueError(f"impl {name!r}: variants must be distinct, from {VARIANTS}")
    return ModelImpl(name, dropout, "compile" in variants, "autocast" in variants, "ckpt" in variants)


def next_token_loss(model, tokens):
    """Mean cross-entropy of predicting tokens[:, 1:] from tokens[:, :-1], computed in fp32."""
    logits = model(tokens[:, :-1])
    return F.cross_entropy(logits.flatten(0, 1).float(), tokens[:, 1:].flatten())


def time_steps(step, batches, device: torch.device) -> list[float]:
    """Milliseconds per call of step(batch), one sample per batch."""
    if device.type == "cuda":
        starts = [torch.cuda.Event(enable_timing=True) for _ in batches]
        ends = [torch.cuda.Event(enable_timing=True) for _ in batches]
        for start, end, batch in zip(starts, ends, batches, strict=True):
            start.record()
            step(batch)
            end.record()
        torch.cuda.synchronize(device)
        return [start.elapsed_time(end) for start, end in zip(starts, ends, strict=True)]
    samples = []
    for batch in batches:
        begin = time.perf_counter()
        step(batch)
        samples.append((time.perf_counter() - begin) * 1e3)
    return samples


class ModelTrainer:
    """One model, one impl: the model, its optimizer, the corpus, and a training step."""

    def __init__(
        self, model_cfg, impl: ModelImpl, param_dtype: torch.dtype, device: torch.device, settings: RunSettings
    ):
        torch.manual_seed(settings.seed)
        self.model = build_model(model_cfg, impl.dropout).to(device=device, dtype=param_dtype)
        self.model.checkpoint_layers = impl.checkpointed
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=settings.lr)
        batch_size, seq_len = model_cfg.batch_size, model_cfg.seq_len
        corpus = markov_corpus(
            model_cfg.vocab_size, batch_size * (settings.train_batches + 1), seq_len, seed=settings.corpus_seed
        ).to(device)
        self.train_batches = corpus[batch_size:].view(settings.train_batches, batch_size, seq_len + 1)
        self.held_out_batch = corpus[:batch_size]
        self.autocast = impl.autocast
        self.device = device
        if impl.compiled:
            torch._dynamo.reset()  # a fresh cache per run: no recompile limit, no fallback to eager
            self.loss_fn = torch.compile(next_token_loss, backend=settings.compile_backend)
        else:
            self.loss_fn = next_token_loss

    def precision(self):
        return torch.autocast(self.device.type, dtype=AUTOCAST_DTYPE, enabled=self.autocast)

    def step(self, tokens):
        self.optimizer.zero_grad(set_to_none=True)
        with self.precision():
            loss = self.loss_fn(self.model, tokens)
        loss.backward()
        self.optimizer.step()

    @torch.no_grad()
    def held_out_loss(self) -> float:
        self.model.eval()
        with self.precision():
            loss = next_token_loss(self.model, self.held_out_batch)
        self.model.train()
        return float(loss)

    def batches(self, first: int, count: int):
        return [self.train_batches[i % len(self.train_batches)] for i in range(first, first + count)]


def timed_training(trainer: ModelTrainer, batches, device: torch.device) -> tuple[list[float], float]:
    """Step times (ms) over `batches`, and the peak allocation above the start (bytes; NaN on CPU).

    The start has parameters and optimizer state allocated, gradients freed: the peak is what one
    step adds (activations kept for backward, gradients, temporaries).
    """
    trainer.optimizer.zero_grad(set_to_none=True)
    if device.type != "cuda":
        return time_steps(trainer.step, batches, device), float("nan")
    torch.cuda.synchronize(device)
    allocated_before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    samples = time_steps(trainer.step, batches, device)
    return samples, float(torch.cuda.max_memory_allocated(device) - allocated_before)


def fill_timing(row: ResultRow, samples: list[float], steps_per_round: int) -> None:
    """The row's timing figures from its step times, taken in rounds of `steps_per_round` steps: p50
    the median of the round medians, so a stretch of slow steps (a compiled step held up by the
    host, or the GPU's clock under its power cap: docs/perf-notes.md, change 23) moves it by at most
    the rounds it covers, not the whole figure."""
    rounds = [samples[i : i + steps_per_round] for i in range(0, len(samples), steps_per_round)]
    summary = RoundSummary.from_rounds(rounds)
    row.samples_ms, row.sample_rounds = summary.samples_ms, summary.sample_rounds
    row.n_samples, row.rounds = summary.n_samples, summary.rounds
    row.p20_ms, row.p50_ms, row.p80_ms = summary.p20_ms, summary.p50_ms, summary.p80_ms
    row.ci_lo_ms, row.ci_hi_ms = summary.ci_lo_ms, summary.ci_hi_ms


def measure(row: ResultRow, model_cfg, impl: ModelImpl, param_dtype, device, settings: RunSettings) -> None:
    """Train and time one (model, impl), filling the row's measurements."""
    trainer = ModelTrainer(model_cfg, impl, param_dtype, device, settings)
    loss_before = trainer.held_out_loss()
    torch.manual_seed(settings.seed)  # every impl's dropout starts from the same RNG state
    graphs_at_start = compiled_graph_count()
    for tokens in trainer.batches(0, settings.warmup_steps):
        trainer.step(tokens)
    graphs_after_warmup = compiled_graph_count()
    if impl.compiled and graphs_after_warmup == graphs_at_start:
        raise RuntimeError("torch.compile compiled no graph: the step ran eagerly")
    batches = trainer.batches(settings.warmup_steps, settings.timed_rounds * settings.timed_steps)
    samples, row.peak_mem_delta_bytes = timed_training(trainer, batches, device)
    if compiled_graph_count() != graphs_after_warmup:
        raise RuntimeError("torch.compile compiled a graph during the timed steps: raise workload.warmup_steps")
    fill_timing(row, samples, settings.timed_steps)
    row.tokens_per_s = model_cfg.batch_size * model_cfg.seq_len / (row.p50_ms / 1e3)
    row.loss = trainer.held_out_loss()
    trained = np.isfinite(row.loss) and row.loss < loss_before
    row.check = "pass" if trained else "fail"
    if not trained:
        row.error = f"held-out loss did not fall: {loss_before:.4f} -> {row.loss:.4f}"


def new_row(model_cfg, impl_name: str, dtype_name: str, device: torch.device) -> ResultRow:
    """The row of one (model, impl, dtype), its key columns filled."""
    return ResultRow(
        workload="model",
        impl=impl_name,
        mode="step",
        timer="event" if device.type == "cuda" else "cpu",
        dtype=dtype_name,
        shape=str(model_cfg.name),
        dim=format_dim((SHARED_DIM,)),
        p=float(model_cfg.p),
    )


def run_model(model_cfg, impl_name: str, dtype_name: str, device: torch.device, settings: RunSettings) -> ResultRow:
    """One row: the training step of `model_cfg` with dropout impl `impl_name` in `dtype_name`."""
    impl = parse_impl(impl_name)
    row = new_row(model_cfg, impl.name, dtype_name, device)
    if impl.autocast and dtype_name != "fp32":
        row.status = "skipped"
        row.error = f"autocast runs fp32 parameters with bf16 compute; parameters here are {dtype_name}"
        return row
    if impl.dropout == FUSED and model_cfg.arch != "transformer":
        row.status = "skipped"
        row.error = (f"the fused dropout + add + norm op fuses a transformer block's add and norm; "
                     f"{model_cfg.arch} has none")
        return row
    try:
        measure(row, model_cfg, impl, DTYPES[dtype_name], device, settings)
    except torch.cuda.OutOfMemoryError as error:
        row.status, row.error = "oom", str(error).splitlines()[0]
    except Exception as error:  # a failing impl is a row, not the end of the sweep
        row.status, row.error = "error", f"{type(error).__name__}: {error}".splitlines()[0][:500]
    finally:
        gc.collect()  # the run's model, optimizer state and compiled graphs go before the next run
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return row


# ---------------------------------------------------------------------------------------------
# The sweep: the dispatch target of `workload=model` in runners/bench.py
# ---------------------------------------------------------------------------------------------


def auto_or_bool(workload, name: str, auto: bool) -> bool:
    """`workload.<name>`: `auto` (missing too) gives `auto`, a bool itself; anything else is refused."""
    value = workload.get(name, "auto")
    if value == "auto":
        return auto
    if isinstance(value, bool):
        return value
    raise ValueError(f"workload.{name} must be auto, true or false; got {value!r}")


def use_tiny_sizes(workload, device: torch.device) -> bool:
    return auto_or_bool(workload, "tiny", auto=device.type == "cpu")


def model_configs(workload, tiny: bool) -> list:
    """The configs of the models `workload.run` names, each with its `tiny` sizes when asked."""
    configs = []
    for name in workload.run:
        if name not in workload.models:
            raise ValueError(f"workload.run names {name!r}; models are {list(workload.models)}")
        model_cfg = workload.models[name]
        if tiny:
            model_cfg = OmegaConf.merge(model_cfg, model_cfg.get("tiny") or {})
        configs.append(model_cfg)
    return configs


def summary_text(rows: list[ResultRow]) -> str:
    if not rows:
        return "no model rows measured in this run (all keys already present: overwrite=true re-measures)"
    lines = [f"{'dtype':5} {'model':12} {'impl':16} {'status':7} {'p50 ms':>9} {'tokens/s':>11} "
             f"{'peak MiB':>9} {'loss':>7}"]  # fmt: skip
    for row in rows:
        lines.append(
            f"{row.dtype:5} {row.shape:12} {row.impl:16} {row.status:7} {row.p50_ms:9.3f} {row.tokens_per_s:11.4g} "
            f"{row.peak_mem_delta_bytes / 2**20:9.1f} {row.loss:7.4f}"
        )
    lines += [f"{row.dtype} {row.shape} {row.impl}: {row.status}: {row.error}" for row in rows if row.error]
    return "\n".join(lines)


def use_process_per_run(workload, device: torch.device) -> bool:
    """`workload.process_per_run`: auto (a process of its own for every run on a GPU, none on CPU),
    true or false. Why: on the H200 the first run of a process measured 3-8% slower than the same
    run second in the process (docs/perf-notes.md, change 16), so runs sharing a process have
    figures that depend on their order; each in a process of its own, every run starts alike."""
    return auto_or_bool(workload, "process_per_run", auto=device.type == "cuda")


def run_in_own_process(cfg, dtype_name: str, model_name: str, impl_name: str, folder: Path) -> int:
    """One run (dtype, model, impl) of `cfg` in a child process that writes its row to the same
    results file and ends if this process does: the entry point a sweep's passes run in
    (`python -m runners.passes CONFIG`), started by name, so this module does not import it.
    Returns the child's exit status (`child_row` reads what it wrote)."""
    config = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    config.dtype.names = [dtype_name]
    config.workload.run = [model_name]
    config.workload.impls = [impl_name]
    config.workload.process_per_run = False
    config.overwrite = True  # this process chose the run: the child measures it
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / f"{dtype_name}-{model_name}-{impl_name.replace(':', '-')}.yaml"
    OmegaConf.save(config, config_path)
    return subprocess.call([sys.executable, "-m", "runners.passes", str(config_path), WITH_PARENT])


def child_row(path: Path, key: tuple, started: str, status: int) -> ResultRow:
    """The row of `key` a child process started at `started` (`utc_now`) wrote to `path`. A run that
    failed is an `error` (or `oom`) row, and its child exits 1 (its only row failed): that row is
    returned, and the sweep goes on to the next run. A child that wrote no row of its own (a crash,
    an interrupt) or exited otherwise than its row says stops the sweep."""
    row = written_row(path, key)
    fresh = row is not None and row.timestamp >= started
    if fresh and (status == 0 or (status == 1 and row.status in ("error", "oom"))):
        return row
    raise RuntimeError(f"the run of {key} exited with status {status} and wrote no row of its own to {path}")


def run_model_sweep(cfg, context: RunContext) -> list[ResultRow]:
    """Every (dtype, model, impl) of `cfg` not yet done in its dtype's results file (all of them
    with `overwrite`); `cfg` is the composed bench config with `workload=model`. Each row is written
    the moment it is complete, by this process or (`workload.process_per_run`) by a child process
    per run; returns the rows written."""
    device = context.device
    workload = cfg.workload
    tiny = use_tiny_sizes(workload, device)
    settings = RunSettings.from_config(workload, tiny)
    impl_names = [parse_impl(str(name)).name for name in chosen(list(workload.impls), "workload.impls", MODEL_DROPOUTS)]
    models = model_configs(workload, tiny)
    overwrite = flag(cfg, "overwrite")
    own_processes = use_process_per_run(workload, device)
    rows = []
    for dtype_name in context.dtypes:
        writer = context.writers[dtype_name]
        for model_cfg in models:
            for impl_name in impl_names:
                key = new_row(model_cfg, impl_name, dtype_name, device).key()
                if not overwrite and writer.done(key):
                    continue
                began = time.perf_counter()
                if own_processes:
                    runs_folder = writer.path.parent / RUNS_FOLDER
                    started = utc_now()
                    status = run_in_own_process(cfg, dtype_name, str(model_cfg.name), impl_name, runs_folder)
                    row = child_row(writer.path, key, started, status)
                else:
                    row = run_model(model_cfg, impl_name, dtype_name, device, settings)
                    for name, value in context.provenance.items():
                        setattr(row, name, value)
                    row.timestamp = utc_now()
                    writer.write(row)
                rows.append(row)
                print(
                    f"model {dtype_name} {row.shape} {impl_name}: {row.status}, p50 {row.p50_ms:.3f} ms, "
                    f"loss {row.loss:.4f} ({time.perf_counter() - began:.1f} s)",
                    flush=True,
                )
    print(summary_text(rows), flush=True)
    return rows


RUNS_FOLDER = ".model-runs"  # the configs of the child processes, beside the results file


def written_row(path: Path, key: tuple) -> ResultRow | None:
    """The row of `key` that a child process wrote to the results file at `path`; None if none."""
    if not path.exists():
        return None
    wanted = key_of(dict(zip(KEY_COLUMNS, key, strict=True)))  # as runners.results_io.ResultsFile keys it
    records = [r for r in read_results(path).to_dict("records") if key_of(r) == wanted]
    if not records:
        return None
    return ResultRow(**{name: records[-1][name] for name in COLUMNS})
