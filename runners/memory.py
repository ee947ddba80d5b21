"""Memory of one call: peak allocation above what was allocated before it, and what autograd saves.

The peak delta needs CUDA's allocator statistics: on CPU it is NaN. Bytes saved for backward are
counted with `torch.autograd.graph.saved_tensors_hooks` on one forward, on any device: the sum of
the sizes of the unique storages autograd packs (a seeded op saves a seed, a mask-based one its
mask).
"""

from __future__ import annotations

import torch

from runners.modes import ModeCall


def peak_memory_delta(mode_call: ModeCall, device: torch.device) -> float:
    """Bytes: max allocated during one call minus allocated before it (NaN without CUDA)."""
    if device.type != "cuda":
        return float("nan")
    mode_call.reset()
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    mode_call.call()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - before
    mode_call.reset()
    return float(peak)


def saved_for_backward_bytes(forward, *inputs: torch.Tensor) -> int:
    """Bytes autograd saves in one `forward(*inputs)` (x alone for the standalone op)."""
    storages: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        y = forward(*inputs)
    del y
    return sum(storages.values())
