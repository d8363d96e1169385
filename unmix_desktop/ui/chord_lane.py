"""The chord lane above the spectrograms: the chord sounding now (large), the next one coming, the chords
ahead on the beat grid, and the song's key as heard, all moved with the practice key shift
(``key.semitones``), with a capo hint for guitarists.

:class:`ChordLane` only paints what it is handed (and offers a 7ths toggle, a karaoke toggle and the
export menu as signals). :class:`ChordController` gets the narrow things it needs (a ``start_task``
function, the song's cache folder, the player position, the lyrics and a ``notify`` callback): it
computes the chart in a worker (:class:`.worker.Task`, ``analysis/chords.py``; cached beside the stems as
``chords-<vocabulary>.json``) once the song's separation is complete, follows the session's key shift,
puts the key in the window title (through the practice controller's title parts) and writes the exports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QHBoxLayout, QMenu, QToolButton, QVBoxLayout, QWidget

from ..analysis.chords import (
    DEFAULT_VOCABULARY,
    ChordChart,
    cache_name,
    capo_hint,
    chord_sheet,
    chords_for_stems,
    display_label,
    key_name,
    key_uses_flats,
    transpose_label,
)
from ..errors import Cancelled
from . import theme

LANE_H = 66
AHEAD_S = 8.0      # seconds of chords drawn ahead of the playhead
BEHIND_S = 2.0
CHORD_COLOURS = {"maj": "#3f7fbf", "min": "#8a5cc7", "7": "#c7833f", "maj7": "#3fa39a", "min7": "#a0569e"}


def heard_flats(chart: ChordChart | None, semitones: int) -> bool | None:
    if chart is None or chart.key == "N":
        return None
    return key_uses_flats(transpose_label(chart.key, semitones))


class ChordLane(QWidget):
    """Paints the chart at the playhead; display only."""

    sevenths_toggled = Signal(bool)
    karaoke_toggled = Signal(bool)
    export_requested = Signal(str)   # "lab" | "json" | "sheet"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("chordLane")
        self.setFixedHeight(LANE_H)
        self.chart: ChordChart | None = None
        self.semitones = 0
        self.position = 0.0
        self.message = ""
        self.setMinimumWidth(300)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 4, 0)
        lay.addStretch(1)
        buttons = QVBoxLayout()
        buttons.setSpacing(2)
        buttons.setContentsMargins(0, 4, 0, 4)
        self.sevenths_button = QToolButton(text="7ths", checkable=True, toolTip="Show seventh chords (G7, Am7, Cmaj7)")
        self.karaoke_button = QToolButton(text="Karaoke", checkable=True,
                                          toolTip="Show the chords above the lyrics in the full-screen karaoke view")
        self.export_button = QToolButton(text="Export", toolTip="Export the chords or a chord sheet")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        self.export_actions = {
            "lab": menu.addAction("Chords as .lab…", lambda: self.export_requested.emit("lab")),
            "json": menu.addAction("Chords as .json…", lambda: self.export_requested.emit("json")),
            "sheet": menu.addAction("Chord sheet with lyrics (.txt)…", lambda: self.export_requested.emit("sheet")),
        }
        self.export_button.setMenu(menu)
        for b in (self.sevenths_button, self.karaoke_button, self.export_button):
            b.setFixedHeight(18)
            b.setStyleSheet("font-size: 10px; padding: 0 4px;")
        top = QHBoxLayout()
        top.setSpacing(2)
        top.addWidget(self.sevenths_button)
        top.addWidget(self.karaoke_button)
        buttons.addLayout(top)
        buttons.addWidget(self.export_button, 0, Qt.AlignmentFlag.AlignRight)
        buttons.addStretch(1)
        lay.addLayout(buttons)
        self.sevenths_button.toggled.connect(self.sevenths_toggled)
        self.karaoke_button.toggled.connect(self.karaoke_toggled)
        self.set_chart(None)

    # state ------------------------------------------------------------------------------------
    def set_chart(self, chart: ChordChart | None) -> None:
        self.chart = chart
        self.export_button.setEnabled(chart is not None)
        if chart is not None:
            self.message = ""
        self.update()

    def set_message(self, text: str) -> None:
        self.message = text
        self.update()

    def set_semitones(self, semitones: int) -> None:
        if semitones != self.semitones:
            self.semitones = int(semitones)
            self.update()

    def set_position(self, seconds: float) -> None:
        if abs(seconds - self.position) > 1e-4:
            self.position = float(seconds)
            self.update()

    def set_sheet_available(self, on: bool) -> None:
        self.export_actions["sheet"].setEnabled(on)

    # what is shown (tests read these) -----------------------------------------------------------
    def label(self, i: int) -> str:
        if self.chart is None or not 0 <= i < len(self.chart.chords):
            return ""
        return display_label(self.chart.chords[i].label, self.semitones, heard_flats(self.chart, self.semitones))

    def current_index(self) -> int:
        return -1 if self.chart is None else self.chart.at(self.position)

    def current_text(self) -> str:
        return self.label(self.current_index())

    def next_index(self) -> int:
        """The next chord after the current one (an ``N`` is skipped when a chord follows it)."""
        if self.chart is None:
            return -1
        i = self.current_index()
        if i < 0:
            starts = [s.start for s in self.chart.chords]
            i = int(np.searchsorted(starts, self.position)) - 1
        j = i + 1
        while j < len(self.chart.chords) and self.chart.chords[j].label == "N" and j + 1 < len(self.chart.chords):
            j += 1
        return j if j < len(self.chart.chords) else -1

    def next_text(self) -> str:
        return self.label(self.next_index())

    def beats_until_next(self) -> int | None:
        j = self.next_index()
        if self.chart is None or j < 0 or not self.chart.beats:
            return None
        b = np.asarray(self.chart.beats)
        return int(np.sum((b > self.position + 0.02) & (b <= self.chart.chords[j].start + 0.02)))

    def key_text(self) -> str:
        """The key as heard: "Key C minor"."""
        if self.chart is None:
            return ""
        return f"Key {key_name(self.chart.key_at(self.position), self.semitones)}"

    def capo_text(self) -> str:
        return capo_hint(self.chart.key_at(self.position), self.semitones) if self.chart is not None else ""

    def detail_text(self) -> str:
        """The song's own key after a shift, and the capo hint: "song: A minor  ·  capo 3, play Am shapes"."""
        if self.chart is None:
            return ""
        parts = [f"song: {key_name(self.chart.key_at(self.position))}"] if self.semitones else []
        capo = self.capo_text()
        return "  ·  ".join(parts + ([capo] if capo else []))

    # painting -------------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = QRectF(self.rect())
        p.fillRect(r, QColor(theme.PANEL) if hasattr(theme, "PANEL") else QColor("#15171c"))
        dim = QColor(theme.TEXT_DIM)
        text = QColor(theme.TEXT) if hasattr(theme, "TEXT") else QColor("#e6e6e6")
        small = QFont(self.font())
        small.setPixelSize(11)
        if self.chart is None:
            p.setPen(dim)
            p.setFont(small)
            p.drawText(r.adjusted(10, 0, -10, 0), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                       "chords  ·  " + (self.message or "no chords yet"))
            return
        left_w, right_w, buttons_w = 150.0, 250.0, 130.0
        h = r.height()
        # the chord now and the next one
        big = QFont(self.font())
        big.setPixelSize(int(h * 0.46))
        big.setWeight(QFont.Weight.Bold)
        p.setFont(big)
        p.setPen(text)
        p.drawText(QRectF(10, 2, left_w - 10, h * 0.62), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   self.current_text() or "–")
        nxt = self.next_text()
        if nxt:
            beats = self.beats_until_next()
            p.setFont(small)
            p.setPen(dim)
            when = f" in {beats} beat{'s' if beats != 1 else ''}" if beats else ""
            p.drawText(QRectF(10, h * 0.62, left_w - 10, h * 0.36),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, f"next {nxt}{when}")
        # the chords ahead on the beat grid
        strip = QRectF(left_w, 6, max(r.width() - left_w - right_w - buttons_w, 40), h - 12)
        t0, t1 = self.position - BEHIND_S, self.position + AHEAD_S

        def x_of(t: float) -> float:
            return strip.left() + (t - t0) / (t1 - t0) * strip.width()

        p.save()
        p.setClipRect(strip)
        p.fillRect(strip, QColor("#0f1115"))
        flats = heard_flats(self.chart, self.semitones)
        label_font = QFont(self.font())
        label_font.setPixelSize(13)
        label_font.setWeight(QFont.Weight.DemiBold)
        p.setFont(label_font)
        for seg in self.chart.chords:
            if seg.end < t0 or seg.start > t1:
                continue
            box = QRectF(x_of(seg.start) + 1, strip.top() + 14, max(x_of(seg.end) - x_of(seg.start) - 2, 1),
                         strip.height() - 16)
            quality = seg.label.partition(":")[2].partition("/")[0]
            colour = QColor(CHORD_COLOURS.get(quality, "#555a66")) if seg.label != "N" else QColor("#2a2d35")
            colour.setAlpha(150)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(colour)
            p.drawRoundedRect(box, 3, 3)
            p.setPen(text)
            left = max(box.left(), strip.left())   # a chord that began before the strip keeps its name in view
            shown = QRectF(left + 4, box.top(), box.right() - left - 4, box.height())
            p.drawText(shown, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                       display_label(seg.label, self.semitones, flats))
        downs = set(round(t, 3) for t in self.chart.downbeats)
        for t in self.chart.beats:
            if t0 <= t <= t1:
                strong = round(t, 3) in downs
                p.setPen(QPen(QColor("#9aa0ab") if strong else QColor("#4a4f5a"), 2 if strong else 1))
                p.drawLine(int(x_of(t)), int(strip.top() + 2), int(x_of(t)), int(strip.top() + (12 if strong else 8)))
        p.setPen(QPen(QColor("#f0f0f0"), 2))
        px = x_of(self.position)
        p.drawLine(int(px), int(strip.top()), int(px), int(strip.bottom()))
        p.restore()
        # the key as heard and the capo hint
        key_rect = QRectF(strip.right() + 10, 4, right_w - 10, h * 0.5)
        kf = QFont(self.font())
        kf.setPixelSize(14)
        kf.setWeight(QFont.Weight.DemiBold)
        p.setFont(kf)
        p.setPen(text)
        p.drawText(key_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, self.key_text())
        p.setFont(small)
        p.setPen(dim)
        p.drawText(QRectF(key_rect.left(), h * 0.52, right_w - 10, h * 0.42),
                   Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, self.detail_text())


class ChordController(QObject):
    """Computes the open song's chords in a worker and keeps the lane, the title and the karaoke view
    in step with the player and the key shift."""

    ready = Signal(object)   # ChordChart
    failed = Signal(str)

    def __init__(self, start_task: Callable, notify: Callable[[str, str, int], None],
                 cache_folder: Callable[[], Path | None] = lambda: None,
                 lyrics: Callable[[], object] = lambda: None,
                 on_title: Callable[[], None] = lambda: None, parent: QObject | None = None):
        super().__init__(parent)
        self.start_task = start_task
        self.notify = notify
        self.cache_folder = cache_folder
        self.lyrics = lyrics
        self.on_title = on_title
        self.lane = ChordLane()
        self.chart: ChordChart | None = None
        self.vocabulary = DEFAULT_VOCABULARY
        self.karaoke = False
        self.task = None
        self.song = None
        self._session = None
        self._unobserve = None
        self._song_id = None
        self.lane.sevenths_toggled.connect(self.set_sevenths)
        self.lane.karaoke_toggled.connect(self.set_karaoke)
        self.lane.export_requested.connect(self.choose_export)

    # the song -----------------------------------------------------------------------------------
    @property
    def semitones(self) -> int:
        return int(self._session.get("key.semitones")) if self._session is not None else 0

    def show_song(self, session, song, complete: bool = True) -> None:
        """A song is shown (``complete``: its separation is finished). Its chart is computed by
        :meth:`start` (after the song is drawn)."""
        if self._unobserve is not None:
            self._unobserve()
        self._session = session
        self._unobserve = session.observe(self._on_session)
        self.lane.set_semitones(self.semitones)
        same = self.song is not None and song is not None and self.song.path == song.path
        self.song = song
        if not same:
            self._cancel()
            self.chart = None
            self.lane.set_chart(None)
        if not complete:
            self.lane.set_message("chords follow once the song is separated…")
        self.on_title()

    def _cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None

    def start(self, grid=None) -> None:
        """Compute (or read from the cache) the chart of the open song, off the UI thread. ``grid``: the
        song's :class:`~..analysis.beats.BeatGrid` when already known."""
        song = self.song
        if song is None:
            return
        self._cancel()
        stems = dict(song.stems)
        sr = song.sample_rate
        folder = self.cache_folder()
        cache_file = folder / cache_name(self.vocabulary) if folder is not None else None
        vocabulary = self.vocabulary
        if self.chart is None:
            self.lane.set_message("finding the chords…")

        def job(report, cancel):
            report("chords", 0.0)
            chart, _ = chords_for_stems(stems, sr, cache_file, vocabulary, grid)
            if cancel.is_set():
                raise Cancelled()
            return chart

        ident = (song.path, vocabulary)
        self._song_id = ident

        def done(chart: ChordChart) -> None:
            self.task = None
            if self._song_id != ident or self.song is None:
                return
            self.chart = chart
            self.lane.set_chart(chart)
            self.lane.set_sheet_available(self._sheet_lines() is not None)
            self.on_title()
            self.ready.emit(chart)

        def failed(message: str) -> None:
            self.task = None
            self.lane.set_message("the chords could not be found")
            self.notify(f"Chords: {message}", "warning", 8000)
            self.failed.emit(message)

        self.task = self.start_task(job, "chords", on_done=done, on_error=failed)

    def _on_session(self, control: str, value) -> None:
        if control in ("key.semitones", "*"):
            self.lane.set_semitones(self.semitones)
            self.on_title()

    def set_sevenths(self, on: bool) -> None:
        vocabulary = "sevenths" if on else "majmin"
        if vocabulary != self.vocabulary:
            self.vocabulary = vocabulary
            if self.song is not None:
                self.start()

    def set_karaoke(self, on: bool) -> None:
        self.karaoke = bool(on)

    def tick(self, position: float) -> None:
        self.lane.set_position(position)

    # text for the title and the karaoke view -------------------------------------------------------
    def title_part(self) -> str:
        """"A minor" (detected), or "A minor → B minor" as heard after a key shift; "" before the chart."""
        if self.chart is None or self.chart.key == "N":
            return ""
        detected = key_name(self.chart.key)
        if self.semitones:
            return f"{detected} → {key_name(self.chart.key, self.semitones)}"
        return detected

    def karaoke_text(self) -> str:
        """"Am  →  F" for the full-screen view (empty unless the option is on)."""
        if not self.karaoke or self.chart is None:
            return ""
        now, nxt = self.lane.current_text(), self.lane.next_text()
        return f"{now or '–'}   →  {nxt}" if nxt else now

    # exports ---------------------------------------------------------------------------------------
    def _sheet_lines(self) -> list[tuple[float, float, str]] | None:
        lyrics = self.lyrics()
        if lyrics is None or not getattr(lyrics, "synced", False):
            return None
        return [(ln.start, ln.end, ln.text) for ln in lyrics.lines]

    def export(self, kind: str, path: str | Path) -> Path:
        """Write the chords (``lab``/``json``, in the song's key) or the chord sheet (``sheet``, as heard)."""
        if self.chart is None:
            raise ValueError("no chords yet")
        path = Path(path)
        if kind == "lab":
            return self.chart.save_lab(path)
        if kind == "json":
            return self.chart.save_json(path, full=False)
        lines = self._sheet_lines()
        if lines is None:
            raise ValueError("this song has no synced lyrics")
        from ..atomic import atomic_write_text

        return atomic_write_text(path, chord_sheet(self.chart, lines, self.semitones))

    def choose_export(self, kind: str) -> None:
        from PySide6.QtWidgets import QFileDialog

        if self.chart is None or self.song is None:
            return
        suffix = {"lab": ".lab", "json": ".chords.json", "sheet": ".chords.txt"}[kind]
        default = str(Path(self.song.path).with_name(Path(self.song.path).stem + suffix))
        path, _ = QFileDialog.getSaveFileName(self.lane, "Export chords", default)
        if not path:
            return
        try:
            written = self.export(kind, path)
        except (OSError, ValueError) as exc:
            self.notify(f"Could not export the chords: {getattr(exc, 'strerror', None) or exc}", "warning", 8000)
            return
        self.notify(f"Wrote {written.name}", "info", 4000)


def song_cache_folder(window) -> Path | None:
    """The song's two-stem stem-cache entry (its accompaniment is the same in the four-stem one), or the
    four-stem one; ``None`` when the song is not in the cache."""
    from .melody_lane import melody_cache_file

    path = melody_cache_file(window)
    return path.parent if path is not None else None


def install_chords(window) -> ChordController:
    """Build the chord controller for ``window`` and wire it: the lane above the spectrograms, the
    transport tick, ``song_ready`` (the separation is complete and the song drawn), the title and the
    full-screen karaoke view. The controller itself only gets the narrow callables."""
    w = window
    ctl = ChordController(w.start_task, w.notify, cache_folder=lambda: song_cache_folder(w),
                          lyrics=lambda: getattr(getattr(w, "lyrics_ctl", None), "lyrics", None),
                          on_title=w.practice_ctl.refresh, parent=w)
    page = w.song_page
    layout = page.layout()
    layout.insertWidget(layout.indexOf(page.scroll), ctl.lane)

    def title_part() -> str:
        grid = w.practice_ctl.grid
        parts = [f"{grid.bpm:.0f} BPM"] if grid is not None and ctl.chart is not None else []
        key = ctl.title_part()
        return "  ·  ".join(parts + ([key] if key else []))

    w.practice_ctl.title_parts.append(title_part)

    def on_ready() -> None:
        if w.song is not None:
            ctl.song = w.song  # the finished result (a song opened while separating gets it now)
            ctl.start(w.practice_ctl.grid)

    def tick() -> None:
        if w.song is None:
            return
        ctl.tick(float(w.player.position))
        view = getattr(w.karaoke_ctl, "view", None)
        if view is not None:
            text = ctl.karaoke_text()
            if getattr(view, "chord_text", "") != text:
                view.chord_text = text
                view.update()

    seen = {"lyrics": object()}

    def lyrics_changed() -> None:   # the chord sheet needs synced lyrics (loaded in a worker, or opened later)
        lyrics = ctl.lyrics()
        if lyrics is not seen["lyrics"]:
            seen["lyrics"] = lyrics
            ctl.lane.set_sheet_available(ctl._sheet_lines() is not None)

    w.song_ready.connect(on_ready)
    w.transport_ctl.timer.timeout.connect(tick)
    w.transport_ctl.timer.timeout.connect(lyrics_changed)
    return ctl
