"""The mask stream, version 1: which mask elements a seed keeps, in pure PyTorch.

Specification (`MASK_STREAM_VERSION = 1`). The mask is a function of (seed, mask_shape, p) alone:

- `mask_shape` is `x.shape` with the shared dims set to 1; mask element `m` is the row-major
  linear index into it (`0 <= m < prod(mask_shape)`).
- `seed` is a 64-bit integer (negative values are taken modulo 2**64). Its low and high 32-bit
  halves are the Philox key `(k0, k1)`.
- Philox4x32 with 10 rounds (Salmon et al., SC'11; multipliers 0xD2511F53 and 0xCD9E8D57, key
  increments 0x9E3779B9 and 0xBB67AE85), counter `(c, c >> 32, 0, 0)` for `c = m // 8`, yields four
  32-bit words `w0..w3`. Each word gives two 16-bit halves, low half first:
  `h(m) = (w[(m % 8) // 2] >> (16 * (m % 2))) & 0xFFFF`, so one Philox call decides eight mask
  elements.
- Element `m` is kept iff `h(m) >= keep_threshold(p) = round(p * 65536)`. The drop probability is
  therefore `keep_threshold(p) / 65536`: p is resolved to 2**-16 (p = 0.1 drops with probability
  0.100006; 0 < p < 2**-17 drops nothing). p = 1 drops everything.
- A kept element of `x` becomes `x * scale` with `scale = 1 / (1 - p)` (the p given, as torch
  does), computed once in double precision on the host, rounded to float32 and multiplied in
  float32 for 16- and 32-bit inputs, multiplied in float64 for float64 inputs; a dropped element
  becomes `x * 0`. Results are rounded to the input dtype (round to nearest even).

Seeds drawn from torch's generator (`seed=None`). On CUDA the seed of a call is a function of the
device generator's state: `seed_from_generator(initial_seed, offset) = splitmix64(initial_seed +
0x9E3779B97F4A7C15 * (offset // 4 + 1))` (splitmix64: Steele, Lea and Flood, OOPSLA'14, multipliers
0xBF58476D1CE4E5B9 and 0x94D049BB133111EB), after which the generator's Philox offset advances by 4,
as any random op's would. So `torch.manual_seed(s)` reproduces every mask of a run, eager, compiled
or replayed in a CUDA graph. On CPU the seed is one `torch.randint` from the default generator.

The Triton kernel (`kernels/triton_kernel.py`) implements the same function, and derives seeds on
the device by the same formula; the C++ hot path (`kernels/csrc/fast_path.cpp`) repeats the
formula's constants, which `tests/test_fast_path.py` pins to these. The test vectors in
`tests/mask_stream_vectors.json` pin the masks.
"""

from __future__ import annotations

import array
import math
from collections.abc import Sequence

import torch

MASK_STREAM_VERSION = 1

PHILOX_ROUNDS = 10
PHILOX_MUL_A = 0xD2511F53
PHILOX_MUL_B = 0xCD9E8D57
PHILOX_KEY_A = 0x9E3779B9
PHILOX_KEY_B = 0xBB67AE85
DECISIONS_PER_CALL = 8  # four 32-bit words, two 16-bit halves each
THRESHOLD_BITS = 16
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
SPLITMIX_MUL_A = 0xBF58476D1CE4E5B9
SPLITMIX_MUL_B = 0x94D049BB133111EB

_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF


def to_int64(value: int) -> int:
    """A 64-bit seed (any int, taken modulo 2**64) as a signed int64: the form the op keeps."""
    value &= _U64
    return value - (1 << 64) if value >= 1 << 63 else value


def splitmix64(state: int) -> int:
    z = state & _U64
    z = ((z ^ (z >> 30)) * SPLITMIX_MUL_A) & _U64
    z = ((z ^ (z >> 27)) * SPLITMIX_MUL_B) & _U64
    return z ^ (z >> 31)


def seed_from_generator(initial_seed: int, offset: int) -> int:
    """The seed a call with seed=None takes from a generator at (initial seed, Philox offset)."""
    return to_int64(splitmix64(initial_seed + GOLDEN_GAMMA * (offset // 4 + 1)))


def keep_threshold(p: float) -> int:
    """Keep iff a 16-bit random half >= this; P(drop) = threshold / 2**16."""
    return int(round(p * (1 << THRESHOLD_BITS)))


def dropout_scale(p: float) -> float:
    """The factor kept elements are multiplied by (0 when everything is dropped)."""
    return 0.0 if p >= 1.0 else 1.0 / (1.0 - p)


def split_seed(seed: int) -> tuple[int, int]:
    """The Philox key (k0, k1): the low and high 32 bits of the seed taken modulo 2**64."""
    seed &= _U64
    return seed & _U32, seed >> 32


def _mul_hi_lo(multiplier: int, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """High and low 32 bits of multiplier * value for 32-bit operands, in int64 without overflow."""
    product_lo = value * (multiplier & 0xFFFF)  # < 2**48
    product_hi = value * (multiplier >> 16)  # < 2**48
    high = (product_hi + (product_lo >> 16)) >> 16
    low = (product_lo + ((product_hi & 0xFFFF) << 16)) & _U32
    return high, low


def philox4x32(counter: torch.Tensor, seed: int, rounds: int = PHILOX_ROUNDS) -> list[torch.Tensor]:
    """Philox4x32 of counters (c, c >> 32, 0, 0) under `seed`: four int64 tensors of 32-bit words."""
    counter = counter.to(torch.int64)
    c0 = counter & _U32
    c1 = (counter >> 32) & _U32
    c2 = torch.zeros_like(c0)
    c3 = torch.zeros_like(c0)
    k0, k1 = split_seed(seed)
    for _ in range(rounds):
        hi_b, lo_b = _mul_hi_lo(PHILOX_MUL_B, c2)
        hi_a, lo_a = _mul_hi_lo(PHILOX_MUL_A, c0)
        c0, c1, c2, c3 = hi_b ^ c1 ^ k0, lo_b, hi_a ^ c3 ^ k1, lo_a
        k0 = (k0 + PHILOX_KEY_A) & _U32
        k1 = (k1 + PHILOX_KEY_B) & _U32
    return [c0, c1, c2, c3]


def philox4x32_lanes(first_counter: int, calls: int, seed: int, rounds: int = PHILOX_ROUNDS) -> torch.Tensor:
    """`philox4x32` of the counters first_counter, ..., first_counter + calls - 1 on Python ints, as an
    int64 tensor (calls, 4) of 32-bit words.

    Each of the four words is one Python int holding every counter's word in a 64-bit lane (counter i
    in bits 64i to 64i + 63), so a round is a dozen integer operations whatever the number of
    counters. A lane's word stays below 2**32 and a 32-bit multiplier keeps its product below 2**64:
    nothing carries into the next lane, and `& low_words` (each lane's low 32 bits) cuts a product
    into Philox's low word, or, shifted right by 32, its high word.
    """
    def lanes(values) -> int:
        return int.from_bytes(array.array("Q", values).tobytes(), "little")

    counters = range(first_counter, first_counter + calls)
    low_words = lanes([_U32] * calls)
    ones = lanes([1] * calls)  # k * ones: the key k in every lane
    c0, c1 = lanes([c & _U32 for c in counters]), lanes([(c >> 32) & _U32 for c in counters])
    c2 = c3 = 0
    k0, k1 = split_seed(seed)
    for _ in range(rounds):
        product_b, product_a = PHILOX_MUL_B * c2, PHILOX_MUL_A * c0
        c0, c1, c2, c3 = (((product_b >> 32) & low_words) ^ c1 ^ (k0 * ones), product_b & low_words,
                          ((product_a >> 32) & low_words) ^ c3 ^ (k1 * ones), product_a & low_words)  # fmt: skip
        k0 = (k0 + PHILOX_KEY_A) & _U32
        k1 = (k1 + PHILOX_KEY_B) & _U32
    words = [torch.frombuffer(bytearray(word.to_bytes(8 * calls, "little")), dtype=torch.int64)
             for word in (c0, c1, c2, c3)]  # fmt: skip
    return torch.stack(words, dim=1)


# Up to this many Philox calls (8 mask elements each) the stream runs on Python ints
# (`philox4x32_lanes`): the tensor stream costs some 250 small torch ops, about 0.4 ms on one CPU
# core however few the elements, where the Python ints took 30 us for 8 calls and 0.34 ms for 1024
# (the tensor stream: 0.49 ms; at 4096 calls it was the faster, 0.8 ms against 1.3). Both give the
# same halves (tests/test_mask_stream.py compares them); scripts/cpu_overhead.py measures the op.
PYTHON_STREAM_MAX_CALLS = 1024


def random_halves(seed: int, count: int, device: torch.device | str = "cpu", start: int = 0) -> torch.Tensor:
    """The 16-bit random halves h(start), ..., h(start + count - 1) as int64."""
    first_call = start // DECISIONS_PER_CALL
    calls = math.ceil((start + count) / DECISIONS_PER_CALL) - first_call
    skip = start - first_call * DECISIONS_PER_CALL
    if 0 < calls <= PYTHON_STREAM_MAX_CALLS:
        words = philox4x32_lanes(first_call, calls, seed).to(device)  # (calls, 4)
    else:
        counters = torch.arange(first_call, first_call + calls, device=device)
        words = torch.stack(philox4x32(counters, seed), dim=1)  # (calls, 4)
    halves = torch.stack((words & 0xFFFF, words >> 16), dim=2)  # (calls, 4, 2): low half first
    return halves.reshape(-1)[skip : skip + count]


def keep_mask(
    seed: int,
    mask_shape: Sequence[int],
    p: float,
    device: torch.device | str = "cpu",
    chunk_elements: int = 1 << 20,
) -> torch.Tensor:
    """The boolean keep mask of the given shape: True where the element survives dropout.

    Decided `chunk_elements` elements at a time into one bool tensor, so the stream's int64
    temporaries (tens of bytes per element) stay bounded; the mask does not depend on it.
    """
    count = math.prod(mask_shape)
    threshold = keep_threshold(p)
    keep = torch.empty(count, dtype=torch.bool, device=device)
    for start in range(0, count, chunk_elements):
        halves = random_halves(seed, min(chunk_elements, count - start), device, start)
        torch.ge(halves, threshold, out=keep[start : start + halves.numel()])
    return keep.reshape(tuple(mask_shape))


def apply_mask(x: torch.Tensor, keep: torch.Tensor, p: float, out: torch.Tensor | None = None) -> torch.Tensor:
    """x * (keep ? scale : 0), with the spec's arithmetic: float32 (float64 for float64 inputs),
    rounded to x's dtype. `keep` broadcasts against x; the result goes into `out` if given."""
    compute_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    scale = torch.tensor(dropout_scale(p), dtype=compute_dtype)
    multiplier = torch.where(keep, scale, 0.0)  # the 0-d scale's dtype: a Python float does not promote it
    if out is None:
        return (x.to(compute_dtype) * multiplier).to(x.dtype)
    if x.dtype == compute_dtype:
        return torch.mul(x, multiplier, out=out)
    return out.copy_(x.to(compute_dtype) * multiplier)  # copy_ rounds to nearest even, as .to does
