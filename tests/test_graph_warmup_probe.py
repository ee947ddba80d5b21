"""scripts/graph_warmup_probe.py is a GPU probe: on a machine without CUDA it says so and stops
before building anything (its figures come from the GPU machine)."""

from __future__ import annotations

import sys

import pytest
import torch
from conftest import load_script

probe = load_script("graph_warmup_probe")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_without_a_gpu_the_probe_stops_with_a_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["probe", str(tmp_path / "out.csv")])
    with pytest.raises(SystemExit, match="needs a CUDA GPU"):
        probe.main()
    assert not (tmp_path / "out.csv").exists()
