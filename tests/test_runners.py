"""The harness end to end on CPU: a tiny sweep into a temp dir, its CSV validated; a planted
failure becomes an error row while the sweep goes on, and a run whose every row failed exits 1; a
second run skips finished keys; Ctrl-C keeps what finished; parts merge into the full sweep; a bad
config or a corrupted results file stops the run before anything is measured; the Hydra entry point
works."""

import math
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra import compose, initialize_config_dir

import baselines
from baselines import per_element_rng
from baselines.registry import streaming_bytes
from runners import bench, implementations, one_process, results_io, sweep, timers
from runners.bench import default_to_cpu_smoke, run
from runners.context import output_path
from runners.merge import main as merge_main
from runners.modes import Inputs, make_inputs, make_mode_call, mode_call_factory
from runners.results_io import MixedGpuError, ResultsFile, read_results, samples_path_for
from runners.rows import COLUMNS, KEY_COLUMNS, STATUSES, ResultRow

ROOT = Path(__file__).resolve().parents[1]
# Two tiny points: (B, T, D) sharing T, and element-wise.
TINY_CASES = [{"dim": [1], "shapes": [[2, 3, 8]]}, {"dim": [], "shapes": [[2, 2, 4]]}]
REPS = 2
ROUNDS = 2  # conf/timer/cpu.yaml


def tiny_cfg(tmp_path, *overrides, cases=TINY_CASES):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            config_name="bench",
            overrides=[
                "experiment=cpu_smoke",
                f"results_dir={tmp_path}",
                f"timer.settings.cpu.reps={REPS}",
                "timer.settings.cpu.warmup=1",
                *overrides,
            ],
        )
    cfg.shape.cases = cases
    return cfg


@pytest.fixture
def planted():
    """Register test-only implementations by name; they are removed afterwards."""
    added = []

    def plant(name, build, is_dropout=True):
        baselines.register(name, bytes_moved=streaming_bytes, is_dropout=is_dropout)(build)
        added.append(name)

    yield plant
    for name in added:
        implementations.IMPLEMENTATIONS.pop(name)


@pytest.mark.slow
def test_smoke_sweep_writes_a_valid_csv(tmp_path, capsys):
    paths = run(tiny_cfg(tmp_path))
    assert paths == [tmp_path / "cpu-smoke" / "fp32.csv"]
    frame = read_results(paths[0])
    assert list(frame.columns) == list(COLUMNS)
    impls = ["copy", "seeded", "seeded:compile", "eager", "compile", "native", "per_element_rng"]
    assert len(frame) == 2 * len(impls) * 3  # points x impls x modes, one timer (cpu)
    assert not frame.duplicated(list(KEY_COLUMNS)).any()
    if per_element_rng._INTERPRETED:
        assert set(frame.status) == {"ok"}, frame[frame.status != "ok"][["impl", "error"]]
        assert set(frame.check) == {"pass"}
    else:  # a CUDA machine: the Triton baseline cannot take CPU tensors there, and says so
        triton_rows = frame.impl == "per_element_rng"
        assert set(frame.status[triton_rows]) == {"skipped"} and frame.error[triton_rows].str.contains("TRITON").all()
        assert set(frame.status[~triton_rows]) == {"ok"} and set(frame.check[~triton_rows]) == {"pass"}
    assert set(frame.timer) == {"cpu"} and set(frame.impl) == set(impls)
    assert frame.run_id.nunique() == 1 and frame.git_sha.str.len().min() > 0 and set(frame.gpu) == {"cpu"}
    assert frame.torch.iloc[0] == torch.__version__ and frame.python.str.len().min() > 0
    assert (frame.n_samples[frame.status == "skipped"] == 0).all()
    frame = frame[frame.status == "ok"]  # timed rows
    assert (frame.n_samples == REPS * ROUNDS).all() and (frame.rounds == ROUNDS).all()
    assert ((frame.p20_ms <= frame.p50_ms) & (frame.p50_ms <= frame.p80_ms) & (frame.p20_ms > 0)).all()
    assert ((frame.ci_lo_ms <= frame.p50_ms) & (frame.p50_ms <= frame.ci_hi_ms)).all()
    assert (frame.shuffle_seed == 0).all() and frame.host_us.isna().all() and set(frame.bound) == {""}
    assert (frame.gbps - frame.bytes_moved / (frame.p50_ms * 1e-3) / 1e9).abs().max() < 1e-6
    assert frame.peak_mem_delta_bytes.isna().all()  # no CUDA allocator on CPU
    copy = frame[frame.impl == "copy"].set_index(["shape", "mode"]).p50_ms
    for row in frame.itertuples():
        assert math.isclose(row.pct_of_copy, copy[(row.shape, row.mode)] / row.p50_ms * 100)
    saved = frame.set_index(["impl", "shape", "mode"]).saved_for_backward_bytes
    assert saved["seeded", "2x3x8", "fwd"] == 0 and saved["copy", "2x3x8", "fwd"] == 0
    assert saved["eager", "2x3x8", "fwd"] == 2 * 8 * 4  # the (2, 1, 8) fp32 mask
    samples = read_results(samples_path_for(paths[0]))
    samples = samples[samples.samples_ms != ""]  # a skipped row has no samples
    assert len(samples) == len(frame)
    assert all(len(s.split()) == REPS * ROUNDS and all(float(v) > 0 for v in s.split()) for s in samples.samples_ms)
    expected_rounds = " ".join(str(r) for r in range(ROUNDS) for _ in range(REPS))
    assert set(samples.sample_rounds) == {expected_rounds}
    out = capsys.readouterr().out
    assert "NOT GPU figures" in out and "x_eager_geomean" in out and "per_element_rng" in out


@pytest.mark.slow
def test_planted_failures_become_error_rows_and_the_sweep_goes_on(tmp_path, planted):
    def build_raising(case):
        def forward(x):
            raise RuntimeError("planted failure")

        return forward

    planted("planted_failure", build_raising)
    planted("planted_unscaled", lambda case: lambda x: x * (torch.rand(case.mask_shape) >= case.p).to(x.dtype))
    cfg = tiny_cfg(tmp_path, "impl.names=[copy,planted_failure,planted_unscaled,seeded,native]", "mode=[fwd,bwd]")
    frame = read_results(run(cfg)[0])
    assert set(frame.status) <= set(STATUSES)
    by_impl = {impl: rows for impl, rows in frame.groupby("impl")}
    assert len(frame) == 2 * 5 * 2
    failed = by_impl["planted_failure"]
    assert set(failed.status) == {"error"} and failed.error.str.contains("planted failure").all()
    unscaled = by_impl["planted_unscaled"]
    assert set(unscaled.status) == {"error"} and unscaled.check.str.startswith("fail").all()
    assert (unscaled.n_samples == 0).all() and unscaled.p50_ms.isna().all()  # not timed
    for impl in ("copy", "seeded", "native"):  # before and after the failures
        assert set(by_impl[impl].status) == {"ok"}


@pytest.mark.slow
def test_each_round_runs_every_implementation_in_a_fresh_shuffled_order(tmp_path, planted):
    calls = []

    def recording(name):
        def build(case):
            def forward(x):
                calls.append(name)
                return x * 1

            return forward

        return build

    names = ["a", "b", "c", "d"]
    for name in names:
        planted(name, recording(name), is_dropout=False)
    cfg = tiny_cfg(tmp_path, "impl.names=[a,b,c,d]", "mode=fwd", "timer.rounds=6", "timer.shuffle_seed=5",
                   cases=[{"dim": [1], "shapes": [[2, 3, 8]]}])  # fmt: skip
    frame = read_results(run(cfg)[0])
    assert set(frame.rounds) == {6} and set(frame.shuffle_seed) == {5}
    per_timing = 1 + REPS  # one warm-up call and the timed ones (tiny_cfg)
    timed = calls[-6 * len(names) * per_timing :]  # after building and checking: the rounds
    assert all(len(set(timed[i : i + per_timing])) == 1 for i in range(0, len(timed), per_timing))
    order = timed[::per_timing]
    rounds = [order[i : i + len(names)] for i in range(0, len(order), len(names))]
    assert all(sorted(order) == names for order in rounds)
    assert len({tuple(order) for order in rounds}) > 2  # not one fixed order


@pytest.mark.slow
def test_rounds_after_the_first_warm_up_with_one_call(tmp_path, planted):
    calls = []

    def build(case):
        def forward(x):
            calls.append(1)
            return x * 1

        return forward

    planted("counted", build, is_dropout=False)
    cfg = tiny_cfg(tmp_path, "impl.names=[counted]", "mode=fwd", "timer.rounds=3", "timer.settings.cpu.warmup=3",
                   cases=[{"dim": [1], "shapes": [[2, 3, 8]]}])  # fmt: skip
    run(cfg)
    timed = (3 + REPS) + 2 * (1 + REPS)  # warm-up 3 in round 1, then 1
    assert len(calls) - timed == 2  # the rest: the correctness check and the saved-bytes count


@pytest.mark.slow
def test_a_time_budget_adds_batches_of_reps_up_to_max_reps(tmp_path, planted, monkeypatch):
    """min_time_ms: a call that takes 2 ms (of a clock the calls advance, so the count is exact),
    3 reps a batch, at least 15 ms of sampling: 3 batches (9 samples); max_reps=7 stops it at 7,
    mid-batch."""
    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(timers, "time", SimpleNamespace(perf_counter=lambda: clock.now))

    def build(case):
        def forward(x):
            clock.now += 0.002
            return x * 1

        return forward

    planted("slow_copy", build, is_dropout=False)
    for max_reps, expected in [(30, 9), (7, 7)]:
        out = tmp_path / f"max{max_reps}"
        cfg = tiny_cfg(out, "impl.names=[slow_copy]", "mode=fwd", "timer.settings.cpu.reps=3",
                       "+timer.settings.cpu.min_time_ms=15", f"+timer.settings.cpu.max_reps={max_reps}",
                       cases=[{"dim": [1], "shapes": [[2, 3, 8]]}])  # fmt: skip
        run(cfg)
        row = read_results(out / "cpu-smoke" / "fp32.csv").iloc[0]
        assert row.n_samples == ROUNDS * expected, (max_reps, row.n_samples)
        assert row.p50_ms == pytest.approx(2.0)


def test_batch_size_takes_reps_first_then_batches_while_time_is_left():
    now = time.perf_counter()
    assert timers.batch_size(0, now, reps=6, min_time_ms=0.0, max_reps=None) == 6
    assert timers.batch_size(6, now, reps=6, min_time_ms=0.0, max_reps=60) == 0  # no time asked for
    assert timers.batch_size(6, now, reps=6, min_time_ms=1e6, max_reps=60) == 6  # time left: one more batch
    assert timers.batch_size(58, now, reps=6, min_time_ms=1e6, max_reps=60) == 2  # up to max_reps
    assert timers.batch_size(60, now, reps=6, min_time_ms=1e6, max_reps=60) == 0
    assert timers.batch_size(6, now - 1.0, reps=6, min_time_ms=500.0, max_reps=60) == 0  # the time is spent


@pytest.mark.slow
def test_second_run_skips_finished_keys_unless_overwrite(tmp_path):
    cfg = tiny_cfg(tmp_path, "impl.names=[copy,seeded,eager]")
    path = run(cfg)[0]
    first = read_results(path)
    run(cfg)
    second = read_results(path)
    assert len(second) == len(first) and set(second.run_id) == set(first.run_id)  # nothing re-measured
    cfg.overwrite = True
    run(cfg)
    third = read_results(path)
    assert len(third) == len(first) and not set(third.run_id) & set(first.run_id)


@pytest.mark.slow
def test_interrupt_keeps_finished_rows_and_a_rerun_resumes(tmp_path, planted):
    interrupts_left = [1]

    def build_interrupting_at_second_point(case):
        if case.shared_dims == () and interrupts_left[0]:
            interrupts_left[0] -= 1
            raise KeyboardInterrupt
        return implementations.get("eager").build(case)

    planted("interrupting", build_interrupting_at_second_point)
    cfg = tiny_cfg(tmp_path, "impl.names=[copy,seeded,interrupting,eager]", "mode=fwd")
    with pytest.raises(KeyboardInterrupt):
        run(cfg)
    path = output_path(cfg, "cpu-smoke", "fp32")
    kept = read_results(path)
    # the first point, finished; none of the second, interrupted while its implementations were built
    # (a point's rows are finished together, when its last round ends)
    assert sorted(zip(kept["shape"], kept.impl, strict=True)) == sorted(
        [("2x3x8", i) for i in ("copy", "seeded", "interrupting", "eager")]
    )
    run(cfg)
    resumed = read_results(path)
    assert len(resumed) == 8 and set(resumed.status) == {"ok"}
    first_run = kept.run_id.iloc[0]
    remeasured = resumed[resumed.run_id != first_run]
    assert sorted(zip(remeasured["shape"], remeasured.impl, strict=True)) == [
        ("2x2x4", "copy"), ("2x2x4", "eager"), ("2x2x4", "interrupting"), ("2x2x4", "seeded"),
    ]  # fmt: skip


@pytest.mark.slow
def test_parts_merge_into_the_full_sweep(tmp_path):
    cases = [{"dim": [1], "shapes": [[2, 1, 8], [2, 3, 8], [3, 2, 8]]}]
    for index in (0, 1):
        cfg = tiny_cfg(tmp_path, "impl.names=[copy,seeded]", "mode=fwd", "part_count=2", f"part_index={index}",
                       cases=cases)  # fmt: skip
        assert run(cfg) == [tmp_path / "cpu-smoke" / f"fp32.part-{index}-of-2.csv"]
    part_shapes = [set(read_results(tmp_path / "cpu-smoke" / f"fp32.part-{i}-of-2.csv")["shape"]) for i in (0, 1)]
    assert part_shapes == [{"2x1x8", "3x2x8"}, {"2x3x8"}]  # round robin over points
    assert merge_main([str(tmp_path)]) == 0
    merged = read_results(tmp_path / "cpu-smoke" / "fp32.csv")
    assert len(merged) == 3 * 2 and set(merged["shape"]) == {"2x1x8", "2x3x8", "3x2x8"}


@pytest.mark.slow
def test_dtype_all_writes_one_file_per_dtype(tmp_path):
    cfg = tiny_cfg(tmp_path, "dtype=all", "impl.names=[copy,seeded]", "mode=fwd_bwd", cases=TINY_CASES[:1])
    paths = run(cfg)
    assert [p.name for p in paths] == ["fp16.csv", "bf16.csv", "fp32.csv", "fp64.csv"]
    for path in paths:
        frame = read_results(path)
        assert set(frame.dtype) == {path.stem} and set(frame.status) == {"ok"}


def test_results_of_another_gpu_are_never_mixed_in(tmp_path):
    cfg = tiny_cfg(tmp_path)
    ResultsFile(output_path(cfg, "cpu-smoke", "fp32")).write(ResultRow(gpu="NVIDIA H200", impl="seeded", p50_ms=1.0))
    with pytest.raises(MixedGpuError):
        run(cfg)


def test_model_workload_is_dispatched_to_its_module(tmp_path, monkeypatch):
    from runners import model_workload

    calls = []
    monkeypatch.setattr(model_workload, "run_model_sweep", lambda cfg, context: calls.append((cfg, context)) or [])
    cfg = tiny_cfg(tmp_path, "workload=model", "dtype=all")
    assert cfg.workload.name == "model"
    run(cfg)
    (cfg, context), = calls  # one call, with every dtype's file in the context it shares with the sweep
    assert context.dtypes == ["fp16", "bf16", "fp32", "fp64"] and context.device.type == "cpu"
    assert [context.writers[d].path.name for d in context.dtypes] == ["fp16.csv", "bf16.csv", "fp32.csv", "fp64.csv"]


def test_a_run_whose_every_row_failed_exits_with_status_1(tmp_path, planted, capsys):
    def build_raising(case):
        raise RuntimeError("planted failure")

    planted("planted_failure", build_raising)
    with pytest.raises(SystemExit) as exited:
        run(tiny_cfg(tmp_path, "impl.names=[planted_failure]", "mode=fwd"))
    assert exited.value.code == 1 and "every row of this run failed (2 error/oom rows" in capsys.readouterr().err
    assert set(read_results(tmp_path / "cpu-smoke" / "fp32.csv").status) == {"error"}  # the rows are kept


def test_only_a_run_whose_every_row_failed_is_a_failed_command():
    rows = [ResultRow(status=s) for s in ("error", "oom")]
    with pytest.raises(SystemExit):
        one_process.exit_if_every_row_failed(rows)
    one_process.exit_if_every_row_failed([*rows, ResultRow(status="ok")])
    one_process.exit_if_every_row_failed([*rows, ResultRow(status="skipped")])
    one_process.exit_if_every_row_failed([])  # every key was on disk already


@pytest.mark.parametrize(
    "override, cases, message",
    [
        ("p=1.5", TINY_CASES, "p=1.5 is not a drop probability"),
        ("p=nan", TINY_CASES, "p=nan is not a drop probability"),
        ("p=0.5", [{"dim": [5], "shapes": [[2, 3, 8]]}], "shape.cases[0].dim: dim 5 is outside a 3-d shape"),
        ("+timer.settings.cpu.rep=30", TINY_CASES, "timer.settings.cpu: unknown setting(s) rep;"),
        ("timer.settings.cpu.reps=0", TINY_CASES, "timer.settings.cpu: reps must be >= 1"),
        ("+timer.settings.cpu.max_reps=1", TINY_CASES, "timer.settings.cpu: max_reps (1) is below reps (2)"),
        ("+timer.settings.cpu.min_time_ms=-1", TINY_CASES, "timer.settings.cpu: min_time_ms must be >= 0"),
    ],
)
def test_a_bad_config_stops_the_run_before_anything_is_measured(tmp_path, override, cases, message):
    cfg = tiny_cfg(tmp_path, "impl.names=[seeded]", "mode=fwd", override, cases=cases)
    with pytest.raises(ValueError, match=re.escape(message)):
        run(cfg)
    assert not (tmp_path / "cpu-smoke" / "fp32.csv").exists()


def test_the_cuda_graph_timer_refuses_a_negative_count_of_warm_up_replays():
    settings = dict(warmup=3, reps=6, warmup_replays=-1)
    with pytest.raises(ValueError, match=re.escape("timer.settings.cuda_graph: warmup_replays must be >= 0, got -1")):
        timers.check_settings("cuda_graph", settings)
    timers.check_settings("cuda_graph", {**settings, "warmup_replays": 0})


def test_resuming_into_a_corrupted_file_stops_naming_it_and_leaves_it_as_it_is(tmp_path):
    cfg = tiny_cfg(tmp_path, "impl.names=[seeded]", "mode=fwd")
    path = output_path(cfg, "cpu-smoke", "fp32")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"workload,implementation,mode\r\nmicro,seeded,fwd\r\n")  # a renamed key column
    with pytest.raises(results_io.ResultsFileError, match=re.escape(f"{path}, line 1: the header lacks")):
        run(cfg)
    assert path.read_bytes() == b"workload,implementation,mode\r\nmicro,seeded,fwd\r\n"


def test_output_paths(tmp_path):
    cfg = tiny_cfg(tmp_path)
    assert output_path(cfg, "nvidia-h200", "bf16") == tmp_path / "nvidia-h200" / "bf16.csv"
    cfg = tiny_cfg(tmp_path, "output=results/ci/candidate.csv", "part_count=4", "part_index=3")
    assert output_path(cfg, "nvidia-h200", "bf16") == Path("results/ci/candidate.part-3-of-4.csv")


def test_without_a_gpu_the_entry_point_defaults_to_the_cpu_smoke_experiment(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_to_cpu_smoke(["bench", "dtype=fp16"]) == ["bench", "dtype=fp16", "experiment=cpu_smoke"]
    for argv in (["bench", "experiment=ci"], ["bench", "--help"], ["bench", "device=cpu"]):
        assert default_to_cpu_smoke(argv) == argv
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_to_cpu_smoke(["bench", "dtype=fp16"]) == ["bench", "dtype=fp16"]


def test_backward_modes_reset_the_gradient_between_calls():
    inputs = make_inputs((2, 3, 4), torch.float32, torch.device("cpu"))
    forward = implementations.get("seeded").build(baselines.DropoutCase((2, 3, 4), (1,), 0.5, torch.float32, "cpu"))
    for mode in ("bwd", "fwd_bwd"):
        mode_call = make_mode_call(forward, inputs.x, inputs.grad_out, mode)
        mode_call.reset()
        mode_call.call()
        first = inputs.x.grad.clone()
        mode_call.reset()
        assert inputs.x.grad is None
        mode_call.call()
        if mode == "bwd":  # same graph, same mask: the same gradient, not twice it
            assert torch.equal(inputs.x.grad, first)


def accumulator_of(leaf: torch.Tensor):
    """The gradient accumulator autograd hands a graph that uses `leaf` (the one alive, if any)."""
    return (leaf * 1).grad_fn.next_functions[0][0]


@pytest.mark.parametrize("mode", ["fwd", "bwd", "fwd_bwd"])
@pytest.mark.parametrize("count", [1, 3])
def test_a_mode_call_never_shares_a_gradient_accumulator_with_a_graph_left_alive(mode, count):
    # A graph kept alive on the inputs (as a build's check can leave one, made on the default stream)
    # must not lend its leaves' accumulators to a timed call: under a CUDA-graph capture on a side
    # stream that one backward waits on the default stream and the capture fails.
    tensors = tuple(torch.randn(2, 3, requires_grad=True) for _ in range(count))
    inputs = Inputs(tensors=tensors, grad_outs=(torch.ones(2, 3),))
    kept = [accumulator_of(t) for t in tensors]  # alive while `kept` is
    received = []

    def forward(*leaves):
        received.extend(leaves)
        return sum(leaves) * 2

    mode_call = mode_call_factory(forward, inputs, mode)()
    mode_call.reset()
    mode_call.call()
    assert len(received) == count
    for leaf, original, accumulator in zip(received, tensors, kept, strict=True):
        assert leaf is not original and leaf.requires_grad and leaf.data_ptr() == original.data_ptr()
        assert accumulator_of(leaf) is not accumulator
        assert accumulator_of(original) is accumulator
        if mode != "fwd":
            assert torch.equal(leaf.grad, torch.full((2, 3), 2.0)) and original.grad is None


def test_help_shows_the_config():
    done = subprocess.run(
        [sys.executable, "-m", "runners.bench", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    for text in ("Configuration groups", "seq_sweep", "experiment: ci, cpu_smoke", "part_count"):
        assert text in done.stdout


# ---- the command line: settings refused before anything runs ---------------------------------------


@pytest.mark.parametrize("value", ["no", "off", "'false'", "maybe", "0"])
def test_overwrite_takes_a_boolean_only_never_a_string_read_by_its_truthiness(tmp_path, value):
    with pytest.raises(ValueError, match="overwrite=.* is not a boolean"):
        run(tiny_cfg(tmp_path, "impl.names=[seeded]", "mode=fwd", f"overwrite={value}"))
    assert not (tmp_path / "cpu-smoke").exists()


def test_a_timer_flag_takes_a_boolean_only():
    settings = {"warmup": 1, "reps": 2, "flush_l2": "no"}
    with pytest.raises(ValueError, match=re.escape("timer.settings.event.flush_l2='no' is not a boolean")):
        timers.check_settings("event", settings)


@pytest.mark.parametrize("override", ["mode=[]", "dtype.names=[]", "impl.names=[]", "timer.names=[]"])
def test_an_empty_selection_is_refused_naming_it(tmp_path, override):
    with pytest.raises(ValueError, match=re.escape(f"{override.split('=')[0]}=[] selects nothing")):
        run(tiny_cfg(tmp_path, override))
    assert not (tmp_path / "cpu-smoke").exists()


def test_an_unknown_timer_is_refused_on_cpu_too(tmp_path):
    with pytest.raises(ValueError, match=re.escape("unknown timer ['bogus']")):
        run(tiny_cfg(tmp_path, "timer.names=[bogus]"))
    assert not (tmp_path / "cpu-smoke").exists()


@pytest.mark.parametrize("rounds", ["0", "-1", "abc"])
def test_rounds_that_are_no_positive_whole_number_are_refused_naming_timer_rounds(tmp_path, rounds):
    with pytest.raises(ValueError, match=re.escape("timer.rounds=")):
        run(tiny_cfg(tmp_path, f"timer.rounds={rounds}"))


def test_a_sweep_in_passes_refuses_a_bad_setting_before_its_first_pass(tmp_path):
    with pytest.raises(KeyError, match="no_such_impl"):
        run(tiny_cfg(tmp_path, "passes=2", "impl.names=[no_such_impl]"))
    assert not (tmp_path / ".passes").exists()


def test_an_output_that_is_no_results_file_is_refused_before_anything_is_measured(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# a readme\n\ntext\n")
    for passes in ("1", "2"):
        with pytest.raises(results_io.ResultsFileError, match=re.escape(str(readme))):
            run(tiny_cfg(tmp_path, f"output={readme}", f"passes={passes}"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]


def test_the_cpu_smoke_message_names_where_its_rows_go(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    default_to_cpu_smoke(["bench", "results_dir=/tmp/elsewhere"])
    assert "into /tmp/elsewhere/cpu-smoke" in capsys.readouterr().out
    default_to_cpu_smoke(["bench", "output=/tmp/one.csv"])
    assert "into /tmp/one.csv" in capsys.readouterr().out


def test_only_the_smoke_sweep_prints_the_smoke_banner(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("runners.sweep.run_sweep", lambda cfg, context: [])
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="bench", overrides=["device=cpu", f"results_dir={tmp_path}", "passes=1"])
    run(cfg)
    out = capsys.readouterr().out
    assert "CPU SMOKE SWEEP" not in out and "NOT GPU figures" in out
    run(tiny_cfg(tmp_path, "impl.names=[copy]", "mode=fwd"))
    assert "CPU SMOKE SWEEP" in capsys.readouterr().out


def test_inputs_too_large_for_memory_give_oom_rows_naming_the_shape_and_the_sweep_goes_on(tmp_path, monkeypatch):
    from runners import op_families

    real = op_families.make_inputs

    def make_inputs(shape, dtype, device):
        if tuple(shape) == (2, 3, 8):
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")
        return real(shape, dtype, device)

    monkeypatch.setattr(op_families, "make_inputs", make_inputs)
    run(tiny_cfg(tmp_path, "impl.names=[copy,seeded]", "mode=fwd"))
    frame = read_results(tmp_path / "cpu-smoke" / "fp32.csv")
    big, small = frame[frame["shape"] == "2x3x8"], frame[frame["shape"] == "2x2x4"]
    assert set(big.status) == {"oom"} and all("2x3x8" in error for error in big.error)
    assert set(small.status) == {"ok"}
    assert sweep.failure_status(MemoryError()) == "oom"


def test_an_override_split_at_a_space_fails_with_a_hint_on_quoting():
    with pytest.raises(SystemExit, match="hint: an override holding spaces, braces or quotes .* Quote it whole"):
        bench.command_line(["bench", "shape.cases=[{dim:", "[1]}]"])
    assert bench.command_line(["bench", "p=[0.1, 0.5]", "device=cpu"]) == ["bench", "p=[0.1, 0.5]", "device=cpu"]


@pytest.mark.parametrize("override", ["device=''", "device=tpu", "timer.host_max_numel=abc", "timer.shuffle_seed=-1"])
def test_other_settings_that_cannot_work_are_refused_naming_them(tmp_path, override):
    with pytest.raises(ValueError, match=re.escape(override.split("=")[0] + "=")):
        run(tiny_cfg(tmp_path, override))


def test_a_part_without_points_says_it_wrote_nothing(tmp_path, capsys):
    assert run(tiny_cfg(tmp_path, "impl.names=[copy]", "mode=fwd", "part_index=3", "part_count=4")) == []
    out = capsys.readouterr().out
    assert "nothing written (no point to measure here)" in out and "written: " not in out
