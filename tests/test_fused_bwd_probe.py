"""scripts/fused_bwd_probe.py's parts that run without a GPU (the timing itself needs one): its
candidates, how many programs an SM holds by registers, and the register cap it puts on the launch."""


import torch
from conftest import KERNEL_DEVICE, load_script

probe = load_script("fused_bwd_probe")


def test_programs_per_sm_by_registers_round_each_warp_up_to_256_registers():
    assert probe.resident_programs(128, 8) == 2  # 128 x 32 = 4096 a warp, 8 warps: 32768 of 65536
    assert probe.resident_programs(130, 8) == 1  # 130 x 32 = 4160, rounded up to 4352 a warp: 34816
    assert probe.resident_programs(64, 16) == 2
    assert probe.resident_programs(255, 4) == 2
    assert probe.resident_programs(0, 8) == 0  # unknown


def test_register_caps_add_the_defaults_loop_at_one_two_and_four_programs_per_sm():
    plain = probe.candidates(4096, 132, torch.bfloat16)
    capped = probe.candidates(4096, 132, torch.bfloat16, (128,))
    assert plain[0] == ("default", 264, 8, 1, True, False, None, None, 1) and plain[-1][0] == "default again"
    added = [c for c in capped if c not in plain]
    grids = [(132, 8), (264, 8), (528, 8), (132, 16), (264, 16), (528, 16)]
    # the default's tile of one row, then two rows (8192 elements: the most a tile holds)
    assert [(c[3], c[1], c[2], c[6]) for c in added] == [(rows, *grid, 128) for rows in (1, 2) for grid in grids]
    assert all(c[4:6] == (True, False) and c[7] is None for c in added)  # the default's loop, no zero fill
    wide = [c for c in probe.candidates(8192, 132, torch.bfloat16, (128,)) if c[6] == 128]
    assert {c[3] for c in wide} == {1}  # two rows of 8192 do not fit a tile
    names = [c[0] for c in capped]
    assert len(names) == len(set(names))  # every candidate is timed under its own name


def test_a_register_cap_reaches_the_kernels_launch_and_changes_no_gradient():
    # In the interpreter the cap changes nothing; what is checked is that it reaches the launch and
    # that the launch is put back afterwards. On a GPU the cap is compiled in, and the gradients must
    # still be the uncapped launch's bit for bit (registers change no arithmetic).
    from kernels import fused_launch
    from kernels.fused_launch import NORMS, backward_triton, forward_triton

    seen = []
    kernel = fused_launch.dropout_add_norm_backward_kernel

    class Spy:
        def __getitem__(self, grid):
            launch = kernel[grid]

            def call(*args, **kwargs):
                seen.append(kwargs.get("maxnreg"))
                return launch(*args, **{k: v for k, v in kwargs.items() if k != "maxnreg"})
            return call

    torch.manual_seed(0)
    x, residual, grad_y, grad_h = (torch.randn(2, 3, 64, dtype=torch.bfloat16, device=KERNEL_DEVICE)
                                   for _ in range(4))  # fmt: skip
    weight = torch.randn(64, dtype=torch.bfloat16, device=KERNEL_DEVICE)
    _, h = forward_triton(x, residual, weight, None, 5, 0.5, (1,), NORMS["rms"], 1e-6)
    args = (grad_y, grad_h, h, weight, 5, 0.5, (1,), NORMS["rms"], 1e-6, True, False)
    free = backward_triton(*args)
    fused_launch.dropout_add_norm_backward_kernel = Spy()
    try:
        with probe.register_cap(96):
            capped = backward_triton(*args)
        assert isinstance(fused_launch.dropout_add_norm_backward_kernel, Spy)  # put back as it was
    finally:
        fused_launch.dropout_add_norm_backward_kernel = kernel
    assert seen == [96]
    for got, want in zip(capped[:3], free[:3], strict=True):
        assert torch.equal(got, want)


def test_the_chunked_prototype_adds_chunks_no_wider_than_the_row():
    plain = probe.candidates(768, 132, torch.bfloat16)
    chunked = [c for c in probe.candidates(768, 132, torch.bfloat16, chunked=True) if c not in plain]
    assert {c[7] for c in chunked} == {512, 1024}  # BLOCK_D 1024: no chunk of 2048
    assert {(c[1], c[2]) for c in chunked} == {(264, 4), (528, 4), (264, 8), (528, 8)}
    assert len(probe.candidates(4096, 132, torch.bfloat16, chunked=True)) - len(probe.candidates(
        4096, 132, torch.bfloat16)) == 12


def test_a_default_with_a_register_cap_is_timed_without_it_too():
    names = {c[0]: c for c in probe.candidates(4096, 132, torch.bfloat16)}
    assert names["default, uncapped"] == ("default, uncapped", 264, 8, 1, True, False, 0, None, 1)
    assert "default, uncapped" not in {c[0] for c in probe.candidates(2048, 132, torch.bfloat16)}
    assert "default, uncapped" not in {c[0] for c in probe.candidates(4096, 132, torch.bfloat16, norm="layer")}


def test_a_cap_of_zero_takes_the_launchs_own_cap_off():
    seen = []

    class Kernel:
        def __getitem__(self, grid):
            return lambda *args, **kwargs: seen.append(kwargs)

    probe.RegisterCapped(Kernel(), 0)[(1,)](maxnreg=128, num_warps=8)
    probe.RegisterCapped(Kernel(), 96)[(1,)](maxnreg=128, num_warps=8)
    assert seen == [{"num_warps": 8}, {"num_warps": 8, "maxnreg": 96}]


def test_without_the_grid_only_the_default_and_the_capped_candidates_are_timed():
    full = probe.candidates(2048, 132, torch.bfloat16, (128,))
    short = probe.candidates(2048, 132, torch.bfloat16, (128,), grid=False)
    assert [c[0] for c in short] == [c[0] for c in full if c[0].startswith("default") or c[6] == 128]
    assert sum(c[6] == 128 for c in short) == 12  # one row and two, at 1, 2, 4 programs an SM, 8 and 16 warps


def test_pipeline_depths_add_the_loop_without_prefetch_in_that_many_stages():
    plain = probe.candidates(768, 132, torch.bfloat16, grid=False)
    staged = [c for c in probe.candidates(768, 132, torch.bfloat16, grid=False, stages=(3,)) if c not in plain]
    # the default's two rows and four, in 4 and 8 warps, at 1, 2 and 4 programs per SM; no prefetch of its own
    assert [(c[3], c[2], c[1]) for c in staged] == [(rows, warps, k * 132) for rows in (2, 4) for warps in (4, 8)
                                                    for k in (1, 2, 4)]  # fmt: skip
    assert all(c[4] is False and c[8] == 3 and c[0].endswith("stages3") for c in staged)
    assert all(c[8] == 1 for c in plain)
    # where the default is pipelined (16-bit RMSNorm at D = 2048), its candidates say so
    assert probe.candidates(2048, 132, torch.bfloat16)[0] == ("default", 264, 4, 1, False, False, None, None, 4)
