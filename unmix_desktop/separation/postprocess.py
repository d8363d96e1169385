"""The open-unmix tutorial's test-time toolkit, over numpy arrays in norbert's layout.

``v``: magnitude estimates ``(frames, bins, channels, sources)``; ``x``: mixture STFT
``(frames, bins, channels)`` complex. Steps:

1. initial complex estimates: a ratio (soft) mask ``v**power / sum(v**power)`` applied to the mixture,
   optionally sharpened with :func:`logit_sharpen`; or, without soft mask, each magnitude estimate
   with the mixture's phase (open-unmix's default before EM);
2. optional residual source ``x - sum(estimates)`` (for models that only estimate some targets);
3. ``niter`` iterations of the multichannel Wiener filter's EM (norbert), which re-estimates
   each source's power spectral density and spatial covariance and filters the mixture again.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

EPS = 1e-10


def ratio_mask(v: np.ndarray, power: float = 1.0) -> np.ndarray:
    """Masks ``v**p / sum_j v_j**p`` over the last axis; they sum to 1 (uniform where all are 0)."""
    vp = np.power(np.maximum(v, 0.0), power, dtype=np.float32)
    total = vp.sum(axis=-1, keepdims=True)
    nb = v.shape[-1]
    return np.where(total > EPS, vp / np.maximum(total, EPS), np.float32(1.0 / nb)).astype(np.float32)


def logit_sharpen(mask: np.ndarray, strength: float, threshold: float = 0.5) -> np.ndarray:
    """Push mask values towards 0/1: ``sigmoid(strength * (logit(m) - logit(threshold)))``.

    ``strength`` 1 with threshold 0.5 is the identity; larger values approach a binary mask (less
    interference, more artefacts). The result is renormalised so masks over sources still sum to 1.
    norbert's own ``softmask(logit=...)`` calls a function that does not exist, hence this one.
    """
    if strength is None or strength == 1.0 and threshold == 0.5:
        return mask
    m = np.clip(mask, 1e-6, 1 - 1e-6)
    logits = np.log(m) - np.log1p(-m) - np.log(threshold / (1 - threshold))
    sharp = 1.0 / (1.0 + np.exp(-strength * logits))
    total = sharp.sum(axis=-1, keepdims=True)
    return (sharp / np.maximum(total, EPS)).astype(np.float32)


def initial_estimates(v: np.ndarray, x: np.ndarray, softmask: bool = True, power: float = 1.0,
                      logit: float | None = None) -> np.ndarray:
    """Complex source estimates ``(frames, bins, channels, sources)`` before any EM."""
    if softmask and v.shape[-1] > 1:
        mask = ratio_mask(v, power)
        if logit is not None:
            mask = logit_sharpen(mask, logit)
        return mask * x[..., None]
    phase = np.exp(1j * np.angle(x)).astype(x.dtype)
    return v.astype(np.float32) * phase[..., None]


def add_residual(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Append the source ``x - sum(y)`` so that the sources sum to the mixture."""
    return np.concatenate([y, (x - y.sum(axis=-1))[..., None]], axis=-1)


def expectation_maximization(y: np.ndarray, x: np.ndarray, niter: int,
                             should_stop: Callable[[], None] | None = None) -> np.ndarray:
    """``niter`` EM iterations of the multichannel Wiener filter (norbert), on copies.

    norbert's ``wiener()`` divides its input in place when max|x| > 10; this scales copies
    instead, and lets the caller stop between iterations.
    """
    import norbert

    if niter <= 0 or y.shape[-1] < 2:
        return y
    scale = max(1.0, float(np.abs(x).max()) / 10.0)
    xs = (x / scale).astype(np.complex64)
    ys = (y / scale).astype(np.complex64)
    for _ in range(niter):
        if should_stop:
            should_stop()
        ys = norbert.expectation_maximization(ys, xs, iterations=1)[0].astype(np.complex64)
    return ys * scale


def postprocess(v: np.ndarray, x: np.ndarray, niter: int = 1, softmask: bool = True, power: float = 1.0,
                logit: float | None = None, residual: bool = False,
                should_stop: Callable[[], None] | None = None) -> np.ndarray:
    """All steps above: magnitude estimates + mixture STFT -> complex source estimates."""
    # Without EM the ratio mask is what makes the sources add up; a single source cannot be masked
    # against nothing, so it keeps its magnitude estimate with the mixture phase.
    use_mask = (softmask or niter == 0 or logit is not None) and v.shape[-1] > 1
    y = initial_estimates(v, x, softmask=use_mask, power=power, logit=logit)
    if residual:
        y = add_residual(y, x)
    return expectation_maximization(y, x, niter, should_stop)
