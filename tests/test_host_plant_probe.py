"""scripts/host_plant_probe.py runs its steps end to end on CPU (tiny shape, few rounds) and reports
both plants' costs; the figures themselves come from the GPU machine."""

from __future__ import annotations

import re

from conftest import load_script


def test_the_probe_reports_the_old_and_the_new_plant(capsys):
    probe = load_script("host_plant_probe")
    assert probe.main(["--shape", "2,1,4", "--fresh", "1", "--rounds", "3", "--calls", "50", "--spin-s", "0",
                       "--percent", "50"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert re.search(r"counts: old calibration \d+ for 1.6 us, the plant now \d+ for 50.0% \(its ratio here", out)
    for variant in ("seeded", "planted_long", "loop_alone_long", "planted_now", "loop_alone_now"):
        assert re.search(rf"^{variant} +us per call: median \d", out, re.M), variant
    assert re.search(r"^now: \d+ iterations, in the call [+-]\d", out, re.M)
