"""The harness's op families: the standalone dropout op and dropout + residual add + norm share the
sweep, its rows, checks and results files (runners/op_families.py). CPU, tiny shapes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir

from baselines.add_norm import add_norm_bytes, norm_of
from baselines.case import AddNormCase
from runners import bench, sweep
from runners.checks import PASS, check_add_norm
from runners.op_families import FAMILIES, family_of
from runners.plan import Point

ROOT = Path(__file__).resolve().parents[1]
CASES = [{"dim": [1], "shapes": [[2, 3, 8]]}, {"dim": [], "shapes": [[4, 16]]}]


def family_cfg(tmp_path, *overrides):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="bench", overrides=[
            "experiment=cpu_smoke", "op=dropout_add_norm", f"results_dir={tmp_path}", "timer.settings.cpu.reps=2",
            "timer.settings.cpu.warmup=1", f"shape.cases={CASES}".replace("'", ""), *overrides,
        ])  # fmt: skip


def case_of(shape=(2, 3, 8), dims=(1,), p=0.5, norm="rms", dtype=torch.float32):
    return AddNormCase(shape, dims, p, dtype, torch.device("cpu"), norm=norm)


def test_the_fused_family_runs_in_the_shared_sweep_and_writes_rows_of_its_own(tmp_path):
    bench.run(family_cfg(tmp_path, "mode=[fwd_bwd]"))
    rows = pd.read_csv(tmp_path / "cpu-smoke" / "fp32.csv")
    assert set(rows.workload) == {"dropout_add_rmsnorm"}
    status = rows.groupby("impl").status.agg(set).to_dict()
    assert {impl: status[impl] for impl in ("copy", "fused", "seeded", "eager", "compile")} == dict.fromkeys(
        ("copy", "fused", "seeded", "eager", "compile"), {"ok"})
    liger = rows[rows.impl.str.contains("liger")]
    assert set(liger.status) == {"skipped"} and all("GPU" in error or "liger" in error for error in liger.error)
    fused = rows[(rows.impl == "fused") & (rows["shape"] == "2x3x8")].iloc[0]
    case = case_of()
    assert fused.bytes_moved == add_norm_bytes(case, "fwd_bwd") == 9 * 48 * 4 + 3 * 8 * 4
    assert fused.pct_of_copy > 0  # compared with this family's own roofline, timed in the same run
    # saved for backward: h (48 floats), the weight (8) and the seed: nothing of the mask's size
    assert fused.saved_for_backward_bytes <= (48 + 8) * 4 + 8
    eager = rows[(rows.impl == "eager") & (rows["shape"] == "2x3x8")].iloc[0]
    assert eager.saved_for_backward_bytes > fused.saved_for_backward_bytes  # its mask, x, h


def test_each_norm_is_a_workload_of_its_own_so_their_rows_never_share_a_key(tmp_path):
    bench.run(family_cfg(tmp_path, "mode=[fwd]", "impl.names=[copy,fused,eager]", "op.settings.norm=layer"))
    bench.run(family_cfg(tmp_path, "mode=[fwd]", "impl.names=[fused,eager]", "op.settings.norm=none"))
    rows = pd.read_csv(tmp_path / "cpu-smoke" / "fp32.csv")
    assert rows.groupby("workload").status.agg(set).to_dict() == {"dropout_add_layernorm": {"ok"},
                                                                   "dropout_add": {"ok"}}  # fmt: skip


@pytest.mark.parametrize(
    "override, message",
    [("op.settings.norm=batch", "op.settings.norm='batch'"), ("+op.settings.width=3", "takes no such setting"),
     ("op.settings.eps=0", "op.settings.eps=0"), ("impl.names=[native]", "unknown implementation 'native' of"),
     ("op.settings=5", "give settings by name"), ("op.settings.eps=nan", "op.settings.eps=nan")],
)  # fmt: skip
def test_a_bad_family_setting_is_named_before_anything_runs(tmp_path, override, message):
    with pytest.raises((ValueError, KeyError), match=message):
        sweep.check_sweep(family_cfg(tmp_path, override), torch.device("cpu"))
    assert not (tmp_path / "cpu-smoke").exists()


def test_an_unknown_op_family_is_refused_naming_the_families():
    with pytest.raises(ValueError, match="dropout, dropout_add_norm"):
        family_of("attention")


def test_a_family_named_without_its_impl_preset_says_where_the_presets_come_from(tmp_path):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="bench", overrides=["experiment=cpu_smoke", "op.name=dropout_add_norm"])
    with pytest.raises(KeyError, match="'seeded:compile' of op=dropout_add_norm.*brings its own impl preset"):
        sweep.check_sweep(cfg, torch.device("cpu"))


def test_the_dropout_family_keeps_its_rows_name_and_the_fused_family_reaches_only_its_own_impls():
    point = Point("fp32", (2, 3, 8), (1,), 0.5)
    assert FAMILIES["dropout"].workload({}) == "micro"
    assert "per_element_rng" in FAMILIES["dropout"].implementations
    fused = FAMILIES["dropout_add_norm"]
    assert "per_element_rng" not in fused.implementations and "fused" in fused.implementations
    assert fused.case_at(point, torch.device("cpu"), {"norm": "layer"}).norm == "layer"


# ---- the family's correctness check fails what is wrong ------------------------------------------


def reference_block(case, mask_of):
    """h = residual + x * mask / (1 - p), y = norm(h): with `mask_of(x)` choosing the mask."""

    def forward(x, residual, weight=None, bias=None):
        h = residual + x * mask_of(x) / (1 - case.p)
        return norm_of(case, h, weight, bias), h

    return forward


def locked_mask(case):
    return lambda x: (torch.rand(case.mask_shape) >= case.p).to(x.dtype)


@pytest.mark.parametrize("norm", ["rms", "layer", "none"])
def test_the_check_passes_a_right_block_of_every_norm(norm):
    torch.manual_seed(0)
    case = case_of(shape=(8, 16, 32), norm=norm)
    assert check_add_norm(reference_block(case, locked_mask(case)), case) == PASS


def test_the_check_fails_what_is_wrong():
    torch.manual_seed(0)
    case = case_of(shape=(8, 16, 32))
    right = reference_block(case, locked_mask(case))

    def element_wise_mask(x):
        return (torch.rand(x.shape) >= case.p).to(x.dtype)

    def unscaled(x, residual, weight=None, bias=None):  # kept values not divided by 1 - p
        h = residual + x * locked_mask(case)(x)
        return norm_of(case, h, weight, bias), h

    def residual_halved(x, residual, weight=None, bias=None):
        return right(x, residual / 2, weight, bias)

    def layer_norm_instead(x, residual, weight=None, bias=None):
        y, h = right(x, residual, weight, bias)
        return F.layer_norm(h, (32,), weight), h

    class OtherMaskInBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, d):
            return d

        @staticmethod
        def backward(ctx, grad):
            return grad * (torch.rand(grad.shape) >= case.p)

    def backward_with_another_mask(x, residual, weight=None, bias=None):
        h = residual + OtherMaskInBackward.apply(x * locked_mask(case)(x) / (1 - case.p))
        return norm_of(case, h, weight, bias), h

    assert "not constant along shared dims" in check_add_norm(reference_block(case, element_wise_mask), case)
    assert "h is not residual" in check_add_norm(unscaled, case)
    assert check_add_norm(residual_halved, case).startswith("fail: kept 256 of 256")  # h == residual nowhere
    assert "y is not the rms norm" in check_add_norm(layer_norm_instead, case)
    assert "dx differs from the float64 reference" in check_add_norm(backward_with_another_mask, case)
    assert "nothing is dropped" in check_add_norm(right, case, is_dropout=False)

    def weight_untrained(x, residual, weight=None, bias=None):
        return right(x, residual, weight.detach(), bias)

    assert check_add_norm(weight_untrained, case) == "fail: no dweight"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("impl", ["fused", "seeded", "eager"])
def test_the_family_implementations_pass_the_check_in_every_dtype(dtype, impl):
    family = FAMILIES["dropout_add_norm"]
    for norm, dims in (("rms", (1,)), ("layer", ())):
        case = case_of(shape=(4, 8, 64), dims=dims, norm=norm, dtype=dtype)
        implementation = family.implementation(impl)
        assert family.check_of(implementation)(implementation.build(case), case) == PASS, (norm, dims)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_the_fused_op_passes_the_family_check_on_the_gpu(dtype):
    family = FAMILIES["dropout_add_norm"]
    for norm, dims in (("rms", (1,)), ("layer", ()), ("none", (1,))):
        case = AddNormCase((8, 64, 1024), dims, 0.3, dtype, torch.device("cuda"), norm=norm)
        for impl in ("fused", "seeded", "eager", "copy"):
            if impl == "copy" and norm == "none":
                continue
            implementation = family.implementation(impl)
            assert family.check_of(implementation)(implementation.build(case), case) == PASS, (impl, norm)


# ---- the report draws every family from the same code ---------------------------------------------


def test_the_report_draws_the_fused_familys_sweeps_beside_the_standalone_ops(tmp_path, capsys):
    from reports import render
    from reports.sweeps import find_sweeps

    fused_cases = '[{dim:[1],shapes:[[2,3,8],[2,3,16]]}]'
    bench.run(family_cfg(tmp_path, "mode=[fwd_bwd]", "impl.names=[copy,fused,eager]", f"shape.cases={fused_cases}"))
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        standalone = compose(config_name="bench", overrides=[
            "experiment=cpu_smoke", f"results_dir={tmp_path}", "timer.settings.cpu.reps=2", "mode=[fwd_bwd]",
            "impl.names=[copy,seeded,eager]", "shape.cases=[{dim:[1],shapes:[[2,3,8],[2,5,8]]}]",
        ])  # fmt: skip
    bench.run(standalone)
    gpu_dir = tmp_path / "cpu-smoke"
    rows = pd.read_csv(gpu_dir / "fp32.csv")
    sweeps = find_sweeps(rows)
    assert [(sweep.workload, sweep.product, sweep.pattern) for sweep in sweeps] == [
        ("micro", "seeded", "2xTx8"), ("dropout_add_rmsnorm", "fused", "2x3xN")]
    assert render.main([str(gpu_dir), "--no-readme"]) == 0
    figures = {path.name for path in (gpu_dir / "figures").glob("*.png")}
    assert {"fp32_throughput_2xTx8_d1_p0.5.png", "fp32_speedup_2xTx8_d1_p0.5.png",
            "fp32_throughput_dropout_add_rmsnorm_2x3xN_d1_p0.5.png",
            "fp32_speedup_dropout_add_rmsnorm_2x3xN_d1_p0.5.png"} <= figures  # fmt: skip
    summary = (gpu_dir / "summary.md").read_text()
    assert "seeded runs at" in summary and "fused runs at" in summary
    assert "| dtype | mode | fused % of copy, largest size |" in summary
    # the README view: each family's first sweep in full (its table and throughput figure)
    readme = render.gpu_markdown(render.render_gpu(gpu_dir), tmp_path, level=3, readme_view=True)
    assert "| dtype | mode | seeded % of copy, largest size |" in readme
    assert "| dtype | mode | fused % of copy, largest size |" in readme
    assert "fp32_throughput_dropout_add_rmsnorm_2x3xN_d1_p0.5.png" in readme
    assert "fp32_speedup_2xTx8_d1_p0.5.png" not in readme  # the speedup figures: summary.md only


def test_the_model_workload_refuses_an_op_family_naming_what_to_use(tmp_path):
    with pytest.raises(ValueError, match="workload.impls"):
        bench.run(family_cfg(tmp_path, "workload=model"))
    assert not (tmp_path / "cpu-smoke").exists()


@pytest.mark.gpu
@pytest.mark.parametrize("op, impls", [("dropout", "[copy,seeded,eager]"), ("dropout_add_norm", None)])
def test_each_family_sweeps_on_the_gpu_with_every_timer(tmp_path, op, impls):
    # The families' sweep on CUDA, one small point, every GPU timer, one round: every implementation
    # builds, passes its check and is timed (the Liger rows are ok where liger-kernel is installed).
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="bench", overrides=[
            f"op={op}", "device=cuda", "dtype=bf16", f"results_dir={tmp_path}", "passes=1", "timer.rounds=1",
            "timer.gpu_warmup_s=0", "shape.cases=[{dim:[1],shapes:[[4,16,1024]]}]", "git_sha=test",
            *([f"impl.names={impls}"] if impls else []),
        ])  # fmt: skip
    bench.run(cfg)
    (path,) = (tmp_path).glob("*/bf16.csv")
    rows = pd.read_csv(path)
    assert set(rows.timer) == {"event", "cuda_graph", "host"}
    liger = rows.impl.str.contains("liger")
    assert set(rows[~liger].status) == {"ok"}, rows[rows.status != "ok"][["impl", "timer", "status", "error"]]
    assert set(rows[liger].status) <= {"ok", "skipped"}
    host = rows[(rows.timer == "host") & (rows.impl == "copy")]
    assert host.host_ratio.notna().all()  # the family's roofline is the host timer's reference
