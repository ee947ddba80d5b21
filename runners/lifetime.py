"""A process that must not outlive the process that started it: a pass of a sweep in passes
(runners/passes.py) and a job of a local multi-GPU sweep (runners/launch.py).

`exit_with_ancestor(generations)` starts a daemon thread that ends this process (SIGKILL: submitit's
jobs bypass SIGTERM) once the ancestor `generations` levels up has gone: 1 is the parent (a pass:
the sweep's process), 2 the grandparent (a local job: submitit starts each job from a controller
process of its own, which stays when the Hydra process above it dies). It watches the process just
below that ancestor: when the ancestor dies, that process is handed to another parent, whether or
not anyone has collected the dead one yet. Linux only (it reads /proc); elsewhere it does nothing.
Every row already written stays: rows are appended and fsynced one by one (runners/results_io.py).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

POLL_S = 0.5
# The argument that tells a child entry point (`python -m runners.passes CONFIG`) to end with its parent.
WITH_PARENT = "--exit-with-parent"


def parent_of(pid: int) -> int | None:
    """The parent pid of a process (from /proc), or None when it is gone or /proc is not there."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # the name, in parentheses, may hold spaces


def exit_with_ancestor(generations: int = 1) -> bool:
    """Watch the ancestor `generations` levels up; returns False when it cannot be watched here."""
    chain = [os.getpid()]
    for _ in range(generations):
        parent = parent_of(chain[-1])
        if parent is None or parent <= 1:
            return False
        chain.append(parent)
    watched, ancestor = chain[-2], chain[-1]

    def watch() -> None:
        while parent_of(watched) == ancestor:
            time.sleep(POLL_S)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="exit-with-ancestor", daemon=True).start()
    return True
