"""Transport bar: back to start, play/pause, stop, position/duration, seek bar, A-B loop, presets, and the
practice row (:class:`.practice_view.PracticeBar`)."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap, QPolygonF
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .jobs import format_time
from .practice_view import PracticeBar
from .presets import Preset

SEEK_STEPS = 10000


def glyph_icon(kind: str, size: int = 32) -> QIcon:
    """Light transport glyphs drawn for the dark theme: play, pause, stop, rewind."""
    icon = QIcon()
    for mode, colour in ((QIcon.Mode.Normal, "#f2f4f7"), (QIcon.Mode.Disabled, "#5d6470")):
        pm = QPixmap(size, size)
        pm.fill(Qt.GlobalColor.transparent)
        p = QPainter(pm)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(colour))
        u = size / 32.0
        if kind == "play":
            p.drawPolygon(QPolygonF([QPointF(10 * u, 7 * u), QPointF(26 * u, 16 * u), QPointF(10 * u, 25 * u)]))
        elif kind == "pause":
            p.drawRoundedRect(QRectF(9 * u, 7 * u, 5 * u, 18 * u), u, u)
            p.drawRoundedRect(QRectF(18 * u, 7 * u, 5 * u, 18 * u), u, u)
        elif kind == "stop":
            p.drawRoundedRect(QRectF(9 * u, 9 * u, 14 * u, 14 * u), 2 * u, 2 * u)
        elif kind == "rewind":
            p.drawRect(QRectF(7 * u, 8 * u, 3 * u, 16 * u))
            p.drawPolygon(QPolygonF([QPointF(25 * u, 8 * u), QPointF(11 * u, 16 * u), QPointF(25 * u, 24 * u)]))
        p.end()
        icon.addPixmap(pm, mode)
    return icon


def _button(widget: QWidget, icon: str | None, text: str, tip: str, name: str = "transport",
            checkable: bool = False) -> QToolButton:
    b = QToolButton()
    b.setObjectName(name)
    if icon is not None:
        b.setIcon(glyph_icon(icon))
        b.setIconSize(QSize(16, 16))
    else:
        b.setText(text)
    b.setToolTip(tip)
    b.setCheckable(checkable)
    b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    return b


class TransportBar(QFrame):
    play_clicked = Signal()
    stop_clicked = Signal()
    rewind_clicked = Signal()
    seek_requested = Signal(float)
    set_a_clicked = Signal()
    set_b_clicked = Signal()
    loop_toggled = Signal(bool)
    preset_chosen = Signal(str)

    #: Below this width the loop and mix controls move to a second row, so that the seek bar
    #: keeps a usable width and nothing is clipped (the window's minimum is 640 px).
    ONE_ROW_MIN_WIDTH = 1100
    SEEK_MIN_WIDTH = 160

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("transportBar")
        self.duration = 0.0
        self._presets: list[Preset] = []
        outer = QVBoxLayout(self)
        outer.setContentsMargins(10, 6, 10, 6)
        outer.setSpacing(4)
        self.row1 = QHBoxLayout()
        self.row1.setSpacing(8)
        self.row2 = QHBoxLayout()
        self.row2.setSpacing(8)
        outer.addLayout(self.row1)
        outer.addLayout(self.row2)
        self.practice = PracticeBar()  # tempo, key, beats, metronome, count-in, trainer, markers
        outer.addWidget(self.practice)
        layout = self.row1
        self.rewind_button = _button(self, "rewind", "", "Back to start (Home)")
        self.play_button = _button(self, "play", "", "Play / pause (Space)", name="play")
        self.play_button.setIconSize(QSize(22, 22))
        self.stop_button = _button(self, "stop", "", "Stop")
        self._icons = {k: glyph_icon(k) for k in ("play", "pause")}
        self._playing = False
        for b in (self.rewind_button, self.play_button, self.stop_button):
            layout.addWidget(b)
        self.time_label = QLabel("0:00.0 / 0:00.0")
        self.time_label.setObjectName("time")
        self.time_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.time_label)
        self.seek = QSlider(Qt.Orientation.Horizontal)
        self.seek.setObjectName("seek")
        self.seek.setRange(0, SEEK_STEPS)
        self.seek.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.seek.setToolTip("Position (click or drag to seek)")
        self.seek.setMinimumWidth(self.SEEK_MIN_WIDTH)
        layout.addWidget(self.seek, 1)

        self.tools = QWidget()  # loop and mix controls: on row 1 when wide, else on row 2
        tools = QHBoxLayout(self.tools)
        tools.setContentsMargins(0, 0, 0, 0)
        tools.setSpacing(8)
        self.a_button = _button(self, None, "A", "Set loop start at the playhead ([)")
        self.b_button = _button(self, None, "B", "Set loop end at the playhead (])")
        self.loop_button = _button(self, None, "Loop", "Loop A–B (L)", checkable=True)
        self.loop_label = QLabel("no loop")
        self.loop_label.setObjectName("dim")
        self.loop_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        for w in (self.a_button, self.b_button, self.loop_button, self.loop_label):
            tools.addWidget(w)
        tools.addStretch(1)
        mix = QLabel("Mix:")
        mix.setObjectName("dim")
        tools.addWidget(mix)
        self.presets = QComboBox()
        self.presets.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.presets.setToolTip("Mix presets (K: karaoke, 0: full mix); Custom once a fader, pan, mute or solo "
                                "differs from every preset")
        self.presets.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.presets.setMinimumWidth(150)
        tools.addWidget(self.presets)
        self.row2.addWidget(self.tools, 1)
        self._one_row = False
        self._fit_texts()

        self.rewind_button.clicked.connect(self.rewind_clicked)
        self.play_button.clicked.connect(self.play_clicked)
        self.stop_button.clicked.connect(self.stop_clicked)
        self.a_button.clicked.connect(self.set_a_clicked)
        self.b_button.clicked.connect(self.set_b_clicked)
        self.loop_button.toggled.connect(self.loop_toggled)
        self.seek.sliderReleased.connect(self._seek_released)
        self.seek.actionTriggered.connect(self._seek_action)
        self.presets.activated.connect(self._preset_activated)

    def _fit_texts(self) -> None:
        """Fixed widths from the font: the longest texts these labels show fit, and never shift the bar."""
        for label, longest, pad in ((self.time_label, "00:00.0 / 00:00.0", 20),
                                    (self.loop_label, "00:00.0 – 00:00.0", 8)):
            label.ensurePolished()  # the style sheet sets their fonts and padding
            text = label.text()
            label.setText(longest)
            width = max(label.fontMetrics().horizontalAdvance(longest) + pad, label.sizeHint().width())
            label.setText(text)
            label.setFixedWidth(width)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._fit_texts()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._arrange(event.size().width())

    def _arrange(self, width: int) -> None:
        one_row = width >= self.ONE_ROW_MIN_WIDTH
        if one_row == self._one_row:
            return
        self._one_row = one_row
        (self.row2 if one_row else self.row1).removeWidget(self.tools)
        if one_row:  # beside the seek bar: no wider than its contents, the seek bar takes the rest
            self.tools.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Preferred)
            self.row1.addWidget(self.tools)
        else:
            self.tools.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
            self.row2.addWidget(self.tools, 1)

    @property
    def one_row(self) -> bool:
        return self._one_row

    # user -> signals
    def _seek_released(self) -> None:
        self.seek_requested.emit(self.seek.value() / SEEK_STEPS * self.duration)

    def _seek_action(self, action: int) -> None:
        if not self.seek.isSliderDown():  # page steps from clicks on the groove
            self.seek_requested.emit(self.seek.sliderPosition() / SEEK_STEPS * self.duration)

    def _preset_activated(self, index: int) -> None:
        key = self.presets.itemData(index)
        if key:
            self.preset_chosen.emit(key)

    # display
    def set_duration(self, seconds: float) -> None:
        self.duration = seconds
        self.show_position(0.0)

    def show_position(self, seconds: float) -> None:
        self.time_label.setText(f"{format_time(seconds, True)} / {format_time(self.duration, True)}")
        if not self.seek.isSliderDown() and self.duration > 0:
            self.seek.blockSignals(True)
            self.seek.setValue(int(round(seconds / self.duration * SEEK_STEPS)))
            self.seek.blockSignals(False)

    def show_playing(self, playing: bool) -> None:
        if playing != self._playing:
            self._playing = playing
            self.play_button.setIcon(self._icons["pause" if playing else "play"])

    def show_loop(self, a: float | None, b: float | None, enabled: bool) -> None:
        self.loop_button.blockSignals(True)
        self.loop_button.setChecked(enabled)
        self.loop_button.blockSignals(False)
        if a is None and b is None:
            self.loop_label.setText("no loop")  # the place stays taken: the seek bar never jumps
        else:
            fa = format_time(a, True) if a is not None else "–"
            fb = format_time(b, True) if b is not None else "–"
            self.loop_label.setText(f"{fa} – {fb}")

    def set_presets(self, presets: list[Preset]) -> None:
        self._presets = presets
        self.presets.blockSignals(True)
        self.presets.clear()
        for p in presets:
            self.presets.addItem(p.label, p.key)
        self.presets.addItem("Custom", "")
        self.presets.blockSignals(False)

    def show_preset(self, key: str | None) -> None:
        self.presets.blockSignals(True)
        index = self.presets.findData(key or "")
        self.presets.setCurrentIndex(max(index, 0) if key else self.presets.count() - 1)
        self.presets.blockSignals(False)

    def set_playback_available(self, available: bool, reason: str | None) -> None:
        for b in (self.play_button, self.stop_button):
            b.setEnabled(available)
        self.play_button.setToolTip("Play / pause (Space)" if available else f"Playback unavailable: {reason}")
