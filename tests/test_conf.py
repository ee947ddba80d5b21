"""Every config composes, and composes into what the runner expects (configs and code cannot drift)."""

import math
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from runners import implementations
from runners.plan import DTYPES, as_list, dtype_names, impl_names, mode_names, shape_cases, sweep_points

CONF = Path(__file__).resolve().parents[1] / "conf"
# The groups of the micro-benchmark; the model workload's own groups are tested with it.
GROUPS = ("dtype", "shape", "impl", "timer", "experiment", "op")
# An impl preset belongs to one op family: composed with that family's op.
FAMILY_OF_IMPL_PRESET = {"add_norm": "op=dropout_add_norm"}


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def compose_bench(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="bench", overrides=list(overrides))


def assert_runnable(cfg) -> None:
    assert set(dtype_names(cfg)) <= set(DTYPES)
    assert shape_cases(cfg), "a shape preset with no shapes"
    for shape, dims in shape_cases(cfg):
        assert all(s >= 1 for s in shape) and all(0 <= d < len(shape) for d in dims)
    family = cfg.op.name
    for name in impl_names(cfg):
        implementations.get(name, family)
    for name in impl_names(cfg):
        assert set(cfg.impl.options.get(name, {})) <= set(_build_parameters(name, family))
    assert set(mode_names(cfg)) <= {"fwd", "bwd", "fwd_bwd"}
    for timer in as_list(cfg.timer.names):
        assert timer in cfg.timer.settings
    assert all(0 <= float(p) <= 1 for p in as_list(cfg.p))


def _build_parameters(name: str, family: str) -> list[str]:
    import inspect

    return list(inspect.signature(implementations.get(name, family).build).parameters)[1:]


@pytest.mark.parametrize("override", [f"{group}={option}" for group in GROUPS for option in options(group)], ids=str)
def test_every_option_of_every_group_composes(override):
    family = [FAMILY_OF_IMPL_PRESET[override[5:]]] if override[5:] in FAMILY_OF_IMPL_PRESET else []
    assert_runnable(compose_bench(*family, override))


def test_op_dropout_add_norm_brings_its_impl_preset_and_the_default_is_the_standalone_op():
    assert compose_bench().op.name == "dropout"
    cfg = compose_bench("op=dropout_add_norm")
    assert impl_names(cfg)[:2] == ["copy", "fused"] and cfg.op.settings.norm == "rms"


def test_defaults_are_the_original_projects_sweep():
    cfg = compose_bench()
    assert dtype_names(cfg) == ["fp32"]
    assert shape_cases(cfg) == [((64, 2**k, 768), (1,)) for k in range(14)]  # T = 1 ... 8192
    assert impl_names(cfg) == ["copy", "seeded", "seeded:compile", "eager", "compile", "native", "per_element_rng"]
    assert mode_names(cfg) == ["fwd", "bwd", "fwd_bwd"]
    assert list(cfg.timer.names) == ["event", "cuda_graph", "host"]
    assert cfg.workload.name == "micro" and cfg.part_index == 0 and cfg.part_count == 1
    assert cfg.output is None and cfg.overwrite is False


def test_dtype_all_is_the_four_dtypes():
    assert dtype_names(compose_bench("dtype=all")) == ["fp16", "bf16", "fp32", "fp64"]


def test_presets_cover_the_issues_cases():
    assert {s[1] for s, _ in shape_cases(compose_bench("shape=odd_seq"))} >= {31, 143, 665, 2662}
    assert {dims for _, dims in shape_cases(compose_bench("shape=tbd"))} == {(0,)}
    assert {dims for _, dims in shape_cases(compose_bench("shape=elementwise"))} == {()}
    channel = shape_cases(compose_bench("shape=channel"))
    assert {len(shape) for shape, _ in channel} == {4} and {dims for _, dims in channel} == {(2, 3)}
    smoke_dims = {dims for _, dims in shape_cases(compose_bench("shape=smoke"))}
    assert smoke_dims == {(1,), (0,), (), (2, 3)}


def test_ci_experiment():
    cfg = compose_bench("experiment=ci")
    assert impl_names(cfg) == ["copy", "seeded", "seeded:compile"]  # the gated ops and their roofline: short processes
    assert mode_names(cfg) == ["fwd", "fwd_bwd"]
    assert list(cfg.timer.names) == ["event", "cuda_graph", "host"]  # GPU time, and host cost the gate sees
    host_points = [shape for shape, _ in shape_cases(cfg) if math.prod(shape) <= cfg.timer.host_max_numel]
    assert host_points == [(64, 1, 768)]  # the host timer: at the launch-bound size only
    assert cfg.timer.rounds == 3 and cfg.timer.settings.event.reps == 6
    assert cfg.output == "results/ci/candidate.csv" and cfg.overwrite is True
    sizes = sorted(shape[0] * shape[1] * shape[2] for shape, _ in shape_cases(cfg))
    assert sizes[0] <= 64 * 768 and sizes[-1] >= 64 * 4096 * 768  # small to large
    assert compose_bench("experiment=ci", "output=elsewhere.csv").output == "elsewhere.csv"


def test_cpu_smoke_experiment():
    cfg = compose_bench("experiment=cpu_smoke")
    assert cfg.device == "cpu" and list(cfg.timer.names) == ["cpu"]
    assert impl_names(cfg) == impl_names(compose_bench())  # every implementation
    assert cfg.impl.options.compile.backend == "aot_eager"
    assert max(s[0] * s[1] * s[2] for s, _ in shape_cases(cfg) if len(s) == 3) < 2000


def test_command_line_overrides_pass_through():
    cfg = compose_bench("dtype=fp16", "shape=seed_sweep", "p=0.1")
    points = sweep_points(cfg, dtype_names(cfg))
    assert {(pt.dtype, pt.p) for pt in points} == {("fp16", 0.1)}
    assert [pt.shape for pt in points] == [(64, 16, 768), (64, 256, 768), (64, 4096, 768)]
    cfg = compose_bench("impl.names=[seeded,copy]", "timer=event", "mode=fwd", "p=[0.1,0.5]")
    assert impl_names(cfg) == ["copy", "seeded"] and mode_names(cfg) == ["fwd"]
    assert len(sweep_points(cfg, ["fp32"])) == 2 * 14
