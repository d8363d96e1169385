"""Spectrograms for display: log-magnitude, log-frequency bands, downsampled to a fixed width.

Pure numpy (no Qt): the window computes these in a worker thread and only draws the result.

``display_spectrogram(audio)`` returns a :class:`DisplaySpectrogram` whose ``image`` is
``(columns, bands)`` float32 in dB relative to ``ref_db`` and clipped to ``[floor_db, 0]``. Each
column averages the power of the STFT frames that fall into its time span, so a 5-minute song and
a 5-second clip both give about ``columns`` columns; each band averages the FFT bins between two
log-spaced edges (``fmin`` to ``fmax``), with the two nearest bins interpolated for bands narrower than a bin.
Memory is bounded: frames are processed in chunks.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import scipy.fft

from ..errors import Cancelled
from .io import SAMPLE_RATE


@dataclass
class DisplaySpectrogram:
    image: np.ndarray          # (columns, bands) float32 dB re ref_db, in [floor_db, 0]
    duration: float            # seconds covered by the columns
    band_edges: np.ndarray     # (bands + 1,) Hz, log-spaced
    ref_db: float              # 0 dB in the image is this power level (dB)
    floor_db: float

    @property
    def columns(self) -> int:
        return int(self.image.shape[0])

    @property
    def bands(self) -> int:
        return int(self.image.shape[1])

    def band_of(self, freq_hz: float) -> float:
        """Fractional band index of a frequency (for axis ticks)."""
        edges = np.log(self.band_edges)
        return float((np.log(freq_hz) - edges[0]) / (edges[-1] - edges[0]) * self.bands)


def band_matrix(n_fft: int, sample_rate: int, bands: int, fmin: float, fmax: float) -> tuple[np.ndarray, np.ndarray]:
    """``(bands, n_fft//2+1)`` averaging weights and the ``bands + 1`` edges (Hz)."""
    fmax = min(fmax, sample_rate / 2)
    edges = np.geomspace(fmin, fmax, bands + 1)
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    w = np.zeros((bands, freqs.size), np.float32)
    for b in range(bands):
        inside = (freqs >= edges[b]) & (freqs < edges[b + 1])
        if inside.any():
            w[b, inside] = 1.0 / inside.sum()
        else:  # narrower than a bin: interpolate between the two nearest bins
            pos = np.sqrt(edges[b] * edges[b + 1]) * n_fft / sample_rate
            lo = min(int(pos), freqs.size - 2)
            frac = pos - lo
            w[b, lo] += 1.0 - frac
            w[b, lo + 1] += frac
    return w, edges


def band_power(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, columns: int = 1200, bands: int = 160,
               fmin: float = 40.0, fmax: float = 16000.0, n_fft: int = 4096,
               cancel: threading.Event | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean power per (column, band) of the mono mix of ``audio``; returns (power, edges, duration)."""
    audio = np.asarray(audio, dtype=np.float32)
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    n = mono.shape[0]
    duration = n / sample_rate
    w, edges = band_matrix(n_fft, sample_rate, bands, fmin, fmax)
    columns = max(1, min(int(columns), max(1, n // 256)))
    if n == 0:
        return np.zeros((columns, bands), np.float32), edges, duration
    # Enough frames for every column to get at least two, never more than needed.
    hop = int(max(64, min(n_fft // 2, n // (2 * columns))))  # n_fft // 2: Hann frames still cover every sample
    padded = np.concatenate([np.zeros(n_fft // 2, np.float32), mono, np.zeros(n_fft // 2 + hop, np.float32)])
    n_frames = 1 + n // hop
    window = np.hanning(n_fft).astype(np.float32)
    views = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    norm = 1.0 / (window.sum() ** 2)
    # Column of each frame (frame i is centred on sample i * hop).
    col_of_frame = np.minimum((np.arange(n_frames) * hop * columns) // max(n, 1), columns - 1)
    acc = np.zeros((columns, bands), np.float64)
    count = np.bincount(col_of_frame, minlength=columns).astype(np.float64)
    chunk = 1024
    for start in range(0, n_frames, chunk):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        stop = min(start + chunk, n_frames)
        frames = views[start:stop] * window
        spec = scipy.fft.rfft(frames, axis=1)
        power = np.abs(spec).astype(np.float32)
        np.multiply(power, power, out=power)
        bp = power @ w.T  # (frames, bands)
        cols = col_of_frame[start:stop]
        # frames are in time order: sum runs of equal columns
        first = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]])
        acc[cols[first]] += np.add.reduceat(bp, first, axis=0)
    acc *= norm / np.maximum(count, 1)[:, None]
    return acc.astype(np.float32), edges, duration


def power_to_db(power: np.ndarray, ref_db: float | None = None, floor_db: float = -80.0) -> tuple[np.ndarray, float]:
    """``10 log10(power)`` relative to ``ref_db``, clipped to [floor_db, 0].

    The default reference is the 99.5th percentile, so a single loud click does not darken the rest.
    """
    db = 10.0 * np.log10(np.maximum(power, 1e-12))
    if ref_db is None:
        ref_db = float(np.percentile(db, 99.5)) if db.size else 0.0
    out = np.clip(db - ref_db, floor_db, 0.0).astype(np.float32)
    return out, float(ref_db)


def display_spectrogram(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, columns: int = 1200,
                        bands: int = 160, ref_db: float | None = None, floor_db: float = -80.0,
                        fmin: float = 40.0, fmax: float = 16000.0, tilt_db_per_octave: float = 3.0,
                        cancel: threading.Event | None = None) -> DisplaySpectrogram:
    """A downsampled log-magnitude, log-frequency spectrogram of ``audio`` ((n, 2) or (n,)).

    ``tilt_db_per_octave`` lifts high bands relative to 1 kHz (music spectra fall with frequency;
    without it the bass dominates the colour scale). Pass the mixture's ``ref_db`` when drawing
    stems so that all views share one colour scale.
    """
    power, edges, duration = band_power(audio, sample_rate, columns, bands, fmin, fmax, cancel=cancel)
    if tilt_db_per_octave:
        centres = np.sqrt(edges[:-1] * edges[1:])
        power = power * (10.0 ** (tilt_db_per_octave * np.log2(centres / 1000.0) / 10.0)).astype(np.float32)
    image, ref = power_to_db(power, ref_db, floor_db)
    return DisplaySpectrogram(image, duration, edges, ref, floor_db)
