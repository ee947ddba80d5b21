"""A sweep in passes (runners/passes.py): the pooling of one key's rounds over passes, the settings
it refuses, and the CPU smoke sweep end to end in two passes, each its own process."""

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from runners import passes
from runners.bench import run
from runners.passes import (
    PASSES_FOLDER,
    PassesError,
    add_throughput,
    pass_config,
    pass_folder,
    passes_of,
    pool_row,
    sweep_id,
)
from runners.results_io import ResultsFile, read_results
from runners.rows import round_medians
from runners.sweep import settings_of

ROOT = Path(__file__).resolve().parents[1]
TINY = [{"dim": [1], "shapes": [[2, 3, 8]]}]


def compose_bench(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            config_name="bench",
            overrides=["experiment=cpu_smoke", f"results_dir={tmp_path}", "impl.names=[copy,seeded]",
                       "mode=[fwd]", "timer.settings.cpu.reps=2", "timer.settings.cpu.warmup=1", *overrides],
        )  # fmt: skip
    cfg.shape.cases = TINY
    return cfg


def pass_row(impl="seeded", status="ok", run_id="a", host_us="10.0", timer="event", p50="0.002"):
    return {"workload": "micro", "impl": impl, "mode": "fwd", "timer": timer, "dtype": "fp32", "shape": "2x3x8",
            "dim": "(1,)", "p": "0.5", "run_id": run_id, "status": status, "error": "" if status == "ok" else "boom",
            "host_us": host_us, "starved": "0.0", "p50_ms": p50, "bytes_moved": "1000000",
            "sm_clock_mhz": "1980.0", "gpu_temp_c": "40.0", "peak_mem_delta_bytes": "512.0"}  # fmt: skip


def samples(times: list[float], rounds: list[int]) -> dict:
    return {"samples_ms": " ".join(map(str, times)), "sample_rounds": " ".join(map(str, rounds))}


def test_pooled_row_takes_every_round_of_every_pass():
    first = samples([1.0, 1.2, 2.0, 2.2], [0, 0, 1, 1])  # round medians 1.1, 2.1
    second = samples([3.0, 3.4, 0.4], [0, 0, 1])  # 3.2, 0.4
    fields, pooled = pool_row(
        [pass_row(run_id="a", host_us="10.0"), pass_row(run_id="b", host_us="30.0")], [first, second]
    )
    assert fields["rounds"] == "4" and fields["n_samples"] == "7"
    assert float(fields["p50_ms"]) == pytest.approx(statistics.median([1.1, 2.1, 3.2, 0.4]))
    assert (float(fields["ci_lo_ms"]), float(fields["ci_hi_ms"])) == pytest.approx((0.4, 3.2))
    assert pooled["sample_rounds"].split() == ["0", "0", "1", "1", "2", "2", "3"]
    times = [float(v) for v in pooled["samples_ms"].split()]
    rounds = [int(v) for v in pooled["sample_rounds"].split()]
    assert round_medians(times, rounds) == pytest.approx([1.1, 2.1, 3.2, 0.4])
    assert fields["run_id"] == "a+b" and float(fields["host_us"]) == pytest.approx(20.0)
    assert fields["bound"] == "gpu"  # 20 us to issue, a p50 of 1.6 ms on the GPU


def test_a_key_that_failed_in_one_pass_keeps_that_pass_row():
    fields, pooled = pool_row([pass_row(), pass_row(status="error", run_id="b")], [samples([1.0], [0]), None])
    assert fields["status"] == "error" and fields["error"] == "boom" and fields["run_id"] == "b"
    assert pooled is None


def test_throughput_and_percent_of_copy_come_from_the_pooled_p50s():
    rows = [pass_row(impl="copy", p50="0.001"), pass_row(impl="seeded", p50="0.002"),
            pass_row(impl="eager", status="error")]  # fmt: skip
    add_throughput(rows)
    assert float(rows[0]["gbps"]) == pytest.approx(1e6 / 1e-6 / 1e9)
    assert float(rows[1]["pct_of_copy"]) == pytest.approx(50.0)
    assert "gbps" not in rows[2]


@pytest.mark.parametrize(
    ("overrides", "passes"),
    [
        ([], 2),  # the micro sweep on the GPU: make bench
        (["shape=elementwise", "dtype=all"], 2),
        (["passes=3"], 3),
        (["workload=model"], 1),
        (["part_count=2", "part_index=1"], 1),  # a split sweep: each job one pass
        (["gpus=2"], 1),
        (["experiment=ci"], 1),  # the gate pairs processes itself
        (["experiment=cpu_smoke"], 1),  # make bench without a GPU
        (["experiment=cpu_smoke", "passes=2"], 2),
    ],
)
def test_the_micro_sweep_runs_in_two_passes_unless_told_otherwise(overrides, passes):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="bench", overrides=overrides)
    assert passes_of(cfg) == passes


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["passes=0"], "passes=0: give a whole number"),
        (["passes=two"], "passes=two: give a whole number"),
        (["workload=model", "passes=2"], "only the micro workload"),
        (["passes=2", "part_count=2"], "split over jobs"),
    ],
)
def test_settings_that_cannot_run_in_passes_are_refused(tmp_path, overrides, message):
    with pytest.raises(PassesError, match=message):
        passes_of(compose_bench(tmp_path, *overrides))


def test_each_pass_writes_under_its_own_folder_and_numbers_its_rounds_after_the_last_pass(tmp_path):
    cfg = compose_bench(tmp_path, "passes=3")
    second = pass_config(cfg, 1)
    assert second.passes == 1 and second.pass_index == 1
    assert Path(second.results_dir) == pass_folder(cfg, 1) == tmp_path / PASSES_FOLDER / sweep_id(cfg) / "pass-1"
    assert settings_of(second, torch.device("cpu")).pass_index == 1
    output = compose_bench(tmp_path, "passes=2", f"output={tmp_path}/ci/candidate.csv")
    expected = tmp_path / "ci" / PASSES_FOLDER / sweep_id(output) / "pass-0" / "candidate.csv"
    assert Path(pass_config(output, 0).output) == expected


def test_the_same_sweep_finds_its_passes_again_and_another_sweep_gets_its_own(tmp_path):
    cfg = compose_bench(tmp_path, "passes=2")
    assert sweep_id(cfg) == sweep_id(compose_bench(tmp_path, "passes=3"))
    assert sweep_id(cfg) != sweep_id(compose_bench(tmp_path, "passes=2", "mode=[fwd,bwd]"))


@pytest.mark.slow  # two sweeps in processes of their own
def test_the_smoke_sweep_in_two_passes_pools_each_key_over_both(tmp_path, capsys):
    cfg = compose_bench(tmp_path, "passes=2")
    rounds = int(cfg.timer.rounds)
    (target,) = run(cfg)
    assert target == tmp_path / "cpu-smoke" / "fp32.csv"
    pooled = read_results(target)
    (retired,) = (tmp_path / PASSES_FOLDER).glob(f"{sweep_id(cfg)}-pooled-*")  # kept, never resumed from
    passes = [read_results(retired / f"pass-{i}" / "cpu-smoke" / "fp32.csv") for i in range(2)]
    assert len(pooled) == len(passes[0]) == len(passes[1]) > 0
    assert (pooled.status == "ok").all() and (pooled["rounds"] == 2 * rounds).all()
    assert all((rows["rounds"] == rounds).all() for rows in passes)
    for _, row in pooled.iterrows():
        run_ids = [rows.set_index(["impl", "mode", "timer"]).loc[(row.impl, row["mode"], row.timer), "run_id"]
                   for rows in passes]  # fmt: skip
        assert row.run_id == "+".join(run_ids)
    out = capsys.readouterr().out
    assert "rows pooled from 2 passes" in out and "pooled over 2 passes:" in out
    assert "CPU SMOKE SWEEP" in out.split("pooled over")[-1]  # the pooled summary is labelled too
    assert len(ResultsFile(target).rows()) == len(pooled)


@pytest.mark.slow  # two sweeps of two passes, each pass a process: about 15 s
def test_a_sweep_in_passes_run_again_measures_afresh_never_pooling_an_earlier_runs_passes(tmp_path):
    cfg = compose_bench(tmp_path, "passes=2")
    (target,) = run(cfg)
    first = set(read_results(target).run_id)
    target.unlink()
    run(cfg)
    again = set(read_results(target).run_id)
    assert again and not again & first  # measured again: no run id of the first run's passes
    assert len(list((tmp_path / PASSES_FOLDER).glob(f"{sweep_id(cfg)}-pooled-*"))) == 2


def test_the_pass_folder_belongs_to_one_state_of_the_code(tmp_path, monkeypatch):
    cfg = compose_bench(tmp_path, "passes=2")
    before = sweep_id(cfg)
    monkeypatch.setattr(passes, "code_state", lambda sha=None: "0123abc-dirty-456def")
    assert sweep_id(cfg) != before


@pytest.mark.slow  # a sweep of two passes, each a process: about 7 s
def test_a_file_edited_while_the_passes_run_moves_nothing(tmp_path, monkeypatch):
    # The code's state names the pass folder; an edit between passes (a new dirty digest) used to
    # send the pooling to another folder and fail after every pass was measured.
    states = iter(f"0123abc-dirty-{n}" for n in range(100))
    monkeypatch.setattr(passes, "code_state", lambda sha=None: next(states))
    (target,) = run(compose_bench(tmp_path, "passes=2"))
    assert set(read_results(target).status) == {"ok"}
    assert len(list((tmp_path / PASSES_FOLDER).glob("*-pooled-*"))) == 1


def test_a_pass_that_fails_stops_the_sweep_and_says_so(tmp_path):
    cfg = compose_bench(tmp_path, "passes=2")
    with open_dict(cfg):  # every build fails, so every row of the first pass is an error: it exits 1
        cfg.impl.options = {"copy": {"no_such_option": 1}, "seeded": {"no_such_option": 1}}
    with pytest.raises(PassesError, match="pass 1 of 2 exited with status"):
        run(cfg)
    assert not (tmp_path / "cpu-smoke").exists()


@pytest.mark.slow  # two sweeps in processes of their own
def test_the_closing_summary_counts_the_pooled_rows_only(tmp_path, capsys):
    run(compose_bench(tmp_path, "mode=[bwd]"))  # rows of another sweep already in the results file
    capsys.readouterr()
    cfg = compose_bench(tmp_path, "passes=2")
    (target,) = run(cfg)
    pooled = read_results(target)
    fwd = int((pooled["mode"] == "fwd").sum())
    assert fwd > 0 and (pooled["mode"] == "bwd").sum() > 0
    summary = capsys.readouterr().out.split("pooled over 2 passes:")[-1]
    assert f"rows this run: {fwd} ok" in summary


def process_chain(tmp_path: Path, generations: int) -> tuple[subprocess.Popen, Path]:
    """A chain of `generations` + 1 processes, the last watching its ancestor `generations` levels up
    (runners.lifetime) and writing its pid to a file; returns the first process and that file."""
    pid_file = tmp_path / "watcher.pid"
    code = ("import os, time; from runners.lifetime import exit_with_ancestor; "
            f"assert exit_with_ancestor({generations}); open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
            "time.sleep(60)")  # fmt: skip
    for _ in range(generations):  # each level starts the next and waits for it
        code = f"import subprocess, sys; subprocess.call([sys.executable, '-c', {code!r}])"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code], env=env), pid_file


def wait_for(condition, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("generations", [1, 2], ids=["a pass and its sweep", "a local job and its Hydra process"])
def test_a_child_dies_with_the_ancestor_it_watches_even_when_that_one_is_killed(tmp_path, generations):
    top, pid_file = process_chain(tmp_path, generations)
    try:
        assert wait_for(lambda: pid_file.exists() and pid_file.read_text())
        watcher = int(pid_file.read_text())
        assert alive(watcher)
        top.kill()  # SIGKILL: no handler of the top process runs
        top.wait()
        assert wait_for(lambda: not alive(watcher), timeout_s=5)
    finally:
        top.kill()


def test_each_pass_is_started_to_die_with_the_sweep(tmp_path, monkeypatch):
    commands = []
    monkeypatch.setattr(passes.subprocess, "call", lambda command: commands.append(command) or 1)
    with pytest.raises(PassesError):
        run(compose_bench(tmp_path, "passes=2"))
    assert commands and commands[0][-1] == passes.WITH_PARENT
