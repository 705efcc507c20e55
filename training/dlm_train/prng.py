"""The shared mulberry32 PRNG (docs/ARCHITECTURE.md, "Shared PRNG"), vectorized.

The state after n calls is seed + n * 0x6D2B79F5 (mod 2^32), so the n-th output is computed directly.
"""
from __future__ import annotations

import numpy as np

_C = 0x6D2B79F5
_M = 0xFFFFFFFF


def _imul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b) & _M  # a, b < 2^32 as uint64: the product may wrap mod 2^64, whose low 32 bits are still right


def mulberry32_outputs(seed: int, start: int, count: int) -> np.ndarray:
    """Outputs number start+1 .. start+count (0-based call index start .. start+count-1) as uint64 values."""
    n = np.arange(start + 1, start + 1 + count, dtype=np.uint64)
    z = (np.uint64(seed & _M) + n * np.uint64(_C)) & np.uint64(_M)
    z = _imul(z ^ (z >> np.uint64(15)), z | np.uint64(1))
    z = z ^ ((z + _imul(z ^ (z >> np.uint64(7)), z | np.uint64(61))) & np.uint64(_M))
    return (z ^ (z >> np.uint64(14))) & np.uint64(_M)


def uniforms(seed: int, start: int, count: int) -> np.ndarray:
    return (mulberry32_outputs(seed, start, count).astype(np.float64) + 0.5) / 4294967296.0


def normals(seed: int, start: int, count: int) -> np.ndarray:
    """Normals number start .. start+count-1 of the stream of `mulberry32(seed)` (Box-Muller pairs: the
    normal 2p is r cos(2 pi u2), 2p+1 is r sin(2 pi u2), from draws 2p, 2p+1), as float32."""
    first_pair = start // 2
    last_pair = (start + count - 1) // 2
    npairs = last_pair - first_pair + 1
    u = uniforms(seed, 2 * first_pair, 2 * npairs).reshape(npairs, 2)
    r = np.sqrt(-2.0 * np.log(u[:, 0]))
    a = 2.0 * np.pi * u[:, 1]
    z = np.stack([r * np.cos(a), r * np.sin(a)], axis=1).reshape(-1)
    off = start - 2 * first_pair
    return z[off:off + count].astype(np.float32)


def sample_seeds(seed: int, count: int) -> np.ndarray:
    """seed_j for samples j = 0..count-1: the j-th output of mulberry32(seed)."""
    return mulberry32_outputs(seed, 0, count)


class Mulberry32:
    """Scalar reference implementation (used by tests against the vectorized form)."""

    def __init__(self, seed: int):
        self.state = seed & _M

    def next(self) -> int:
        self.state = (self.state + _C) & _M
        z = self.state
        z = ((z ^ (z >> 15)) * (z | 1)) & _M
        z ^= (z + (((z ^ (z >> 7)) * (z | 61)) & _M)) & _M
        return (z ^ (z >> 14)) & _M
