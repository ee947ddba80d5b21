"""The A/B job: the paired verdict on hand-made jobs (every gate-integrity case), the command lines,
the planted slowdown, and the plumbing end to end on the CPU smoke sweep (HEAD against this tree)."""

import csv
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from reports import ab as judge
from reports.markdown import STEP_SUMMARY_LIMIT, capped
from runners import ab as runner
from runners.rows import KEY_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ("64x1x768", "64x256x768", "64x8192x768")


def key(impl: str, shape: str, timer: str = "event", mode: str = "fwd") -> dict:
    return dict(workload="micro", impl=impl, mode=mode, timer=timer, dtype="fp32", shape=shape, dim="(1,)", p="0.5")


def write_run(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*KEY_COLUMNS, "status", "p50_ms", "error"])
        writer.writeheader()
        writer.writerows(rows)


def make_job(folder: Path, ref_p50, cand_p50, pairs: int = 4, cand_override=None) -> Path:
    """A job of `pairs` pairs: every key of (seeded, copy) x SHAPES x (event, cuda_graph); p50 of
    side s, pair k, key: the callables' value. `cand_override(rows, pair)` may edit candidate rows."""
    runs_dir = folder / "runs"
    runs_dir.mkdir(parents=True)
    timers = ("event", "cuda_graph")
    keys = [key(impl, shape, timer) for impl in ("seeded", "copy") for shape in SHAPES for timer in timers]
    runs = []
    for pair in range(pairs):
        for side, p50 in (("ref", ref_p50), ("candidate", cand_p50)):
            rows = [{**k, "status": "ok", "p50_ms": repr(p50(k, pair)), "error": ""} for k in keys]
            if side == "candidate" and cand_override:
                rows = cand_override(rows, pair)
            path = runs_dir / f"{pair}-{side}.csv"
            write_run(path, rows)
            runs.append({"pair": pair, "side": side, "csv": f"runs/{path.name}", "exit": 0, "seconds": 1.0})
    manifest = {
        "config": {"seed": 0, "sweep": "experiment=ci"},
        "sides": {"ref": {"label": "aaaa", "tree": "x"}, "candidate": {"label": "bbbb", "tree": "y"}},
        "orders": [["ref", "candidate"]] * pairs,
        "runs": runs,
    }
    (folder / "ab.json").write_text(json.dumps(manifest))
    return folder


def noise(k: dict, pair: int, spread: float = 0.01) -> float:
    """A deterministic wobble of +-spread, different per key and pair."""
    return 1 + spread * math.sin(7 * pair + 3 * SHAPES.index(k["shape"]) + len(k["timer"]))


def base(k: dict) -> float:
    return {"64x1x768": 0.005, "64x256x768": 0.03, "64x8192x768": 0.77}[k["shape"]]


def verdict_of(folder: Path, *args: str) -> tuple[int, str]:
    status = judge.main([f"dir={folder}", *args])
    return status, (folder / "ab.md").read_text() if (folder / "ab.md").exists() else ""


def test_same_code_within_noise_passes(tmp_path):
    folder = make_job(tmp_path, lambda k, i: base(k) * noise(k, i), lambda k, i: base(k) * noise(k, i + 1))
    status, text = verdict_of(folder)
    assert status == judge.EXIT_PASS and "**PASS**" in text
    assert "regressed" not in text.split("Keys:")[1].split("\n")[0]


def test_a_ten_percent_slowdown_of_the_gated_impl_fails_naming_the_keys(tmp_path):
    def planted(k, i):
        return base(k) * noise(k, i + 1) * (1.10 if k["impl"] == "seeded" else 1.0)

    folder = make_job(tmp_path, lambda k, i: base(k) * noise(k, i), planted)
    status, text = verdict_of(folder)
    assert status == judge.EXIT_FAIL and "**FAIL**: 6 gated key(s)" in text
    assert "seeded fwd event fp32 64x8192x768" in text


def test_a_slower_ungated_impl_is_reported_not_failed(tmp_path):
    def copy_slower(k, i):
        return base(k) * noise(k, i + 1) * (1.5 if k["impl"] == "copy" else 1.0)

    status, text = verdict_of(make_job(tmp_path, lambda k, i: base(k) * noise(k, i), copy_slower))
    assert status == judge.EXIT_PASS and "| copy fwd event fp32 64x8192x768 dim (1,) | regressed | no |" in text


def test_noisy_keys_are_named_with_the_change_they_could_have_detected(tmp_path):
    def wild(k, i):  # the smallest shape's candidate swings by +-40% from pair to pair
        return base(k) * (1 + 0.4 * (-1) ** i if k["shape"] == "64x1x768" else noise(k, i + 1))

    status, text = verdict_of(make_job(tmp_path, lambda k, i: base(k) * noise(k, i), wild))
    assert status == judge.EXIT_PASS
    noisy = [line for line in text.splitlines() if "| noisy |" in line]
    assert len(noisy) == 4 and all("64x1x768" in line for line in noisy)
    assert all(float(line.split("|")[8].strip().rstrip("%")) > 5 for line in noisy)  # detectable change


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda row: None, "missing"),
        (lambda row: {**row, "status": "error", "p50_ms": "nan", "error": "RuntimeError: boom"}, "error"),
        (lambda row: {**row, "status": "oom", "p50_ms": "nan"}, "oom"),
        (lambda row: {**row, "p50_ms": "nan"}, "ok: p50 nan"),
        (lambda row: {**row, "p50_ms": "inf"}, "ok: p50 inf"),
        (lambda row: {**row, "p50_ms": "-1.0"}, "ok: p50 -1.0"),
        (lambda row: {**row, "p50_ms": "0"}, "ok: p50 0.0"),
    ],
)
def test_a_key_ok_in_ref_but_broken_in_one_candidate_fails_the_gate(tmp_path, damage, reason):
    target = key("seeded", "64x256x768", "cuda_graph")

    def break_one(rows, pair):
        if pair != 2:
            return rows
        edited = [damage(row) if all(row[c] == target[c] for c in target) else row for row in rows]
        return [row for row in edited if row is not None]

    folder = make_job(tmp_path, lambda k, i: base(k), lambda k, i: base(k), cand_override=break_one)
    status, text = verdict_of(folder)
    assert status == judge.EXIT_FAIL
    assert "seeded fwd cuda_graph fp32 64x256x768 dim (1,) (broken)" in text
    assert f"1 of 4 candidate processes: {reason}" in text


def test_keys_not_ok_in_ref_are_listed_not_judged(tmp_path):
    folder = make_job(tmp_path, lambda k, i: base(k), lambda k, i: base(k))
    path = folder / "runs" / "0-ref.csv"
    rows = list(csv.DictReader(path.open()))
    rows[0]["status"] = "error"
    write_run(path, rows)
    status, text = verdict_of(folder)
    assert status == judge.EXIT_PASS and "1 not ok in ref (not judged)" in text


def test_fewer_than_two_complete_pairs_cannot_be_judged(tmp_path, capsys):
    folder = make_job(tmp_path, lambda k, i: base(k), lambda k, i: base(k), pairs=2)
    manifest = json.loads((folder / "ab.json").read_text())
    manifest["runs"] = manifest["runs"][:-1]  # the last candidate process never ran
    (folder / "ab.json").write_text(json.dumps(manifest))
    assert judge.main([f"dir={folder}"]) == judge.EXIT_UNUSABLE
    assert "1 complete pair(s)" in capsys.readouterr().err


def test_no_gated_key_judged_cannot_be_judged(tmp_path):
    folder = make_job(tmp_path, lambda k, i: base(k) * noise(k, i), lambda k, i: base(k) * noise(k, i + 1))
    status, text = verdict_of(folder, "gate_impls=[nothing]")
    assert status == judge.EXIT_UNUSABLE and "**CANNOT JUDGE**" in text


def test_markdown_refuses_to_overwrite_an_input(tmp_path, capsys):
    folder = make_job(tmp_path, lambda k, i: base(k), lambda k, i: base(k))
    before = (folder / "runs" / "1-ref.csv").read_text()
    for target in ("runs/1-ref.csv", "ab.json", "runs/1-ref.samples.csv"):
        assert judge.main([f"dir={folder}", f"markdown={folder / target}"]) == judge.EXIT_UNUSABLE
        assert "would overwrite an input" in capsys.readouterr().err
    assert (folder / "runs" / "1-ref.csv").read_text() == before


def test_bad_arguments_are_refused(capsys):
    for args in (["threshold=x"], ["bogus=1"], ["confidence=1.5"], ["dir"]):
        assert judge.main(args) == judge.EXIT_UNUSABLE
    assert "cannot judge" in capsys.readouterr().err
    with pytest.raises(runner.ABError, match="pairs"):
        runner.run(runner.ABConfig(ref="HEAD", pairs=1))
    with pytest.raises(runner.ABError, match="one of them"):
        runner.run(runner.ABConfig(ref="HEAD", ref_dir="x"))


def test_the_step_summary_stays_under_githubs_limit(tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    long_text = "".join(f"| row {i} | {'x' * 200} |\n" for i in range(20000))  # ~4.3 MB
    assert len(capped(long_text).encode()) <= STEP_SUMMARY_LIMIT
    folder = make_job(tmp_path / "job", lambda k, i: base(k), lambda k, i: base(k) * 1.2)
    verdict_of(folder)
    assert 0 < summary.stat().st_size <= STEP_SUMMARY_LIMIT and "**FAIL**" in summary.read_text()


# ---- host keys: judged on host_ratio -------------------------------------------------------------


def make_host_job(folder: Path, cand_ratio: float, pairs: int = 4, ref_has_ratio: bool = True) -> Path:
    """A job whose processes run at host speeds 0.6x-1.4x of each other (as the H200's host CPU did),
    with seeded's host ratio to copy 0.85 on the ref side and `cand_ratio` on the candidate side
    (times a 1% wobble); event keys unchanged. `ref_has_ratio=False`: the ref's CSVs predate the column."""
    runs_dir = folder / "runs"
    runs_dir.mkdir(parents=True)
    keys = [key(impl, "64x1x768", "host", mode) for impl in ("seeded", "copy") for mode in ("fwd", "fwd_bwd")]
    keys += [key("seeded", shape) for shape in SHAPES]
    runs = []
    for pair in range(pairs):
        for side_index, (side, ratio) in enumerate((("ref", 0.85), ("candidate", cand_ratio))):
            speed = 1 + 0.4 * math.sin(3 * pair + 2 * side_index)  # the host CPU's speed in this process
            rows = []
            for k in keys:
                own = (ratio if k["impl"] == "seeded" else 1.0) * noise(k, pair)
                p50 = 0.02 * speed * own if k["timer"] == "host" else base(k) * noise(k, pair)
                host_ratio = repr(own) if k["timer"] == "host" and (side == "candidate" or ref_has_ratio) else ""
                rows.append({**k, "status": "ok", "p50_ms": repr(p50), "error": "", "host_ratio": host_ratio})
            path = runs_dir / f"{pair}-{side}.csv"
            columns = [*KEY_COLUMNS, "status", "p50_ms", "error"] + (["host_ratio"] if side == "candidate"
                                                                      or ref_has_ratio else [])  # fmt: skip
            with path.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
            runs.append({"pair": pair, "side": side, "csv": f"runs/{path.name}", "exit": 0, "seconds": 1.0})
    manifest = {"config": {"seed": 0, "sweep": "experiment=ci"},
                "sides": {"ref": {"label": "aaaa", "tree": "x"}, "candidate": {"label": "bbbb", "tree": "y"}},
                "orders": [["ref", "candidate"]] * pairs, "runs": runs}  # fmt: skip
    (folder / "ab.json").write_text(json.dumps(manifest))
    return folder


def test_host_keys_pass_when_only_the_hosts_speed_moved(tmp_path):
    status, text = verdict_of(make_host_job(tmp_path, cand_ratio=0.85))
    assert status == judge.EXIT_PASS, text
    assert "seeded fwd host fp32 64x1x768" in text and "host ratio: ref 0.8" in text


def test_a_ten_percent_host_slowdown_fails_naming_the_host_key(tmp_path):
    status, text = verdict_of(make_host_job(tmp_path, cand_ratio=0.85 * 1.10))
    assert status == judge.EXIT_FAIL
    headline = text.splitlines()[2]
    assert "seeded fwd host" in headline and "seeded fwd_bwd host" in headline and "event" not in headline


def test_the_compiled_ops_host_keys_are_reported_not_gated_unless_asked(tmp_path):
    # The compiled call's host ratio moved 10-22% between two processes of the same code: by default
    # a 10% rise of it is reported (regressed, not gated) and the job passes; named in
    # host_gate_impls it fails the job as the eager op's does.
    folder = make_host_job(tmp_path, cand_ratio=0.85 * 1.10)
    for path in (folder / "runs").glob("*.csv"):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        frame.loc[(frame.impl == "seeded") & (frame.timer == "host"), "impl"] = "seeded:compile"
        frame.to_csv(path, index=False)
    status, text = verdict_of(folder)
    assert status == judge.EXIT_PASS, text
    assert "seeded:compile (event/cuda_graph)" in text and "seeded (event/cuda_graph/host)" in text
    assert "seeded:compile fwd host fp32 64x1x768 dim (1,) | regressed | no" in text
    status, text = verdict_of(folder, "host_gate_impls=[seeded,seeded:compile]")
    assert status == judge.EXIT_FAIL and "seeded:compile fwd host" in text.splitlines()[2], text


def test_event_keys_are_gated_only_where_the_host_timer_did_not_run(tmp_path):
    """The seeded op's event key at 64x1x768, where host keys exist, 20% slower in every candidate:
    reported, not gated (the host and cuda_graph keys gate that point); at 64x256x768 it fails."""
    def slower_event_at(folder: Path, shape: str) -> Path:
        for path in (folder / "runs").glob("*-candidate.csv"):
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            at = (frame.impl == "seeded") & (frame.timer == "event") & (frame["shape"] == shape)
            frame.loc[at, "p50_ms"] = (frame.loc[at, "p50_ms"].astype(float) * 1.2).map(repr)
            frame.to_csv(path, index=False)
        return folder

    status, text = verdict_of(slower_event_at(make_host_job(tmp_path / "a", cand_ratio=0.85), "64x1x768"))
    assert status == judge.EXIT_PASS, text
    assert "seeded fwd event fp32 64x1x768 dim (1,) | regressed | no" in text
    assert "event keys not gated where the host timer ran" in text
    status, text = verdict_of(slower_event_at(make_host_job(tmp_path / "b", cand_ratio=0.85), "64x256x768"))
    assert status == judge.EXIT_FAIL and "seeded fwd event fp32 64x256x768" in text.splitlines()[2], text


def test_host_keys_without_the_ratio_in_the_ref_are_listed_not_judged(tmp_path):
    status, text = verdict_of(make_host_job(tmp_path, cand_ratio=0.85 * 1.5, ref_has_ratio=False))
    assert status == judge.EXIT_PASS, text  # the event keys are judged; the host keys cannot be
    assert "Host keys not judged: seeded fwd host" in text and "no host_ratio in every process" in text


def test_pair_orders_are_seeded_and_cover_both_orders():
    orders = runner.pair_orders(8, seed=3)
    assert orders == runner.pair_orders(8, seed=3)
    assert {tuple(o) for o in orders} == {("ref", "candidate"), ("candidate", "ref")}


def test_pair_orders_are_counterbalanced_abba():
    for seed in range(6):
        orders = runner.pair_orders(6, seed)
        assert orders[1::2] == [order[::-1] for order in orders[0::2]]  # every pair the other order
        assert sum(order[0] == "ref" for order in orders) == 3  # each side first in half the pairs
    firsts = {runner.pair_orders(2, seed)[0] for seed in range(20)}
    assert firsts == {("ref", "candidate"), ("candidate", "ref")}  # the seed draws the first


def test_pairs_are_added_two_at_a_time_while_a_gated_key_is_blind_within_max_and_budget():
    from runners.ab_stopping import pairs_to_add

    assert pairs_to_add(4, 10, blind=0, elapsed_s=100, pair_s=25, budget_s=420) == 0  # every key judged
    assert pairs_to_add(4, 10, blind=1, elapsed_s=100, pair_s=25, budget_s=420) == 2
    assert pairs_to_add(10, 10, blind=1, elapsed_s=100, pair_s=10, budget_s=420) == 0  # max_pairs reached
    assert pairs_to_add(9, 10, blind=1, elapsed_s=100, pair_s=10, budget_s=420) == 1
    assert pairs_to_add(8, 10, blind=3, elapsed_s=400, pair_s=50, budget_s=420) == 0  # two more would overrun


def test_the_next_pairs_are_predicted_from_the_pairs_after_the_first_which_compiles():
    from runners.ab_stopping import expected_pair_s

    # The H200 job at git 850c7e5: 111 s for the first pair (compiling), then 46, 53 and 49 s.
    assert expected_pair_s([111.5, 45.6, 53.4, 48.6]) == pytest.approx(49.2)
    assert expected_pair_s([111.5]) == 111.5  # nothing else to go on yet
    with pytest.raises(ValueError, match="no pair"):
        expected_pair_s([])
    # With the mean of all four (65 s a pair) two more pairs after 259 s overran 360 s; now they fit.
    from runners.ab_stopping import pairs_to_add

    assert pairs_to_add(4, 8, blind=6, elapsed_s=259, pair_s=65.0, budget_s=360) == 0
    assert pairs_to_add(4, 8, blind=6, elapsed_s=259, pair_s=49.2, budget_s=360) == 2


def test_a_pairs_duration_is_its_processes_together():
    runs = [dict(pair=0, seconds=58.2), dict(pair=0, seconds=53.3), dict(pair=1, seconds=23.5),
            dict(pair=1, seconds=22.1), dict(pair="warmup", seconds=9.0)]  # fmt: skip
    assert runner.pair_durations(runs, 2) == [pytest.approx(111.5), pytest.approx(45.6)]


@pytest.mark.parametrize("noisy, expected_pairs", [(False, 4), (True, 8)])
def test_the_job_adds_pairs_until_no_gated_key_is_blind_or_the_max(tmp_path, monkeypatch, noisy, expected_pairs):
    """The stopping rule end to end, with each process a CSV written at once: a candidate whose
    gated key swings +-30% from process to process stays noisy, so pairs are added up to max_pairs."""
    calls = []

    def fake_sweep(side, csv_path, cfg):
        pair = len(calls) // 2
        calls.append(side.name)
        swing = 1 + (0.3 * math.sin(5 * len(calls)) if noisy and side.name == "candidate" else 0.001 * (pair % 3))
        write_run(csv_path, [{**key("seeded", "64x256x768"), "status": "ok", "p50_ms": repr(0.03 * swing),
                              "error": ""}])  # fmt: skip
        return 0, 1.0

    monkeypatch.setattr(runner, "run_sweep", fake_sweep)
    out = tmp_path / "ab"
    assert runner.main([f"ref_dir={ROOT}", f"candidate={ROOT}", "pairs=4", "max_pairs=8", f"out={out}"]) == 0
    manifest = json.loads((out / "ab.json").read_text())
    assert len(manifest["orders"]) == expected_pairs and len(calls) == 2 * expected_pairs
    assert [run["side"] for run in manifest["runs"][:4]] == [*manifest["orders"][0], *manifest["orders"][1]]
    status, _ = verdict_of(out)
    assert status == (judge.EXIT_UNUSABLE if noisy else judge.EXIT_PASS)  # noisy: no gated key judged


# ---- the planted slowdown ---------------------------------------------------------------------------


def copy_of_this_tree(target: Path) -> Path:
    """This working tree's code as a throwaway folder (what gate_check.sh plants into)."""
    skip = shutil.ignore_patterns(".git", ".venv", ".ab", ".pkg", ".whl", "results", "__pycache__", "*.pyc")
    return Path(shutil.copytree(ROOT, target / "tree", ignore=skip))


def head_is_this_tree() -> bool:
    """Whether git's HEAD holds this working tree's code (not so on a machine given a copy of the
    tree beside an older .git)."""
    done = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "kernels", "runners", "baselines", "conf"],
                          cwd=ROOT, capture_output=True)  # fmt: skip
    return done.returncode == 0


@pytest.mark.slow
def test_the_planted_kernel_is_slower_on_paper_and_computes_the_same(tmp_path):
    tree = copy_of_this_tree(tmp_path)
    script = ROOT / "scripts" / "plant_slowdown.py"
    done = subprocess.run([sys.executable, str(script), str(tree), "--every", "5"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "PLANTED SLOWDOWN" in runner_kernel_text(tree) and "volatile=True" in runner_kernel_text(tree)
    again = subprocess.run([sys.executable, str(script), str(tree), "--every", "5"], capture_output=True, text=True)
    assert again.returncode != 0 and "planted already" in again.stderr
    refused = subprocess.run([sys.executable, str(script), str(ROOT), "--every", "5"], capture_output=True, text=True)
    assert refused.returncode != 0 and "refusing" in refused.stderr
    # the planted kernel, run by the Triton interpreter on CPU, gives the unplanted kernel's output
    check = (
        "import torch\n"
        "from kernels.launch import dropout_triton\n"
        "from kernels.cpu_path import dropout_reference\n"
        "x = torch.randn(8, 5, 64)\n"
        "for dims in ((1,), ()):\n"
        "    assert torch.equal(dropout_triton(x, 7, 0.5, dims), dropout_reference(x, 7, 0.5, dims)), dims\n"
        "print('same')\n"
    )
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(tree)}  # Triton's interpreter, on CPU
    ran = subprocess.run([sys.executable, "-c", check], cwd=tree, env=env, capture_output=True, text=True)
    assert ran.returncode == 0 and "same" in ran.stdout, ran.stderr[-2000:]


def runner_kernel_text(tree: Path) -> str:
    return "".join(path.read_text() for path in (tree / "kernels").rglob("*.py"))


# ---- end to end on CPU ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not head_is_this_tree(), reason="git's HEAD is not this working tree's code here")
def test_ab_of_head_against_this_tree_passes_on_the_cpu_smoke_sweep(tmp_path):
    """The plumbing: two trees, alternating processes, the manifest, the verdict. CPU times are no GPU
    figures, so the gate runs on the cpu timer with a wide threshold: it shows the job works. Five
    pairs, not three: on a 2-core CI machine a whole process now and then runs 1.7x slower (the host's
    own speed), and with three pairs one such process widened every key's interval past the
    threshold (every key too noisy to judge: exit 2); more processes, not more samples, narrow it."""
    sweep = "experiment=cpu_smoke impl.names=[copy,seeded] mode=fwd timer.settings.cpu.reps=30 timer.rounds=3 p=0.5"
    out = tmp_path / "ab"
    status = runner.main(["ref=HEAD", f"candidate={ROOT}", "pairs=5", f"out={out}", f"sweep={sweep}"])
    assert status == 0
    manifest = json.loads((out / "ab.json").read_text())
    assert [r["exit"] for r in manifest["runs"]] == [0] * 10  # 5 pairs
    assert manifest["sides"]["ref"]["label"] == runner.git("rev-parse", "HEAD")
    verdict = judge.main([f"dir={out}", "gate_timers=[cpu]", "threshold=0.9"])
    text = (out / "ab.md").read_text()
    assert verdict == judge.EXIT_PASS, text
    assert "5 pairs" in text and "seeded fwd cpu fp32" in text


@pytest.mark.parametrize(
    "manifest",
    ["{not json", '{"runs": 5}', "[]", '{"config": {}, "sides": {}, "orders": [], "runs": [{"pair": "x"}]}'],
    ids=["not json", "runs not a list", "a list", "a run without its fields"],
)
def test_a_corrupt_manifest_cannot_be_judged_and_is_named(tmp_path, capsys, manifest):
    folder = make_job(tmp_path, lambda k, i: base(k), lambda k, i: base(k))
    (folder / "ab.json").write_text(manifest)
    assert judge.main([f"dir={folder}"]) == judge.EXIT_UNUSABLE
    err = capsys.readouterr().err
    assert f"{folder / 'ab.json'} is not the manifest runners.ab writes" in err and "Traceback" not in err


def test_a_process_whose_csv_is_not_there_is_named_in_the_verdict(tmp_path, capsys):
    folder = make_job(tmp_path, lambda k, i: base(k) * noise(k, i), lambda k, i: base(k) * noise(k, i))
    (folder / "runs" / "2-candidate.csv").unlink()
    judge.main([f"dir={folder}"])  # its keys count as missing: the verdict is the gate's, the file is named
    assert f"pair 2 candidate: {folder / 'runs' / '2-candidate.csv'} is not there" in capsys.readouterr().out


def test_the_job_refuses_an_out_folder_it_did_not_make(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runner, "run_sweep", lambda side, csv_path, cfg: (0, 0.0))  # no process is started
    out = tmp_path / "mine"
    (out / "runs").mkdir(parents=True)
    (out / "runs" / "notes.txt").write_text("a user's file")
    status = runner.main([f"ref_dir={ROOT}", f"candidate={ROOT}", f"out={out}"])
    assert status == 2 and "was not made by runners.ab" in capsys.readouterr().err
    assert (out / "runs" / "notes.txt").read_text() == "a user's file"


def test_the_job_takes_a_new_folder_as_its_own_and_may_reuse_it(tmp_path):
    out = tmp_path / "job"
    runner.claim_out_folder(out)
    (out / "runs").mkdir()
    (out / "ab.json").write_text("{}")
    runner.claim_out_folder(out)  # a folder of its own, from an earlier job: taken again
    assert (out / runner.MARKER).is_file()
