"""scripts/gate_check.sh, the device command that proves the A/B gate: what can be checked without a
GPU (it parses, it names every job kind in its usage, the scripts its jobs run exist)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gate_check.sh"


def test_the_gate_check_script_parses():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0


def test_without_jobs_it_prints_its_usage_naming_every_job_kind(tmp_path):
    done = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env={**os.environ, "OUT": str(tmp_path)},
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2
    for kind in ("aa (", "plant:K", "host:US", "nofast", "ab:DIR", "MAX_PAIRS", "BUDGET_S"):
        assert kind in done.stdout, kind


def test_every_script_its_jobs_run_exists():
    text = SCRIPT.read_text()
    scripts = set(re.findall(r"python3 (scripts/\S+\.py)", text))
    assert scripts == {"scripts/plant_slowdown.py", "scripts/plant_host_slowdown.py"}
    assert all((ROOT / path).is_file() for path in scripts)
