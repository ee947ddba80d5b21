"""The key=value command lines of runners.ab, reports.ab and reports.compare: one parser, one set of
refusals, each raised as the tool's own error."""

import re
from dataclasses import dataclass, field

import pytest

from reports import ab as ab_report
from reports import compare
from runners import ab as ab_runner
from runners.settings_args import help_text, parse_settings

TOOLS = [
    (ab_runner.load_config, ab_runner.ABError, ["pairs=3"], "pairs", 3),
    (ab_report.load_config, ab_report.Unjudgeable, ["threshold=0.2"], "threshold", 0.2),
    (compare.load_config, compare.UnusableInput, ["baseline=a.csv", "candidate=b.csv", "alpha=0.05"], "alpha", 0.05),
]


@pytest.mark.parametrize(("load", "error", "good", "name", "value"), TOOLS)
def test_each_tool_takes_key_value_and_refuses_the_rest(load, error, good, name, value):
    assert getattr(load(good), name) == value
    for bad, message in (("--pairs", "key=value"), ("+pairs=3", "key=value"), ("~pairs", "key=value"),
                         ("no_such_key=1", "bad argument"), (f"{name}=[1", "bad argument")):  # fmt: skip
        with pytest.raises(error, match=message):
            load([*good, bad])


def test_help_lists_every_setting_with_its_default():
    text = help_text("The tool.", ab_runner.ABConfig)
    assert text.startswith("The tool.")
    assert "pairs: 4" in text and "timeout_s: 600.0" in text


def test_a_wrong_type_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="bad argument pairs='many': .*'many'"):
        parse_settings(ab_runner.ABConfig, ["pairs=many"], ValueError)


@pytest.mark.parametrize("arg", ["threshold=abc", "flag=maybe", "names=seeded"])
def test_a_value_of_the_wrong_type_is_named_with_its_key(arg):
    @dataclass
    class Settings:
        threshold: float = 0.1
        flag: bool = False
        names: list[str] = field(default_factory=list)

    with pytest.raises(ValueError, match=re.escape(f"bad argument {arg.split('=')[0]}='{arg.split('=')[1]}'")):
        parse_settings(Settings, [arg], ValueError)
