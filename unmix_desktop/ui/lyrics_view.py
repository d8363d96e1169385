"""The lyrics pane: the line being sung (highlighted word by word when the file has word times),
the line before (dim) and the next line below, countdown dots before a line after a long pause.

:class:`LyricsController` finds the song's lyrics (an ``.lrc`` beside it or its tags, or the file
the user opened by hand, saved in the session as ``lyrics.path``), keeps the offset nudge in the
session (``lyrics.offset_ms``) and, on every display tick, asks the follower for the state at the
player's song position. Song time is what the player reports at any tempo, so seeks, loops and
tempo changes need nothing special. Problems in a lyrics file are reported once per load through
the window's notice strip; what parsed is shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QSizePolicy,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..lyrics import (
    FollowState,
    Line,
    Lyrics,
    LyricsFollower,
    LyricsSettings,
    load_lyrics_file,
    lyrics_for_song,
)
from . import theme

if TYPE_CHECKING:
    from .main_window import MainWindow

NUDGE_MS = 100
NO_LYRICS = "No lyrics for this song — File → Open Lyrics… to choose an .lrc file"
SUNG = QColor(theme.STEM_COLOURS["vocals"])
UNSUNG = QColor(theme.TEXT)
DIM = QColor(theme.TEXT_DIM)


def line_text(line: Line) -> str:
    return "".join(w.text for w in line.words).rstrip() if line.words else line.text


def sung_fraction_width(line: Line, state: FollowState, fm: QFontMetricsF) -> float:
    """Pixels of ``line`` already sung: up to the current word (plus its progress) with word times,
    else the whole line once it has started (a line-level highlight)."""
    text = line_text(line)
    if not line.words:
        return fm.horizontalAdvance(text)
    if state.word is None:
        return 0.0
    before = "".join(w.text for w in line.words[:state.word])
    word = line.words[state.word].text.rstrip()
    return fm.horizontalAdvance(before) + fm.horizontalAdvance(word) * state.word_progress


def fitted_font(base: QFont, text: str, width: float, min_pt: float = 9.0) -> QFont:
    """``base`` shrunk until ``text`` fits ``width`` pixels (not below ``min_pt``)."""
    font = QFont(base)
    size = font.pointSizeF()
    while size > min_pt and QFontMetricsF(font).horizontalAdvance(text) > width:
        size = max(min_pt, size * 0.92)
        font.setPointSizeF(size)
    return font


def paint_sung_line(p: QPainter, rect: QRectF, line: Line, state: FollowState | None, font: QFont,
                    sung: QColor = SUNG, unsung: QColor = UNSUNG) -> None:
    """Draw ``line`` centred in ``rect``: the sung part in ``sung``, the rest in ``unsung``."""
    text = line_text(line)
    font = fitted_font(font, text, rect.width())
    fm = QFontMetricsF(font)
    p.setFont(font)
    width = fm.horizontalAdvance(text)
    x = rect.left() + max(0.0, (rect.width() - width) / 2)
    y = rect.top() + (rect.height() + fm.ascent() - fm.descent()) / 2
    p.setPen(unsung)
    p.drawText(x, y, text)
    if state is not None:
        done = sung_fraction_width(line, state, fm)
        if done > 0:
            p.save()
            p.setClipRect(QRectF(x, rect.top(), done, rect.height()))
            p.setPen(sung)
            p.drawText(x, y, text)
            p.restore()


def paint_countdown(p: QPainter, centre_x: float, y: float, dots: int, radius: float, colour: QColor = SUNG) -> None:
    if dots <= 0:
        return
    gap = radius * 3.2
    x0 = centre_x - gap * (dots - 1) / 2
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(colour)
    for i in range(dots):
        p.drawEllipse(QRectF(x0 + i * gap - radius, y - radius, 2 * radius, 2 * radius))


#: Canvas height of the compact lyrics strip (windows too low for the full pane).
COMPACT_CANVAS_H = 44

class LyricsCanvas(QWidget):
    """Paints the previous, current and next line of synced lyrics (or a quiet note)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumHeight(96)
        self.lyrics: Lyrics | None = None
        self.state: FollowState | None = None
        self.note = NO_LYRICS
        self.compact = False  # a small window: the current line over the next, no previous line

    def set_compact(self, on: bool) -> None:
        self.compact = bool(on)
        self.setMinimumHeight(COMPACT_CANVAS_H if on else 96)
        self.update()

    def show_state(self, lyrics: Lyrics | None, state: FollowState | None) -> None:
        if lyrics is self.lyrics and state == self.state:
            return
        self.lyrics, self.state = lyrics, state
        self.update()

    # what is on screen (tests and the full-screen view use the same answers)
    def current_text(self) -> str:
        if self.lyrics is None or self.state is None or self.state.line is None:
            return ""
        return line_text(self.lyrics.lines[self.state.line])

    def next_text(self) -> str:
        if self.lyrics is None or self.state is None or self.state.next_line is None:
            return ""
        return line_text(self.lyrics.lines[self.state.next_line])

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        r = QRectF(self.rect()).adjusted(12, 4, -12, -4)
        base = QFont(self.font())
        if self.lyrics is None or not self.lyrics.synced or self.state is None:
            p.setPen(DIM)
            p.setFont(base)
            p.drawText(r, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.note)
            return
        lines, st = self.lyrics.lines, self.state
        h = r.height()
        big = QFont(base)
        big.setPointSizeF(max(base.pointSizeF() * 1.6, 13.0))
        big.setWeight(QFont.Weight.DemiBold)
        small = QFont(base)
        prev_rect = QRectF(r.left(), r.top(), r.width(), h * 0.22)
        cur_rect = QRectF(r.left(), r.top() + h * 0.22, r.width(), h * 0.46)
        next_rect = QRectF(r.left(), r.top() + h * 0.68, r.width(), h * 0.32)
        if self.compact:
            big.setPointSizeF(max(base.pointSizeF() * 1.25, 11.0))
            cur_rect = QRectF(r.left(), r.top(), r.width(), h * 0.6)
            next_rect = QRectF(r.left(), r.top() + h * 0.6, r.width(), h * 0.4)
        if st.line is not None:
            prev = next((lines[j] for j in range(st.line - 1, -1, -1) if lines[j].text), None)
            if prev is not None and not self.compact:
                paint_sung_line(p, prev_rect, prev, None, small, unsung=DIM)
            paint_sung_line(p, cur_rect, lines[st.line], st, big)
        elif st.countdown:
            paint_countdown(p, cur_rect.center().x(), cur_rect.center().y(), st.countdown, 5.0)
        elif st.next_line is None:
            p.setPen(DIM)
            p.setFont(small)
            p.drawText(cur_rect, Qt.AlignmentFlag.AlignCenter, "♪")
        if st.next_line is not None and (st.line is None or st.next_line != st.line):
            paint_sung_line(p, next_rect, lines[st.next_line], None, small, unsung=DIM)


class LyricsPane(QFrame):
    """The pane: a header (source, offset nudge) over the canvas; plain lyrics as scrollable text."""

    nudge_requested = Signal(int)   # milliseconds
    open_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("strip")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 4, 8, 4)
        lay.setSpacing(2)
        head = QHBoxLayout()
        head.setSpacing(4)
        self.title = QLabel("Lyrics")
        self.title.setObjectName("dim")
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # never widens the window
        head.addWidget(self.title, 1)
        self.offset_label = QLabel("")
        self.offset_label.setObjectName("dim")
        self.offset_label.setToolTip("Lyrics offset (saved with the song): positive = lyrics later")
        head.addWidget(self.offset_label)
        self.earlier = self._button("−0.1 s", "Show the lyrics 0.1 s earlier (Ctrl+Alt+Left)", -NUDGE_MS)
        self.later = self._button("+0.1 s", "Show the lyrics 0.1 s later (Ctrl+Alt+Right)", NUDGE_MS)
        head.addWidget(self.earlier)
        head.addWidget(self.later)
        self.open_button = QToolButton()
        self.open_button.setText("Open…")
        self.open_button.setToolTip("Open an .lrc lyrics file for this song")
        self.open_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.open_button.clicked.connect(self.open_requested)
        head.addWidget(self.open_button)
        lay.addLayout(head)
        self.stack = QStackedWidget()
        self.canvas = LyricsCanvas()
        self.plain = QPlainTextEdit()
        self.plain.setReadOnly(True)
        self.plain.setFrameShape(QFrame.Shape.NoFrame)
        self.stack.addWidget(self.canvas)
        self.stack.addWidget(self.plain)
        lay.addWidget(self.stack, 1)

    def set_compact(self, on: bool) -> None:
        """A small window: the lines alone (no header row); the nudge and Open stay in the menus."""
        for w in (self.title, self.offset_label, self.earlier, self.later, self.open_button):
            w.setVisible(not on)
        self.layout().setContentsMargins(8, 0 if on else 4, 8, 0 if on else 4)
        self.canvas.set_compact(on)

    def _button(self, text: str, tip: str, delta: int) -> QToolButton:
        b = QToolButton()
        b.setText(text)
        b.setToolTip(tip)
        b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        b.clicked.connect(lambda: self.nudge_requested.emit(delta))
        return b

    def set_lyrics(self, lyrics: Lyrics | None) -> None:
        synced = lyrics is not None and lyrics.synced
        for w in (self.earlier, self.later, self.offset_label):
            w.setEnabled(synced)
        if lyrics is None or lyrics.empty:
            self.title.setText("Lyrics")
            self.canvas.note = NO_LYRICS
            self.canvas.show_state(None, None)
            self.stack.setCurrentWidget(self.canvas)
        elif not synced:
            self.title.setText(f"Lyrics (not synced) · {Path(lyrics.source.split(' [')[0]).name}")
            self.plain.setPlainText(lyrics.plain)
            self.stack.setCurrentWidget(self.plain)
        else:
            how = " · word times" if lyrics.has_word_times else ""
            self.title.setText(f"Lyrics · {Path(lyrics.source.split(' [')[0]).name}"
                               f"{' ' + lyrics.source[lyrics.source.find(' ['):] if ' [' in lyrics.source else ''}"
                               f"{how}")
            self.canvas.show_state(lyrics, None)
            self.stack.setCurrentWidget(self.canvas)

    def set_offset(self, offset_ms: int) -> None:
        self.offset_label.setText(f"offset {offset_ms / 1000:+.1f} s")


class LyricsController(QObject):
    """Loads the song's lyrics, keeps the offset in the session, and drives the pane and the
    full-screen view from the player's song position."""

    changed = Signal()  # new lyrics loaded (or none)

    def __init__(self, window: MainWindow):
        super().__init__(window)
        self.w = window
        self.pane = LyricsPane()
        self.pane.nudge_requested.connect(self.nudge)
        self.pane.open_requested.connect(self.choose_file)
        self.lyrics: Lyrics | None = None
        self.follower: LyricsFollower | None = None
        self.state: FollowState | None = None
        self.reported: list[str] = []   # the notices given about lyrics problems (once per load)
        self.views: list = []           # other views fed on every tick (the full-screen view)
        self._session = None
        self._unobserve = None
        self._generation = 0
        self._song_path: Path | None = None
        self.loading = False

    # loading ---------------------------------------------------------------------------------
    def bind(self, session, song_path: Path) -> None:
        """The song's session; :meth:`load` then reads the lyrics from ``lyrics.path`` (chosen by
        hand) or finds them for ``song_path``."""
        if self._unobserve is not None:
            self._unobserve()
        self._session = session
        self._unobserve = session.observe(self._on_session)
        self._song_path = Path(song_path)
        self._generation += 1
        self.loading = True
        self._show(None, report=False)
        self.pane.canvas.note = "Looking for lyrics…"
        self.pane.canvas.update()

    def load(self) -> None:
        """Read the bound song's lyrics in a worker (the window starts it once the song is drawn)."""
        session, song_path = self._session, self._song_path
        if session is None or song_path is None:
            return
        chosen = session.get("lyrics.path")
        if chosen and not Path(chosen).is_file():
            chosen = None  # the chosen file went away: fall back to what is found for the song
        # Reading tags imports and runs mutagen (~0.4 s on the UI thread while separation threads
        # run): a worker does it, like every file read of the window.
        self._generation += 1
        generation = self._generation
        self.loading = True

        def done(lyrics: Lyrics | None) -> None:
            if generation == self._generation:
                self.loading = False
                self._show(lyrics)

        def failed(message: str) -> None:
            done(Lyrics(source=str(song_path), problems=[message]))

        self.w.start_task(lambda report, cancel: lyrics_for_song(song_path, chosen), "lyrics",
                          on_done=done, on_error=failed)

    def _show(self, lyrics: Lyrics | None, report: bool = True) -> None:
        if lyrics is not None and lyrics.empty and not lyrics.problems:
            lyrics = None
        self.lyrics = lyrics
        offset = int(self._session.get("lyrics.offset_ms")) if self._session is not None else 0
        self.follower = LyricsFollower(lyrics, LyricsSettings(offset)) if lyrics is not None and lyrics.synced else None
        self.state = None
        self.pane.set_lyrics(lyrics)
        self.pane.set_offset(offset)
        if report and lyrics is not None and lyrics.problems:
            self._report(lyrics)
        self.changed.emit()
        self.tick()

    def _report(self, lyrics: Lyrics) -> None:
        source = lyrics.source.split(" [")[0]
        problems = lyrics.problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        if lyrics.empty:
            text = f"{source}: no lyrics could be read: {problems[0]}{more}"
        else:
            shown = len(lyrics.lines) if lyrics.synced else "the"
            text = (f"{source}: {len(problems)} problem(s) in the lyrics, {shown} readable lines shown: "
                    f"{problems[0]}{more}")
        self.reported.append(text)
        self.w.notify(text, "warning", 0)

    def choose_file(self) -> None:
        w = self.w
        if w.song is None:
            w.notify("Open a song first, then its lyrics.", "info", 5000)
            return
        path, _ = QFileDialog.getOpenFileName(w, "Open lyrics", str(w.song.path.parent),
                                              "Lyrics (*.lrc *.LRC *.txt);;All files (*)")
        if path:
            self.open_file(path)

    def open_file(self, path: str | Path) -> bool:
        """Show the lyrics of ``path`` for the open song and remember the choice in the session."""
        lyrics = load_lyrics_file(path)
        self._generation += 1  # a search still running for the song's own lyrics is dropped
        self.loading = False
        if lyrics.empty:
            self.w.show_error("Cannot read these lyrics",
                              lyrics.problems[0] if lyrics.problems else f"{path}: no lyrics in this file")
            return False
        if self._session is not None:
            self._session.set("lyrics.path", str(Path(path).resolve()))
        self._show(lyrics)
        return True

    def show_lyrics(self, lyrics: Lyrics | None) -> None:
        """Show lyrics made in the window (the lyrics editor) at once; nothing is saved."""
        self._generation += 1
        self.loading = False
        self._show(lyrics, report=False)

    # offset ----------------------------------------------------------------------------------
    @property
    def offset_ms(self) -> int:
        return int(self._session.get("lyrics.offset_ms")) if self._session is not None else 0

    def nudge(self, delta_ms: int) -> None:
        if self._session is None or self.follower is None:
            return
        self._session.set("lyrics.offset_ms", self.offset_ms + int(delta_ms))
        self.w.status_label.setText(f"Lyrics offset {self.offset_ms / 1000:+.1f} s")

    def _on_session(self, control: str, value) -> None:
        if control in ("lyrics.offset_ms", "*") and self.follower is not None:
            self.follower.settings.offset_ms = self.offset_ms
            self.pane.set_offset(self.offset_ms)
            self.tick()

    # following -------------------------------------------------------------------------------
    def position(self) -> float:
        player = self.w.player
        return float(player.position) if self.w.song is not None and player is not None else 0.0

    def tick(self) -> None:
        t = self.position()
        self.state = self.follower.state(t) if self.follower is not None else None
        if self.lyrics is not None and self.lyrics.synced:
            self.pane.canvas.show_state(self.lyrics, self.state)
        for view in self.views:
            view.show_state(self.lyrics, self.state, t)

    def line_span(self, index: int) -> tuple[float, float]:
        """Song seconds of lyric line ``index`` with the offset applied."""
        line = self.lyrics.lines[index]
        off = self.offset_ms / 1000.0
        return line.start + off, line.end + off
