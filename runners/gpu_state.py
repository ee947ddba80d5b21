"""The GPU's state around a sweep: brought to steady clocks before the first timed round, and its SM
clock and temperature read after each point, so a row says what state its times were taken in.

Steady clocks: on the H200 a process starts at the top SM clock (1980 MHz) at about 35 C;
memory-bound work keeps that clock and warms the card to 45-50 C over the large sizes, while three
seconds of bf16 matrix products drove it to its 700 W power limit and 1470 MHz
(results/nvidia-h200/probes/16-timer-probe.log). The sweep is memory-bound, so the warm-up is
memory-bound too: copies of a buffer larger than the L2 for `seconds`, until the card is in the
state the sweep keeps it in. Clocks, power and modes are read, never set.
"""

from __future__ import annotations

import math
import subprocess
import time

import torch

WARM_UP_BYTES = 1 << 30  # the copies' buffer: far larger than any L2


def warm_up(device: torch.device, seconds: float) -> None:
    """Sustained memory-bound work on `device` for `seconds` (nothing on CPU, or for 0 s)."""
    if device.type != "cuda" or seconds <= 0:
        return
    with torch.cuda.device(device):
        source = torch.empty(WARM_UP_BYTES // 2, dtype=torch.int8, device=device).fill_(1)
        target = torch.empty_like(source)
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            for _ in range(50):  # about 12 ms of copies at H200 bandwidth between clock checks
                target.copy_(source)
            torch.cuda.synchronize()
        del source, target
        torch.cuda.empty_cache()


def _device_id(device: torch.device) -> str:
    """What nvidia-smi's --id takes for this device: its UUID (CUDA_VISIBLE_DEVICES renumbers
    devices, UUIDs stay), else the index."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    if uuid is None:
        return str(index)
    text = str(uuid)
    return text if text.startswith("GPU-") else f"GPU-{text}"


def clock_and_temperature(device: torch.device) -> tuple[float, float]:
    """(SM clock in MHz, temperature in C) from nvidia-smi; NaN where unknown (CPU, no nvidia-smi)."""
    if device.type != "cuda":
        return math.nan, math.nan
    try:
        done = subprocess.run(
            ["nvidia-smi", f"--id={_device_id(device)}", "--query-gpu=clocks.sm,temperature.gpu",
             "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=True,
        )  # fmt: skip
        clock, temperature = (float(value) for value in done.stdout.strip().splitlines()[0].split(","))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return math.nan, math.nan
    return clock, temperature
