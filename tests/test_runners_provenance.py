"""Provenance records the project's own commit, or `unknown`: never the commit of whatever repository
the working directory or the project's folder happens to sit in."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runners.provenance import git_state

ROOT = Path(__file__).resolve().parents[1]


def git(*args, cwd) -> str:
    command = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def test_an_exported_copy_inside_another_repository_records_no_commit_of_that_repository(tmp_path):
    outer = tmp_path / "another-repo"
    outer.mkdir()
    git("init", "-q", cwd=outer)
    (outer / "README").write_text("another project\n")
    git("add", "README", cwd=outer)
    git("commit", "-q", "-m", "another project", cwd=outer)
    export = outer / "vendored" / "dropout"  # e.g. `git archive` of this project unpacked there
    shutil.copytree(ROOT / "runners", export / "runners", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(export), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run(
        [sys.executable, "-c", "from runners.provenance import git_state; print(git_state())"],
        cwd=export, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "('unknown', False)"


def test_the_project_records_its_own_commit_from_any_working_directory(tmp_path, monkeypatch):
    try:
        own = git("rev-parse", "HEAD", cwd=ROOT)
        top = Path(git("rev-parse", "--show-toplevel", cwd=ROOT))
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("this copy of the project is no git work tree")
    if top.resolve() != ROOT.resolve():
        pytest.skip("this copy of the project sits inside another repository")
    monkeypatch.chdir(tmp_path)  # no repository here
    assert git_state()[0] == own
