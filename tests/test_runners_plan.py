"""The sweep's config is checked whole before anything is measured: a value that is no drop
probability, no shape or no dim of its shape is refused, naming the value and its config key."""

import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from runners.plan import sweep_points

ROOT = Path(__file__).resolve().parents[1]
CASE = {"dim": [1], "shapes": [[2, 3, 8]]}


def smoke_cfg(*overrides, cases=None):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="bench", overrides=["experiment=cpu_smoke", *overrides])
    if cases is not None:
        cfg.shape.cases = cases
    return cfg


@pytest.mark.parametrize(
    "overrides, cases, message",
    [
        (["p=1.5"], None, "p=1.5 is not a drop probability: give a number in [0, 1] (config key p)"),
        (["p=-0.1"], None, "p=-0.1 is not a drop probability"),
        (["p=nan"], None, "p=nan is not a drop probability"),
        (["p=[0.1,half]"], None, "p='half' is not a number"),
        (["p=[]"], None, "p is empty"),
        (
            [],
            [{"dim": [5], "shapes": [[2, 3, 8]]}],
            "shape.cases[0].dim: dim 5 is outside a 3-d shape (dims lie in [-3, 2])",
        ),
        ([], [CASE, {"dim": [-4], "shapes": [[2, 3, 8]]}], "shape.cases[1].dim: dim -4 is outside a 3-d shape"),
        ([], [{"dim": [1, -2], "shapes": [[2, 3, 8]]}], "shape.cases[0].dim: [1, -2] names one dimension twice"),
        ([], [{"dim": [1.5], "shapes": [[2, 3, 8]]}], "shape.cases[0].dim: 1.5 is not an integer dimension"),
        ([], [{"dim": [1], "shapes": [[2, 3, 8], [2, 0, 8]]}], "shape.cases[0].shapes[1]: [2, 0, 8] is not a shape"),
        ([], [{"dim": [1], "shapes": [[2, -3, 8]]}], "shape.cases[0].shapes[0]: [2, -3, 8] is not a shape"),
        ([], [{"dim": [1], "shapes": [[2, 3.5, 8]]}], "shape.cases[0].shapes[0]: [2, 3.5, 8] is not a shape"),
        ([], [{"dim": [], "shapes": [[]]}], "shape.cases[0].shapes[0]: [] is not a shape"),
        ([], [{"dim": [1], "shapes": []}], "shape.cases[0].shapes is empty"),
        ([], [], "shape.cases is empty"),
    ],
)
def test_a_bad_sweep_config_is_refused_naming_the_value_and_its_key(overrides, cases, message):
    cfg = smoke_cfg(*overrides, cases=cases)
    with pytest.raises(ValueError, match=re.escape(message)):
        sweep_points(cfg, ["fp32"])


def test_edge_values_that_are_valid_pass_and_negative_dims_are_normalised():
    cfg = smoke_cfg("p=[0,1,0.5]", cases=[{"dim": [-1, 0], "shapes": [[2, 3, 8]]}, {"dim": [], "shapes": [[7]]}])
    points = sweep_points(cfg, ["fp32"])
    assert [(pt.shape, pt.dims, pt.p) for pt in points] == [
        ((2, 3, 8), (0, 2), 0.0), ((2, 3, 8), (0, 2), 1.0), ((2, 3, 8), (0, 2), 0.5),
        ((7,), (), 0.0), ((7,), (), 1.0), ((7,), (), 0.5),
    ]  # fmt: skip
