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
    for kind in ("aa (", "plant:K", "host:P", "nofast", "ab:DIR", "MAX_PAIRS", "BUDGET_S"):
        assert kind in done.stdout, kind
    assert "set -uo" not in done.stdout  # the usage is the header, no code


def runners_ab_arguments(tmp_path, judge: str | None) -> list[str]:
    """The arguments gate_check.sh hands `python3 -m runners.ab` in one aa job, seen by a stand-in
    python3 first on PATH that records them (and has Hydra, so nothing is installed)."""
    fake_bin, ref, out = tmp_path / "bin", tmp_path / "ref", tmp_path / "out"
    for folder in (fake_bin, ref, out):
        folder.mkdir(parents=True)
    record = tmp_path / "runners-ab-args"
    python = fake_bin / "python3"
    python.write_text('#!/bin/sh\n'
                      f'if [ "$1 $2" = "-m runners.ab" ]; then shift 2; printf "%s\\n" "$@" > {record}; fi\n')
    python.chmod(0o755)
    env = {**os.environ, "OUT": str(out), "PATH": f"{fake_bin}:/usr/bin:/bin"}
    env.pop("JUDGE", None)
    if judge is not None:
        env["JUDGE"] = judge
    subprocess.run(["bash", str(SCRIPT), str(ref), "aa"], cwd=ROOT, env=env, capture_output=True, text=True)
    return record.read_text().splitlines()


def test_runners_ab_gets_judge_only_when_one_is_given(tmp_path):
    # An empty judge= reads as null in runners.ab's config, which refuses it: every job failed at once.
    assert not any(arg.startswith("judge") for arg in runners_ab_arguments(tmp_path / "a", None))
    given = runners_ab_arguments(tmp_path / "b", "threshold=0.1 host_threshold=0.1")
    assert "judge=threshold=0.1 host_threshold=0.1" in given  # one argument, spaces and all


def test_every_script_its_jobs_run_exists():
    text = SCRIPT.read_text()
    scripts = set(re.findall(r"python3 (scripts/\S+\.py)", text))
    assert scripts == {"scripts/plant_slowdown.py", "scripts/plant_host_slowdown.py"}
    assert all((ROOT / path).is_file() for path in scripts)


GPUS_SCRIPT = ROOT / "scripts" / "gate_check_gpus.sh"


def test_the_gate_check_over_gpus_parses_and_prints_its_usage_without_groups(tmp_path):
    assert subprocess.run(["bash", "-n", str(GPUS_SCRIPT)], capture_output=True).returncode == 0
    done = subprocess.run(["bash", str(GPUS_SCRIPT)], cwd=ROOT, env={**os.environ, "OUT": str(tmp_path)},
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2
    assert "one quoted group of scripts/gate_check.sh jobs per GPU" in done.stdout
    assert "set -uo" not in done.stdout  # the usage is the header, no code


def test_the_gate_check_over_gpus_refuses_more_groups_than_gpus(tmp_path):
    # An nvidia-smi that lists one GPU stands first on PATH, so the test sees the same machine on a
    # CPU-only host and on a GPU host (whose own nvidia-smi lies in /usr/bin): two groups are one too
    # many, and nothing is copied or started.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    smi = fake_bin / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-0)'\n")
    smi.chmod(0o755)
    env = {**os.environ, "OUT": str(tmp_path), "TREES": str(tmp_path / "trees"), "PATH": f"{fake_bin}:/usr/bin:/bin"}
    done = subprocess.run(["bash", str(GPUS_SCRIPT), "aa", "aa nofast"], cwd=ROOT, env=env, capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 2
    assert "2 groups of jobs need 2 GPUs, and this machine shows 1" in done.stderr
    assert not (tmp_path / "trees").exists()
