"""The results writer: keyed rows appended under a lock (two processes writing one file lose nothing),
the last row per key, compaction, resume of failed rows, damaged and corrupted files, temporary files
of killed rewrites, older column sets, samples beside the CSV, merge, GPU separation."""

import csv
import dataclasses
import math
import os
import re
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from runners import results_io
from runners.merge import find_parts, missing_parts
from runners.merge import main as merge_main
from runners.results_io import MixedGpuError, ResultsFile, merge, read_results, row_fields, samples_path_for
from runners.rows import COLUMNS, KEY_COLUMNS, SAMPLES_COLUMNS, ResultRow

ROOT = Path(__file__).resolve().parents[1]


def make_row(impl="seeded", p=0.5, p50=1.0, gpu="NVIDIA H200", run_id="a", samples=(1.0, 2.0)):
    return ResultRow(
        run_id=run_id, gpu=gpu, impl=impl, mode="fwd", timer="event", dtype="fp16", shape="64x1x768",
        dim="(1,)", p=p, numel=49152, p50_ms=p50, n_samples=len(samples), samples_ms=list(samples),
    )  # fmt: skip


def test_upsert_replaces_rows_with_the_same_key_and_keeps_the_rest(tmp_path):
    path = tmp_path / "nvidia-h200" / "fp16.csv"
    results = ResultsFile(path)
    results.write(make_row("seeded", p50=1.0, run_id="first"))
    results.write(make_row("eager", p50=2.0, run_id="first"))
    results.write(make_row("seeded", p50=3.0, run_id="second", samples=(3.0,)))
    frame = read_results(path)
    assert list(frame.columns) == list(COLUMNS)
    assert frame.set_index("impl").loc["seeded", "p50_ms"] == 3.0
    assert frame.set_index("impl").loc["eager", "run_id"] == "first"
    assert len(frame) == 2
    samples = read_results(samples_path_for(path)).set_index("impl")
    assert samples.loc["seeded", "samples_ms"] == "3" and samples.loc["eager", "samples_ms"] == "1 2"
    assert sorted(p.name for p in path.parent.iterdir()) == [".fp16.csv.lock", "fp16.csv", "fp16.samples.csv"]


def test_reloaded_file_knows_its_keys(tmp_path):
    path = tmp_path / "fp16.csv"
    ResultsFile(path).write(make_row(p=0.1))
    again = ResultsFile(path)
    assert again.has(make_row(p=0.1).key())
    assert not again.has(make_row(p=0.2).key())


def test_values_round_trip_with_their_types(tmp_path):
    path = tmp_path / "fp16.csv"
    ResultsFile(path).write(make_row(p50=0.123456789012345))
    frame = read_results(path)
    assert frame.p50_ms[0] == 0.123456789012345 and math.isnan(frame.gbps[0])
    assert frame.numel.dtype == "int64" and frame.git_dirty.dtype == bool and frame.error[0] == ""


def test_rows_of_another_gpu_are_refused(tmp_path):
    results = ResultsFile(tmp_path / "fp16.csv")
    results.write(make_row(gpu="NVIDIA H200"))
    with pytest.raises(MixedGpuError):
        results.write(make_row(impl="eager", gpu="NVIDIA A100"))
    assert len(ResultsFile(tmp_path / "fp16.csv")) == 1


def test_merge_joins_parts_and_keeps_their_samples(tmp_path):
    folder = tmp_path / "nvidia-h200"
    ResultsFile(folder / "fp16.part-0-of-2.csv").write(make_row("seeded", samples=(1.0,)))
    ResultsFile(folder / "fp16.part-1-of-2.csv").write(make_row("eager", samples=(2.0,)))
    ResultsFile(folder / "fp16.csv").write(make_row("copy", samples=(0.5,)))  # an earlier full run
    merged = merge(folder / "fp16.csv", [folder / "fp16.part-0-of-2.csv", folder / "fp16.part-1-of-2.csv"])
    assert sorted(r["impl"] for r in merged.rows()) == ["copy", "eager", "seeded"]
    assert len(read_results(samples_path_for(folder / "fp16.csv"))) == 3


def test_merge_command_finds_part_files(tmp_path, capsys):
    folder = tmp_path / "nvidia-h200"
    ResultsFile(folder / "bf16.part-0-of-3.csv").write(make_row("seeded"))
    ResultsFile(folder / "bf16.part-2-of-3.csv").write(make_row("eager"))
    parts = find_parts(tmp_path)
    assert list(parts) == [folder / "bf16.csv"]
    assert missing_parts(parts[folder / "bf16.csv"]) == [1]
    assert merge_main([str(tmp_path)]) == 0
    assert "missing parts [1]" in capsys.readouterr().out
    assert len(read_results(folder / "bf16.csv")) == 2
    assert merge_main([str(tmp_path)]) == 0  # merging again changes nothing
    assert len(read_results(folder / "bf16.csv")) == 2


def test_merge_command_refuses_parts_of_two_splits(tmp_path, capsys):
    # Stale parts of an earlier 3-way split beside a fresh 2-way split: merging would let old rows win.
    folder = tmp_path / "nvidia-h200"
    ResultsFile(folder / "fp32.part-0-of-3.csv").write(make_row("seeded", p50=9.0))
    ResultsFile(folder / "fp32.part-0-of-2.csv").write(make_row("seeded", p50=1.0))
    assert merge_main([str(tmp_path)]) == 2
    assert "different splits" in capsys.readouterr().out
    assert not (folder / "fp32.csv").exists()


def test_merge_keeps_the_newest_row_of_each_key_and_merging_again_changes_nothing(tmp_path):
    # A split sweep wrote parts; the same sweep then ran in one process with overwrite=true, into
    # the merged file: a later merge must not put the parts' older rows back over the newer ones.
    folder = tmp_path / "nvidia-h200"
    old = dataclasses.replace(make_row("seeded", p50=9.0), timestamp="2026-01-01T00:00:00+00:00")
    new = dataclasses.replace(make_row("seeded", p50=1.0), timestamp="2026-01-02T00:00:00+00:00")
    ResultsFile(folder / "fp16.part-0-of-1.csv").write(old)
    ResultsFile(folder / "fp16.csv").write(new)
    assert merge_main([str(tmp_path)]) == 0
    assert [r["p50_ms"] for r in ResultsFile(folder / "fp16.csv").rows()] == ["1.0"]
    before = [(p.name, p.read_bytes()) for p in sorted(folder.iterdir())]
    assert merge_main([str(tmp_path)]) == 0
    assert [(p.name, p.read_bytes()) for p in sorted(folder.iterdir())] == before
    newest = dataclasses.replace(make_row("seeded", p50=5.0), timestamp="2026-01-03T00:00:00+00:00")
    ResultsFile(folder / "fp16.part-0-of-1.csv").write(newest)  # a part newer than the file does win
    merge_main([str(tmp_path)])
    assert [r["p50_ms"] for r in ResultsFile(folder / "fp16.csv").rows()] == ["5.0"]


def test_merge_checks_every_part_first_names_the_bad_one_and_writes_nothing(tmp_path):
    folder = tmp_path / "nvidia-h200"
    ResultsFile(folder / "fp16.part-0-of-2.csv").write(make_row("seeded"))
    ResultsFile(folder / "fp16.part-1-of-2.csv").write(make_row("eager", gpu="NVIDIA A100"))
    with pytest.raises(MixedGpuError, match=re.escape(str(folder / "fp16.part-1-of-2.csv"))):
        merge(folder / "fp16.csv", [folder / "fp16.part-0-of-2.csv", folder / "fp16.part-1-of-2.csv"])
    assert not (folder / "fp16.csv").exists() and not (folder / "fp16.samples.csv").exists()
    assert merge_main([str(tmp_path)]) == 2  # the command says so, without a traceback
    assert not (folder / "fp16.csv").exists()


def raw_rows(path) -> list[list[str]]:
    """The records of a CSV as they are on disk, header first (no dedupe, no checks)."""
    with Path(path).open(newline="") as f:
        return list(csv.reader(f))


def impls_in(path) -> set[str]:
    return {r["impl"] for r in ResultsFile(path).rows()}


# ---- several writers, one file -------------------------------------------------------------------


def test_a_write_appends_its_row_and_leaves_the_rest_of_the_file_as_it_was(tmp_path):
    # The cost of a row does not grow with the file: nothing already there is read or rewritten.
    path = tmp_path / "fp16.csv"
    results = ResultsFile(path)
    results.write(make_row("copy"))
    before, samples_before, inode = path.read_bytes(), samples_path_for(path).read_bytes(), path.stat().st_ino
    results.write(make_row("seeded"))
    assert path.stat().st_ino == inode and path.read_bytes().startswith(before)
    assert samples_path_for(path).read_bytes().startswith(samples_before)
    assert len(raw_rows(path)) == 3 and len(raw_rows(samples_path_for(path))) == 3


def test_two_writers_of_one_file_keep_each_others_rows_and_compaction_keeps_one_per_key(tmp_path):
    path = tmp_path / "fp16.csv"
    first, second = ResultsFile(path), ResultsFile(path)  # two runs that both opened the file before writing
    first.write(make_row("seeded", run_id="first"))
    second.write(make_row("eager", run_id="second"))
    first.write(make_row("seeded", p50=2.0, run_id="first-again", samples=(2.0,)))  # one key again: last wins
    assert impls_in(path) == {"seeded", "eager"}
    assert len(raw_rows(path)) == 4  # header and three lines, until compacted
    first.compact()
    assert sorted((r[COLUMNS.index("impl")], r[0]) for r in raw_rows(path)[1:]) == [
        ("eager", "second"), ("seeded", "first-again"),
    ]  # fmt: skip
    samples = raw_rows(samples_path_for(path))
    assert len(samples) == 3 and ["2"] in [r[len(KEY_COLUMNS):-1] for r in samples]
    assert {r["impl"] for r in first.rows()} == {"seeded", "eager"}  # it knows the other writer's row now


def harness_env() -> dict[str, str]:
    """The caller's environment, with the repo root first on PYTHONPATH (kept: Hydra may be there)."""
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "CUDA_VISIBLE_DEVICES": ""}


@pytest.mark.slow
def test_two_harness_runs_writing_one_file_at_once_keep_every_row_of_both(tmp_path):
    output = tmp_path / "shared.csv"
    smoke = ["experiment=cpu_smoke", "mode=fwd", "timer.settings.cpu.reps=2", "timer.settings.cpu.warmup=1"]
    runs = {"a": ["seeded"], "b": ["eager", "native"]}
    processes = []
    for name, impls in runs.items():
        command = [sys.executable, "-m", "runners.bench", f"impl.names=[{','.join(impls)}]", *smoke,
                   f"output={output}", f"hydra.run.dir={tmp_path / name}"]  # fmt: skip
        with (tmp_path / f"{name}.log").open("w") as log:
            process = subprocess.Popen(command, cwd=ROOT, env=harness_env(), stdout=log, stderr=subprocess.STDOUT)
        processes.append(process)
    for process, name in zip(processes, runs, strict=True):
        try:
            assert process.wait(timeout=300) == 0, (tmp_path / f"{name}.log").read_text()
        finally:
            process.kill()
    rows = raw_rows(output)
    assert rows[0] == list(COLUMNS)
    keys = [tuple(r[COLUMNS.index(c)] for c in KEY_COLUMNS) for r in rows[1:]]
    assert len(keys) == len(set(keys)) == 5 * 3  # the smoke preset's 5 points x 3 implementations, compacted
    assert {k[KEY_COLUMNS.index("impl")] for k in keys} == {"seeded", "eager", "native"}
    samples = raw_rows(samples_path_for(output))
    assert sorted(tuple(r[: len(KEY_COLUMNS)]) for r in samples[1:]) == sorted(keys)


# ---- resuming --------------------------------------------------------------------------------------


def test_resume_measures_error_and_oom_rows_again_but_not_ok_or_skipped_ones(tmp_path):
    path = tmp_path / "fp16.csv"
    statuses = {"seeded": "ok", "eager": "error", "compile": "oom", "native": "skipped"}
    results = ResultsFile(path)
    for impl, status in statuses.items():
        results.write(dataclasses.replace(make_row(impl), status=status))
    resumed = ResultsFile(path)
    assert {impl: resumed.done(make_row(impl).key()) for impl in statuses} == {
        "seeded": True, "eager": False, "compile": False, "native": True,
    }  # fmt: skip
    assert all(resumed.has(make_row(impl).key()) for impl in statuses)
    resumed.write(make_row("eager"))  # the retry passed
    assert ResultsFile(path).done(make_row("eager").key())


def cut_after_p(fields: dict[str, str]) -> list[str]:
    return list(fields.values())[: COLUMNS.index("p") + 1]


@pytest.mark.parametrize(
    "damage, reason",
    [
        (cut_after_p, f"{COLUMNS.index('p') + 1} fields, the header has {len(COLUMNS)}"),
        (lambda fields: list({**fields, "status": "okay"}.values()), "status 'okay' is none of"),
        (lambda fields: list({**fields, "p": "0.5.1"}.values()), "p='0.5.1' is not a number"),
        (lambda fields: list({**fields, "p": "nan"}.values()), "p='nan' is not a finite number"),
        (lambda fields: list({**fields, "run_id": "a\x00b"}.values()), "a NUL byte"),
    ],
    ids=["cut after p", "unknown status", "unparsable p", "nan p", "NUL byte"],
)
def test_rows_that_do_not_parse_are_not_done_are_measured_again_and_dropped_by_the_compaction(tmp_path, damage, reason):
    path = tmp_path / "fp16.csv"
    ResultsFile(path).write(make_row("eager"))
    with path.open("a", newline="") as f:
        csv.writer(f).writerow(damage(row_fields(make_row("seeded"))))
    with pytest.warns(results_io.DamagedRowWarning, match=re.escape(f"{path}, line 3: ignored, {reason}")):
        resumed = ResultsFile(path)
    assert not resumed.has(make_row("seeded").key()) and not resumed.done(make_row("seeded").key())
    assert resumed.done(make_row("eager").key())
    resumed.write(make_row("seeded"))  # measured again
    resumed.compact()
    assert len(raw_rows(path)) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing damaged is left
        assert impls_in(path) == {"eager", "seeded"}


def test_a_line_cut_by_a_kill_is_no_row_and_the_next_write_removes_it(tmp_path):
    path = tmp_path / "fp16.csv"
    results = ResultsFile(path)
    results.write(make_row("eager"))
    failed = dataclasses.replace(make_row("seeded"), status="error", error='RuntimeError: "a, b" failed')
    line = results_io.csv_line(row_fields(failed).values())
    with path.open("ab") as f:
        f.write(line[: line.index(b"failed")])  # killed inside the quoted error text
    with pytest.warns(results_io.DamagedRowWarning, match=re.escape(f"{path}, line 3: ignored, cut short")):
        resumed = ResultsFile(path)
    assert not resumed.has(failed.key())
    resumed.write(make_row("copy"))  # the open quote of the cut line must not swallow this row
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert impls_in(path) == {"eager", "copy"}
    assert [r[COLUMNS.index("impl")] for r in raw_rows(path)[1:]] == ["eager", "copy"]


def test_a_damaged_line_costs_only_itself_never_the_clean_line_after_it(tmp_path):
    path = tmp_path / "fp16.csv"
    results = ResultsFile(path)
    for impl in ("copy", "seeded", "eager"):
        results.write(make_row(impl))
    lines = path.read_bytes().split(b"\r\n")
    lines[2] += b',"oops'  # the seeded row ends in a stray field with an unclosed quote
    path.write_bytes(b"\r\n".join(lines))
    with pytest.warns(results_io.DamagedRowWarning, match=re.escape(f"{path}, line 3: ignored")):
        resumed = ResultsFile(path)
    assert impls_in_rows(resumed) == {"copy", "eager"}


def test_a_stray_quote_inside_a_field_is_damage_not_a_row(tmp_path):
    path = tmp_path / "fp16.csv"
    ResultsFile(path).write(make_row("eager"))
    line = results_io.csv_line(row_fields(make_row("seeded")).values())
    path.write_bytes(path.read_bytes() + line.replace(b"seeded", b'see"ded', 1))  # never written so
    with pytest.warns(results_io.DamagedRowWarning, match="quoted as the writer never quotes"):
        assert impls_in_rows(ResultsFile(path)) == {"eager"}


def impls_in_rows(results: ResultsFile) -> set[str]:
    return {r["impl"] for r in results.rows()}


@pytest.mark.parametrize(
    "fields",
    [{"p50_ms": "abc"}, {"p50_ms": "-1"}, {"p50_ms": "nan"}, {"p50_ms": "0.0"}, {"gbps": "inf"}],
    ids=["p50 abc", "p50 negative", "p50 nan", "p50 zero", "gbps inf"],
)
def test_an_ok_row_whose_figures_are_no_positive_finite_numbers_is_damaged_and_measured_again(tmp_path, fields):
    path = tmp_path / "fp16.csv"
    ResultsFile(path).write(make_row("eager"))
    with path.open("a", newline="") as f:
        csv.writer(f).writerow({**row_fields(make_row("seeded")), **fields}.values())
    with pytest.warns(results_io.DamagedRowWarning, match="in a row whose status is ok"):
        resumed = ResultsFile(path)
    assert not resumed.done(make_row("seeded").key()) and resumed.done(make_row("eager").key())


def test_damaged_rows_of_keys_outside_a_sweep_are_kept_in_a_quarantine_file_not_deleted(tmp_path):
    path = tmp_path / "fp16.csv"
    ResultsFile(path).write(make_row("eager"))
    extra = [*row_fields(make_row("seeded")).values(), "stray"]
    upper = {**row_fields(make_row("copy")), "status": "OK"}
    with path.open("a", newline="") as f:
        csv.writer(f).writerows([extra, upper.values()])
    with pytest.warns(results_io.DamagedRowWarning):
        resumed = ResultsFile(path)
    resumed.write(make_row("native"))
    resumed.compact()  # the compaction of a sweep that measured none of the damaged keys
    kept = results_io.quarantine_path_for(path).read_text()
    assert "stray" in kept and ",OK," in kept and kept.count("\n") == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert impls_in(path) == {"eager", "native"}


def test_a_line_cut_by_a_kill_is_kept_in_the_quarantine_file_when_the_next_write_removes_it(tmp_path):
    path = tmp_path / "fp16.csv"
    ResultsFile(path).write(make_row("eager"))
    with path.open("ab") as f:
        f.write(b"r1,2026")
    with pytest.warns(results_io.DamagedRowWarning):
        ResultsFile(path).write(make_row("copy"))
    assert results_io.quarantine_path_for(path).read_bytes() == b"r1,2026\n"


def test_a_byte_order_mark_is_no_part_of_the_first_column(tmp_path):
    path = tmp_path / "fp16.csv"
    ResultsFile(path).write(make_row("eager"))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    resumed = ResultsFile(path)
    assert resumed.done(make_row("eager").key())
    resumed.write(make_row("copy"))
    assert impls_in(path) == {"eager", "copy"} and len(read_results(path)) == 2


@pytest.mark.parametrize("which", ["results", "samples"])
def test_a_file_cut_inside_its_header_starts_afresh_with_a_message(tmp_path, which):
    path = tmp_path / "fp16.csv"
    cut = path if which == "results" else samples_path_for(path)
    columns = COLUMNS if which == "results" else SAMPLES_COLUMNS
    cut.write_text(",".join(columns)[:23])
    with pytest.warns(results_io.DamagedRowWarning, match="ends inside its header"):
        resumed = ResultsFile(path)
    resumed.write(make_row("eager"))
    assert impls_in(path) == {"eager"}
    assert results_io.quarantine_path_for(cut).read_text() == ",".join(columns)[:23] + "\n"


@pytest.mark.parametrize("target", ["/dev/null", "folder", "README.md", "pyproject.toml"])
def test_what_is_no_results_file_is_refused_before_anything_is_made_beside_it(tmp_path, target):
    if target == "folder":
        path = tmp_path / "a.csv"
        path.mkdir()
    elif target == "/dev/null":
        path = Path(target)
    else:
        path = tmp_path / target
        path.write_bytes((ROOT / target).read_bytes())
    before = sorted(path.parent.iterdir())
    with pytest.raises(results_io.ResultsFileError, match=re.escape(str(path))):
        ResultsFile(path)
    assert sorted(path.parent.iterdir()) == before  # no .<name>.lock


# ---- files that are not results files --------------------------------------------------------------


def corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "garbage bytes":
        path.write_bytes(data[:-20] + b"\x89PNG\r\n\x1a\n\xff\xd8" + data[-20:])
    elif how == "renamed key column":
        path.write_bytes(data.replace(b",impl,", b",implementation,", 1))
    elif how == "renamed column":
        path.write_bytes(data.replace(b",p50_ms,", b",p50,", 1))
    elif how == "foreign CSV":
        path.write_text("name,value\nalpha,1\n")


@pytest.mark.parametrize(
    "how, what",
    [
        ("garbage bytes", "line 2: not UTF-8 text (byte 0x89"),
        ("renamed key column", "line 1: the header lacks the key column(s) impl"),
        ("renamed column", "line 1: column(s) p50 are none of runners/rows.py's columns"),
        ("foreign CSV", "line 1: the header lacks the key column(s) " + ", ".join(KEY_COLUMNS)),
    ],
)
@pytest.mark.parametrize("which", ["results", "samples"])
def test_a_corrupted_file_is_refused_naming_file_line_and_fault_and_left_as_it_is(tmp_path, how, what, which):
    path = tmp_path / "fp16.csv"
    ResultsFile(path).write(make_row("seeded"))
    target = path if which == "results" else samples_path_for(path)
    if which == "samples" and how == "renamed column":  # the samples file has no p50_ms
        target.write_bytes(target.read_bytes().replace(b"sample_rounds", b"p50", 1))
    else:
        corrupt(target, how)
    contents = {p: p.read_bytes() for p in (path, samples_path_for(path))}
    with pytest.raises(results_io.ResultsFileError, match=re.escape(f"{target}, {what}")):
        ResultsFile(path)
    assert {p: p.read_bytes() for p in contents} == contents


# ---- temporary files -------------------------------------------------------------------------------


def data_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix != ".lock")


def test_a_write_or_rewrite_that_fails_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "fp16.csv"
    results = ResultsFile(path)
    results.write(make_row("seeded"))
    results.write(make_row("seeded", p50=2.0))  # a key twice: a compaction has a file to rewrite

    def disk_full(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="disk full"):
        results.write(make_row("eager"))
    with pytest.raises(OSError, match="disk full"):
        results.compact()
    assert data_files(tmp_path) == ["fp16.csv", "fp16.samples.csv"]
    monkeypatch.undo()
    assert read_results(path).p50_ms.tolist() == [2.0]


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_temporary_files_of_dead_processes_are_removed_when_the_folder_is_next_opened(tmp_path):
    host, dead = socket.gethostname(), dead_pid()
    stale = [tmp_path / f".fp16.csv.tmp-{host}-{dead}", tmp_path / f".bf16.samples.csv.tmp-{dead}"]  # 2nd: older name
    kept = [
        tmp_path / f".fp16.csv.tmp-{host}-{os.getpid()}",  # a rewrite under way in a live process
        tmp_path / f".fp16.csv.tmp-another-host-{dead}",  # another host's (a shared file system)
        tmp_path / "notes.tmp-1",  # not a temporary file of this module
    ]
    for path in stale + kept:
        path.write_text("a partly written file")
    ResultsFile(tmp_path / "fp16.csv")
    assert [p.exists() for p in stale] == [False, False] and all(p.exists() for p in kept)


# ---- older column sets -----------------------------------------------------------------------------


def test_a_file_of_an_older_column_set_is_resumed_and_rewritten_with_todays_columns_at_the_first_write(tmp_path):
    path = tmp_path / "fp16.csv"
    old_columns = [c for c in COLUMNS if c not in ("rounds", "ci_lo_ms", "ci_hi_ms", "shuffle_seed", "bound")]
    old_samples_columns = [c for c in SAMPLES_COLUMNS if c != "sample_rounds"]
    for file, columns, fields in [
        (path, old_columns, row_fields(make_row("seeded"))),
        (samples_path_for(path), old_samples_columns, {**row_fields(make_row("seeded")), "samples_ms": "1 2"}),
    ]:
        with file.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerow(fields)
    results = ResultsFile(path)
    assert results.done(make_row("seeded").key())
    results.write(make_row("eager"))
    assert raw_rows(path)[0] == list(COLUMNS) and raw_rows(samples_path_for(path))[0] == list(SAMPLES_COLUMNS)
    frame = read_results(path).set_index("impl")  # typed: the new columns hold the row type's defaults
    assert frame.loc["seeded", "rounds"] == 0 and math.isnan(frame.loc["seeded", "ci_lo_ms"])
    assert frame.loc["seeded", "p50_ms"] == 1.0 and frame.loc["eager", "p50_ms"] == 1.0
    samples = read_results(samples_path_for(path)).set_index("impl")
    assert samples.loc["seeded", "samples_ms"] == "1 2" and samples.loc["eager", "sample_rounds"] == "0 0"
