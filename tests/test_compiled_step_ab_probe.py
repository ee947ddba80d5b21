"""scripts/compiled_step_ab_probe.py: its settings parse, its loss copies compile apart, and the
whole probe runs (tiny sizes, aot_eager, CPU), so a GPU session does not find it broken."""

from __future__ import annotations

import argparse
import json

import pytest
from conftest import load_script

probe = load_script("compiled_step_ab_probe")


def test_a_setting_is_a_key_and_a_python_literal_or_text():
    assert probe.parse_setting("static_launch_user_defined_triton_kernels=True") == (
        "static_launch_user_defined_triton_kernels", True)
    assert probe.parse_setting("compile_threads=4") == ("compile_threads", 4)
    assert probe.parse_setting("triton.cudagraph_trees=x") == ("triton.cudagraph_trees", "x")
    for bad in ("no_equals_sign", "=True"):
        with pytest.raises(argparse.ArgumentTypeError):
            probe.parse_setting(bad)


def test_settings_are_inductors_own_nested_ones_included():
    assert probe.is_inductor_setting("static_launch_user_defined_triton_kernels")
    assert probe.is_inductor_setting("triton.cudagraphs")
    assert not probe.is_inductor_setting("triton.no_such_setting")
    assert not probe.is_inductor_setting("no_such_setting")


def test_the_loss_copy_is_the_same_function_with_a_code_object_of_its_own():
    def loss(a, b):
        return a * b + 1

    copy = probe.own_copy(loss)
    assert copy is not loss and copy.__code__ is not loss.__code__
    assert copy(3, 4) == loss(3, 4) == 13


def test_unknown_settings_and_eager_impls_are_refused(tmp_path, capsys):
    cases = ((["--impl", "seeded", "--set", "compile_threads=1"], "give a compiled impl"),
             (["--impl", "compile", "--impl-b", "fused"], "give a compiled impl"),
             (["--impl", "seeded:compile", "--set", "no_such_setting=1"], "not Inductor settings"),
             (["--impl", "seeded:compile"], "the two sides are the same"))
    for argv, message in cases:
        with pytest.raises(SystemExit) as exited:
            probe.main([*argv, "--tiny", "--device", "cpu", "--out", str(tmp_path / "ab.json")])
        assert exited.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "ab.json").exists()


@pytest.mark.slow  # two tiny models compiled with aot_eager: about 6 s
def test_the_probe_runs_both_sides_in_abba_rounds_and_writes_its_summary(tmp_path):
    out = tmp_path / "ab.json"
    probe.main(["--impl", "compile", "--impl-b", "seeded:compile", "--set",
                "static_launch_user_defined_triton_kernels=True", "--tiny", "--device", "cpu", "--rounds", "2",
                "--steps", "2", "--out", str(out)])  # fmt: skip
    result = json.loads(out.read_text())
    assert result["impl"] == {"A": "compile", "B": "seeded:compile"}
    assert result["settings_b"] == {"static_launch_user_defined_triton_kernels": "True"}
    assert set(result["event_ms"]) == set(result["host_ms"]) == {"A", "B"}
    assert all(value > 0 for value in result["host_ms"].values())
    ratio = result["host_ratio_b_over_a"]
    assert ratio["low"] <= ratio["median"] <= ratio["high"]
