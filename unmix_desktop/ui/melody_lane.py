"""The melody lane: the sung melody as a piano roll scrolling under a fixed playhead (quantised
notes, the raw f0 contour thin behind them), shifted with the session's key change, and the
singer's live pitch drawn over it while singing.

:class:`MelodyController` computes the melody from the vocals stem in a worker thread
(:class:`.worker.Task`), cached as ``melody-<tracker>.csv`` in the song's stem-cache entry like
``unmix melody`` caches it in a stems folder; the widget only draws.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QWidget

from .. import cache as cache_mod
from ..analysis.melody import (
    DEFAULT_TRACKER,
    Contour,
    Note,
    hz_to_midi,
    melody_for_audio,
    quantise_notes,
)
from ..errors import Cancelled
from ..separation.pipeline import FOUR_STEMS_VARIANT
from . import theme

if TYPE_CHECKING:
    from .main_window import MainWindow

SPAN_S = 8.0            # seconds shown
PLAYHEAD_AT = 0.3       # playhead position, fraction of the width
MIN_RANGE = 14          # semitones shown at least
MAX_RANGE = 30          # ... and at most, unless the melody spans more
NOTE_NAMES = ["C", "C♯", "D", "D♯", "E", "F", "F♯", "G", "G♯", "A", "A♯", "B"]
BLACK = {1, 3, 6, 8, 10}
LIVE_KEEP_S = 6.0       # seconds of live pitch kept behind the playhead


class MelodyLane(QWidget):
    """Draws notes/contour around song time ``position``; live pitch as (song time, Hz) points."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumHeight(110)
        self.contour: Contour | None = None
        self.base_notes: list[Note] = []
        self.semitones = 0
        self.position = 0.0
        self.message = "The melody appears here after separation"
        self.live: deque[tuple[float, float]] = deque(maxlen=2000)
        self._lo, self._hi = 55, 79

    # data ------------------------------------------------------------------------------------
    def set_message(self, text: str) -> None:
        self.message = text
        self.update()

    def set_contour(self, contour: Contour | None, notes: list[Note] | None = None) -> None:
        """``notes``: :func:`quantise_notes` of ``contour`` (computed here when not given; the
        controller computes them in its worker, they take ~0.4 s for a 20 s song)."""
        self.contour = contour
        if notes is None:
            notes = quantise_notes(contour) if contour is not None else []
        self.base_notes = list(notes)
        self.live.clear()
        if self.base_notes:
            pitches = np.array([n.midi for n in self.base_notes])
            lo, hi = int(pitches.min()), int(pitches.max())
            if hi - lo > MAX_RANGE:  # a few stray notes far off: keep the bulk in view
                lo, hi = int(np.percentile(pitches, 2)), int(np.percentile(pitches, 98))
        else:
            lo, hi = 55, 69
        mid = (lo + hi) / 2
        half = max(MIN_RANGE, hi - lo + 5) / 2
        self._lo, self._hi = int(np.floor(mid - half)), int(np.ceil(mid + half))
        self.message = "" if self.base_notes else "No sung melody was found in the vocals"
        self.update()

    def set_semitones(self, semitones: int) -> None:
        self.semitones = int(semitones)
        self.update()

    @property
    def notes(self) -> list[Note]:
        """The displayed notes (key change applied)."""
        return [n.shifted(self.semitones) for n in self.base_notes]

    def set_position(self, seconds: float) -> None:
        if abs(seconds - self.position) > 1e-4:
            self.position = float(seconds)
            self.update()

    def add_live(self, song_times: np.ndarray, hz: np.ndarray) -> None:
        for t, f in zip(np.asarray(song_times, float), np.asarray(hz, float)):
            self.live.append((t, f))
        while self.live and self.live[0][0] < self.position - LIVE_KEEP_S:
            self.live.popleft()
        self.update()

    def clear_live(self) -> None:
        self.live.clear()
        self.update()

    # geometry --------------------------------------------------------------------------------
    def visible_range(self) -> tuple[float, float]:
        t0 = self.position - SPAN_S * PLAYHEAD_AT
        return t0, t0 + SPAN_S

    def _x(self, t: float, left: float, width: float) -> float:
        t0, _ = self.visible_range()
        return left + (t - t0) / SPAN_S * width

    def _y(self, midi: float, top: float, height: float) -> float:
        lo, hi = self._lo + self.semitones, self._hi + self.semitones
        return top + (hi - midi) / (hi - lo) * height

    def visible_notes(self) -> list[Note]:
        t0, t1 = self.visible_range()
        return [n for n in self.notes if n.end >= t0 and n.start <= t1]

    def fold(self, midi: float, near: float) -> float:
        """``midi`` moved by octaves to the octave closest to ``near`` (singers an octave off still show)."""
        return midi + 12 * round((near - midi) / 12)

    # painting --------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        full = QRectF(self.rect())
        p.fillRect(full, QColor(theme.PLOT_BG))
        gutter = 34.0
        area = full.adjusted(gutter, 2, -2, -2)
        left, top, width, height = area.left(), area.top(), area.width(), area.height()
        lo, hi = self._lo + self.semitones, self._hi + self.semitones
        row = height / (hi - lo)
        small = QFont(self.font())
        small.setPointSizeF(max(7.0, self.font().pointSizeF() * 0.75))
        p.setFont(small)
        for m in range(lo, hi + 1):
            y = self._y(m, top, height)
            if m % 12 in BLACK:
                p.fillRect(QRectF(left, y - row / 2, width, row), QColor("#11141a"))
            if m % 12 == 0:
                p.setPen(QPen(QColor(theme.BORDER), 1))
                p.drawLine(QPointF(left, y + row / 2), QPointF(left + width, y + row / 2))
                p.setPen(QColor(theme.TEXT_DIM))
                p.drawText(QRectF(0, y - 7, gutter - 4, 14),
                           Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"C{m // 12 - 1}")
        t0, t1 = self.visible_range()
        colour = QColor(theme.STEM_COLOURS["vocals"])
        if self.contour is not None and self.contour.times.size:
            times = self.contour.times
            a, b = np.searchsorted(times, t0), np.searchsorted(times, t1)
            midi = hz_to_midi(self.contour.hz[a:b]) + self.semitones
            path = QPainterPath()
            pen_up = True
            for t, m in zip(times[a:b], midi):
                if not np.isfinite(m):
                    pen_up = True
                    continue
                pt = QPointF(self._x(t, left, width), self._y(m, top, height))
                if pen_up:
                    path.moveTo(pt)
                    pen_up = False
                else:
                    path.lineTo(pt)
            faint = QColor(colour)
            faint.setAlpha(90)
            p.setPen(QPen(faint, 1.2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawPath(path)
        fill = QColor(colour)
        fill.setAlpha(170)
        p.setPen(QPen(colour, 1))
        p.setBrush(fill)
        for n in self.visible_notes():
            x0, x1 = self._x(n.start, left, width), self._x(n.end, left, width)
            y = self._y(n.midi, top, height)
            p.drawRoundedRect(QRectF(x0, y - row * 0.42, max(2.0, x1 - x0), row * 0.84), 3, 3)
        # live pitch of the singer
        if self.live:
            ref = [n.midi for n in self.visible_notes()]
            near = float(np.median(ref)) if ref else (lo + hi) / 2
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(theme.WARN))
            for t, f in self.live:
                if f <= 0 or t < t0 or t > t1:
                    continue
                m = self.fold(float(hz_to_midi(f)), near)
                p.drawEllipse(QPointF(self._x(t, left, width), self._y(m, top, height)), 2.6, 2.6)
        x = self._x(self.position, left, width)
        p.setPen(QPen(QColor(theme.TEXT), 1.5))
        p.drawLine(QPointF(x, top), QPointF(x, top + height))
        if self.message:
            p.setPen(QColor(theme.TEXT_DIM))
            p.setFont(self.font())
            p.drawText(area, Qt.AlignmentFlag.AlignCenter, self.message)
        p.setPen(QColor(theme.TEXT_DIM))
        p.setFont(small)
        label = "melody" + (f"  ·  key {self.semitones:+d}" if self.semitones else "")
        p.drawText(area.adjusted(0, 0, -6, -2), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom, label)


def melody_cache_file(window: MainWindow, tracker: str = DEFAULT_TRACKER):
    """``melody-<tracker>.csv`` in the song's two-stem cache entry (the vocals are the same in the
    four-stem entry), or in the four-stem one; ``None`` when the song is not in the cache."""
    song = window.song
    if song is None or song.content_hash is None:
        return None
    variants = ["", FOUR_STEMS_VARIANT] if song.four_stems else [""]
    for variant in variants:
        try:
            folder = window.stem_cache._folder(cache_mod.make_key(song.content_hash, song.model_name,
                                                                  song.settings_key, variant))
        except ValueError:
            continue
        if folder.is_dir():
            return folder / f"melody-{tracker}.csv"
    return None


class MelodyController(QObject):
    """Starts the melody job for each song and feeds the lane (position, key change)."""

    ready = Signal(object)   # Contour
    failed = Signal(str)

    def __init__(self, window: MainWindow):
        super().__init__(window)
        self.w = window
        self.lane = MelodyLane()
        self.contour: Contour | None = None
        self.task = None
        self._session = None
        self._unobserve = None
        self.pending = False  # asked for while the song was still separating: starts on song_complete

    def bind(self, session) -> None:
        if self._unobserve is not None:
            self._unobserve()
        self._session = session
        self._unobserve = session.observe(self._on_session)
        self.lane.set_semitones(int(session.get("key.semitones")))

    def _on_session(self, control: str, value) -> None:
        if control in ("key.semitones", "*"):
            self.lane.set_semitones(int(self._session.get("key.semitones")))

    def start(self) -> None:
        """Compute (or read from the cache) the melody of the open song's vocals, off the UI thread."""
        w = self.w
        if self.task is not None:
            self.task.abandon()
            self.task = None
        self.contour = None
        self.lane.set_contour(None)
        song = w.song
        self.pending = False
        if song is not None and not w.song_is_complete:  # the vocals are not whole yet
            self.pending = True
            self.lane.set_message("The melody appears when the separation is done")
            return
        vocals = song.stems.get("vocals") if song is not None else None
        if vocals is None:
            self.lane.set_message("No vocals stem: no melody to show")
            return
        from .ultrastar_view import chart_of_session, melody_from_chart

        chart = chart_of_session(self._session)
        loaded = melody_from_chart(chart) if chart is not None else None
        if loaded is not None:  # an imported UltraStar chart: its notes are the melody
            self._on_done(loaded)
            return
        self.lane.set_message("Finding the sung melody…")
        cache_file = melody_cache_file(w)
        sr = song.sample_rate

        def job(report, cancel):
            contour = melody_for_audio(vocals, sr, cache_file)
            if cancel.is_set():  # another song, or the window closed
                raise Cancelled()
            return contour, quantise_notes(contour)

        self.task = w.start_task(job, "melody", on_done=self._on_done, on_error=self._on_error)

    def on_song_complete(self) -> None:
        """The open song's stems are whole: a melody asked for earlier is computed now."""
        if self.pending:
            self.start()

    def _on_done(self, result: tuple[Contour, list[Note]]) -> None:
        self.task = None
        contour, notes = result
        self.contour = contour
        self.lane.set_contour(contour, notes)
        self.ready.emit(contour)

    def _on_error(self, message: str) -> None:
        self.task = None
        self.lane.set_message("The melody could not be computed")
        self.w.notify(f"Melody: {message}", "warning", 8000)
        self.failed.emit(message)

    def tick(self, position: float) -> None:
        self.lane.set_position(position)
