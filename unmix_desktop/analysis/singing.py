"""Score a singer against the melody: the share of the singer's voiced frames within
``tolerance`` cents (default 50) of the melody, octave-tolerant (singing an octave below or
above counts as a hit: men singing a woman's line, and the reverse).

Only frames where both the singer and the melody are voiced are scored. A melody from an UltraStar
chart (:class:`~.melody.ChartContour`) carries frame weights: golden notes count double, freestyle
notes are not scored. Each scored frame is
stored at the melody frame it falls on, so singing a looped or re-sung passage again replaces
the earlier attempt instead of adding to it. Times are song seconds (any tempo).
"""

from __future__ import annotations

import numpy as np

from .melody import Contour

NOT_SCORED, MISS, HIT = -1, 0, 1


def cents_off(sung_hz: np.ndarray, target_hz: np.ndarray, octave_tolerant: bool = True) -> np.ndarray:
    """Cents from target to sung (NaN where either is 0); folded to [-600, 600) when octave-tolerant."""
    sung = np.asarray(sung_hz, dtype=np.float64)
    target = np.asarray(target_hz, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        cents = np.where((sung > 0) & (target > 0), 1200.0 * np.log2(sung / target), np.nan)
    if octave_tolerant:
        cents = np.mod(cents + 600.0, 1200.0) - 600.0
    return cents


class SingScorer:
    """Per-frame hits of a singer against ``melody``; scores per time span (a lyric line) and per song."""

    def __init__(self, melody: Contour, tolerance_cents: float = 50.0, octave_tolerant: bool = True):
        self.melody = melody
        self.tolerance = float(tolerance_cents)
        self.octave_tolerant = bool(octave_tolerant)
        self._marks = np.full(melody.times.size, NOT_SCORED, np.int8)
        #: per-frame weights of a chart melody (:class:`~.melody.ChartContour`): 2 golden, 0 freestyle
        weights = getattr(melody, "weights", None)
        self.weights = None if weights is None else np.asarray(weights, np.float64)

    def reset(self) -> None:
        self._marks[:] = NOT_SCORED

    def add(self, song_times: np.ndarray | float, sung_hz: np.ndarray | float) -> None:
        """Record sung pitch(es) (Hz, 0 = silent) at song time(s)."""
        t = np.atleast_1d(np.asarray(song_times, dtype=np.float64))
        hz = np.atleast_1d(np.asarray(sung_hz, dtype=np.float64))
        if t.size == 0 or self.melody.times.size == 0:
            return
        hop = self.melody.hop
        idx = np.rint((t - self.melody.times[0]) / hop).astype(np.int64)
        inside = (idx >= 0) & (idx < self._marks.size)
        idx, hz = idx[inside], hz[inside]
        target = self.melody.hz[idx]
        scored = (hz > 0) & (target > 0)
        if self.weights is not None:  # a chart: freestyle notes are not scored
            scored &= self.weights[idx] > 0
        cents = cents_off(hz[scored], target[scored], self.octave_tolerant)
        self._marks[idx[scored]] = np.where(np.abs(cents) <= self.tolerance, HIT, MISS)

    def score(self, start: float | None = None, end: float | None = None) -> float | None:
        """Share of scored frames that hit, between song times ``start`` and ``end`` (whole song by
        default); ``None`` when nothing was sung there."""
        times = self.melody.times
        lo = 0 if start is None else int(np.searchsorted(times, start))
        hi = times.size if end is None else int(np.searchsorted(times, end))
        marks = self._marks[lo:hi]
        scored = marks != NOT_SCORED
        if not scored.any():
            return None
        if self.weights is not None:  # a chart: golden notes count double
            w = self.weights[lo:hi][scored]
            return float(np.sum(w * (marks[scored] == HIT)) / np.sum(w))
        return float(np.mean(marks[scored] == HIT))

    def line_scores(self, lines) -> list[float | None]:
        """Scores of lyric lines (objects with ``start``/``end``, e.g. :class:`~..lyrics.Line`)."""
        return [self.score(line.start, line.end) if getattr(line, "text", "x") else None for line in lines]

    def scored_frames(self) -> int:
        return int(np.count_nonzero(self._marks != NOT_SCORED))


def song_times_of_readings(wall: np.ndarray, now: float, song_now: float, tempo: float = 1.0,
                           input_latency: float = 0.0) -> np.ndarray:
    """Song times at which microphone readings were sung.

    ``wall``: the readings' ``time.monotonic()`` stamps (:meth:`Microphone.readings`); ``now`` and
    ``song_now``: a monotonic time and the player's song position at that moment; ``tempo``: song
    seconds per wall second; ``input_latency``: seconds between singing and the reading
    (:attr:`Microphone.latency_s`). Valid while playback ran steadily since the readings (the
    window drops readings made across a seek).
    """
    wall = np.asarray(wall, dtype=np.float64)
    return song_now - (now - wall + float(input_latency)) * float(tempo)
