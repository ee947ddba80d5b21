"""Where a row came from: which run, which code, which machine and software."""

from __future__ import annotations

import hashlib
import platform
import subprocess
import uuid
from datetime import datetime, timezone
from pathlib import Path

import torch

from runners.rows import gpu_slug

CPU_SLUG = "cpu-smoke"
PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the folder holding runners/


def results_slug(device: torch.device) -> str:
    """The folder under results/ for this device: the GPU's slug, or cpu-smoke (never GPU figures)."""
    return gpu_slug(torch.cuda.get_device_name(device)) if device.type == "cuda" else CPU_SLUG


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def _command_output(args: list[str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=20, check=True, cwd=cwd)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def git_state(sha_override: str | None = None) -> tuple[str, bool]:
    """(sha, dirty) of the project's own repository, whatever the working directory. Where the
    project is no git work tree of its own (e.g. a copy on the GPU machine, even one unpacked inside
    another repository, whose commit says nothing about this code) the sha is 'unknown' unless
    given; a given sha is reported as is, dirty False."""
    if sha_override:
        return str(sha_override), False
    top = _command_output(["git", "rev-parse", "--show-toplevel"], cwd=PROJECT_ROOT)
    if not top or Path(top).resolve() != PROJECT_ROOT:
        return "unknown", False
    sha = _command_output(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT)
    if not sha:
        return "unknown", False
    dirty = bool(_command_output(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT))
    return sha, dirty


def code_state(sha_override: str | None = None) -> str:
    """The state of the project's code: its commit (as `git_state` gives it) and, for a tree with
    uncommitted changes, a digest of them (`git diff HEAD`), so two states of one commit differ."""
    sha, dirty = git_state(sha_override)
    if not dirty:
        return sha
    diff = _command_output(["git", "diff", "HEAD", "--binary"], cwd=PROJECT_ROOT)
    return f"{sha}-dirty-{hashlib.sha1(diff.encode()).hexdigest()[:12]}"


def _triton_version() -> str:
    try:
        import triton
    except ImportError:
        return ""
    return triton.__version__


def collect(device: torch.device, git_sha: str | None = None) -> dict:
    """The provenance columns of `runners.rows.ResultRow` (everything but the per-row timestamp)."""
    sha, dirty = git_state(git_sha)
    if device.type == "cuda":
        gpu = torch.cuda.get_device_name(device)
        driver = _command_output(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
        driver = driver.splitlines()[0] if driver else ""
        cuda = torch.version.cuda or ""
    else:
        gpu, driver, cuda = "cpu", "", ""
    return dict(
        run_id=new_run_id(),
        git_sha=sha,
        git_dirty=dirty,
        gpu=gpu,
        driver=driver,
        cuda=cuda,
        torch=torch.__version__,
        triton=_triton_version(),
        python=platform.python_version(),
    )
