"""Drums / bass / other from a separated accompaniment, by signal processing (no 4-stem model).

No 4-stem network weights are available, so the accompaniment that the 2-stem model gives is
split further with classic DSP, for practice use (mute the drums, solo the bass):

1. STFT of the accompaniment (Hann, n_fft 4096, hop 1024, the app's transform).
2. Harmonic/percussive separation by median filtering (Fitzgerald, "Harmonic/percussive
   separation using median filtering", DAFx 2010) on the channel-averaged magnitude ``S``:
   ``H = median over time`` (sustained partials are smooth along time),
   ``P = median over frequency`` (onsets are smooth along frequency). Soft masks
   ``M_h = H^p / (H^p + P^p)``, ``M_p = 1 - M_h`` (Wiener-like, ``p = 2``).
3. The harmonic part is split by a soft low-pass crossover on frequency,
   ``w(f) = 1 / (1 + (f / f_c)^(2 n))`` (Butterworth-shaped, ``f_c = 200 Hz``, ``n = 4``):
   ``bass = M_h * w``, ``other = M_h * (1 - w)``, ``drums = M_p``. The three masks sum to 1.
4. drums and bass are resynthesised with the inverse STFT; ``other = accompaniment - drums -
   bass``, so the three stems add up to the accompaniment exactly (float rounding), and
   vocals + drums + bass + other to the mixture.

Long songs are processed in overlapping windows (default 30 s, 2 s cross-fades with
complementary ramps, the same scheme as the separator). :func:`stream_four_stems` takes the
separator's stream of blocks and yields final four-stem blocks, holding one window: memory does
not grow with the song at all. :func:`split_accompaniment` / :func:`four_stems` do the same on
whole arrays (the same windows, so the same result). Same masks on both channels: the stereo
image is kept.

Limits, honestly: HPSS puts every sustained sound in "harmonic" (sustained cymbals and
sub-kick tails leak into bass/other; strummed or plucked attacks into drums), and the bass stem
is simply "sustained content below ~200 Hz" (low piano/synth notes land there too). Measured
numbers: ``studies/fourstems_dev.py``.
"""

from __future__ import annotations

import threading
from typing import Callable, Iterable, Iterator, Mapping

import numpy as np

from ..audio.io import SAMPLE_RATE
from ..audio.stream import iter_windows
from ..errors import Cancelled
from .windows import fade_weights, spans

DESCRIPTION = ("drums/bass/other estimated by signal processing (HPSS + low band) from the accompaniment, "
               "not a neural 4-stem model")
CARD = {
    "name": "hpss-4stems",
    "description": DESCRIPTION,
    "method": "median-filter harmonic/percussive separation (Fitzgerald 2010) on the separated accompaniment; "
              "drums = percussive part, bass = harmonic part below ~200 Hz (soft crossover), "
              "other = the rest; soft masks that sum to 1",
    "benchmark": "studies/fourstems_dev.py",
}
STEMS = ("drums", "bass", "other")
DEFAULTS = {
    "n_fft": 4096,
    "n_hop": 1024,
    "harmonic_kernel": 17,   # frames (17 x 23 ms = 0.39 s) for the median over time
    "percussive_kernel": 17,  # bins (17 x 10.8 Hz = 183 Hz) for the median over frequency
    "power": 2.0,            # soft-mask exponent (2 = Wiener-like)
    "bass_cutoff": 200.0,    # Hz, centre of the bass crossover (mask 0.5 there)
    "bass_order": 4,         # crossover steepness (24 dB/octave-like)
    "window_s": 30.0,
    "overlap_s": 2.0,
}


def bass_weight(freqs: np.ndarray, cutoff: float, order: int) -> np.ndarray:
    """Soft low-pass weight in [0, 1]: 1 / (1 + (f / cutoff)^(2 order))."""
    return 1.0 / (1.0 + (np.maximum(freqs, 0.0) / cutoff) ** (2 * order))


def median_filter(S: np.ndarray, size: int, axis: int, chunk: int = 256) -> np.ndarray:
    """Running median of odd length ``size`` along ``axis`` of a 2-D array, edges mirrored
    (equal to ``scipy.ndimage.median_filter(..., mode="reflect")`` with a 1-D kernel, about 4x
    faster: a partial sort of a strided window view, in chunks so memory stays small)."""
    from numpy.lib.stride_tricks import sliding_window_view

    size = int(size) | 1  # odd
    if size == 1:
        return S.copy()
    A = np.moveaxis(S, axis, 1)
    half = size // 2
    padded = np.pad(A, ((0, 0), (half, half)), mode="symmetric")
    out = np.empty_like(A)
    for r in range(0, A.shape[0], chunk):
        win = sliding_window_view(padded[r:r + chunk], size, axis=1)
        out[r:r + chunk] = np.partition(win, half, axis=-1)[..., half]
    return np.moveaxis(out, 1, axis)


def stem_masks(mag: np.ndarray, sample_rate: int = SAMPLE_RATE, **params) -> dict[str, np.ndarray]:
    """Soft masks (bins, frames) for drums, bass, other from a magnitude spectrogram.

    ``mag``: (bins, frames) or (channels, bins, frames) magnitude; channels are averaged in
    power. The masks are non-negative and sum to 1 in every bin.
    """
    p = {**DEFAULTS, **params}
    mag = np.asarray(mag, dtype=np.float32)
    S = np.sqrt(np.mean(mag**2, axis=0)) if mag.ndim == 3 else mag
    H = median_filter(S, int(p["harmonic_kernel"]), axis=1)   # along time
    P = median_filter(S, int(p["percussive_kernel"]), axis=0)  # along frequency
    power = float(p["power"])
    scale = max(float(S.max()), 1e-30)  # keep H^p, P^p in float32 range
    Hp, Pp = (H / scale) ** power, (P / scale) ** power
    total = Hp + Pp
    # where both are zero (digital silence) split evenly: it does not matter, there is nothing
    m_h = np.where(total > 1e-30, Hp / np.maximum(total, 1e-30), np.float32(0.5)).astype(np.float32)
    freqs = np.arange(S.shape[0]) * sample_rate / float(p["n_fft"])
    w = bass_weight(freqs, float(p["bass_cutoff"]), int(p["bass_order"])).astype(np.float32)[:, None]
    bass = m_h * w
    return {"drums": 1.0 - m_h, "bass": bass, "other": m_h - bass}


def _split_window(audio: np.ndarray, sample_rate: int, p: dict) -> tuple[np.ndarray, np.ndarray]:
    """drums, bass (n, 2) of one excerpt."""
    import torch

    from . import transforms

    n = audio.shape[0]
    x = torch.from_numpy(np.ascontiguousarray(audio.T, dtype=np.float32))
    X = transforms.stft(x, int(p["n_fft"]), int(p["n_hop"]))  # (C, F, T) complex
    masks = stem_masks(X.abs().numpy(), sample_rate, **p)
    out = []
    for name in ("drums", "bass"):
        Y = X * torch.from_numpy(masks[name])[None]
        out.append(transforms.istft(Y, n, int(p["n_fft"]), int(p["n_hop"])).numpy().T)
    return out[0], out[1]


def split_accompaniment(
    accompaniment: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    progress: Callable[[float], None] | None = None,
    cancel: threading.Event | None = None,
    **params,
) -> dict[str, np.ndarray]:
    """Split ``accompaniment`` (n, 2) float32 into ``{"drums", "bass", "other"}`` (n, 2) each.

    ``drums + bass + other == accompaniment`` (to float rounding). ``params`` override
    :data:`DEFAULTS` (kernels, power, bass_cutoff, bass_order, window_s, overlap_s, n_fft, n_hop).
    ``progress(fraction)`` is called after each window; ``cancel`` (a ``threading.Event``) is
    checked between windows and raises :class:`~unmix_desktop.errors.Cancelled`.
    """
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    p = {**DEFAULTS, **params}
    audio = np.asarray(accompaniment, dtype=np.float32)
    if audio.ndim != 2 or audio.shape[1] != 2:
        raise ValueError(f"expected (n, 2) audio, got {audio.shape}")
    n = audio.shape[0]
    drums = np.zeros_like(audio)
    bass = np.zeros_like(audio)
    if n == 0:
        return {"drums": drums, "bass": bass, "other": audio.copy()}
    win = max(int(p["window_s"] * sample_rate), 4 * int(p["n_fft"]))
    overlap = min(int(p["overlap_s"] * sample_rate), win // 2)
    windows = spans(n, win, overlap)
    for i, (start, end) in enumerate(windows):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        d, b = _split_window(audio[start:end], sample_rate, p)
        w = fade_weights(end - start, windows[i - 1][1] - start if i else 0,
                         end - windows[i + 1][0] if i + 1 < len(windows) else 0)[:, None]
        drums[start:end] += d * w
        bass[start:end] += b * w
        if progress:
            progress((i + 1) / len(windows))
    other = audio - drums - bass
    return {"drums": drums, "bass": bass, "other": other}


def four_stems(
    stems: Mapping[str, np.ndarray],
    sample_rate: int = SAMPLE_RATE,
    progress: Callable[[float], None] | None = None,
    cancel: threading.Event | None = None,
    model: str | None = None,
    **params,
) -> dict[str, np.ndarray]:
    """``{vocals, accompaniment}`` (the separator's output) -> ``{vocals, drums, bass, other}``.

    The accompaniment is split by :func:`split_accompaniment`, or by the learned splitter
    ``model`` (a drums/bass/other bundle name, see :mod:`.learned4`; ``None`` = its default, ``"dsp"``
    = this module); the four stems add up to vocals + accompaniment (the mixture when the separator
    used its residual).
    """
    missing = [k for k in ("vocals", "accompaniment") if k not in stems]
    if missing:
        raise ValueError(f"four_stems needs vocals and accompaniment stems (missing: {', '.join(missing)})")
    from . import learned4

    if not learned4.is_dsp(model):
        return learned4.four_stems_learned(stems, model or learned4.DEFAULT, progress, cancel)
    parts = split_accompaniment(stems["accompaniment"], sample_rate, progress, cancel, **params)
    return {"vocals": np.asarray(stems["vocals"], dtype=np.float32), **parts}


class _AccompanimentSource:
    """Reads the accompaniment out of the separator's ``(offset, {target: block})`` stream and keeps
    the vocals (and the ``carry`` stems) of the same frames until :func:`stream_four_stems` hands
    them on (a source as in :mod:`unmix_desktop.audio.stream`)."""

    def __init__(self, blocks: Iterable[tuple[int, Mapping[str, np.ndarray]]], frames: int | None,
                 carry: tuple[str, ...] = ("vocals",)):
        self._blocks = iter(blocks)
        self.frames = frames
        self._carry = carry
        self._acc: list[np.ndarray] = []
        self._acc_len = 0
        self._kept: dict[str, list[np.ndarray]] = {k: [] for k in carry}
        self._kept_start = 0
        self._end = False

    def read(self, frames: int) -> np.ndarray:
        while self._acc_len < frames and not self._end:
            try:
                _, block = next(self._blocks)
            except StopIteration:
                self._end = True
                break
            missing = [k for k in ("accompaniment", *self._carry) if k not in block]
            if missing:
                raise ValueError(f"four stems need vocals and accompaniment stems (missing: {', '.join(missing)})")
            acc = np.asarray(block["accompaniment"], dtype=np.float32)
            self._acc.append(acc)
            self._acc_len += acc.shape[0]
            for k in self._carry:
                self._kept[k].append(np.asarray(block[k], dtype=np.float32))
        data = np.concatenate(self._acc) if self._acc else np.zeros((0, 2), np.float32)
        out, rest = data[:frames], data[frames:]
        self._acc = [rest] if rest.shape[0] else []
        self._acc_len = rest.shape[0]
        return out

    def take(self, start: int, end: int) -> dict[str, np.ndarray]:
        """The carried stems ``[start, end)``; everything before ``end`` is dropped."""
        assert start == self._kept_start
        out = {}
        for k, parts in self._kept.items():
            data = np.concatenate(parts) if parts else np.zeros((0, 2), np.float32)
            out[k], rest = data[:end - start], data[end - start:]
            self._kept[k] = [rest] if rest.shape[0] else []
        self._kept_start = end
        return out

    def take_vocals(self, start: int, end: int) -> np.ndarray:
        """Vocals ``[start, end)``; everything before ``end`` is dropped."""
        return self.take(start, end)["vocals"]


def stream_four_stems(
    blocks: Iterable[tuple[int, Mapping[str, np.ndarray]]],
    sample_rate: int = SAMPLE_RATE,
    progress: Callable[[float], None] | None = None,
    cancel: threading.Event | None = None,
    frames: int | None = None,
    carry: tuple[str, ...] = ("vocals",),
    **params,
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """The separator's stream of ``(offset, {vocals, accompaniment, ...})`` blocks -> a stream of
    ``(offset, {vocals, drums, bass, other})`` blocks, final, contiguous, in order.

    The same windows and cross-fades as :func:`split_accompaniment`, so the result equals
    ``four_stems(separator.separate(audio))`` (float rounding), and the four stems add up to
    vocals + accompaniment. Holds one window (``window_s + overlap_s``) of audio, whatever the
    song's length. ``frames`` (the expected length) only serves ``progress``. ``carry``: the stems
    of the input blocks handed on unchanged beside drums, bass and other (default the vocals).
    """
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    p = {**DEFAULTS, **params}
    source = _AccompanimentSource(blocks, frames, carry)
    win = max(int(p["window_s"] * sample_rate), 4 * int(p["n_fft"]))
    overlap = min(int(p["overlap_s"] * sample_rate), win // 2)
    pending: tuple[np.ndarray, np.ndarray] | None = None
    for w in iter_windows(source, win, overlap):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        if w.end == w.start:  # an empty song
            return
        d, b = _split_window(w.audio, sample_rate, p)
        weight = fade_weights(w.end - w.start, w.fade_in, w.fade_out)[:, None]
        d, b = d * weight, b * weight
        if pending is not None:
            d[:pending[0].shape[0]] += pending[0]
            b[:pending[1].shape[0]] += pending[1]
        cut = w.done - w.start
        acc = w.audio[:cut]
        drums, bass = d[:cut], b[:cut]
        yield w.start, {**source.take(w.start, w.done), "drums": drums, "bass": bass,
                        "other": acc - drums - bass}
        pending = (d[cut:], b[cut:])
        if progress:
            progress(1.0 if w.last else min(w.done / frames, 0.99) if frames else 0.5)
