"""Mixer strips: one per stem (name, colour, fader, mute, solo, pan, level meter) and a master strip.

Strips only display state and emit what the user changed; :class:`~.mix_view.MixController` sends it
to the session.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QLinearGradient, QPainter
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from . import theme

FADER_MIN_DB = -48.0
FADER_MAX_DB = 6.0
FADER_STEPS = 540  # 0.1 dB per step
METER_MIN_DB = -60.0


def db_to_fader(db: float) -> int:
    """Fader position of a gain (position 0 is silence)."""
    if db == -math.inf or db <= FADER_MIN_DB:
        return 0
    db = min(db, FADER_MAX_DB)
    return max(1, int(round((db - FADER_MIN_DB) / (FADER_MAX_DB - FADER_MIN_DB) * FADER_STEPS)))


def fader_to_db(pos: int) -> float:
    if pos <= 0:
        return -math.inf
    return FADER_MIN_DB + (FADER_MAX_DB - FADER_MIN_DB) * pos / FADER_STEPS


def format_db(db: float) -> str:
    if db == -math.inf:
        return "−∞ dB"
    return f"{db:+.1f} dB" if abs(db) >= 0.05 else "0.0 dB"


def format_pan(pan: float) -> str:
    p = int(round(pan * 100))
    return "C" if p == 0 else (f"L{-p}" if p < 0 else f"R{p}")


class ResetSlider(QSlider):
    """A horizontal slider that goes back to ``default`` on double-click."""

    def __init__(self, lo: int, hi: int, default: int, parent: QWidget | None = None):
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.setRange(lo, hi)
        self.default = default
        self.setValue(default)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def mouseDoubleClickEvent(self, event) -> None:
        self.setValue(self.default)
        event.accept()


class LevelMeter(QWidget):
    """Vertical peak meter, -60..0 dBFS, green -> yellow -> red, with a falling peak-hold mark."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFixedWidth(8)
        self.setMinimumHeight(40)
        self._db = METER_MIN_DB
        self._hold = METER_MIN_DB
        self.setToolTip("Output level of this stem")

    @property
    def level_db(self) -> float:
        return self._db

    def set_level(self, peak: float) -> None:
        db = 20 * math.log10(peak) if peak > 1e-6 else METER_MIN_DB
        db = max(db, METER_MIN_DB)
        self._hold = max(db, self._hold - 0.6)
        if db != self._db or self._hold > METER_MIN_DB:
            self._db = db
            self.update()

    def reset(self) -> None:
        """Dark: no level, no peak-hold mark (playback paused or stopped)."""
        if self._db != METER_MIN_DB or self._hold != METER_MIN_DB:
            self._db = self._hold = METER_MIN_DB
            self.update()

    @property
    def lit(self) -> bool:
        return self._db > METER_MIN_DB or self._hold > METER_MIN_DB + 0.6

    def sizeHint(self) -> QSize:
        return QSize(8, 80)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        r = QRectF(self.rect())
        p.fillRect(r, QColor("#0f1216"))
        frac = (self._db - METER_MIN_DB) / -METER_MIN_DB
        if frac > 0:
            grad = QLinearGradient(0, r.bottom(), 0, r.top())
            grad.setColorAt(0.0, QColor("#2fbf71"))
            grad.setColorAt(0.75, QColor("#d7d43a"))
            grad.setColorAt(0.95, QColor("#ef5b5b"))
            h = r.height() * min(frac, 1.0)
            p.fillRect(QRectF(r.left(), r.bottom() - h, r.width(), h), grad)
        hold = (self._hold - METER_MIN_DB) / -METER_MIN_DB
        if hold > 0.01:
            y = r.bottom() - r.height() * min(hold, 1.0)
            p.fillRect(QRectF(r.left(), y, r.width(), 2), QColor("#e3e6eb"))
        p.end()


def _small_button(text: str, name: str, tip: str) -> QToolButton:
    b = QToolButton()
    b.setText(text)
    b.setObjectName(name)
    b.setCheckable(True)
    b.setToolTip(tip)
    b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    b.setFixedSize(26, 22)
    return b


class _StripBase(QFrame):
    STRIP_WIDTH = 268

    def __init__(self, name: str, colour: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.name = name
        self.colour = colour
        self.setObjectName("strip")
        self.setFixedWidth(self.STRIP_WIDTH)
        outer = QHBoxLayout(self)
        outer.setContentsMargins(0, 0, 6, 0)
        outer.setSpacing(8)
        bar = QFrame()
        bar.setFixedWidth(5)
        bar.setStyleSheet(f"background: {colour}; border: none; border-top-left-radius: 6px;"
                          "border-bottom-left-radius: 6px;")
        outer.addWidget(bar)
        self.body = QVBoxLayout()
        self.body.setContentsMargins(0, 6, 0, 6)
        self.body.setSpacing(3)
        outer.addLayout(self.body, 1)
        self.meter = LevelMeter()
        meter_box = QVBoxLayout()
        meter_box.setContentsMargins(0, 8, 0, 8)
        meter_box.addWidget(self.meter)
        outer.addLayout(meter_box)

    def _row(self, label: str, widget: QWidget, value: QLabel) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(6)
        lab = QLabel(label)
        lab.setObjectName("dim")
        lab.setFixedWidth(26)
        row.addWidget(lab)
        row.addWidget(widget, 1)
        value.setObjectName("dim")
        value.setFixedWidth(54)
        value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        row.addWidget(value)
        return row


class StemStrip(_StripBase):
    """Controls of one stem."""

    gain_changed = Signal(str, float)
    mute_toggled = Signal(str, bool)
    solo_toggled = Signal(str, bool)
    pan_changed = Signal(str, float)

    def __init__(self, name: str, colour: str, index: int, parent: QWidget | None = None):
        super().__init__(name, colour, parent)
        top = QHBoxLayout()
        top.setSpacing(4)
        key = QLabel(str(index + 1) if index < 9 else "")
        key.setObjectName("dim")
        key.setToolTip(f"Press {index + 1} to solo, Alt+{index + 1} to mute" if index < 9 else "")
        key.setFixedWidth(12)
        top.addWidget(key)
        self.title = QLabel(theme.stem_label(name))
        self.title.setStyleSheet(f"font-weight: 600; color: {colour};")
        top.addWidget(self.title, 1)
        self.mute_button = _small_button("M", "mute", f"Mute {theme.stem_label(name)}")
        self.solo_button = _small_button("S", "solo", f"Solo {theme.stem_label(name)}")
        top.addWidget(self.mute_button)
        top.addWidget(self.solo_button)
        self.body.addLayout(top)

        self.fader = ResetSlider(0, FADER_STEPS, db_to_fader(0.0))
        self.fader.setToolTip("Volume (double-click: 0 dB)")
        self.gain_label = QLabel(format_db(0.0))
        self.body.addLayout(self._row("Vol", self.fader, self.gain_label))
        self.pan = ResetSlider(-100, 100, 0)
        self.pan.setToolTip("Pan (double-click: centre)")
        self.pan_label = QLabel("C")
        self.body.addLayout(self._row("Pan", self.pan, self.pan_label))
        self.body.addStretch(1)

        self.fader.valueChanged.connect(self._fader_moved)
        self.pan.valueChanged.connect(self._pan_moved)
        self.mute_button.toggled.connect(lambda on: self.mute_toggled.emit(self.name, on))
        self.solo_button.toggled.connect(lambda on: self.solo_toggled.emit(self.name, on))

    # user -> signals
    def _fader_moved(self, pos: int) -> None:
        db = fader_to_db(pos)
        self.gain_label.setText(format_db(db))
        self.gain_changed.emit(self.name, db)

    def _pan_moved(self, value: int) -> None:
        self.pan_label.setText(format_pan(value / 100))
        self.pan_changed.emit(self.name, value / 100)

    # state -> display (no signals)
    def show_state(self, gain_db: float, muted: bool, soloed: bool, pan: float, audible: bool) -> None:
        for w in (self.fader, self.pan, self.mute_button, self.solo_button):
            w.blockSignals(True)
        self.fader.setValue(db_to_fader(gain_db))
        self.gain_label.setText(format_db(gain_db))
        self.pan.setValue(int(round(pan * 100)))
        self.pan_label.setText(format_pan(pan))
        self.mute_button.setChecked(muted)
        self.solo_button.setChecked(soloed)
        for w in (self.fader, self.pan, self.mute_button, self.solo_button):
            w.blockSignals(False)
        self.title.setStyleSheet(f"font-weight: 600; color: {self.colour if audible else theme.TEXT_DIM};")

    # convenience for shortcuts and tests
    def click_mute(self) -> None:
        self.mute_button.click()

    def click_solo(self) -> None:
        self.solo_button.click()


class MasterStrip(_StripBase):
    """Master volume and "mute all" (shown next to the mixture's spectrogram)."""

    master_changed = Signal(float)
    mute_all_toggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__("mixture", theme.stem_colour("mixture"), parent)
        top = QHBoxLayout()
        top.setSpacing(4)
        self.title = QLabel("Mix")
        self.title.setStyleSheet("font-weight: 600;")
        top.addSpacing(16)
        top.addWidget(self.title, 1)
        self.mute_button = _small_button("M", "mute", "Mute the output (M)")
        top.addWidget(self.mute_button)
        top.addSpacing(30)
        self.body.addLayout(top)
        self.fader = ResetSlider(0, FADER_STEPS, db_to_fader(0.0))
        self.fader.setToolTip("Master volume (double-click: 0 dB)")
        self.gain_label = QLabel(format_db(0.0))
        self.body.addLayout(self._row("Out", self.fader, self.gain_label))
        self.body.addStretch(1)
        self.info = QLabel("Space  play / pause\n1 – 9  solo a stem,  Alt+1 – 9  mute\n"
                           "K  karaoke,  0  full mix,  M  mute output\n[  ]  loop start / end,  L  loop")
        self.info.setObjectName("dim")
        self.info.setStyleSheet("font-size: 8pt;")
        self.info.setToolTip("Help → Keyboard Shortcuts (F1)")
        self.info.setMinimumHeight(1)  # never makes the lane taller; hidden when it does not fit
        self.body.addWidget(self.info)
        self.meter.setToolTip("Loudest stem")
        self.fader.valueChanged.connect(self._fader_moved)
        self.mute_button.toggled.connect(self.mute_all_toggled.emit)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.info.setVisible(event.size().height() >= 70 + self.info.sizeHint().height())

    def _fader_moved(self, pos: int) -> None:
        db = fader_to_db(pos)
        self.gain_label.setText(format_db(db))
        self.master_changed.emit(db)

    def show_state(self, master_db: float, muted: bool) -> None:
        for w in (self.fader, self.mute_button):
            w.blockSignals(True)
        self.fader.setValue(db_to_fader(master_db))
        self.gain_label.setText(format_db(master_db))
        self.mute_button.setChecked(muted)
        for w in (self.fader, self.mute_button):
            w.blockSignals(False)


class MetronomeStrip(QFrame):
    """The metronome click's own small strip: on/off (mute) and a fader. Display + signals only."""

    gain_changed = Signal(float)
    mute_toggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("metronome")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        self.button = QToolButton()
        self.button.setObjectName("transport")
        self.button.setText("Click")
        self.button.setCheckable(True)
        self.button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.button.setToolTip("Metronome click on the beat grid (C); follows the tempo")
        lay.addWidget(self.button)
        self.fader = ResetSlider(0, FADER_STEPS, db_to_fader(-6.0))
        self.fader.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.fader.setFixedWidth(70)
        self.fader.setToolTip("Metronome volume (double-click: −6 dB)")
        lay.addWidget(self.fader)
        self.gain_label = QLabel(format_db(-6.0))
        self.gain_label.setObjectName("dim")
        self.gain_label.setFixedWidth(self.gain_label.fontMetrics().horizontalAdvance("−48.0 dB") + 6)
        lay.addWidget(self.gain_label)
        self.button.toggled.connect(lambda on: self.mute_toggled.emit(not on))
        self.fader.valueChanged.connect(self._fader_moved)

    @property
    def muted(self) -> bool:
        return not self.button.isChecked()

    def _fader_moved(self, pos: int) -> None:
        db = fader_to_db(pos)
        self.gain_label.setText(format_db(db))
        self.gain_changed.emit(db)

    def show_state(self, gain_db: float, muted: bool, available: bool) -> None:
        for w in (self.fader, self.button):
            w.blockSignals(True)
        self.fader.setValue(db_to_fader(gain_db))
        self.gain_label.setText(format_db(gain_db))
        self.button.setChecked(not muted)
        for w in (self.fader, self.button):
            w.blockSignals(False)
        self.setEnabled(available)
