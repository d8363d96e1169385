"""Practice controls: tempo and key, beats (BPM, snap, nudge), metronome, count-in, loop trainer, markers.

:class:`PracticeBar` is the transport's practice row (display + signals only). :class:`PracticeController`
wires it to the session (``tempo.ratio``, ``key.semitones``, ``key.cents``, ``click.*``, ``markers``),
estimates the beat grid in a worker after a song is shown (cached next to the saved session), gives
the player the metronome stem, and drives the loop trainer from the player's loop-pass counter on the
transport's tick. Times are song time (seconds of the original) at any tempo.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMenu,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
    QWidgetAction,
)

from .. import persist
from ..analysis.beats import BeatGrid, song_beats
from ..analysis.practice import CLICK_STEM, LoopTrainer, click_track, count_in
from ..audio.stretch import unavailable_reason as stretch_unavailable_reason
from ..session import MAX_CENTS, MAX_TEMPO, MIN_TEMPO, SessionError
from .strips import MetronomeStrip

if TYPE_CHECKING:
    from .main_window import MainWindow

TEMPO_STEP = 0.05
#: Count-in only when playback starts here (a stop, the song's start or loop A), within this margin.
COUNT_IN_MARGIN_S = 0.05
#: (".beats.json" grids of the earlier versions could hold only the first window of a song opened while
#: it was separated, and the halved tempo of the old metrical rule: they are not read.)
BEATS_SUFFIX = ".beats-v2.json"


class SignedSpin(QSpinBox):
    """A spin box showing the sign: "+2 st", "0 st", "−3 st"."""

    def textFromValue(self, value: int) -> str:
        return f"+{value}" if value > 0 else (f"−{-value}" if value < 0 else "0")

    def valueFromText(self, text: str) -> int:
        text = text.replace("−", "-").replace(self.suffix(), "").strip()
        try:
            return int(text)
        except ValueError:
            return 0


def _tool(text: str, tip: str, checkable: bool = False) -> QToolButton:
    b = QToolButton()
    b.setObjectName("transport")
    b.setText(text)
    b.setToolTip(tip)
    b.setCheckable(checkable)
    b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    return b


def _dim(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("dim")
    return label


def format_tempo(ratio: float) -> str:
    return f"{ratio * 100:.0f} %"


def format_key(semitones: int, cents: int = 0) -> str:
    s = "0" if semitones == 0 else (f"+{semitones}" if semitones > 0 else f"−{-semitones}")
    c = "" if cents == 0 else (f" {cents:+d} ¢".replace("-", "−"))
    return f"{s} st{c}"


class PracticeBar(QWidget):
    """Tempo, key (+ cents), BPM, snap, metronome strip, count-in, loop trainer and markers."""

    tempo_changed = Signal(float)
    tempo_reset = Signal()
    key_changed = Signal(int, int)
    key_reset = Signal()
    snap_toggled = Signal(bool)
    count_in_toggled = Signal(bool)
    trainer_toggled = Signal(bool)
    marker_clicked = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("practiceBar")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(4)
        self.row1, self.row2 = QHBoxLayout(), QHBoxLayout()
        for row in (self.row1, self.row2):
            row.setSpacing(8)
            outer.addLayout(row)
        self.stretch_unavailable: str | None = None  # why tempo/key cannot change (no Rubber Band library)
        self.left, self.right = QWidget(), QWidget()  # tempo/key/BPM | beats, metronome, trainer, markers
        lay = QHBoxLayout(self.left)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        lay.addWidget(_dim("Tempo"))
        self.tempo_spin = QSpinBox()
        self.tempo_spin.setRange(int(MIN_TEMPO * 100), int(MAX_TEMPO * 100))
        self.tempo_spin.setSingleStep(int(TEMPO_STEP * 100))
        self.tempo_spin.setValue(100)
        self.tempo_spin.setSuffix(" %")
        self.tempo_spin.setToolTip("Playback tempo without changing the key (− / = : 5 % slower / faster)")
        self.tempo_spin.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        lay.addWidget(self.tempo_spin)
        self.tempo_reset_button = _tool("↺", "Original tempo (Backspace)")
        lay.addWidget(self.tempo_reset_button)
        lay.addSpacing(4)
        lay.addWidget(_dim("Key"))
        self.key_spin = SignedSpin()
        self.key_spin.setRange(-12, 12)
        self.key_spin.setSuffix(" st")
        self.key_spin.setToolTip("Transpose in semitones without changing the tempo (Ctrl+− / Ctrl+=)")
        self.key_spin.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        lay.addWidget(self.key_spin)
        self.cents_spin = SignedSpin()
        self.cents_spin.setRange(-MAX_CENTS, MAX_CENTS)
        self.cents_spin.setSingleStep(5)
        self.cents_spin.setSuffix(" ¢")
        self.cents_spin.setToolTip("Fine tune in cents")
        self.cents_spin.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        lay.addWidget(self.cents_spin)
        self.key_reset_button = _tool("↺", "Original key (Ctrl+Backspace)")
        lay.addWidget(self.key_reset_button)
        lay.addSpacing(4)
        self.bpm_label = _dim("– BPM")
        self.bpm_label.setToolTip("Tempo of the song (estimated from the drums or accompaniment)")
        self.bpm_label.setFixedWidth(self.bpm_label.fontMetrics().horizontalAdvance("000.0 BPM (000)") + 8)
        lay.addWidget(self.bpm_label)
        lay = QHBoxLayout(self.right)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        self.snap_button = _tool("Snap", "A and B snap to beats (Ctrl+G); Ctrl+←/→ and Ctrl+Shift+←/→ "
                                 "nudge A / B by a beat", checkable=True)
        lay.addWidget(self.snap_button)
        self.metronome = MetronomeStrip()
        lay.addWidget(self.metronome)
        self.count_in_button = _tool("Count-in", "One bar of clicks before playback starts from a stop or "
                                     "from A (Shift+C)", checkable=True)
        lay.addWidget(self.count_in_button)
        lay.addSpacing(4)
        self.trainer_button = _tool("Trainer", "Loop trainer (Ctrl+L): play the A–B loop at the start tempo and "
                                    "raise it by the step after each pass, up to the target", checkable=True)
        self.trainer_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        menu = QMenu(self.trainer_button)
        box = QWidget()
        form = QFormLayout(box)
        form.setContentsMargins(10, 6, 10, 6)
        self.trainer_start = self._percent_spin(70)
        self.trainer_step = self._percent_spin(5, lo=1, hi=50, step=1)
        self.trainer_target = self._percent_spin(100)
        form.addRow("Start tempo", self.trainer_start)
        form.addRow("Step per pass", self.trainer_step)
        form.addRow("Target tempo", self.trainer_target)
        action = QWidgetAction(menu)
        action.setDefaultWidget(box)
        menu.addAction(action)
        self.trainer_button.setMenu(menu)
        # the style sheet's padding is not in the menu button's size hint: room for the text and the arrow
        self.trainer_button.setMinimumWidth(self.trainer_button.fontMetrics().horizontalAdvance("Trainer") + 44)
        lay.addWidget(self.trainer_button)
        self.trainer_label = _dim("")
        self.trainer_label.setFixedWidth(self.trainer_label.fontMetrics().horizontalAdvance("100 % → 100 %") + 8)
        lay.addWidget(self.trainer_label)
        self.marker_button = _tool("+ Marker", "Add a marker at the play head (Ctrl+M); , and . jump between "
                                   "markers, F2 renames")
        lay.addWidget(self.marker_button)

        self.row1.addWidget(self.left)
        self.row1.addStretch(1)
        self.row1.addWidget(self.right)
        self._one_row = True

        self.tempo_spin.valueChanged.connect(lambda v: self.tempo_changed.emit(v / 100))
        self.tempo_reset_button.clicked.connect(self.tempo_reset)
        self.key_spin.valueChanged.connect(lambda v: self.key_changed.emit(v, self.cents_spin.value()))
        self.cents_spin.valueChanged.connect(lambda v: self.key_changed.emit(self.key_spin.value(), v))
        self.key_reset_button.clicked.connect(self.key_reset)
        self.snap_button.toggled.connect(self.snap_toggled)
        self.count_in_button.toggled.connect(self.count_in_toggled)
        self.trainer_button.toggled.connect(self.trainer_toggled)
        self.marker_button.clicked.connect(self.marker_clicked)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._arrange(event.size().width())

    def _arrange(self, width: int) -> None:
        """One row when both halves fit, else the beat/metronome/trainer/marker half goes below."""
        one_row = width >= self.left.sizeHint().width() + self.right.sizeHint().width() + 24
        if one_row == self._one_row:
            return
        self._one_row = one_row
        (self.row1 if not one_row else self.row2).removeWidget(self.right)
        if one_row:
            self.row1.addWidget(self.right)
        else:
            self.row2.addWidget(self.right)
            self.row2.addStretch(1)
        if one_row:  # drop the stretch left in row 2
            while self.row2.count():
                self.row2.takeAt(0)

    @property
    def one_row(self) -> bool:
        return self._one_row

    @staticmethod
    def _percent_spin(value: int, lo: int = int(MIN_TEMPO * 100), hi: int = int(MAX_TEMPO * 100),
                      step: int = 5) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(lo, hi)
        spin.setSingleStep(step)
        spin.setSuffix(" %")
        spin.setValue(value)
        return spin

    # state -> display (no signals) ---------------------------------------------------------------
    def show_stretch_unavailable(self, reason: str) -> None:
        """No Rubber Band library: tempo and key stay at the original, the controls say why."""
        self.stretch_unavailable = reason
        for w in (self.tempo_spin, self.key_spin, self.cents_spin):
            w.setEnabled(False)
            w.setToolTip(f"Tempo/key change unavailable: {reason}")

    def show_tempo_key(self, tempo: float, semitones: int, cents: int) -> None:
        for w in (self.tempo_spin, self.key_spin, self.cents_spin):
            w.blockSignals(True)
        self.tempo_spin.setValue(int(round(tempo * 100)))
        self.key_spin.setValue(int(semitones))
        self.cents_spin.setValue(int(cents))
        for w in (self.tempo_spin, self.key_spin, self.cents_spin):
            w.blockSignals(False)
        self.tempo_reset_button.setEnabled(tempo != 1.0)  # stays enabled without Rubber Band: back to 1.0
        self.key_reset_button.setEnabled(semitones != 0 or cents != 0)

    def show_bpm(self, bpm: float | None, tempo: float = 1.0, busy: bool = False, none_found: bool = False) -> None:
        if bpm is None:
            self.bpm_label.setText("… BPM" if busy else ("no beat" if none_found else "– BPM"))
        elif abs(tempo - 1.0) < 1e-9:
            self.bpm_label.setText(f"{bpm:.1f} BPM")
        else:
            self.bpm_label.setText(f"{bpm * tempo:.1f} BPM ({bpm:.0f})")

    def show_checked(self, button: QToolButton, on: bool) -> None:
        button.blockSignals(True)
        button.setChecked(on)
        button.blockSignals(False)


def beat_job(mixture: np.ndarray, sample_rate: int, cache_path: Path | None):
    """The worker's job: estimate the song's beats from its decoded mix (as ``unmix beats SONG``
    does: one answer; whole at once, also while the stems are still being separated) and store
    them (no Qt)."""
    def job(report, cancel):
        report("beats", 0.0)
        grid = song_beats(mixture, sample_rate)
        if cache_path is not None:
            try:
                cache_path.parent.mkdir(parents=True, exist_ok=True)
                grid.save(cache_path)
            except OSError:
                pass  # shown anyway; estimated again next time
        return grid
    return job


def validate_beats(data) -> BeatGrid:
    """A cached beat grid checked field by field (:mod:`..persist`): tempo, beat and downbeat times
    finite, in range and increasing; raises :class:`~..persist.Invalid` naming the field."""
    p = persist
    p.expect_dict(data, "the beat grid")
    p.expect_number(data.get("bpm"), "'bpm'", 0.0, 1000.0)

    def times(key: str) -> None:
        values = p.expect_list(data.get(key, []), f"'{key}'")
        for i, t in enumerate(values):
            p.expect_number(t, f"'{key}[{i}]'", 0.0, 86400.0)
        if any(b <= a for a, b in zip(values, values[1:])):
            raise p.Invalid(f"'{key}' times do not increase")

    times("beats")
    times("downbeats")
    p.expect_int(data.get("beats_per_bar", 4), "'beats_per_bar'", 1, 32)
    p.expect_str(data.get("source", "mix"), "'source'")
    p.expect_number(data.get("confidence", 0.0), "'confidence'")
    return BeatGrid.from_dict(data)


class PracticeController(QObject):
    """Tempo/key, beats, metronome, count-in, loop trainer and markers of the open song."""

    beats_ready = Signal(object)  # BeatGrid

    def __init__(self, window: "MainWindow", notify: Callable[[str, str, int], None]):
        super().__init__(window)
        self.w = window
        self.notify = notify
        self.bar: PracticeBar = window.song_page.transport.practice
        self.grid: BeatGrid | None = None
        self.snap = False
        self.trainer: LoopTrainer | None = None
        self.task = None
        self._reload_pending = False
        self._song_key: str | None = None
        self._unsubscribe = None
        self.title_parts: list[Callable[[], str]] = []  # more for the title (the chord lane: BPM and key)
        b = self.bar
        if (reason := stretch_unavailable_reason()) is not None:
            b.show_stretch_unavailable(reason)
        b.tempo_changed.connect(lambda r: self._set("tempo.ratio", r))
        b.tempo_reset.connect(self.reset_tempo)
        b.key_changed.connect(self._key_changed)
        b.key_reset.connect(self.reset_key)
        b.snap_toggled.connect(self.set_snap)
        b.count_in_toggled.connect(lambda on: self._set("click.count_in", on))
        b.trainer_toggled.connect(self.set_trainer)
        b.marker_clicked.connect(self.add_marker)
        b.metronome.gain_changed.connect(lambda db: self._set("click.gain_db", db))
        b.metronome.mute_toggled.connect(lambda m: self._set("click.mute", m))

    @property
    def session(self):
        return self.w.session

    def _set(self, control: str, value) -> None:
        if self.session is not None:
            self.session.set(control, value)

    # the song ------------------------------------------------------------------------------------
    def beats_path(self, song_key: str | None) -> Path | None:
        if not song_key:
            return None
        try:
            return self.w.sessions.path(song_key).with_suffix(BEATS_SUFFIX)
        except SessionError:
            return None

    def prepare(self, song_key: str | None) -> None:
        """A song is about to be shown: drop the old song's beats, load this one's from the cache."""
        self.bind(None)
        if song_key is not None and song_key == self._song_key:
            return  # the same song again (e.g. 2 -> 4 stems): same beats
        self._song_key = song_key
        self.grid = None
        self._reload_pending = False
        if self.task is not None:
            self.task.cancel()
            self.task = None
        path = self.beats_path(song_key)
        if path is not None and path.exists():  # a damaged cache is set aside (one notice) and estimated again
            self.grid = persist.load_json_validated(path, validate_beats, None)

    def bind(self, session) -> None:
        """Follow ``session`` (the shown song's); estimate its beats in a worker when not cached."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.set_trainer(False)
        if session is None:
            return
        self._unsubscribe = session.observe(self._on_session)
        self._show_grid()
        if self.grid is None and self.task is None:
            self.estimate_beats()

    def estimate_beats(self):
        song = self.w.song
        if song is None:
            return None
        job = beat_job(song.mixture, song.sample_rate, self.beats_path(song.content_hash))
        key = song.content_hash
        self.bar.show_bpm(None, busy=True)

        def done(grid):
            self.task = None
            if self.w.song is not None and self.w.song.content_hash == key:
                self.grid = grid
                self._show_grid()
                self._reload_pending = True  # the metronome stem joins the player at the next pause
                self._reload_player()
                self.beats_ready.emit(grid)

        def failed(message):
            self.task = None
            self.bar.show_bpm(None)
            self.notify(f"Could not estimate the beats: {message}", "warning", 5000)

        self.task = self.w.start_task(job, "beats", on_done=done, on_error=failed)
        return self.task

    def _reload_player(self) -> None:
        """Give the player the metronome stem (reloading it), never while it plays: no gap in the music."""
        if self._reload_pending and self.w.song is not None and not self.w.player.playing:
            self._reload_pending = False
            self.w.attach_player(self.w.player.position)

    def _show_grid(self) -> None:
        self.w.song_page.tracks.set_beats(self.grid.beats if self.grid else [],
                                          self.grid.downbeats if self.grid else [])
        self.refresh()

    def player_stems(self, stems: dict[str, np.ndarray], n_frames: int, sample_rate: int) -> dict:
        """The song's stems plus the metronome stem once the beat grid is known."""
        if self.grid is None or not self.grid.beats:
            return stems
        return {**stems, CLICK_STEM: click_track(self.grid.beats, self.grid.downbeats, n_frames, sample_rate)}

    # session -> display ---------------------------------------------------------------------------
    def _on_session(self, control: str, value) -> None:
        if control == "*" or control.split(".")[0] in ("tempo", "key", "click", "markers"):
            self.refresh()

    def refresh(self) -> None:
        s = self.session
        if s is None:
            return
        tempo, semis, cents = s.get("tempo.ratio"), s.get("key.semitones"), s.get("key.cents")
        self.bar.show_tempo_key(tempo, semis, cents)
        found = self.grid is not None and self.grid.found
        self.bar.show_bpm(self.grid.bpm if found else None, tempo, busy=self.task is not None,
                          none_found=self.grid is not None and not found)
        self.bar.metronome.show_state(s.get("click.gain_db"), s.get("click.mute"), found)
        self.bar.show_checked(self.bar.count_in_button, s.get("click.count_in"))
        self.bar.show_checked(self.bar.snap_button, self.snap)
        self.w.song_page.tracks.set_markers(s.get("markers"))
        self._show_trainer()
        title = self.w.song.title if self.w.song else ""
        extra = "  ·  ".join(x for x in [f() for f in self.title_parts] + [self.summary()] if x)
        self.w.setWindowTitle(f"{title}{'  ·  ' + extra if extra else ''} — unmix-desktop")

    def summary(self) -> str:
        """"Tempo 80 %  ·  Key −2 st" for the title and the status bar ("" at the original)."""
        s = self.session
        if s is None:
            return ""
        parts = []
        if s.get("tempo.ratio") != 1.0:
            parts.append(f"Tempo {format_tempo(s.get('tempo.ratio'))}")
        if s.get("key.semitones") or s.get("key.cents"):
            parts.append(f"Key {format_key(s.get('key.semitones'), s.get('key.cents'))}")
        return "  ·  ".join(parts)

    def stretch(self) -> dict:
        """Tempo and key for export (``tempo``, ``semitones``, ``cents``)."""
        s = self.session
        if s is None:
            return {"tempo": 1.0, "semitones": 0.0, "cents": 0.0}
        return {"tempo": float(s.get("tempo.ratio")), "semitones": float(s.get("key.semitones")),
                "cents": float(s.get("key.cents"))}

    # tempo and key --------------------------------------------------------------------------------
    def step_tempo(self, steps: int) -> None:
        if self.session is not None:
            self._set("tempo.ratio", round(self.session.get("tempo.ratio") / TEMPO_STEP + steps) * TEMPO_STEP)
            self._status()

    def reset_tempo(self) -> None:
        self._set("tempo.ratio", 1.0)
        self._status()

    def _key_changed(self, semitones: int, cents: int) -> None:
        if self.session is not None:
            with self.session.batch():
                self.session.set("key.semitones", semitones)
                self.session.set("key.cents", cents)

    def step_key(self, steps: int) -> None:
        if self.session is not None:
            self._set("key.semitones", self.session.get("key.semitones") + steps)
            self._status()

    def reset_key(self) -> None:
        if self.session is not None:
            with self.session.batch():
                self.session.set("key.semitones", 0)
                self.session.set("key.cents", 0)
            self._status()

    def _status(self) -> None:
        self.w.status_label.setText(self.summary() or "Original tempo and key")

    # beats: snap and nudge ------------------------------------------------------------------------
    def set_snap(self, on: bool) -> None:
        self.snap = bool(on)
        self.bar.show_checked(self.bar.snap_button, self.snap)

    def toggle_snap(self) -> None:
        self.set_snap(not self.snap)

    def snapped(self, seconds: float) -> float:
        """``seconds`` on the nearest beat when snapping is on and the beats are known."""
        return self.grid.nearest_beat(seconds) if self.snap and self.grid is not None else seconds

    def nudge(self, which: str, beats: int) -> None:
        """Move loop A or B by ``beats`` beats along the grid."""
        s = self.session
        if s is None:
            return
        if self.grid is None or not self.grid.beats:
            self.notify("The beats are not known yet.", "info", 3000)
            return
        current = s.get(f"loop.{which}")
        if current is None:
            return
        t = min(max(self.grid.nudge(current, beats), 0.0), self.w.song.duration)
        with s.batch():
            if which == "a":
                if s.loop_valid(t, s.get("loop.b")):
                    s.set("loop.a", t)
            elif s.loop_valid(s.get("loop.a"), t):
                s.set("loop.b", t)

    # metronome and count-in -----------------------------------------------------------------------
    def toggle_click(self) -> None:
        if self.session is not None:
            self.session.toggle("click.mute")

    def toggle_count_in(self) -> None:
        if self.session is not None:
            self.session.toggle("click.count_in")

    def count_in_audio(self) -> np.ndarray | None:
        """One bar of clicks at the stretched tempo, when count-in is on and playback starts from a
        stop (the song's start) or from loop A; else ``None``."""
        s, player = self.session, self.w.player
        if s is None or not s.get("click.count_in") or self.grid is None or not self.grid.found or player.playing:
            return None
        pos = player.position
        a = s.get("loop.a")
        if pos > COUNT_IN_MARGIN_S and not (s.loop is not None and a is not None and abs(pos - a) <= COUNT_IN_MARGIN_S):
            return None
        return count_in(self.grid.bpm, self.grid.beats_per_bar, s.get("tempo.ratio"), player.sample_rate)

    # loop trainer -----------------------------------------------------------------------------------
    def set_trainer(self, on: bool) -> None:
        b = self.bar
        if not on:
            self.trainer = None
            b.show_checked(b.trainer_button, False)
            self._show_trainer()
            return
        s = self.session
        if s is None or s.loop is None:
            b.show_checked(b.trainer_button, False)
            self.notify("Set an A–B loop first: the trainer raises the tempo after each pass.", "info", 5000)
            return
        self.trainer = LoopTrainer(b.trainer_start.value() / 100, b.trainer_step.value() / 100,
                                   b.trainer_target.value() / 100)
        self.trainer.update(self.w.player.loop_passes)  # counts passes from now
        b.show_checked(b.trainer_button, True)
        self._set("tempo.ratio", self.trainer.tempo)
        self._show_trainer()

    def toggle_trainer(self) -> None:
        self.set_trainer(self.trainer is None)

    def _show_trainer(self) -> None:
        t = self.trainer
        if t is None:
            self.bar.trainer_label.setText("")
            self.bar.trainer_label.setToolTip("")
            return
        self.bar.trainer_label.setText(f"{format_tempo(t.tempo)} → {format_tempo(t.target)}")
        self.bar.trainer_label.setToolTip(f"Pass {t.passes + 1}" + (" (target reached)" if t.done else ""))

    def tick(self) -> None:
        """On the transport's tick: a finished loop pass raises the trainer's tempo."""
        self._reload_player()
        t = self.trainer
        if t is None or self.session is None:
            return
        tempo = t.update(self.w.player.loop_passes)
        if tempo is not None:
            self._set("tempo.ratio", tempo)
            self._show_trainer()

    # markers ------------------------------------------------------------------------------------------
    def markers(self) -> list[dict]:
        return self.session.get("markers") if self.session is not None else []

    def add_marker(self, label: str | None = None) -> int | None:
        """A marker at the play head ("Marker N"); returns its index."""
        s = self.session
        if s is None:
            return None
        t = round(float(self.w.player.position), 3)
        markers = s.get("markers")
        if label is None:
            used = {m["label"] for m in markers}
            k = len(markers) + 1
            while f"Marker {k}" in used:
                k += 1
            label = f"Marker {k}"
        markers.append({"t": t, "label": label})
        s.set("markers", markers)
        self.w.status_label.setText(f"Added “{label}” at {t:.1f} s")
        return next(i for i, m in enumerate(s.get("markers")) if m["t"] == t and m["label"] == label)

    def current_marker(self) -> int | None:
        """The marker at or before the play head (else the first one)."""
        markers = self.markers()
        if not markers:
            return None
        pos = self.w.player.position + 0.05
        before = [i for i, m in enumerate(markers) if m["t"] <= pos]
        return before[-1] if before else 0

    def rename_marker(self, index: int, label: str) -> None:
        s = self.session
        label = label.strip()
        if s is None or not label or not 0 <= index < len(s.get("markers")):
            return
        markers = s.get("markers")
        markers[index] = {"t": markers[index]["t"], "label": label}
        s.set("markers", markers)

    def ask_rename_marker(self) -> QInputDialog | None:
        index = self.current_marker()
        if index is None:
            self.notify("No markers yet: add one at the play head with Ctrl+M.", "info", 4000)
            return
        dialog = QInputDialog(self.w)  # window-modal, not blocking: the event loop keeps running
        dialog.setWindowTitle("Rename marker")
        dialog.setLabelText("Name:")
        dialog.setTextValue(self.markers()[index]["label"])
        dialog.textValueSelected.connect(lambda label: self.rename_marker(index, label))
        self.rename_dialog = dialog
        dialog.open()

    def remove_marker(self) -> None:
        index = self.current_marker()
        if index is not None:
            markers = self.markers()
            markers.pop(index)
            self.session.set("markers", markers)

    def jump_to(self, index: int) -> None:
        markers = self.markers()
        if 0 <= index < len(markers):
            self.w.transport_ctl.seek(markers[index]["t"])

    def jump(self, direction: int) -> None:
        """To the next (``+1``) or previous (``-1``) marker from the play head."""
        markers = self.markers()
        pos = self.w.player.position
        if direction > 0:
            target = next((m for m in markers if m["t"] > pos + 0.05), None)
        else:
            target = next((m for m in reversed(markers) if m["t"] < pos - 0.5), None)
        if target is not None:
            self.w.transport_ctl.seek(target["t"])
