"""sqrt noise schedule and respacing, exactly as docs/ARCHITECTURE.md ("Noise schedule")."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

T_DEFAULT = 2000
S_DEFAULT = 1e-4


def abarf(u: float, s: float = S_DEFAULT) -> float:
    return 1.0 - math.sqrt(u + s)


def training_schedule(T: int = T_DEFAULT, s: float = S_DEFAULT) -> np.ndarray:
    """abar[i], i = 0..T-1 (float64)."""
    beta = np.array([min(1.0 - abarf((i + 1) / T, s) / abarf(i / T, s), 0.999) for i in range(T)], dtype=np.float64)
    return np.cumprod(1.0 - beta)


MAX_SPACING = 4.0


def respace_indices(S: int, T: int = T_DEFAULT, spacing: float = 1.0) -> np.ndarray:
    """The training timesteps a run of S steps uses, ascending; step k at round((T - 1) (k / (S - 1))^spacing),
    collisions pushed apart (the engine's respacedTimesteps, src-main/engine/schedule.ts)."""
    if S < 1:
        raise ValueError(f"steps must be >= 1, got {S}")
    if S > T:
        raise ValueError(f"steps must be <= T={T}, got {S}")
    if not 0.0 < spacing <= MAX_SPACING:
        raise ValueError(f"spacing must be in (0, {MAX_SPACING:g}], got {spacing}")
    if S == 1:
        return np.array([T - 1], dtype=np.int64)
    k = np.arange(S, dtype=np.int64)
    if spacing == 1.0:
        # round(k*(T-1)/(S-1)), half away from zero, in exact integer arithmetic
        return (2 * k * (T - 1) + (S - 1)) // (2 * (S - 1))
    use = [math.floor((T - 1) * math.pow(i / (S - 1), spacing) + 0.5) for i in range(S)]
    for i in range(1, S):
        use[i] = max(use[i], use[i - 1] + 1)
    use[S - 1] = T - 1
    for i in range(S - 2, -1, -1):
        use[i] = min(use[i], use[i + 1] - 1)
    return np.array(use, dtype=np.int64)


@dataclass
class Respaced:
    use: np.ndarray         # int64 [S]
    abar: np.ndarray        # abar_s
    abar_prev: np.ndarray
    beta: np.ndarray
    c1: np.ndarray
    c2: np.ndarray
    var: np.ndarray


def respace(S: int, T: int = T_DEFAULT, s: float = S_DEFAULT, spacing: float = 1.0) -> Respaced:
    abar_full = training_schedule(T, s)
    use = respace_indices(S, T, spacing)
    ab = abar_full[use]
    ab_prev = np.concatenate([[1.0], ab[:-1]])
    beta = 1.0 - ab / ab_prev
    c1 = beta * np.sqrt(ab_prev) / (1.0 - ab)
    c2 = (1.0 - ab_prev) * np.sqrt(1.0 - beta) / (1.0 - ab)
    var = beta * (1.0 - ab_prev) / (1.0 - ab)
    if S > 1:
        var[0] = var[1]
    return Respaced(use, ab, ab_prev, beta, c1, c2, var)
