"""scripts/graph_warmup_probe.py is a GPU probe: on a machine without CUDA it says so and stops
before building anything (its figures come from the GPU machine)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "graph_warmup_probe.py"
spec = importlib.util.spec_from_file_location("graph_warmup_probe", SCRIPT)
probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_without_a_gpu_the_probe_stops_with_a_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["probe", str(tmp_path / "out.csv")])
    with pytest.raises(SystemExit, match="needs a CUDA GPU"):
        probe.main()
    assert not (tmp_path / "out.csv").exists()
