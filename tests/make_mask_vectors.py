"""Regenerate tests/mask_stream_vectors.json from the CPU reference (only when the spec changes).

    python tests/make_mask_vectors.py

The vectors pin mask stream version 1: both the CPU path and the Triton kernel must reproduce them.
The Philox core itself is pinned to the published Random123 known-answer test in test_mask_stream.py.
"""

import hashlib
import json
import pathlib
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from kernels.mask_stream import MASK_STREAM_VERSION, keep_mask  # noqa: E402

SEEDS = (0, 1, -1, 2**63 - 1, 123456789)
MASK_SHAPES = ((1,), (7,), (3, 1, 33), (64, 1, 768), (2, 3, 1, 1))
PROBABILITIES = (1 / 65536, 0.1, 0.5, 0.9)


def mask_digest(keep: torch.Tensor) -> str:
    return hashlib.sha256(keep.to(torch.uint8).contiguous().numpy().tobytes()).hexdigest()


def main() -> None:
    lines = []
    for seed in SEEDS:
        for shape in MASK_SHAPES:
            for p in PROBABILITIES:
                keep = keep_mask(seed, shape, p)
                vector = {"seed": seed, "mask_shape": list(shape), "p": p, "kept": int(keep.sum()),
                          "sha256": mask_digest(keep)}  # fmt: skip
                lines.append("  " + json.dumps(vector))
    path = pathlib.Path(__file__).with_name("mask_stream_vectors.json")
    header = f'{{"mask_stream_version": {MASK_STREAM_VERSION},\n'
    header += ' "hash": "sha256 of the keep mask as uint8, row-major",\n'
    path.write_text(header + ' "vectors": [\n' + ",\n".join(lines) + "\n ]\n}\n")


if __name__ == "__main__":
    main()
