"""A/B in one job: the same sweep run alternately with two versions of the code, in separate
processes on the same GPU, for a paired comparison (`python -m reports.ab` judges it).

    python -m runners.ab ref=<git ref> [candidate=<dir>] [pairs=4] [max_pairs=10] [budget_s=420] [seed=0]
                         [out=results/ab/<name>]
    make bench-ab REF=origin/main            # this, then the verdict

Side A (`ref`) is a git ref of this repository, exported with `git archive` into `<out>/trees/`
(no worktree is registered, nothing is checked out here), or a prepared copy of the repo
(`ref_dir=`: e.g. on a machine without the repository's history). Side B (`candidate`) is a
folder holding a copy of the repo, by default this working tree with its uncommitted changes.

Each process runs `python -m runners.bench` inside its side's tree (that side's harness and
kernels, `PYTHONPATH` = that tree) with the `sweep` overrides (default `experiment=ci`; several,
space-separated: `sweep="experiment=ci timer.rounds=3"`), writing
`<out>/runs/<pair>-<side>.csv`: `pairs` pairs, optionally after one untimed process per side
(`warmup_runs`; compilation and the C++ build happen before any timing anyway). The order of the
two sides is counterbalanced (`pair_orders`): the first pair's order is drawn from `seed`, and the
order alternates from pair to pair (AB BA AB BA ...), so with an even number of pairs each side
runs first equally often, and drift along the job (the machine warming, the host slowing) falls
on both sides alike instead of on whichever side a run of coin flips put first. Then, while a
gated key is still too noisy to judge (reports/ab.py with `judge`'s key=value settings), two more
pairs run, up to `max_pairs` pairs and while they fit in `budget_s` seconds of pairs
(runners/ab_stopping.py says why this stopping rule is sound). Each side's C++ extension is built once into
`<torch extensions dir>/ab/<hash of its tree and sources>`, and kept for later jobs.
`<out>/ab.json` lists every process (pair, side, order, exit status, seconds) and is rewritten
after each, so a job cut short keeps what finished.

Exit status: 0 when every process ran (a process that failed is recorded, and its missing rows
fail the verdict), 2 when the sides cannot be prepared.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from runners.ab_stopping import blind_keys, expected_pair_s, pairs_to_add
from runners.settings_args import help_text, parse_settings, wants_help

ROOT = Path(__file__).resolve().parent.parent
SIDES = ("ref", "candidate")
MARKER = ".runners-ab"  # in every out folder runners.ab made: only such a folder is cleared


@dataclass
class ABConfig:
    """The command line of `python -m runners.ab` (key=value, as in Hydra)."""

    ref: str | None = None  # side A: a git ref of this repository, exported with git archive
    ref_dir: str | None = None  # or side A as a folder holding a copy of the repo
    candidate: str = "."  # side B: a folder holding a copy of the repo (default: this working tree)
    pairs: int = 4  # paired processes: the verdict's sample size, at least
    max_pairs: int = 10  # ... more, two at a time, while a gated key is too noisy to judge, up to this
    budget_s: float = 420.0  # ... and while the pairs so far and the next two fit in this many seconds
    judge: str = ""  # reports.ab's key=value settings the job's verdict will use (space-separated)
    seed: int = 0  # draws the order of the first pair (the orders then alternate)
    out: str = "results/ab/latest"  # the job's folder: ab.json, runs/, trees/
    warmup_runs: bool = False  # one untimed process per side before the pairs (builds happen either way)
    sweep: str = "experiment=ci"  # the Hydra overrides of every process, space-separated (shell quoting)
    timeout_s: float = 600.0  # one process's limit


class ABError(Exception):
    """The A/B job cannot start; the message says why."""


@dataclass
class Side:
    name: str  # "ref" or "candidate"
    tree: Path
    label: str  # recorded as each row's git_sha


def git(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise ABError(f"git {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def export_ref(ref: str, trees: Path) -> Side:
    """`git archive` of `ref` into trees/ref-<sha> (results/ left out: the sweep writes elsewhere)."""
    sha = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    tree = trees / f"ref-{sha[:12]}"
    if not (tree / "runners").is_dir():
        archive = subprocess.run(
            ["git", "archive", "--format=tar", sha, "--", ".", ":(exclude)results"],
            cwd=ROOT, capture_output=True, timeout=300, check=False,
        )  # fmt: skip
        if archive.returncode != 0:
            raise ABError(f"git archive {sha}: {archive.stderr.decode(errors='replace').strip()}")
        shutil.rmtree(tree, ignore_errors=True)
        tree.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tree, filter="data")
    return Side("ref", tree, sha)


def tree_label(tree: Path) -> str:
    """The commit of a tree that is a git checkout (with -dirty for uncommitted changes), else its name."""
    try:
        sha = git("rev-parse", "HEAD", cwd=tree)
        top = Path(git("rev-parse", "--show-toplevel", cwd=tree)).resolve()
    except (ABError, OSError, subprocess.SubprocessError):
        return tree.name
    if top != tree.resolve():  # the tree sits inside another repository: its commit is not this tree's
        return tree.name
    dirty = git("status", "--porcelain", "--untracked-files=no", cwd=tree)
    return sha + ("-dirty" if dirty else "")


def check_tree(tree: Path, what: str) -> Path:
    tree = tree.resolve()
    if not (tree / "runners" / "bench.py").is_file():
        raise ABError(f"{what} {tree} is not a copy of this repository (no runners/bench.py)")
    return tree


def sides(cfg: ABConfig, out: Path) -> tuple[Side, Side]:
    if (cfg.ref is None) == (cfg.ref_dir is None):
        raise ABError("give side A as ref=<git ref> or ref_dir=<folder>, one of them")
    if cfg.ref is not None:
        ref = export_ref(cfg.ref, out / "trees")
    else:
        tree = check_tree(Path(cfg.ref_dir), "ref_dir")
        ref = Side("ref", tree, tree_label(tree))
    candidate_tree = check_tree(Path(cfg.candidate), "candidate")
    return ref, Side("candidate", candidate_tree, tree_label(candidate_tree))


def extension_dir(tree: Path) -> Path:
    """Where this tree's C++ extension is built: one folder per tree and content of its C++ sources,
    under $TORCH_EXTENSIONS_DIR or ~/.cache/torch_extensions, kept between jobs. Per tree: torch's
    build re-runs whenever the source's path changes, so two trees sharing one folder would rebuild
    it on every alternation (seen: 30 s per process on the H200)."""
    digest = hashlib.sha256(str(tree.resolve()).encode())
    for source in sorted((tree / "kernels").rglob("*.cpp")) + sorted((tree / "kernels").rglob("*.h")):
        digest.update(source.relative_to(tree).as_posix().encode())
        digest.update(source.read_bytes())
    base = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or Path.home() / ".cache" / "torch_extensions")
    return base / "ab" / digest.hexdigest()[:16]


def run_sweep(side: Side, csv_path: Path, cfg: ABConfig) -> tuple[int, float]:
    """One process of `side`'s harness writing `csv_path`; (exit status, seconds)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(side.tree), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["TORCH_EXTENSIONS_DIR"] = str(extension_dir(side.tree))
    env.setdefault("PYTHONUNBUFFERED", "1")
    command = [sys.executable, "-m", "runners.bench", *shlex.split(cfg.sweep), f"output={csv_path}", "overwrite=true",
               f"git_sha={side.label}"]  # fmt: skip
    log_path = csv_path.with_suffix(".log")
    began = time.perf_counter()
    with log_path.open("w") as log:
        try:
            done = subprocess.run(command, cwd=side.tree, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  timeout=cfg.timeout_s, check=False)  # fmt: skip
            status = done.returncode
        except subprocess.TimeoutExpired:
            status = 124
    return status, time.perf_counter() - began


def pair_orders(pairs: int, seed: int) -> list[tuple[str, str]]:
    """The order of the two sides in each pair: the first drawn from `seed`, then alternating (AB BA
    AB BA ...: counterbalanced, each side first in half of an even number of pairs)."""
    first = tuple(random.Random(seed).sample(SIDES, 2))
    return [first if index % 2 == 0 else first[::-1] for index in range(pairs)]


def write_manifest(out: Path, manifest: dict) -> None:
    partial = out / "ab.json.partial"
    partial.write_text(json.dumps(manifest, indent=1) + "\n")
    partial.replace(out / "ab.json")


def claim_out_folder(out: Path) -> None:
    """Make `out` this tool's, or check that it is: a folder it made holds MARKER. A folder that
    exists, is not empty and lacks the marker is someone else's and is refused: a job clears
    `<out>/runs` and rewrites ab.json, which would delete or replace that one's files."""
    if (out / MARKER).is_file():
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ABError(f"out={out} exists and was not made by runners.ab (no {MARKER} in it): give a new or empty one")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("A folder of runners.ab: each job clears runs/ and rewrites ab.json.\n")


def run(cfg: ABConfig) -> int:
    if cfg.pairs < 2:
        raise ABError(f"pairs={cfg.pairs}: a paired verdict needs at least 2 pairs")
    if cfg.max_pairs < cfg.pairs:
        raise ABError(f"max_pairs={cfg.max_pairs} is below pairs={cfg.pairs}")
    out = Path(cfg.out).resolve()
    claim_out_folder(out)
    ref, candidate = sides(cfg, out)
    by_name = {"ref": ref, "candidate": candidate}
    runs_dir = out / "runs"
    shutil.rmtree(runs_dir, ignore_errors=True)  # the last job's runs in a folder of ours
    runs_dir.mkdir(parents=True)
    orders = pair_orders(max(cfg.pairs, cfg.max_pairs), cfg.seed)
    manifest = {
        "config": asdict(cfg),
        "sides": {name: {"label": side.label, "tree": str(side.tree)} for name, side in by_name.items()},
        "orders": orders[: cfg.pairs],
        "runs": [],
    }
    print(f"A/B: ref {ref.label} vs candidate {candidate.label}, {cfg.pairs} pairs (up to {cfg.max_pairs} while a "
          f"gated key is too noisy, within {cfg.budget_s:.0f} s), orders from {orders[0]} -> {out}", flush=True)
    if cfg.warmup_runs:
        for name in SIDES:
            run_one(out, manifest, "warmup", by_name[name], cfg)
    began, done, add = time.perf_counter(), 0, cfg.pairs
    while add:
        for pair in range(done, done + add):
            manifest["orders"] = orders[: max(cfg.pairs, pair + 1)]
            for name in orders[pair]:
                run_one(out, manifest, pair, by_name[name], cfg)
        done += add
        elapsed = time.perf_counter() - began
        blind = blind_keys(out, shlex.split(cfg.judge))
        durations = pair_durations(manifest["runs"], done)
        add = pairs_to_add(done, cfg.max_pairs, len(blind), elapsed, expected_pair_s(durations), cfg.budget_s)
        if blind:
            print(f"  after {done} pairs ({elapsed:.0f} s), too noisy to judge: {'; '.join(blind)}"
                  + (f"; {add} more pairs" if add else "; stopping (max_pairs or budget_s reached)"), flush=True)
    print(f"judge it: python -m reports.ab dir={out}")
    return 0


def pair_durations(runs: list[dict], pairs: int) -> list[float]:
    """Seconds each of the first `pairs` pairs took (its processes' run times together)."""
    return [sum(run["seconds"] for run in runs if run["pair"] == pair) for pair in range(pairs)]


def run_one(out: Path, manifest: dict, pair: int | str, side: Side, cfg: ABConfig) -> None:
    """One process of `side` for `pair`, recorded in the manifest (rewritten at once)."""
    csv_path = out / "runs" / f"{pair}-{side.name}.csv"
    status, seconds = run_sweep(side, csv_path, cfg)
    manifest["runs"].append({"pair": pair, "side": side.name, "csv": str(csv_path.relative_to(out)),
                             "exit": status, "seconds": round(seconds, 1)})  # fmt: skip
    write_manifest(out, manifest)
    print(f"  {pair} {side.name}: exit {status} after {seconds:.0f} s ({csv_path.with_suffix('.log').name})",
          flush=True)  # fmt: skip


def load_config(argv: list[str]) -> ABConfig:
    return parse_settings(ABConfig, argv, ABError)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv):
        print(help_text(__doc__, ABConfig))
        return 0
    try:
        return run(load_config(argv))
    except ABError as error:
        print(f"ab: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
