"""Overlapping processing windows with complementary linear cross-fades (bounded memory).

Used by the separator and the four-stem split: each window is processed alone and the results
are summed with :func:`fade_weights`, which add up to exactly one across every overlap.
"""

from __future__ import annotations

import numpy as np


def spans(n: int, win: int, overlap: int) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` covering ``[0, n)``; consecutive windows overlap by ``overlap``."""
    if n <= win:
        return [(0, n)]
    step = win - overlap
    out = [(s, min(s + win, n)) for s in range(0, n - overlap, step)]
    # Avoid a tiny last window: merge it into the previous one.
    if len(out) > 1 and out[-1][1] - out[-1][0] < 2 * overlap:
        out.pop()
        out[-1] = (out[-1][0], n)
    return out


def fade_weights(length: int, fade_in: int, fade_out: int) -> np.ndarray:
    """Linear ramps in and out; a fade-out and the next window's fade-in sum to one."""
    w = np.ones(length, dtype=np.float32)
    if fade_in:
        w[:fade_in] = (np.arange(fade_in, dtype=np.float32) + 0.5) / fade_in
    if fade_out:
        w[length - fade_out:] = 1.0 - (np.arange(fade_out, dtype=np.float32) + 0.5) / fade_out
    return w
