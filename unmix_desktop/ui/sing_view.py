"""Sing and see: the microphone's level and the singer's live pitch over the melody lane, a score
after each lyric line and for the song (:class:`~unmix_desktop.analysis.singing.SingScorer`).

:class:`SingController` opens the input (:class:`~unmix_desktop.audio.mic.Microphone`; the device
is chosen in Preferences), polls its readings every ``POLL_MS`` on the UI thread (the pitch is
computed in the PortAudio callback) and maps them to song time with the player's position and
the session's tempo. No input device, or one that refuses to open: the Sing button is disabled
with the reason next to it and everything else keeps working.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QToolButton,
    QWidget,
)

from ..analysis.melody import Contour, shift_contour
from ..analysis.singing import SingScorer, song_times_of_readings

if TYPE_CHECKING:
    from .main_window import MainWindow

POLL_MS = 15  # + the input latency (~70 ms on the ALSA null device): within 100 ms
METER_FLOOR_DB = -60.0
#: A reading whose song time is off by more than this from steady playback was made across a seek.
SEEK_JUMP_S = 0.3
INPUT_DEVICE_KEY = "audio/input_device"


def default_mic_factory(device: str | None):
    from ..audio.mic import Microphone, list_input_devices

    spec = device
    if device is not None:
        spec = next((index for index, label in list_input_devices() if label == device), device)
    return Microphone(device=spec)


def input_devices() -> list[str]:
    try:
        from ..audio.mic import list_input_devices

        return [label for _, label in list_input_devices()]
    except Exception:  # noqa: BLE001 - no PortAudio: nothing to offer
        return []


def format_score(score: float | None) -> str:
    return "–" if score is None else f"{score * 100:.0f} %"


class SingPanel(QFrame):
    """The Sing button, the input level meter, the scores and (when unusable) the reason."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("strip")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 3, 8, 3)
        lay.setSpacing(8)
        self.button = QToolButton()
        self.button.setText("Sing")
        self.button.setCheckable(True)
        self.button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.button.setToolTip("Sing along: your pitch over the melody and a score per line (Ctrl+Shift+S)")
        lay.addWidget(self.button)
        self.meter = QProgressBar()
        self.meter.setRange(0, int(-METER_FLOOR_DB))
        self.meter.setTextVisible(False)
        self.meter.setFixedSize(90, 8)
        self.meter.setToolTip("Microphone input level")
        lay.addWidget(self.meter)
        self.line_score = QLabel("")
        self.song_score = QLabel("")
        for label in (self.line_score, self.song_score):
            label.setObjectName("dim")
            lay.addWidget(label)
        self.reason = QLabel("")
        self.reason.setObjectName("dim")
        self.reason.setWordWrap(True)
        self.reason.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        lay.addWidget(self.reason, 1)

    def set_level(self, db: float) -> None:
        self.meter.setValue(int(np.clip(db - METER_FLOOR_DB, 0, -METER_FLOOR_DB)))


class SingController(QObject):
    def __init__(self, window: MainWindow, mic_factory: Callable[[str | None], object] | None = None):
        super().__init__(window)
        self.w = window
        self.mic_factory = mic_factory or default_mic_factory
        self.panel = SingPanel()
        self.panel.button.toggled.connect(self._on_button)
        self.mic = None
        self.melody: Contour | None = None
        self.scorer: SingScorer | None = None
        self.reason: str | None = None
        self.line_scores: dict[int, float | None] = {}
        self.last_line_score: float | None = None
        self.song_score: float | None = None
        self._since = 0
        self._last_line: int | None = None
        self._last_clock: tuple[float, float] | None = None
        self._was_playing = False
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)
        self.probe()

    def probe(self) -> None:
        """Whether the chosen input can record, known before the first click (no stream is opened):
        without a microphone the Sing button is disabled and says why from the start."""
        if self.singing:
            return
        try:
            mic = self.mic_factory(self.device)
            available = bool(getattr(mic, "available", True))
            self.reason = None if available else (getattr(mic, "unavailable_reason", None) or "no input device")
        except Exception as exc:  # noqa: BLE001 - a broken audio stack must not take the window down
            self.reason = str(exc) or type(exc).__name__
        self._show_idle()

    # settings --------------------------------------------------------------------------------
    @property
    def device(self) -> str | None:
        return str(self.w.settings.q.value(INPUT_DEVICE_KEY, "") or "") or None

    def set_device(self, device: str | None) -> None:
        if device == self.device:
            return
        self.w.settings.q.setValue(INPUT_DEVICE_KEY, device or "")
        singing = self.singing
        self.stop()
        self.reason = None
        if singing:
            self.start()
        else:
            self.probe()
        self._show_idle()

    # state -----------------------------------------------------------------------------------
    @property
    def singing(self) -> bool:
        return self.mic is not None and self.timer.isActive()

    def _show_idle(self) -> None:
        p = self.panel
        if self.reason:
            p.button.setEnabled(False)
            p.reason.setText(f"Microphone unavailable: {self.reason}. Everything else keeps working.")
            p.button.setToolTip(f"Microphone unavailable: {self.reason}")
        else:
            p.button.setEnabled(True)
            p.reason.setText("" if self.singing else "Sing along: your pitch is drawn over the melody")
        p.meter.setEnabled(self.singing)

    def toggle(self) -> None:
        """The menu action / shortcut: start (retrying a device that failed before) or stop."""
        if self.singing:
            self.stop()
        else:
            self.reason = None
            self.start()

    def _on_button(self, checked: bool) -> None:
        if checked and not self.singing:
            self.start()
        elif not checked and self.singing:
            self.stop()

    def start(self) -> bool:
        try:
            mic = self.mic_factory(self.device)
            ok = mic.start()
            reason = getattr(mic, "unavailable_reason", None) or "the input could not be started"
        except Exception as exc:  # noqa: BLE001 - a broken audio stack must not take the window down
            mic, ok, reason = None, False, str(exc) or type(exc).__name__
        if not ok:
            if mic is not None:
                mic.stop()
            self.mic = None
            self.reason = reason
            self._set_checked(False)
            self._show_idle()
            self.w.notify(f"Sing: microphone unavailable ({reason}). Playback and everything else keep working.",
                          "warning", 8000)
            return False
        self.mic = mic
        self._since = mic.count
        self._last_clock = None
        self._make_scorer()
        self.w.melody_ctl.lane.clear_live()
        self.timer.start()
        self._set_checked(True)
        self._show_idle()
        return True

    def stop(self) -> None:
        self.timer.stop()
        if self.mic is not None:
            self.mic.stop()
        self.mic = None
        self._set_checked(False)
        self.panel.set_level(METER_FLOOR_DB)
        self._show_idle()

    def _set_checked(self, on: bool) -> None:
        b = self.panel.button
        b.blockSignals(True)
        b.setChecked(on)
        b.blockSignals(False)

    # melody and scoring ----------------------------------------------------------------------
    def set_melody(self, contour: Contour | None) -> None:
        self.melody = contour
        self._make_scorer()

    def on_key_changed(self) -> None:
        self._make_scorer()

    def _make_scorer(self) -> None:
        session = self.w.session
        if self.melody is None:
            self.scorer = None
            return
        semitones = int(session.get("key.semitones")) if session is not None else 0
        self.scorer = SingScorer(shift_contour(self.melody, semitones) if semitones else self.melody)
        self.line_scores.clear()
        self.last_line_score = self.song_score = None
        self.panel.line_score.setText("")
        self.panel.song_score.setText("")

    def add_sung(self, song_times: np.ndarray, hz: np.ndarray) -> None:
        """Sung pitch (Hz, 0 = silent) at song times: drawn over the lane and scored."""
        self.w.melody_ctl.lane.add_live(song_times, hz)
        if self.scorer is not None:
            self.scorer.add(song_times, hz)
            self.song_score = self.scorer.score()
            self.panel.song_score.setText(f"Song {format_score(self.song_score)}")

    def poll(self) -> None:
        mic, w = self.mic, self.w
        if mic is None:
            return
        self.panel.set_level(mic.level_db)
        count, r = mic.readings(self._since)
        self._since = count
        player = w.player
        playing = bool(getattr(player, "playing", False)) and w.song is not None
        now = time.monotonic()
        position = float(player.position) if w.song is not None else 0.0
        tempo = float(w.session.get("tempo.ratio")) if w.session is not None else 1.0
        jumped = False
        if self._last_clock is not None:
            expected = self._last_clock[1] + (now - self._last_clock[0]) * tempo * (1.0 if playing else 0.0)
            jumped = abs(position - expected) > SEEK_JUMP_S
        self._last_clock = (now, position)
        if playing and r["wall"].size and not jumped:
            times = song_times_of_readings(r["wall"], now, position, tempo, mic.latency_s)
            self.add_sung(times, r["hz"])
        self._score_lines(playing, position)

    def _score_lines(self, playing: bool, position: float) -> None:
        lyr = self.w.lyrics_ctl
        state = lyr.state
        current = state.line if state is not None else None
        if self._last_line is not None and current != self._last_line and self.scorer is not None:
            start, end = lyr.line_span(self._last_line)
            score = self.scorer.score(start, end)
            self.line_scores[self._last_line] = score
            self.last_line_score = score
            self.panel.line_score.setText(f"Last line {format_score(score)}")
        self._last_line = current
        song = self.w.song
        if self._was_playing and not playing and song is not None and position >= song.duration - 0.5:
            self.finish_song()
        self._was_playing = playing

    def finish_song(self) -> None:
        if self.scorer is None:
            return
        self.song_score = self.scorer.score()
        self.panel.song_score.setText(f"Song {format_score(self.song_score)}")
        self.w.notify(f"Song score: {format_score(self.song_score)} of your sung notes within "
                      "a quarter tone of the melody.", "info", 0)


def add_input_device_row(dialog, current: str | None):
    """A "Microphone" choice in the Preferences dialog's form; returns the combo box (data: device
    label, ``None`` for the system default)."""
    from PySide6.QtWidgets import QComboBox, QFormLayout

    combo = QComboBox()
    combo.addItem("System default", None)
    for label in input_devices():
        combo.addItem(label, label)
    if current and combo.findData(current) < 0:
        combo.addItem(f"{current} (not connected)", current)
    combo.setCurrentIndex(max(combo.findData(current), 0) if current else 0)
    combo.setToolTip("The input used by Sing (live pitch and score)")
    form = dialog.findChild(QFormLayout)
    if form is not None:
        form.addRow("Microphone:", combo)
    return combo
