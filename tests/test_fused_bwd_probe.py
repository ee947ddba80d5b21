"""scripts/fused_bwd_probe.py's arithmetic (the timing itself needs a GPU): how many programs an SM
holds by registers."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("fused_bwd_probe", ROOT / "scripts" / "fused_bwd_probe.py")
probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe)


def test_programs_per_sm_by_registers_round_each_warp_up_to_256_registers():
    assert probe.resident_programs(128, 8) == 2  # 128 x 32 = 4096 a warp, 8 warps: 32768 of 65536
    assert probe.resident_programs(130, 8) == 1  # 130 x 32 = 4160, rounded up to 4352 a warp: 34816
    assert probe.resident_programs(64, 16) == 2
    assert probe.resident_programs(255, 4) == 2
    assert probe.resident_programs(0, 8) == 0  # unknown
