"""The open-unmix tutorial's test-time toolkit, over numpy arrays in norbert's layout.

``v``: magnitude estimates ``(frames, bins, channels, sources)``; ``x``: mixture STFT
``(frames, bins, channels)`` complex. Steps:

1. initial complex estimates: a ratio (soft) mask ``v**power / sum(v**power)`` applied to the mixture,
   optionally sharpened with :func:`logit_sharpen`; or, without soft mask, each magnitude estimate
   with the mixture's phase (open-unmix's default before EM);
2. optional residual source ``x - sum(estimates)`` (for models that only estimate some targets);
3. ``niter`` iterations of the multichannel Wiener filter's EM (norbert's algorithm), which
   re-estimates each source's power spectral density and spatial covariance and filters the
   mixture again. :func:`expectation_maximization` runs it vectorised over frames (the default);
   :func:`expectation_maximization_norbert` is the reference that calls norbert itself.
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


def _scaled_copies(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    # norbert's wiener() divides its input in place when max|x| > 10; scale copies instead.
    scale = max(1.0, float(np.abs(x).max()) / 10.0)
    return (y / scale).astype(np.complex64), (x / scale).astype(np.complex64), scale


def expectation_maximization_norbert(y: np.ndarray, x: np.ndarray, niter: int,
                                     should_stop: Callable[[], None] | None = None) -> np.ndarray:
    """Reference: ``niter`` EM iterations by norbert itself, on scaled copies."""
    import norbert

    if niter <= 0 or y.shape[-1] < 2:
        return y
    ys, xs, scale = _scaled_copies(y, x)
    for _ in range(niter):
        if should_stop:
            should_stop()
        ys = norbert.expectation_maximization(ys, xs, iterations=1)[0].astype(np.complex64)
    return ys * scale


def _em_iteration(yr: np.ndarray, yi: np.ndarray, xr: np.ndarray, xi: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """One of norbert's EM iterations for stereo, vectorised over frames, in real float32.

    ``yr, yi``: real and imaginary parts of the estimates ``(S, C=2, F, T)``; ``xr, xi``: the
    mixture's ``(C=2, F, T)``. Per source ``j``: ``v_j = mean_c |y_jc|^2``;
    ``R_j = sum_t y_j y_j^H / (eps + sum_t v_j)``; ``Cxx = sum_j v_j R_j + sqrt(eps) I``;
    ``y_j = v_j R_j Cxx^-1 x`` (norbert forms ``G_j = v_j R_j Cxx^-1`` first, then ``G_j x``;
    here ``z = Cxx^-1 x`` is formed once for all sources: same math, other rounding). The 2x2
    matrices are Hermitian, so only ``R_00, R_11`` (real) and ``R_01`` are formed. numpy, not
    torch: these are ~60 memory-bound passes, and on 2 shared cores torch's 2-thread
    elementwise ops lost more to thread synchronisation than they gained (docs/QUALITY.md).
    """
    eps = np.float32(np.finfo(np.float32).eps)
    f32 = np.float32
    p0 = yr[:, 0] * yr[:, 0] + yi[:, 0] * yi[:, 0]           # |y_j0|^2  (S, F, T)
    p1 = yr[:, 1] * yr[:, 1] + yi[:, 1] * yi[:, 1]
    v = p0 + p1
    v *= f32(0.5)
    w = v.sum(axis=-1, keepdims=True, dtype=f32) + eps      # (S, F, 1)
    r00 = p0.sum(axis=-1, keepdims=True, dtype=f32) / w
    r11 = p1.sum(axis=-1, keepdims=True, dtype=f32) / w
    # R_01 = sum_t y_0 conj(y_1)
    r01r = (yr[:, 0] * yr[:, 1] + yi[:, 0] * yi[:, 1]).sum(axis=-1, keepdims=True, dtype=f32) / w
    r01i = (yi[:, 0] * yr[:, 1] - yr[:, 0] * yi[:, 1]).sum(axis=-1, keepdims=True, dtype=f32) / w
    reg = f32(np.sqrt(eps))
    c00 = (v * r00).sum(axis=0) + reg                        # (F, T)
    c11 = (v * r11).sum(axis=0) + reg
    c01r = (v * r01r).sum(axis=0)
    c01i = (v * r01i).sum(axis=0)
    inv_det = f32(1.0) / (c00 * c11 - c01r * c01r - c01i * c01i)
    # z = Cxx^-1 x, Cxx^-1 = [[c11, -c01], [-conj(c01), c00]] / det
    z0r = (c11 * xr[0] - (c01r * xr[1] - c01i * xi[1])) * inv_det
    z0i = (c11 * xi[0] - (c01r * xi[1] + c01i * xr[1])) * inv_det
    z1r = (c00 * xr[1] - (c01r * xr[0] + c01i * xi[0])) * inv_det
    z1i = (c00 * xi[1] - (c01r * xi[0] - c01i * xr[0])) * inv_det
    # y_j = v_j R_j z: [r00 z0 + r01 z1, conj(r01) z0 + r11 z1] * v_j
    out = np.empty((2,) + yr.shape, np.float32)              # (re/im, S, C, F, T)
    np.multiply(r00 * z0r + (r01r * z1r - r01i * z1i), v, out=out[0, :, 0])
    np.multiply(r00 * z0i + (r01r * z1i + r01i * z1r), v, out=out[1, :, 0])
    np.multiply(r11 * z1r + (r01r * z0r + r01i * z0i), v, out=out[0, :, 1])
    np.multiply(r11 * z1i + (r01r * z0i - r01i * z0r), v, out=out[1, :, 1])
    return out[0], out[1]


def _em_threads() -> int:
    """Threads for the EM: torch's thread count (the pipeline's policy: 1 beside the window's UI, every
    core for the command line), at most 4."""
    import torch

    return max(1, min(4, torch.get_num_threads()))


def _em_iteration_parallel(yr: np.ndarray, yi: np.ndarray, xr: np.ndarray, xi: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_em_iteration` with the frequency bins split over threads (numpy releases the GIL in its
    loops). Every quantity of an iteration is per bin (sums run over frames and sources only), so the
    result is bit-identical to one call; the model is idle while the EM runs, so the cores are free."""
    n = _em_threads()
    bins = yr.shape[-2]
    if n <= 1 or bins < 64:
        return _em_iteration(yr, yi, xr, xi)
    from concurrent.futures import ThreadPoolExecutor

    edges = np.linspace(0, bins, n + 1).astype(int)
    out_r = np.empty(yr.shape, np.float32)
    out_i = np.empty(yi.shape, np.float32)

    def part(k: int) -> None:
        a, b = edges[k], edges[k + 1]
        r, i = _em_iteration(yr[:, :, a:b], yi[:, :, a:b], xr[:, a:b], xi[:, a:b])
        out_r[:, :, a:b] = r
        out_i[:, :, a:b] = i

    with ThreadPoolExecutor(n) as pool:
        list(pool.map(part, range(n)))
    return out_r, out_i


def expectation_maximization(y: np.ndarray, x: np.ndarray, niter: int,
                             should_stop: Callable[[], None] | None = None) -> np.ndarray:
    """``niter`` EM iterations of the multichannel Wiener filter (norbert's math, in torch).

    ``y`` ``(frames, bins, channels, sources)``, ``x`` ``(frames, bins, channels)`` complex.
    Works on scaled copies (norbert's ``wiener()`` divides its input in place when max|x| > 10)
    and lets the caller stop between iterations. Stereo runs vectorised over all frames
    (:func:`_em_iteration`; same result as :func:`expectation_maximization_norbert` to float rounding); other channel
    counts use norbert. The result is a view of an ``(S, C, F, T)`` array, so each source's
    ``(C, F, T)`` transpose is contiguous for the inverse STFT.
    """
    if niter <= 0 or y.shape[-1] < 2:
        return y
    if x.shape[-1] != 2:
        return expectation_maximization_norbert(y, x, niter, should_stop)
    scale = max(1.0, float(np.abs(x).max()) / 10.0)
    yt = y.transpose(3, 2, 1, 0)                                  # (S, C, F, T) views
    xt = x.transpose(2, 1, 0)                                     # (C, F, T)
    inv = np.float32(1.0 / scale)
    yr = np.ascontiguousarray(yt.real, dtype=np.float32) * inv   # scaled copies: inputs untouched
    yi = np.ascontiguousarray(yt.imag, dtype=np.float32) * inv
    xr = np.ascontiguousarray(xt.real, dtype=np.float32) * inv
    xi = np.ascontiguousarray(xt.imag, dtype=np.float32) * inv
    for _ in range(niter):
        if should_stop:
            should_stop()
        yr, yi = _em_iteration_parallel(yr, yi, xr, xi)
    out = np.empty(yr.shape, np.complex64)                        # (S, C, F, T)
    out.real = yr * np.float32(scale)
    out.imag = yi * np.float32(scale)
    return out.transpose(3, 2, 1, 0)


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
