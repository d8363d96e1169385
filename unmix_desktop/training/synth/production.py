"""Production of the stems: EQ, compression, saturation, reverb and stereo placement per stem, then
bus compression and limiting of the mix applied as one common gain curve to every stem (so the
processed stems still sum to the processed mixture exactly), and an occasional lo-fi low-pass that is
linear and the same for every stem (again keeping the sum). Audio float32 ``(n, 2)``."""

from __future__ import annotations

import numpy as np
from scipy import signal

from ...audio.io import SAMPLE_RATE


def _biquad(kind: str, f0: float, gain_db: float, q: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """RBJ cookbook peaking / low-shelf / high-shelf filter coefficients."""
    a = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * f0 / sr
    alpha = np.sin(w0) / (2 * q)
    cw = np.cos(w0)
    if kind == "peak":
        b = [1 + alpha * a, -2 * cw, 1 - alpha * a]
        den = [1 + alpha / a, -2 * cw, 1 - alpha / a]
    else:
        sq = 2 * np.sqrt(a) * alpha
        if kind == "low":
            b = [a * ((a + 1) - (a - 1) * cw + sq), 2 * a * ((a - 1) - (a + 1) * cw), a * ((a + 1) - (a - 1) * cw - sq)]
            den = [(a + 1) + (a - 1) * cw + sq, -2 * ((a - 1) + (a + 1) * cw), (a + 1) + (a - 1) * cw - sq]
        else:
            b = [a * ((a + 1) + (a - 1) * cw + sq), -2 * a * ((a - 1) + (a + 1) * cw),
                 a * ((a + 1) + (a - 1) * cw - sq)]
            den = [(a + 1) - (a - 1) * cw + sq, 2 * ((a - 1) - (a + 1) * cw), (a + 1) - (a - 1) * cw - sq]
    return np.array(b) / den[0], np.array(den) / den[0]


def random_eq(x: np.ndarray, rng: np.random.Generator, sr: int, strength_db: float = 6.0) -> np.ndarray:
    y = x
    for kind, lo, hi in (("low", 60, 250), ("peak", 200, 5000), ("high", 3000, 12000)):
        if rng.random() < 0.7:
            b, a = _biquad(kind, float(np.exp(rng.uniform(np.log(lo), np.log(hi)))),
                           float(rng.uniform(-strength_db, strength_db)), 0.707 if kind != "peak" else
                           float(rng.uniform(0.5, 2.0)), sr)
            y = signal.lfilter(b, a, y, axis=0)
    return y.astype(np.float32)


def envelope(x: np.ndarray, sr: int, attack_ms: float, release_ms: float) -> np.ndarray:
    """Peak envelope (n,) of the channel-max magnitude: fast attack, one-pole release (vectorised:
    a one-pole smoother of the magnitude, then a running max over the attack time)."""
    mag = np.max(np.abs(x), axis=1) if x.ndim == 2 else np.abs(x)
    rel = np.exp(-1.0 / (sr * release_ms / 1000))
    smooth = signal.lfilter([1 - rel], [1, -rel], mag)
    w = max(1, int(sr * attack_ms / 1000))
    from scipy.ndimage import maximum_filter1d

    # never below the magnitude itself: a gain of ceiling / envelope then keeps every sample under it
    return np.maximum(np.maximum(maximum_filter1d(smooth, w), maximum_filter1d(mag, w)), 1e-9)


def compressor_gain(x: np.ndarray, sr: int, threshold_db: float, ratio: float, attack_ms: float = 5.0,
                    release_ms: float = 120.0) -> np.ndarray:
    """Gain curve (n,) of a feed-forward compressor (1 below threshold)."""
    env_db = 20 * np.log10(envelope(x, sr, attack_ms, release_ms))
    over = np.maximum(env_db - threshold_db, 0.0)
    return (10 ** (-over * (1 - 1 / ratio) / 20)).astype(np.float32)


def limiter_gain(x: np.ndarray, sr: int, ceiling: float = 0.98, release_ms: float = 60.0) -> np.ndarray:
    env = envelope(x, sr, 1.5, release_ms)
    return np.minimum(1.0, ceiling / env).astype(np.float32)


def saturate(x: np.ndarray, drive: float) -> np.ndarray:
    if drive <= 1e-3:
        return x
    return (np.tanh(drive * x) / np.tanh(drive)).astype(np.float32)


def reverb(x: np.ndarray, rng: np.random.Generator, sr: int, rt60: float, wet: float) -> np.ndarray:
    """Convolution with a decorrelated stereo exponentially decaying noise tail (a small room to a hall)."""
    n_ir = int(sr * min(rt60, 3.0))
    t = np.arange(n_ir) / sr
    decay = np.exp(-6.9 * t / rt60)
    ir = rng.standard_normal((n_ir, 2)) * decay[:, None]
    ir[: int(sr * 0.01)] *= np.linspace(0, 1, int(sr * 0.01))[:, None]
    ir /= np.sqrt(np.sum(ir ** 2, axis=0, keepdims=True)) + 1e-9
    mono = x.mean(axis=1)
    tail = np.stack([signal.fftconvolve(mono, ir[:, c])[: len(x)] for c in range(2)], axis=1)
    return ((1 - wet) * x + wet * tail).astype(np.float32)


def produce_stem(x: np.ndarray, stem: str, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """EQ -> compression -> saturation -> reverb on one stem (n, 2); levels are set by the caller."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak < 1e-6:
        return x
    y = random_eq(x, rng, sr)
    if rng.random() < 0.7:
        g = compressor_gain(y, sr, threshold_db=20 * np.log10(peak) - float(rng.uniform(3, 15)),
                            ratio=float(rng.uniform(2, 6)), attack_ms=float(rng.uniform(1, 20)),
                            release_ms=float(rng.uniform(50, 300)))
        y = y * g[:, None]
    if rng.random() < 0.35:
        scale = max(float(np.max(np.abs(y))), 1e-6)
        y = saturate(y / scale, float(rng.uniform(0.5, 3.0))) * scale
    p_rev = {"drums": 0.4, "bass": 0.15}.get(stem, 0.7)
    if rng.random() < p_rev:
        y = reverb(y, rng, sr, float(rng.uniform(0.3, 2.5)), float(rng.uniform(0.05, 0.3)))
    return y.astype(np.float32)


def master(stems: dict[str, np.ndarray], rng: np.random.Generator, sr: int = SAMPLE_RATE,
           target_peak: float = 0.9) -> dict[str, np.ndarray]:
    """Bus compression + limiting + (sometimes) lo-fi, as operations common to all stems;
    returns the processed stems, whose sum is the processed mixture."""
    mix = sum(stems.values())
    peak = max(float(np.max(np.abs(mix))), 1e-6)
    stems = {k: v / peak * 0.7 for k, v in stems.items()}
    mix = mix / peak * 0.7
    gain = np.ones(len(mix), dtype=np.float32)
    if rng.random() < 0.8:
        gain *= compressor_gain(mix, sr, threshold_db=float(rng.uniform(-16, -6)), ratio=float(rng.uniform(1.5, 4)),
                                attack_ms=float(rng.uniform(5, 30)), release_ms=float(rng.uniform(80, 400)))
    makeup = float(10 ** (rng.uniform(0, 8) / 20))
    gain *= makeup
    gain *= limiter_gain(mix * gain[:, None], sr, ceiling=target_peak)
    out = {k: (v * gain[:, None]).astype(np.float32) for k, v in stems.items()}
    if rng.random() < 0.1:  # lo-fi: the same linear low-pass on every stem
        b, a = signal.butter(4, float(rng.uniform(5000, 11000)), fs=sr)
        out = {k: signal.lfilter(b, a, v, axis=0).astype(np.float32) for k, v in out.items()}
    return out
