"""The benchmark models (`runners.models`) and the model workload (`runners.model_workload`) on CPU.

Tiny sizes: every test here trains models of a few thousand parameters for a few steps.
"""

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from runners import bench
from runners.model_workload import RunSettings, model_configs, new_row, parse_impl, run_model
from runners.models import ARCHS, DROPOUT_IMPLS, build_model, make_locked_dropout, markov_corpus

CONF = Path(__file__).resolve().parents[1] / "conf"

TINY_MODELS = {
    "awd_lstm": SimpleNamespace(
        name="awd_lstm_tiny", arch="awd_lstm", vocab_size=32, embed_size=16, hidden_size=32,
        num_layers=3, p=0.3, batch_size=16, seq_len=16,
    ),
    "transformer": SimpleNamespace(
        name="transformer_tiny", arch="transformer", vocab_size=32, d_model=32, n_heads=2, d_ff=64,
        num_layers=2, p=0.1, batch_size=16, seq_len=16,
    ),
}
CPU = torch.device("cpu")


def settings(**overrides) -> RunSettings:
    return RunSettings(**{**dict(lr=1e-2, warmup_steps=1, timed_steps=2, timed_rounds=1), **overrides})


def tiny_batch(model_cfg, seed=1):
    return markov_corpus(model_cfg.vocab_size, model_cfg.batch_size, model_cfg.seq_len, seed=seed)


def loss_of(model, tokens):
    logits = model(tokens[:, :-1])
    return F.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten())


# ---------------------------------------------------------------------------------------------
# Dropout layers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dropout_impl", DROPOUT_IMPLS)
def test_locked_dropout_shares_its_mask_along_dim_1(dropout_impl):
    p = 0.5
    layer = make_locked_dropout(dropout_impl, p)
    torch.manual_seed(0)
    y = layer(torch.ones(4, 7, 33))
    kept = y != 0
    assert torch.equal(kept, kept[:, :1].expand_as(kept)), "mask differs along dim 1"
    assert 0 < kept[:, 0].float().mean() < 1, "all elements kept or all dropped"
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / (1 - p)))


@pytest.mark.parametrize("dropout_impl", DROPOUT_IMPLS)
def test_locked_dropout_is_identity_in_eval_mode(dropout_impl):
    layer = make_locked_dropout(dropout_impl, 0.5).eval()
    x = torch.randn(2, 5, 8)
    assert torch.equal(layer(x), x)


def test_unknown_dropout_impl_is_refused():
    with pytest.raises(ValueError, match="unknown dropout"):
        make_locked_dropout("bernoulli", 0.5)


# ---------------------------------------------------------------------------------------------
# Corpus
# ---------------------------------------------------------------------------------------------


def test_markov_corpus_is_reproducible_and_follows_its_chain():
    tokens = markov_corpus(vocab_size=20, n_sequences=64, seq_len=50, successors_per_token=3, seed=5)
    assert tokens.shape == (64, 51) and tokens.dtype == torch.long
    assert torch.equal(tokens, markov_corpus(20, 64, 50, successors_per_token=3, seed=5))
    assert not torch.equal(tokens, markov_corpus(20, 64, 50, successors_per_token=3, seed=6))
    for token in range(20):
        followers = tokens[:, 1:][tokens[:, :-1] == token]
        assert 0 < followers.unique().numel() <= 3


# ---------------------------------------------------------------------------------------------
# Models: build, train, checkpoint
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", TINY_MODELS)
def test_same_seed_builds_the_same_weights_whatever_the_dropout(arch):
    states = []
    for dropout_impl in DROPOUT_IMPLS:
        torch.manual_seed(0)
        states.append(build_model(TINY_MODELS[arch], dropout_impl).state_dict())
    for state in states[1:]:
        assert state.keys() == states[0].keys()
        for name in state:
            assert torch.equal(state[name], states[0][name]), name


@pytest.mark.parametrize("arch", TINY_MODELS)
def test_untrained_model_predicts_near_uniformly(arch):
    model_cfg = TINY_MODELS[arch]
    torch.manual_seed(0)
    model = build_model(model_cfg, "eager").eval()
    loss = loss_of(model, tiny_batch(model_cfg)).item()
    assert abs(loss - math.log(model_cfg.vocab_size)) < 0.2


def gradients(model_cfg, dropout_impl, checkpointed: bool, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = build_model(model_cfg, dropout_impl).double()
    model.checkpoint_layers = checkpointed
    torch.manual_seed(seed)
    loss_of(model, tiny_batch(model_cfg)).backward()
    return {name: param.grad for name, param in model.named_parameters()}


@pytest.mark.parametrize("dropout_impl", DROPOUT_IMPLS)
@pytest.mark.parametrize("arch", TINY_MODELS)
def test_checkpointed_and_plain_runs_give_equal_gradients(arch, dropout_impl):
    model_cfg = TINY_MODELS[arch]
    plain = gradients(model_cfg, dropout_impl, checkpointed=False, seed=7)
    checkpointed = gradients(model_cfg, dropout_impl, checkpointed=True, seed=7)
    other_seed = gradients(model_cfg, dropout_impl, checkpointed=False, seed=8)
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-12, atol=1e-12, msg=name)
    # the masks matter: another seed gives other gradients, so equality above is not vacuous
    assert any(not torch.allclose(other_seed[name], plain[name]) for name in plain)


# ---------------------------------------------------------------------------------------------
# Workload
# ---------------------------------------------------------------------------------------------


def test_parse_impl():
    assert parse_impl("seeded") == parse_impl("seeded")
    seeded = parse_impl("seeded")
    assert (seeded.dropout, seeded.compiled, seeded.autocast, seeded.checkpointed) == ("seeded", False, False, False)
    compiled = parse_impl("compile")
    assert (compiled.dropout, compiled.compiled) == ("eager", True)
    both = parse_impl("native:ckpt:autocast")
    assert (both.dropout, both.compiled, both.autocast, both.checkpointed) == ("native", False, True, True)
    for bad in ("eager:compile", "seeded:ckpt:ckpt", "seeded:fast", "dropout"):
        with pytest.raises(ValueError):
            parse_impl(bad)


# The four dropout implementations and two variants; `compile` (torch.compile on CPU) is
# the slow one: 20-30 seconds per model on two cores.
STEP_IMPLS = [
    "seeded", "eager", "native", pytest.param("compile", marks=pytest.mark.slow), "seeded:ckpt", "seeded:autocast",
]


@pytest.mark.parametrize("impl", STEP_IMPLS)
@pytest.mark.parametrize("arch", TINY_MODELS)
def test_training_step_runs_and_fills_a_row(arch, impl):
    model_cfg = TINY_MODELS[arch]
    row = run_model(model_cfg, impl, "fp32", CPU, settings())
    assert row.status == "ok", row.error
    assert (row.workload, row.impl, row.mode, row.timer) == ("model", impl, "step", "cpu")
    assert (row.dtype, row.shape, row.dim, row.p) == ("fp32", model_cfg.name, "(1,)", model_cfg.p)
    assert row.n_samples == len(row.samples_ms) == 2
    assert 0 < row.p20_ms <= row.p50_ms <= row.p80_ms
    expected_tokens_per_s = model_cfg.batch_size * model_cfg.seq_len / (row.p50_ms / 1e3)
    assert row.tokens_per_s == pytest.approx(expected_tokens_per_s)
    assert math.isfinite(row.loss)
    assert math.isnan(row.peak_mem_delta_bytes)  # CPU: no allocator statistics


def test_autocast_on_16_bit_parameters_is_a_skipped_row():
    row = run_model(TINY_MODELS["transformer"], "seeded:autocast", "bf16", CPU, settings())
    assert row.status == "skipped" and "autocast" in row.error
    assert row.n_samples == 0


def test_a_failing_run_is_an_error_row():
    broken = SimpleNamespace(**{**vars(TINY_MODELS["transformer"]), "n_heads": 3})  # 32 % 3 != 0
    row = run_model(broken, "eager", "fp32", CPU, settings())
    assert row.status == "error" and "n_heads" in row.error


@pytest.mark.parametrize("arch", TINY_MODELS)
def test_dropout_impls_train_alike(arch):
    """Same seed, same batches: the held-out loss falls, by about as much with every dropout."""
    model_cfg = TINY_MODELS[arch]
    run = settings(warmup_steps=10, timed_steps=20)
    losses = {impl: run_model(model_cfg, impl, "fp32", CPU, run) for impl in DROPOUT_IMPLS}
    untrained = math.log(model_cfg.vocab_size)
    for impl, row in losses.items():
        assert row.status == "ok" and row.check == "pass", (impl, row.error)
    drop = untrained - losses["eager"].loss
    assert drop > 0.05
    for impl, row in losses.items():
        assert abs(row.loss - losses["eager"].loss) < 0.1 * drop, (impl, row.loss, losses["eager"].loss)


def test_the_fused_transformer_trains_as_the_seeded_one_and_the_lstm_has_no_fused_run():
    # The fused op draws its seeds and masks as the standalone op does, and its block computes what
    # PreNormBlock computes: the same losses to rounding. The AWD-LSTM has no add + norm to fuse.
    run = settings(warmup_steps=4, timed_steps=4)
    seeded, fused = (run_model(TINY_MODELS["transformer"], impl, "fp32", CPU, run) for impl in ("seeded", "fused"))
    assert fused.status == "ok" and fused.check == "pass", fused.error
    assert abs(fused.loss - seeded.loss) < 1e-4 * seeded.loss, (fused.loss, seeded.loss)
    lstm = run_model(TINY_MODELS["awd_lstm"], "fused", "fp32", CPU, run)
    assert lstm.status == "skipped" and "awd_lstm has none" in lstm.error


@pytest.mark.gpu
def test_the_fused_transformer_trains_as_the_seeded_one_on_the_gpu():
    # The fused kernels (Triton) in the model: the losses of the seeded layers' model, to the
    # rounding of the norm's reductions, which run in another order than torch's LayerNorm.
    run = settings(warmup_steps=4, timed_steps=4)
    cuda = torch.device("cuda")
    seeded, fused = (run_model(TINY_MODELS["transformer"], impl, "fp32", cuda, run) for impl in ("seeded", "fused"))
    assert fused.status == "ok" and fused.check == "pass", fused.error
    assert abs(fused.loss - seeded.loss) < 1e-3 * seeded.loss, (fused.loss, seeded.loss)


# ---------------------------------------------------------------------------------------------
# Configs and the bench entry point (`workload=model`)
# ---------------------------------------------------------------------------------------------


def compose_bench(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="bench", overrides=list(overrides))


def test_model_workload_config_composes_into_runnable_settings():
    cfg = compose_bench("workload=model")
    workload = cfg.workload
    assert cfg.workload.name == "model"
    assert list(workload.run) == ["awd_lstm", "transformer"]
    impls = [parse_impl(name) for name in workload.impls]
    assert {impl.dropout for impl in impls} == set(DROPOUT_IMPLS) | {"fused"}
    assert {"seeded", "eager", "compile", "native"} <= {impl.name for impl in impls}
    assert any(impl.compiled for impl in impls) and any(impl.autocast for impl in impls)
    assert any(impl.checkpointed for impl in impls)
    full, tiny = RunSettings.from_config(workload, tiny=False), RunSettings.from_config(workload, tiny=True)
    assert full.warmup_steps >= 3 and full.timed_steps >= 10
    assert tiny.compile_backend == "aot_eager" and tiny.timed_steps < full.timed_steps


@pytest.mark.parametrize("tiny", [False, True], ids=["full", "tiny"])
def test_every_model_config_builds(tiny):
    """Each conf/model/*.yaml names constructor arguments that exist (built on the meta device)."""
    models = {path.stem: OmegaConf.load(path) for path in sorted((CONF / "model").glob("*.yaml"))}
    assert {model_cfg.arch for model_cfg in models.values()} == set(ARCHS)
    workload = OmegaConf.create({"run": list(models), "models": models})
    for file_name, model_cfg in zip(models, model_configs(workload, tiny), strict=True):
        assert model_cfg.name == file_name  # the rows' shape is the config's name
        tokens = model_cfg.batch_size * model_cfg.seq_len
        assert tokens <= 64 if tiny else tokens >= 8192
        with torch.device("meta"):
            for dropout_impl in DROPOUT_IMPLS:
                build_model(model_cfg, dropout_impl)


def test_bench_runs_the_model_workload_and_resumes(tmp_path, capsys):
    output = tmp_path / "model.csv"
    overrides = [
        "experiment=cpu_smoke", "workload=model", "dtype=fp32", f"output={output}",
        "workload.impls=[seeded,eager:ckpt]", "workload.tiny_run.timed_steps=1", "workload.tiny_run.timed_rounds=2",
    ]  # fmt: skip
    bench.run(compose_bench(*overrides))
    rows = pd.read_csv(output)
    assert len(rows) == 4 and set(rows.rounds) == {2} and set(rows.n_samples) == {2}
    assert set(rows.workload) == {"model"} and set(rows["mode"]) == {"step"} and set(rows.timer) == {"cpu"}
    assert set(zip(rows["shape"], rows.impl, strict=True)) == {
        (model, impl) for model in ("awd_lstm", "transformer") for impl in ("seeded", "eager:ckpt")
    }
    assert set(rows.status) == {"ok"} and set(rows["dim"]) == {"(1,)"} and set(rows.dtype) == {"fp32"}
    assert (rows.tokens_per_s > 0).all() and rows.loss.notna().all()
    samples = pd.read_csv(output.with_name("model.samples.csv"))
    assert len(samples) == 4 and all(len(s.split()) == 2 for s in samples.samples_ms)
    assert set(samples.sample_rounds) == {"0 1"}  # one step a round

    capsys.readouterr()
    bench.run(compose_bench(*overrides))  # every key is in the file: nothing runs again
    assert "no model rows measured" in capsys.readouterr().out
    assert pd.read_csv(output).run_id.tolist() == rows.run_id.tolist()


@pytest.mark.slow  # two child processes, each importing torch and Hydra
def test_each_run_in_a_process_of_its_own_writes_the_rows_one_process_would(tmp_path, capsys):
    output = tmp_path / "model.csv"
    overrides = [
        "experiment=cpu_smoke", "workload=model", "dtype=fp32", f"output={output}", "workload.run=[transformer]",
        "workload.impls=[seeded,eager]", "workload.tiny_run.timed_steps=2", "workload.process_per_run=true",
    ]  # fmt: skip
    bench.run(compose_bench(*overrides))
    rows = pd.read_csv(output)
    assert sorted(rows.impl) == ["eager", "seeded"] and set(rows.status) == {"ok"}
    assert rows.run_id.nunique() == 2  # one run id per process
    configs = sorted(p.name for p in (tmp_path / ".model-runs").iterdir())
    assert configs == ["fp32-transformer-eager.yaml", "fp32-transformer-seeded.yaml"]
    out = capsys.readouterr().out
    assert "model fp32 transformer seeded: ok" in out and "model fp32 transformer eager: ok" in out


def test_a_run_failing_in_its_own_process_is_an_error_row_and_the_sweep_goes_on(tmp_path, capsys):
    # A run whose impl fails writes an error row and its child exits 1 (its only row failed); the
    # sweep records it and measures the next run (it used to stop there, losing the runs after it).
    output = tmp_path / "model.csv"
    overrides = [
        "experiment=cpu_smoke", "workload=model", "dtype=fp32", f"output={output}",
        "workload.run=[transformer,awd_lstm]", "workload.impls=[seeded]", "workload.tiny_run.timed_steps=2",
        "workload.process_per_run=true", "workload.models.transformer.tiny.n_heads=3",  # 16 wide: no 3 heads
    ]  # fmt: skip
    bench.run(compose_bench(*overrides))
    rows = pd.read_csv(output).set_index("shape")
    assert rows.loc["transformer", "status"] == "error" and "multiple of n_heads" in rows.loc["transformer", "error"]
    assert rows.loc["awd_lstm", "status"] == "ok"
    assert "model fp32 awd_lstm seeded: ok" in capsys.readouterr().out


def test_a_rows_p50_is_the_median_of_its_round_medians_so_one_slow_round_moves_it_little():
    from runners.model_workload import fill_timing

    row = new_row(TINY_MODELS["transformer"], "compile", "bf16", CPU)
    steps = [10.0, 10.2, 9.8, 10.0] * 2 + [16.0, 15.0, 17.0, 16.0] + [10.1, 9.9, 10.0, 10.3] * 2  # round 2 held up
    fill_timing(row, steps, steps_per_round=4)
    assert row.rounds == 5 and row.n_samples == 20 and row.sample_rounds == [i // 4 for i in range(20)]
    assert row.p50_ms == pytest.approx(10.05)  # the median of the round medians 10.0, 10.0, 16.0, 10.05, 10.05
    assert (row.ci_lo_ms, row.ci_hi_ms) == (10.0, 16.0)
    assert row.p20_ms == pytest.approx(float(np.percentile(steps, 20)))
    assert row.p80_ms == pytest.approx(float(np.percentile(steps, 80)))
    one_round = new_row(TINY_MODELS["transformer"], "compile", "bf16", CPU)
    fill_timing(one_round, steps[8:12] + steps[:4], steps_per_round=8)  # one round: its median
    assert one_round.rounds == 1 and one_round.p50_ms == pytest.approx(12.6)  # (10.2 + 15.0) / 2


def test_run_settings_refuse_a_count_that_is_no_positive_integer():
    for name, value in (("timed_rounds", 0), ("timed_steps", -1), ("timed_rounds", 2.5), ("warmup_steps", True)):
        with pytest.raises(ValueError, match=f"workload.{name} must be an integer"):
            RunSettings(**{name: value})
    assert RunSettings(warmup_steps=0).warmup_steps == 0


def test_a_child_that_wrote_no_row_of_its_own_stops_the_sweep(tmp_path):
    from runners.model_workload import child_row

    key = ("model", "seeded", "step", "cpu", "fp32", "transformer", "1", 0.1)
    with pytest.raises(RuntimeError, match="wrote no row of its own"):
        child_row(tmp_path / "none.csv", key, "2026-01-01T00:00:00+00:00", 1)


def test_process_per_run_is_auto_true_or_false():
    from runners.model_workload import use_process_per_run

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert use_process_per_run({"process_per_run": "auto"}, cuda) and not use_process_per_run({}, cpu)
    assert use_process_per_run({"process_per_run": True}, cpu)
    with pytest.raises(ValueError, match="process_per_run"):
        use_process_per_run({"process_per_run": "yes"}, cpu)
