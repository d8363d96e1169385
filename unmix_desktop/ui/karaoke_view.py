"""The full-screen karaoke view for a second screen or a TV: the current line in big text
(highlighted word by word when the lyrics have word times), the next line below, countdown dots
before a line that follows a long pause, and the song's progress along the bottom.

A :class:`QDialog` so that Esc (and the same shortcut that opened it) closes it and the window's
dialogs logic applies; it only paints what :class:`.lyrics_view.LyricsController` hands it.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QKeySequence, QPainter, QShortcut
from PySide6.QtWidgets import QDialog, QWidget

from ..lyrics import FollowState, Lyrics
from . import theme
from .lyrics_view import DIM, line_text, paint_countdown, paint_sung_line

BACKGROUND = QColor("#07080b")


class KaraokeView(QDialog):
    closed = Signal()

    def __init__(self, title: str = "", duration: float = 0.0, toggle_key: str | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"{title} — karaoke" if title else "Karaoke")
        self.setModal(False)
        self.title = title
        self.duration = float(duration)
        self.lyrics: Lyrics | None = None
        self.state: FollowState | None = None
        self.position = 0.0
        self.score_text = ""
        self.chord_text = ""   # the chords now and next, above the lyric line (an option of the chord lane)
        if toggle_key:
            QShortcut(QKeySequence(toggle_key), self, activated=self.close)
        self.finished.connect(lambda _=0: self.closed.emit())

    def show_state(self, lyrics: Lyrics | None, state: FollowState | None, position: float) -> None:
        self.lyrics, self.state, self.position = lyrics, state, float(position)
        self.update()

    def current_text(self) -> str:
        if self.lyrics is None or self.state is None or self.state.line is None:
            return ""
        return line_text(self.lyrics.lines[self.state.line])

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        r = QRectF(self.rect())
        p.fillRect(r, BACKGROUND)
        w, h = r.width(), r.height()
        margin = w * 0.05
        big = QFont(self.font())
        big.setPixelSize(max(18, int(h * 0.085)))
        big.setWeight(QFont.Weight.Bold)
        small = QFont(self.font())
        small.setPixelSize(max(14, int(h * 0.055)))
        head = QFont(self.font())
        head.setPixelSize(max(12, int(h * 0.028)))
        p.setFont(head)
        p.setPen(DIM)
        p.drawText(QRectF(margin, h * 0.03, w - 2 * margin, h * 0.06),
                   Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, self.title)
        p.drawText(QRectF(margin, h * 0.03, w - 2 * margin, h * 0.06),
                   Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, self.score_text or "Esc to leave")
        cur_rect = QRectF(margin, h * 0.34, w - 2 * margin, h * 0.16)
        next_rect = QRectF(margin, h * 0.54, w - 2 * margin, h * 0.12)
        if self.chord_text:
            p.setFont(small)
            p.setPen(QColor(theme.STEM_COLOURS["accompaniment"]))
            p.drawText(QRectF(margin, h * 0.22, w - 2 * margin, h * 0.1), Qt.AlignmentFlag.AlignCenter, self.chord_text)
        lyrics, st = self.lyrics, self.state
        if lyrics is None or not lyrics.synced or st is None:
            p.setFont(small)
            p.setPen(DIM)
            p.drawText(cur_rect, Qt.AlignmentFlag.AlignCenter, "No synced lyrics for this song")
        else:
            if st.line is not None:
                paint_sung_line(p, cur_rect, lyrics.lines[st.line], st, big)
            elif st.countdown:
                paint_countdown(p, cur_rect.center().x(), cur_rect.center().y(), st.countdown, h * 0.018)
            elif st.next_line is None:
                p.setFont(big)
                p.setPen(DIM)
                p.drawText(cur_rect, Qt.AlignmentFlag.AlignCenter, "♪")
            if st.next_line is not None and st.next_line != st.line:
                paint_sung_line(p, next_rect, lyrics.lines[st.next_line], None, small, unsung=DIM)
        # progress through the song
        bar = QRectF(margin, h * 0.9, w - 2 * margin, max(4.0, h * 0.008))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(theme.BORDER))
        p.drawRoundedRect(bar, bar.height() / 2, bar.height() / 2)
        if self.duration > 0:
            done = QRectF(bar.left(), bar.top(), bar.width() * min(1.0, max(0.0, self.position / self.duration)),
                          bar.height())
            p.setBrush(QColor(theme.STEM_COLOURS["vocals"]))
            p.drawRoundedRect(done, bar.height() / 2, bar.height() / 2)
        p.setFont(head)
        p.setPen(DIM)
        m, s = divmod(int(self.position), 60)
        dm, ds = divmod(int(self.duration), 60)
        p.drawText(QRectF(margin, h * 0.92, w - 2 * margin, h * 0.05),
                   Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"{m}:{s:02d} / {dm}:{ds:02d}")
