"""Tempo, beat and downbeat estimation (numpy/scipy only, no Qt).

A compact version of the classic pipeline (Ellis 2007, as in librosa's ``beat_track``):

1. onset strength: spectral flux of a log-compressed magnitude spectrogram (mono, 22.05 kHz,
   1024-point frames, hop 128: about 172 envelope frames per second), locally detrended;
2. tempo: autocorrelation of the envelope over 40..240 BPM, each lag scored with its
   multiples and weighted by a broad prior around 120 BPM (log-normal, one octave wide), peak
   refined by parabolic interpolation;
3. beats: dynamic programming that trades onset strength against deviation from that period;
4. metrical level: of the tempo and its multiples and fractions by 2 and 3, the fastest
   whose beats nearly all carry a kick/snare/bass/chord onset, so that hi-hat eighth notes
   are not taken for beats; when the tempo's own beats mostly (not nearly all) do, the
   plausible level nearest 120 BPM (:func:`metrical_level`);
5. BPM: the slope of a least-squares line through the beat times (sub-frame precise);
6. downbeats: 4 beats to the bar; the bar phase whose beats carry the most low-frequency
   (kick/bass) onset energy.

:func:`estimate_beats` runs it on several candidate signals (the drums stem, the accompaniment,
the mix) and keeps the one with the clearest pulse (the mean onset strength on the beats over
the mean overall). :func:`song_beats` is the one call for a whole song's mix: ``unmix beats SONG``
and the window (which analyses the decoded song, not its stems, so both give one answer, and a
song still being separated has its whole grid at once). Silence, or fewer than
:data:`MIN_BEATS` beats, is "no beat" (``BeatGrid.found`` false, ``bpm`` 0).
Audio is float32 ``(n, 2)`` or ``(n,)`` at ``sample_rate``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from ..atomic import atomic_write_json
from ..audio.io import SAMPLE_RATE

ANALYSIS_SR = 22050
N_FFT = 1024
HOP = 128
BPM_MIN, BPM_MAX = 40.0, 240.0
PRIOR_BPM = 120.0
BEATS_PER_BAR = 4
#: Envelope frame i spans samples [i HOP, i HOP + N_FFT): an onset shows in the flux about this much
#: after the frame's start (measured on generated grooves: clicks at known times).
ONSET_DELAY_S = 0.033
#: Stems tried first, in this order, before the mix (their sum).
PREFERRED_STEMS = ("drums", "bass_drums", "accompaniment")
#: Share of a level's beats with a body-band onset (:func:`metrical_level`): FAST_SUPPORT is
#: "nearly all", KEEP_SUPPORT "mostly" (measured on the lyrics-dev songs: 0.80-0.81 at the
#: autocorrelation tempo of Fantasma (110) and Mes Larmes (185); eighth-note hi-hat grooves ~0.5).
FAST_SUPPORT = 0.85
KEEP_SUPPORT = 0.65
#: Fewer beats than this (or a silent signal, peak below SILENCE_PEAK) is "no beat found".
MIN_BEATS = 4
SILENCE_PEAK = 1e-4  # -80 dBFS


@dataclass
class BeatGrid:
    """Beats of a song: ``bpm``, beat and downbeat times (seconds of the original), where they came
    from (``source``: a stem name or ``"mix"``) and a pulse clarity (``confidence``: > 1.5 is clear)."""

    bpm: float
    beats: list[float] = field(default_factory=list)
    downbeats: list[float] = field(default_factory=list)
    beats_per_bar: int = BEATS_PER_BAR
    source: str = "mix"
    confidence: float = 0.0

    @property
    def found(self) -> bool:
        """Whether a beat was found (silence or a too short signal has none)."""
        return self.bpm > 0 and len(self.beats) >= MIN_BEATS

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bpm"] = round(self.bpm, 3)
        d["beats"] = [round(t, 4) for t in self.beats]
        d["downbeats"] = [round(t, 4) for t in self.downbeats]
        d["confidence"] = round(self.confidence, 3)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "BeatGrid":
        return cls(float(d["bpm"]), [float(t) for t in d.get("beats", [])], [float(t) for t in d.get("downbeats", [])],
                   int(d.get("beats_per_bar", BEATS_PER_BAR)), str(d.get("source", "mix")),
                   float(d.get("confidence", 0.0)))

    def save(self, path: str | os.PathLike) -> Path:
        """Write JSON through a temporary file and a rename."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "BeatGrid":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def nearest_beat(self, seconds: float) -> float:
        """The beat time closest to ``seconds`` (``seconds`` itself when there are no beats)."""
        if not self.beats:
            return float(seconds)
        b = np.asarray(self.beats)
        return float(b[np.argmin(np.abs(b - seconds))])

    def nudge(self, seconds: float, beats: int) -> float:
        """``seconds`` moved by ``beats`` beats along the grid (snapped to the nearest beat first)."""
        if not self.beats:
            return float(seconds)
        b = np.asarray(self.beats)
        i = int(np.argmin(np.abs(b - seconds))) + int(beats)
        if 0 <= i < len(b):
            return float(b[i])
        period = 60.0 / self.bpm
        return float(b[0] + i * period) if i < 0 else float(b[-1] + (i - len(b) + 1) * period)


def mono_at(audio: np.ndarray, sample_rate: int, rate: int) -> np.ndarray:
    """``audio`` (n,) or (n, C) as contiguous float32 mono at ``rate`` Hz (soxr): the input of the
    analyses (beats here, chords at their own rate)."""
    a = np.asarray(audio, np.float32)
    if a.ndim == 2:
        a = a.mean(axis=1)
    if sample_rate != rate:
        import soxr

        a = soxr.resample(a, sample_rate, rate)
    return np.ascontiguousarray(a, np.float32)


def _mono(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    return mono_at(audio, sample_rate, ANALYSIS_SR)


def onset_envelope(audio: np.ndarray,
                   sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``(onset strength, below 120 Hz, below 500 Hz, frames per second)`` of ``audio``: the whole
    band places the beats; the kick/bass band finds downbeats; the body band (kick, snare body,
    bass, chords; no cymbals) decides the metrical level."""
    x = _mono(audio, sample_rate)
    fps = ANALYSIS_SR / HOP
    if x.shape[0] < N_FFT:
        x = np.pad(x, (0, N_FFT - x.shape[0]))
    n = 1 + (x.shape[0] - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(x, (n, N_FFT), (x.strides[0] * HOP, x.strides[0]))
    spec = np.abs(np.fft.rfft(frames * np.hanning(N_FFT).astype(np.float32), axis=1)).astype(np.float32)
    logspec = np.log1p(100.0 * spec)
    flux = np.maximum(np.diff(logspec, axis=0), 0.0)
    low_bin = int(120.0 * N_FFT / ANALYSIS_SR) + 1  # kick drum and bass
    env = flux.sum(axis=1)
    low = flux[:, 1:low_bin].sum(axis=1)
    body = flux[:, 1:int(500.0 * N_FFT / ANALYSIS_SR) + 1].sum(axis=1)
    env = np.concatenate([[0.0], env]).astype(np.float64)
    low = np.concatenate([[0.0], low]).astype(np.float64)
    body = np.concatenate([[0.0], body]).astype(np.float64)

    def detrend(e):
        from scipy.ndimage import uniform_filter1d

        e = e - uniform_filter1d(e, int(fps), mode="nearest")  # remove the slow loudness curve
        e = np.maximum(e, 0.0)
        sd = e.std()
        return e / sd if sd > 0 else e

    return detrend(env), detrend(low), detrend(body), fps


def estimate_tempo(env: np.ndarray, fps: float, prior_bpm: float = PRIOR_BPM) -> float:
    """Tempo in BPM from the autocorrelation of ``env`` (40..240 BPM)."""
    n = env.shape[0]
    if n < 8:
        return prior_bpm
    e = env - env.mean()
    size = 1 << int(math.ceil(math.log2(2 * n)))
    spec = np.fft.rfft(e, size)
    ac = np.fft.irfft(spec * np.conj(spec), size)[:n]
    ac /= ac[0] if ac[0] > 0 else 1.0
    lag_min = max(int(fps * 60.0 / BPM_MAX), 1)
    lag_max = min(int(fps * 60.0 / BPM_MIN) + 1, n // 2)
    if lag_max <= lag_min + 2:
        return prior_bpm
    lags = np.arange(lag_min, lag_max)
    # a lag scores with its multiples (a true period repeats at 2x, 3x, 4x)
    score = np.zeros(lags.shape[0])
    for m in (1, 2, 3, 4):
        idx = lags * m
        ok = idx < n
        score[ok] += ac[idx[ok]] / m
    bpm = 60.0 * fps / lags
    weight = np.exp(-0.5 * (np.log2(bpm / prior_bpm) / 1.0) ** 2)
    score = score * weight
    i = int(np.argmax(score))
    lag = float(lags[i])
    if 0 < i < lags.shape[0] - 1:
        a, b, c = score[i - 1], score[i], score[i + 1]
        den = a - 2 * b + c
        if den < 0:
            lag += 0.5 * (a - c) / den
    return 60.0 * fps / lag


def track_beats(env: np.ndarray, fps: float, bpm: float, tightness: float = 100.0) -> np.ndarray:
    """Beat frames by dynamic programming (Ellis 2007) for a tempo near ``bpm``."""
    n = env.shape[0]
    period = 60.0 * fps / bpm
    if n < 2 * period:
        return np.zeros(0, int)
    # smooth the envelope with a Gaussian a fraction of a beat wide
    w = int(period / 16) * 2 + 1
    g = np.exp(-0.5 * ((np.arange(w) - w // 2) / (period / 32 + 1e-9)) ** 2)
    local = np.convolve(env, g / g.sum(), mode="same")
    score = local.copy()
    back = -np.ones(n, int)
    lo, hi = int(round(period / 2)), int(round(2 * period))
    offsets = np.arange(lo, hi + 1)
    penalty = -tightness * np.log(offsets / period) ** 2
    for t in range(lo, n):
        cand = t - offsets
        ok = cand >= 0
        if not ok.any():
            continue
        vals = score[cand[ok]] + penalty[ok]
        j = int(np.argmax(vals))
        if vals[j] > 0:
            score[t] = local[t] + vals[j]
            back[t] = cand[ok][j]
    # end on the best score among the last beat period whose onset is not weak
    tail = score[max(n - int(period) - 1, 0):]
    t = max(n - int(period) - 1, 0) + int(np.argmax(tail))
    path: list[int] = []
    while t >= 0:
        path.append(t)
        t = back[t]
    beats = np.array(path[::-1], int)
    # drop weak beats at either end (silence before/after the music)
    if beats.size:
        strong = local[beats] > 0.5 * np.median(local[beats])
        idx = np.flatnonzero(strong)
        if idx.size:
            beats = beats[idx[0]:idx[-1] + 1]
    return beats


def support(body: np.ndarray, fps: float, frames: np.ndarray, bpm: float) -> float:
    """Fraction of the beats that have an onset in ``body`` (within 1/16 of a beat) of at least a
    fifth of the strong ones (90th percentile)."""
    if frames.size < 4:
        return 0.0
    from scipy.ndimage import maximum_filter1d

    period = 60.0 * fps / bpm
    s = maximum_filter1d(body, max(int(period / 16), 1) * 2 + 1)[frames]
    ref = np.percentile(s, 90)
    return float(np.mean(s > 0.2 * ref)) if ref > 0 else 0.0


def metrical_level(env: np.ndarray, body: np.ndarray, fps: float, bpm: float) -> tuple[float, np.ndarray]:
    """The beat level among ``bpm`` x 3, x 2, x 1, x 1/2, x 1/3 and its beat frames.

    The fastest level on whose beats (nearly) always something sounds in the body band (kick,
    snare, bass, chords; :data:`FAST_SUPPORT`): faster levels leave every other beat to the
    cymbals, or to nothing. When ``bpm`` itself is only mostly supported (:data:`KEEP_SUPPORT` ..
    :data:`FAST_SUPPORT`: songs with syncopation or empty off-beats), it and its slower levels that
    are at least that well supported are all plausible, and the one nearest the prior (120 BPM, in
    octaves) is taken. (The old rule went straight to the next slower well-supported level: it
    halved a 110 BPM cumbia to 55, and the window, which then saw only a song's first seconds,
    said 110 where ``unmix beats`` said 55.)"""
    levels = [lv for lv in (bpm * 3.0, bpm * 2.0, bpm, bpm / 2.0, bpm / 3.0) if BPM_MIN <= lv <= BPM_MAX]
    scored: list[tuple[float, np.ndarray, float]] = []
    for level in levels:
        frames = track_beats(env, fps, level)
        sup = support(body, fps, frames, level)
        if level > bpm and sup >= FAST_SUPPORT:
            return level, frames
        if level <= bpm:
            scored.append((level, frames, sup))
    if not scored:
        return bpm, track_beats(env, fps, bpm)
    own = scored[0]
    if own[2] >= FAST_SUPPORT:
        return own[0], own[1]
    if own[2] >= KEEP_SUPPORT:
        plausible = [c for c in scored if c[2] >= KEEP_SUPPORT]
        level, frames, _ = min(plausible, key=lambda c: abs(math.log2(c[0] / PRIOR_BPM)))
        return level, frames
    for level, frames, sup in scored[1:]:
        if sup >= FAST_SUPPORT:
            return level, frames
    return own[0], own[1]


def _refine_bpm(beat_times: np.ndarray, bpm: float) -> float:
    """BPM from the least-squares slope of beat time against beat index (beats that are about one
    period apart only: a gap or an extra beat restarts the count)."""
    if beat_times.size < 4:
        return bpm
    period = 60.0 / bpm
    steps = np.maximum(np.round(np.diff(beat_times) / period), 1)
    index = np.concatenate([[0.0], np.cumsum(steps)])
    slope = np.polyfit(index, beat_times, 1)[0]
    return 60.0 / slope if slope > 0 else bpm


def _downbeats(beats: np.ndarray, low: np.ndarray, per_bar: int) -> int:
    """The phase (0..per_bar-1) of the first downbeat among ``beats`` (envelope frames)."""
    if beats.size < per_bar:
        return 0
    strength = [low[beats[p::per_bar]].mean() for p in range(per_bar)]
    return int(np.argmax(strength))


def analyse(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, source: str = "mix",
            beats_per_bar: int = BEATS_PER_BAR) -> BeatGrid:
    """The :class:`BeatGrid` of one signal (``bpm`` 0 and no beats when none is found)."""
    a = np.asarray(audio)
    if a.size == 0 or float(np.max(np.abs(a))) < SILENCE_PEAK:
        return BeatGrid(0.0, [], [], beats_per_bar, source, 0.0)
    env, low, body, fps = onset_envelope(audio, sample_rate)
    bpm0, frames = metrical_level(env, body, fps, estimate_tempo(env, fps))
    times = frames / fps + ONSET_DELAY_S
    bpm = _refine_bpm(times, bpm0)
    phase = _downbeats(frames, low, beats_per_bar)
    mean = env.mean()
    confidence = float(env[frames].mean() / mean) if frames.size and mean > 0 else 0.0
    if frames.size < MIN_BEATS:
        return BeatGrid(0.0, [], [], beats_per_bar, source, confidence)
    return BeatGrid(float(bpm), [float(t) for t in times], [float(t) for t in times[phase::beats_per_bar]],
                    beats_per_bar, source, confidence)


def estimate_beats(stems: Mapping[str, np.ndarray], sample_rate: int = SAMPLE_RATE,
                   beats_per_bar: int = BEATS_PER_BAR) -> BeatGrid:
    """The beat grid of a song from its stems (name -> (n, 2)): tries the drums/accompaniment stems
    and the mix, and keeps the clearest pulse. A single entry is analysed as it is."""
    if not stems:
        raise ValueError("no audio to analyse")
    candidates = {name: stems[name] for name in PREFERRED_STEMS if name in stems}
    if len(stems) == 1:
        candidates = dict(stems)
    else:
        length = max(a.shape[0] for a in stems.values())
        mix = np.zeros((length, 2), np.float32)
        for a in stems.values():
            a2 = a if a.ndim == 2 else a[:, None]
            mix[: a2.shape[0]] += a2
        candidates["mix"] = mix
    grids = [analyse(audio, sample_rate, name, beats_per_bar) for name, audio in candidates.items()]
    found = [g for g in grids if g.found]
    return max(found or grids, key=lambda g: g.confidence)


def song_beats(mixture: np.ndarray, sample_rate: int = SAMPLE_RATE, beats_per_bar: int = BEATS_PER_BAR) -> BeatGrid:
    """The beat grid of a whole song from its mix: what ``unmix beats SONG`` prints and the window
    shows (one code path, one answer)."""
    return estimate_beats({"mix": mixture}, sample_rate, beats_per_bar)
