"""Sweeps spread over jobs (runners/launch.py, runners/callbacks.py, conf/hydra/launcher/).

The command line `gpus=N` / `launcher=` becomes a multirun of N parts; job i keeps GPU i alone; the
SLURM config yields the sbatch script asked for; and, end to end on CPU through submitit's local
executor: a smoke sweep split into 2 jobs gives the keys of one job, merged by the callback; a job
killed midway keeps its finished rows and the same command again completes the set.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import restore_triton_interpret
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from runners import launch, merge
from runners.bench import command_line, run
from runners.callbacks import merge_split_parts
from runners.launch import LaunchError, multirun_argv, pin_to_own_gpu
from runners.results_io import MixedGpuError, ResultsFile, read_results
from runners.rows import KEY_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
NEEDS_SUBMITIT = "needs the `launchers` extra (hydra-submitit-launcher, submitit): make install installs it"
# A tiny CPU sweep: the smoke shapes (5 points), three implementations, forward only.
SMOKE = [
    "experiment=cpu_smoke",
    "impl.names=[copy,seeded,eager]",
    "mode=fwd",
    "timer.settings.cpu.reps=2",
    "timer.settings.cpu.warmup=1",
]
PART_1_SHAPES = {"3x17x24", "2x5x8"}  # points 1 and 3 of the smoke preset's five (round robin)


def compose_bench(*overrides, hydra_config=False):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="bench", overrides=list(overrides), return_hydra_config=hydra_config)


def unset_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # recorded first, so the test's changes are undone
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")


@pytest.fixture
def machine_with_gpus(monkeypatch):
    """Pretend this machine has `count` GPUs, nothing restricts which are visible, and the
    launchers extra is installed (these tests read the command line only; they launch nothing)."""

    def pretend(count):
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
        monkeypatch.setattr(launch, "_importable", lambda module: True)
        unset_visible_devices(monkeypatch)

    return pretend


# ---- the command line ----------------------------------------------------------------------------


def test_one_gpu_without_a_launcher_is_one_process_as_before():
    argv = ["bench", "dtype=all", "gpus=1", "shape=seed_sweep"]
    assert multirun_argv(argv) == argv


def test_gpus_become_a_multirun_of_one_part_per_gpu_through_the_local_launcher(machine_with_gpus):
    machine_with_gpus(4)
    assert multirun_argv(["bench", "dtype=all", "gpus=4"]) == [
        "bench", "--multirun", "dtype=all", "gpus=4",
        "launcher=local", "hydra/launcher=local", "part_count=4", "part_index=0,1,2,3",
    ]  # fmt: skip


def test_slurm_submits_one_job_per_gpu_and_never_defaults_to_the_cpu_smoke_sweep(machine_with_gpus, monkeypatch):
    machine_with_gpus(0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a login node without a GPU
    argv = command_line(["bench", "dtype=all", "gpus=2", "launcher=slurm", "hydra.launcher.partition=gpu"])
    assert not any(a.startswith("experiment=") for a in argv)
    assert argv[1] == "--multirun" and argv[-3:] == ["hydra/launcher=slurm", "part_count=2", "part_index=0,1"]
    assert command_line(["bench", "launcher=slurm"])[-2:] == ["part_count=1", "part_index=0"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["gpus=0"], "whole number"),
        (["gpus=2", "launcher=pbs"], "choose from local, slurm"),
        (["gpus=2", "part_index=1"], "drop part_index=1"),
        (["gpus=2", "hydra/launcher=submitit_local"], "drop hydra/launcher=submitit_local"),
        (["gpus=3"], "gpus=3, but this machine shows 2 GPU(s)"),
    ],
)
def test_command_lines_the_launchers_cannot_run_say_why(machine_with_gpus, args, message):
    machine_with_gpus(2)
    with pytest.raises(LaunchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        multirun_argv(["bench", *args])


def test_local_jobs_refuse_gpus_hidden_from_this_shell(machine_with_gpus, monkeypatch):
    machine_with_gpus(2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")  # submitit would give the jobs GPUs 0 and 1
    with pytest.raises(LaunchError, match="CUDA_VISIBLE_DEVICES=2,3"):
        multirun_argv(["bench", "gpus=2"])


def test_without_the_launchers_extra_gpus_says_what_to_install(machine_with_gpus, monkeypatch):
    machine_with_gpus(4)
    monkeypatch.setattr(launch, "_importable", lambda module: False)
    with pytest.raises(LaunchError) as raised:
        multirun_argv(["bench", "gpus=4"])
    assert "launchers` extra" in str(raised.value) and "pip install hydra-submitit-launcher submitit" in str(
        raised.value
    )
    assert multirun_argv(["bench", "gpus=1"]) == ["bench", "gpus=1"]  # the default path needs no extra


# ---- each job on its own GPU ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "launcher, gpus, visible, expected",
    [
        ("local", 4, "0,1,2,3", "2"),  # what submitit's local executor gives every job
        ("local", 4, None, "2"),
        ("slurm", 4, "5", "5"),  # SLURM gave the job its GPU: left alone
        (None, 1, "0,1", "0,1"),  # one process, no launcher: left alone
    ],
)
def test_job_i_keeps_gpu_i_alone(monkeypatch, launcher, gpus, visible, expected):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)  # a fresh job (other tests may have used CUDA)
    if visible is None:
        unset_visible_devices(monkeypatch)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    pin_to_own_gpu(OmegaConf.create({"launcher": launcher, "gpus": gpus, "part_index": 2, "part_count": gpus}))
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == expected


# ---- the launcher configs ------------------------------------------------------------------------


def test_local_launcher_shows_every_job_the_gpus_it_pins_from():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason=NEEDS_SUBMITIT)
    cfg = compose_bench("gpus=4", "launcher=local", "hydra/launcher=local", hydra_config=True)
    assert cfg.hydra.launcher.gpus_per_node == 4 and cfg.hydra.launcher._target_.endswith("LocalLauncher")


def test_slurm_config_asks_for_one_gpu_per_job_with_its_partition_and_time_limit(tmp_path, monkeypatch):
    submitit = pytest.importorskip("submitit", reason=NEEDS_SUBMITIT)
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason=NEEDS_SUBMITIT)
    fake_bin = tmp_path / "bin"  # submitit's SLURM executor looks for srun before it builds anything
    fake_bin.mkdir()
    (fake_bin / "srun").write_text("#!/bin/sh\nexit 1\n")
    (fake_bin / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    cfg = compose_bench(
        "gpus=2", "launcher=slurm", "hydra/launcher=slurm", "hydra.launcher.partition=gpu",
        "hydra.launcher.timeout_min=90", f"hydra.sweep.dir={tmp_path / 'multirun'}", hydra_config=True,
    )  # fmt: skip
    submitted = {}

    class NotSubmitted:
        def results(self):
            return [None]

    def capture(executor, function, *job_arguments):
        submitted["script"] = executor._executor._make_submission_file_text("python -m submitit.core._submit", "u")
        submitted["jobs"] = len(job_arguments[0])
        return [NotSubmitted() for _ in job_arguments[0]]

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", capture)
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)
    launcher.launch([["part_index=0"], ["part_index=1"]], initial_job_idx=0)  # the plugin's own path
    assert submitted["jobs"] == 2
    for line in ("--partition=gpu", "--gpus-per-node=1", "--ntasks-per-node=1", "--time=90"):
        assert f"#SBATCH {line}\n" in submitted["script"]


# ---- merging the parts ---------------------------------------------------------------------------


def key_fields(shape: str, gpu: str) -> dict[str, str]:
    key = dict(workload="micro", impl="copy", mode="fwd", timer="cpu", dtype="fp32", shape=shape, dim="(1,)", p="0.5")
    return {**key, "gpu": gpu, "status": "ok", "p50_ms": "1.0"}


def write_part(path: Path, fields: dict[str, str], samples: str) -> None:
    ResultsFile(path).write_fields(fields, {"samples_ms": samples, "sample_rounds": "0"})


def test_the_callback_merges_only_this_split_and_each_gpu_into_its_own_file(tmp_path):
    write_part(tmp_path / "gpu-a" / "fp32.part-0-of-2.csv", key_fields("1x1x1", "A"), "1")
    write_part(tmp_path / "gpu-a" / "fp32.part-1-of-2.csv", key_fields("2x1x1", "A"), "2")
    write_part(tmp_path / "gpu-a" / "fp32.part-0-of-3.csv", key_fields("3x1x1", "A"), "3")
    write_part(tmp_path / "gpu-b" / "fp32.part-1-of-2.csv", key_fields("4x1x1", "B"), "4")
    lines = merge_split_parts(tmp_path, part_count=2)
    assert len(lines) == 2 and "missing parts [0]" in lines[0] + lines[1]
    assert {r["shape"] for r in ResultsFile(tmp_path / "gpu-a" / "fp32.csv").rows()} == {"1x1x1", "2x1x1"}
    assert {r["gpu"] for r in ResultsFile(tmp_path / "gpu-b" / "fp32.csv").rows()} == {"B"}
    ResultsFile(tmp_path / "gpu-c" / "fp32.part-0-of-2.csv").write_fields(key_fields("5x1x1", "C"), None)
    ResultsFile(tmp_path / "gpu-c" / "fp32.part-1-of-2.csv").write_fields(key_fields("6x1x1", "D"), None)
    with pytest.raises(MixedGpuError):  # parts of two GPUs in one folder never merge into one file
        merge_split_parts(tmp_path / "gpu-c", part_count=2)


# ---- end to end through submitit's local executor ------------------------------------------------


def keys(path: Path) -> list[tuple]:
    return [tuple(row) for row in read_results(path)[list(KEY_COLUMNS)].itertuples(index=False)]


@pytest.fixture(scope="module")
def one_job_keys(tmp_path_factory) -> set[tuple]:
    """The reference: the keys of the same sweep run as one process (no launcher)."""
    try:
        [path] = run(compose_bench(*SMOKE, f"results_dir={tmp_path_factory.mktemp('one-job')}"))
    finally:
        restore_triton_interpret()  # the sweep chose the interpreter (CPU); this fixture outlives one test
    return set(keys(path))


def harness_env() -> dict[str, str]:
    """The caller's environment for a harness subprocess, no GPU shown to it: the repo root first on
    PYTHONPATH, the caller's entries after it (Hydra may be installed by path)."""
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "CUDA_VISIBLE_DEVICES": ""}


def test_harness_subprocesses_keep_the_callers_python_path(monkeypatch):
    # Where Hydra is installed by path (PYTHONPATH), a launch without that path cannot import it.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(["/opt/hydra-wheels", "/opt/more"]))
    assert harness_env()["PYTHONPATH"].split(os.pathsep) == [str(ROOT), "/opt/hydra-wheels", "/opt/more"]
    monkeypatch.delenv("PYTHONPATH")
    assert harness_env()["PYTHONPATH"] == str(ROOT)


def start_split_sweep(tmp_path: Path, log: Path) -> subprocess.Popen:
    """`python -m runners.bench gpus=2 ...` (CPU: no GPU is shown to the jobs), its log in `log`."""
    env = harness_env()
    command = [sys.executable, "-m", "runners.bench", "gpus=2", *SMOKE, f"results_dir={tmp_path / 'results'}"]
    command.append(f"hydra.sweep.dir={tmp_path / 'multirun'}")
    with log.open("w") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen, log: Path) -> int:
    try:
        return process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            print(log.read_text())


def job_process_writing(sweep_dir: Path, part_name: str) -> int:
    """The pid of the job process whose log names `part_name`: the child of its submitit controller,
    whose pid is the local job's id (the name of its folder under .submitit/)."""
    for job_log in (sweep_dir / ".submitit").glob("*/*_0_log.out"):
        if part_name in job_log.read_text():
            controller = job_log.parent.name
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue  # the process ended meanwhile
                if fields[1] == controller:  # fields: state, ppid, ...
                    return int(stat.parent.name)
    raise LookupError(f"no running job writes {part_name}")


@pytest.mark.slow
def test_a_sweep_split_over_two_local_jobs_has_the_keys_of_one_job(tmp_path, one_job_keys):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason=NEEDS_SUBMITIT)
    log = tmp_path / "launch.log"
    assert finish(start_split_sweep(tmp_path, log), log) == 0, log.read_text()
    folder = tmp_path / "results" / "cpu-smoke"
    assert "fp32.csv: 15 rows after merging 2 part files" in log.read_text()  # the callback merged
    parts = [keys(folder / f"fp32.part-{i}-of-2.csv") for i in (0, 1)]
    assert not set(parts[0]) & set(parts[1])  # no point was measured twice
    merged = keys(folder / "fp32.csv")
    assert len(merged) == len(set(merged)) == 15  # 5 points x 3 implementations
    assert set(merged) == set(parts[0]) | set(parts[1]) == one_job_keys


@pytest.mark.slow
def test_a_job_killed_midway_keeps_its_rows_and_running_again_completes_the_set(tmp_path, one_job_keys):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason=NEEDS_SUBMITIT)
    folder = tmp_path / "results" / "cpu-smoke"
    part_1 = folder / "fp32.part-1-of-2.csv"
    log = tmp_path / "launch.log"
    process = start_split_sweep(tmp_path, log)
    try:
        # Kill job 1 once its first point (3 rows) is on disk, before its second (3 more) is.
        deadline = time.monotonic() + 90
        while not (part_1.exists() and len(ResultsFile(part_1)) >= 3):
            assert time.monotonic() < deadline and process.poll() is None, log.read_text()
            time.sleep(0.05)
        os.kill(job_process_writing(tmp_path / "multirun", part_1.name), signal.SIGKILL)
    except BaseException:
        process.kill()
        raise
    assert finish(process, log) != 0  # a job died: the multirun fails, saying which
    killed = read_results(part_1)
    assert 3 <= len(killed) < 6
    first_point = killed["shape"].iloc[0]
    rows_of_first_point = killed[killed["shape"] == first_point].set_index("impl").run_id

    process = start_split_sweep(tmp_path, log)  # the same command again
    assert finish(process, log) == 0, log.read_text()
    resumed = read_results(part_1)
    assert set(resumed["shape"]) == PART_1_SHAPES and len(resumed) == 6
    resumed_first_point = resumed[resumed["shape"] == first_point].set_index("impl").run_id
    assert resumed_first_point.sort_index().equals(rows_of_first_point.sort_index())  # kept, not re-measured
    merged = keys(folder / "fp32.csv")
    assert len(merged) == len(set(merged)) and set(merged) == one_job_keys


def test_missing_parts_names_every_job_that_wrote_nothing():
    parts = [Path(f"fp32.part-{index}-of-4.csv") for index in (0, 2)]
    assert merge.missing_parts(parts) == [1, 3]  # the last part counts too
    assert merge.missing_parts([Path(f"fp32.part-{index}-of-2.csv") for index in (0, 1)]) == []
