"""The three faces of the window: empty (drop zone), separating (progress), song (lanes + transport)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..audio.io import AUDIO_EXTENSIONS
from .tracks import TrackView
from .transport import TransportBar

SUPPORTED_TEXT = " · ".join(e.lstrip(".").upper() for e in (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aac", ".mp4"))


class ElidedLabel(QLabel):
    """A one-line label that shrinks with "…" instead of pushing its neighbours out of the way."""

    def minimumSizeHint(self) -> QSize:
        return QSize(40, super().minimumSizeHint().height())

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setPen(self.palette().color(self.foregroundRole()))
        rect = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, rect.width())
        p.drawText(rect, int(self.alignment() | Qt.AlignmentFlag.AlignVCenter), text)
        p.end()


class EmptyPage(QWidget):
    open_clicked = Signal()
    recent_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(40, 30, 40, 30)
        self.zone = QFrame()
        self.zone.setObjectName("dropZone")
        self.zone.setMinimumSize(520, 320)
        zone = QVBoxLayout(self.zone)
        zone.setContentsMargins(40, 40, 40, 40)
        zone.setSpacing(12)
        zone.addStretch(2)
        self.hero = QLabel("Drop a song here")
        self.hero.setToolTip("One audio file at a time: " + ", ".join(sorted(AUDIO_EXTENSIONS)))
        self.hero.setObjectName("hero")
        self.hero.setAlignment(Qt.AlignmentFlag.AlignCenter)
        zone.addWidget(self.hero)
        sub = QLabel("It is split into vocals and accompaniment on this computer, then you can mute, "
                     "solo and remix the stems or export a karaoke track.")
        sub.setObjectName("dim")
        sub.setWordWrap(True)
        sub.setAlignment(Qt.AlignmentFlag.AlignCenter)
        zone.addWidget(sub)
        row = QHBoxLayout()
        row.addStretch(1)
        self.open_button = QPushButton("Open a song…")
        self.open_button.setObjectName("primary")
        self.open_button.setMinimumWidth(160)
        self.open_button.clicked.connect(self.open_clicked)
        row.addWidget(self.open_button)
        row.addStretch(1)
        zone.addSpacing(6)
        zone.addLayout(row)
        formats = QLabel(SUPPORTED_TEXT)
        formats.setObjectName("dim")
        formats.setAlignment(Qt.AlignmentFlag.AlignCenter)
        zone.addWidget(formats)
        self.playback_note = QLabel("")
        self.playback_note.setObjectName("warnBadge")
        self.playback_note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.playback_note.hide()
        note_row = QHBoxLayout()
        note_row.addStretch(1)
        note_row.addWidget(self.playback_note)
        note_row.addStretch(1)
        zone.addLayout(note_row)
        zone.addStretch(1)
        recent_box = QWidget()
        recent_box.setMaximumWidth(680)
        recent_lay = QVBoxLayout(recent_box)
        recent_lay.setContentsMargins(0, 0, 0, 0)
        self.recent_title = QLabel("Recent songs")
        self.recent_title.setObjectName("dim")
        recent_lay.addWidget(self.recent_title)
        self.recent = QListWidget()
        self.recent.setMaximumHeight(150)
        recent_lay.addWidget(self.recent)
        recent_row = QHBoxLayout()
        recent_row.addStretch(1)
        recent_row.addWidget(recent_box, 4)
        recent_row.addStretch(1)
        self.recent.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.recent.itemActivated.connect(lambda item: self.recent_chosen.emit(item.data(Qt.ItemDataRole.UserRole)))
        self.recent.itemClicked.connect(lambda item: self.recent_chosen.emit(item.data(Qt.ItemDataRole.UserRole)))
        zone.addLayout(recent_row)
        zone.addStretch(1)
        outer.addWidget(self.zone)

    def set_recent(self, files: list[str]) -> None:
        self.recent.clear()
        for f in files[:6]:
            item = QListWidgetItem(f"{Path(f).name}   ·   {Path(f).parent}")
            item.setData(Qt.ItemDataRole.UserRole, f)
            item.setToolTip(f)
            self.recent.addItem(item)
        self.recent.setVisible(bool(files))
        self.recent_title.setVisible(bool(files))

    def set_hover(self, hover: bool) -> None:
        self.zone.setProperty("hover", "true" if hover else "false")
        self.zone.style().unpolish(self.zone)
        self.zone.style().polish(self.zone)


    def show_playback_unavailable(self, reason: str | None) -> None:
        self.playback_note.setText(f"Playback unavailable: {reason}. You can still separate and export."
                                   if reason else "")
        self.playback_note.setVisible(bool(reason))


class ProgressPage(QWidget):
    cancel_clicked = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        row = QHBoxLayout()
        row.addStretch(1)
        card = QFrame()
        card.setObjectName("progressCard")
        card.setMinimumWidth(560)
        card.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        lay = QVBoxLayout(card)
        lay.setContentsMargins(28, 24, 28, 24)
        lay.setSpacing(10)
        self.title = QLabel("")
        self.title.setObjectName("title")
        lay.addWidget(self.title)
        self.stage = QLabel("")
        self.stage.setObjectName("dim")
        lay.addWidget(self.stage)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        lay.addWidget(self.bar)
        bottom = QHBoxLayout()
        self.eta = QLabel("")
        self.eta.setObjectName("dim")
        bottom.addWidget(self.eta, 1)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_clicked)
        bottom.addWidget(self.cancel_button)
        lay.addLayout(bottom)
        row.addWidget(card)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)

    def start(self, title: str) -> None:
        self.title.setText(title)
        self.stage.setText("Starting…")
        self.eta.setText("")
        self.bar.setValue(0)

    def show_progress(self, stage: str, fraction: float, eta: str) -> None:
        self.stage.setText(stage)
        self.bar.setValue(int(round(fraction * 1000)))
        self.eta.setText(eta)


class ModelButton(QToolButton):
    """The model's name in the song header; a click opens its card (About the model)."""

    MAX_WIDTH = 260

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("badge")
        self.setAutoRaise(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setMaximumWidth(self.MAX_WIDTH)
        self._full = ""

    def set_model(self, text: str, description: str = "") -> None:
        self._full = text
        metrics = self.fontMetrics()
        self.setText(metrics.elidedText(text, Qt.TextElideMode.ElideRight, self.MAX_WIDTH - 24))
        tip = f"{text}\n{description}\n\nClick for the model's card: what it is, its license and scores."
        self.setToolTip(tip.replace("\n\n\n", "\n\n"))

    def full_text(self) -> str:
        return self._full


class SongPage(QWidget):
    export_clicked = Signal()
    model_clicked = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 8, 10, 8)
        lay.setSpacing(8)
        header = QFrame()
        header.setObjectName("header")
        h = QHBoxLayout(header)
        h.setContentsMargins(14, 8, 10, 8)
        h.setSpacing(10)
        texts = QVBoxLayout()
        texts.setSpacing(2)
        self.title = ElidedLabel("")
        self.title.setObjectName("songTitle")
        self.info = ElidedLabel("")
        self.info.setObjectName("dim")
        texts.addWidget(self.title)
        texts.addWidget(self.info)
        h.addLayout(texts, 1)
        self.model_badge = ModelButton()
        self.model_badge.clicked.connect(self.model_clicked)
        h.addWidget(self.model_badge)
        self.playback_badge = QLabel("")
        self.playback_badge.setObjectName("warnBadge")
        self.playback_badge.setWordWrap(True)  # two short lines rather than squeezing the song's title
        self.playback_badge.setMaximumWidth(230)
        self.playback_badge.hide()
        h.addWidget(self.playback_badge)
        self.export_button = QPushButton("Export…")
        self.export_button.setObjectName("primary")
        self.export_button.setToolTip("Export stems, a karaoke track or the current mix (Ctrl+E)")
        self.export_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.export_button.clicked.connect(self.export_clicked)
        h.addWidget(self.export_button)
        lay.addWidget(header)
        self.tracks = TrackView()
        self.scroll = QScrollArea()  # lanes keep their minimum height; a small window scrolls them
        self.scroll.setObjectName("lanes")
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(self.tracks)
        lay.addWidget(self.scroll, 1)
        self.transport = TransportBar()
        lay.addWidget(self.transport)

    def show_model(self, text: str, description: str = "") -> None:
        self.model_badge.set_model(text, description)

    def show_playback_unavailable(self, reason: str | None) -> None:
        if reason:
            self.playback_badge.setText(f"Playback unavailable: {reason}")
            self.playback_badge.setToolTip("Separation and export still work. Connect an output device, "
                                           "or choose another one in Preferences.")
            self.playback_badge.show()
        else:
            self.playback_badge.hide()

