"""The lyrics editor: paste or open plain lyrics, Sync them to the song (the aligner in a worker,
with progress and cancel), fix the timing (tap-along, drag word starts on a timeline, nudge,
undo/redo, re-sync from a line onwards) and save enhanced ``.lrc``. Also UltraStar import/export
for the window.

Widgets only draw and forward input; the document is :class:`~..lyrics.timing.TimingDoc`
(Qt-free), the aligner :mod:`~..lyrics.align`, the chart :mod:`~..lyrics.chart`.
:class:`LyricsEditorController` gets the narrow things it needs from the window (see
:class:`EditorHost`), never the window itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QKeySequence, QPainter, QPen, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..lyrics.align import Alignment, align_text, from_lyrics, realign_from, vocal_features
from ..lyrics.text import parse_plain
from ..lyrics.timing import (
    NUDGE_S,
    Cursor,
    TimingDoc,
    data_lrc_path,
    default_lrc_path,
    needs_confirmation,
    save_lrc,
    save_target,
)
from . import theme

GRAB_PX = 6
TAP_KEY = Qt.Key.Key_T


@dataclass
class EditorHost:
    """What the editor needs from the window."""

    song: Callable[[], object]                      # the open SongResult (path, stems, sample_rate, content_hash)
    session: Callable[[], object]                   # the open Session
    position: Callable[[], float]                   # the player's song position (any tempo)
    melody: Callable[[], object]                    # the melody Contour, or None
    show_lyrics: Callable[[object], None]           # Lyrics -> the lyrics pane
    open_lyrics_file: Callable[[Path], bool]        # show a saved file in the pane (remembers it)
    start_task: Callable[..., object]
    notify: Callable[[str, str, int], None]
    data_dir: Callable[[], Path]
    ask_replace: Callable[[Path], str | None] | None = None  # "replace" | "data" | None (cancel)


class TimingTimeline(QWidget):
    """Lines as bands and words as boxes over a time window; the playhead; drag a word's left
    edge to move its start. Emits ``edited`` after a drag, ``selected`` on a click."""

    edited = Signal()
    selected = Signal(object)   # Cursor

    def __init__(self, doc: TimingDoc, parent: QWidget | None = None):
        super().__init__(parent)
        self.doc = doc
        self.view_start = 0.0
        self.span = 12.0
        self.playhead = 0.0
        self.selection: Cursor | None = None
        self._drag: Cursor | None = None
        self.setMinimumHeight(140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(True)

    # coordinates
    def x_of(self, t: float) -> float:
        return (t - self.view_start) / self.span * max(1, self.width())

    def t_of(self, x: float) -> float:
        return self.view_start + x / max(1, self.width()) * self.span

    def follow(self, t: float) -> None:
        self.playhead = t
        if not self.view_start <= t <= self.view_start + self.span * 0.85:
            self.view_start = max(0.0, t - self.span * 0.25)
        self.update()

    def word_rect(self, c: Cursor) -> QRectF:
        w = self.doc.word(c)
        top = 30 + (c.line % 2) * 40
        return QRectF(self.x_of(w.start), top, max(3.0, self.x_of(w.end) - self.x_of(w.start)), 34)

    def edge_at(self, x: float) -> Cursor | None:
        best, dist = None, GRAB_PX + 1
        for c in self.doc.flat():
            d = abs(self.x_of(self.doc.word(c).start) - x)
            if d < dist:
                best, dist = c, d
        return best

    def word_at(self, pos: QPointF) -> Cursor | None:
        for c in self.doc.flat():
            if self.word_rect(c).contains(pos):
                return c
        return None

    def mousePressEvent(self, event) -> None:
        pos = event.position()
        self._drag = self.edge_at(pos.x())
        hit = self._drag or self.word_at(pos)
        if hit is not None:
            self.selection = hit
            self.selected.emit(hit)
        self.update()

    def mouseMoveEvent(self, event) -> None:
        if self._drag is None:
            self.setCursor(Qt.CursorShape.SizeHorCursor if self.edge_at(event.position().x()) else
                           Qt.CursorShape.ArrowCursor)
            return
        self._drag_to = self.t_of(event.position().x())
        self.update()

    def mouseReleaseEvent(self, event) -> None:
        if self._drag is not None:
            t = self.t_of(event.position().x())
            if abs(t - self.doc.word(self._drag).start) > 1e-3:
                self.doc.set_word_start(self._drag, t)
                self.edited.emit()
        self._drag = None
        self.update()

    def wheelEvent(self, event) -> None:
        self.view_start = max(0.0, self.view_start - event.angleDelta().y() / 120.0 * self.span * 0.1)
        self.update()

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor(theme.PLOT_BG))
        dim = QColor(theme.TEXT_DIM)
        p.setPen(dim)
        small = QFont(self.font())
        small.setPointSizeF(max(7.0, small.pointSizeF() * 0.85))
        p.setFont(small)
        # ruler: a tick per second
        first = int(self.view_start)
        every = 1 if self.span <= 15 else 5
        for s in range(first, int(self.view_start + self.span) + 2):
            x = self.x_of(s)
            p.drawLine(QPointF(x, 0), QPointF(x, 6 if s % every else 12))
            if s % every == 0:
                p.drawText(QPointF(x + 2, 20), f"{s // 60}:{s % 60:02d}")
        fm = QFontMetricsF(small)
        colour = QColor(theme.STEM_COLOURS["vocals"])
        for li, line in enumerate(self.doc.lines):
            if not line.words or line.end < self.view_start or line.start > self.view_start + self.span:
                continue
            for wi in range(len(line.words)):
                c = Cursor(li, wi)
                r = self.word_rect(c)
                fill = QColor(colour)
                fill.setAlpha(200 if c == self.selection else 90 if li % 2 == 0 else 60)
                p.fillRect(r, fill)
                p.setPen(QPen(colour.lighter(140), 2 if wi == 0 else 1))
                p.drawLine(r.topLeft(), r.bottomLeft())
                p.setPen(QColor(theme.TEXT))
                text = fm.elidedText(line.words[wi].text, Qt.TextElideMode.ElideRight, max(0.0, r.width() - 4))
                p.drawText(r.adjusted(3, 0, 0, 0), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)
        if self._drag is not None and hasattr(self, "_drag_to"):
            p.setPen(QPen(QColor("#ffd166"), 1, Qt.PenStyle.DashLine))
            x = self.x_of(self._drag_to)
            p.drawLine(QPointF(x, 24), QPointF(x, self.height()))
        tap = self.doc.tap_cursor
        if tap.line < len(self.doc.lines):
            p.setPen(dim)
            p.drawText(QPointF(4, self.height() - 4), f"next tap: line {tap.line + 1}"
                       + (f", word {tap.word + 1}" if self.doc.tap_words else ""))
        p.setPen(QPen(QColor("#ffffff"), 1.5))
        x = self.x_of(self.playhead)
        p.drawLine(QPointF(x, 0), QPointF(x, self.height()))


class LyricsEditor(QDialog):
    """The editor window (not modal: the song keeps playing and the practice tools apply)."""

    def __init__(self, controller: LyricsEditorController, parent: QWidget | None = None):
        super().__init__(parent)
        self.ctl = controller
        self.setWindowTitle("Lyrics Editor")
        self.setModal(False)
        self.resize(860, 560)
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        self.open_button = QPushButton("Open Text…")
        self.sync_button = QPushButton("Sync")
        self.sync_button.setToolTip("Time every word against the song's vocals")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setVisible(False)
        self.status = QLabel("Paste the lyrics: one sung line per line, a blank line between verses.")
        self.status.setObjectName("dim")
        for wdg in (self.open_button, self.sync_button, self.cancel_button, self.progress):
            top.addWidget(wdg)
        top.addStretch(1)
        lay.addLayout(top)
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText("Paste plain lyrics here…")
        self.text.setMinimumHeight(120)
        lay.addWidget(self.text, 1)
        tools = QHBoxLayout()
        self.tap_lines = self._tool("Tap Lines", "Press T at each line start while the song plays", True)
        self.tap_words = self._tool("Tap Words", "Press T at each word start while the song plays", True)
        self.undo_button = self._tool("Undo", "Undo (Ctrl+Z)")
        self.redo_button = self._tool("Redo", "Redo (Ctrl+Shift+Z)")
        self.earlier = self._tool(f"−{NUDGE_S * 1000:.0f} ms", "Selected word earlier (Alt+Left)")
        self.later = self._tool(f"+{NUDGE_S * 1000:.0f} ms", "Selected word later (Alt+Right)")
        self.resync = self._tool("Re-sync From Here", "Keep the lines before the selected one, align the rest "
                                                      "again from its start")
        self.save_button = QPushButton("Save")
        self.save_as_button = QPushButton("Save As…")
        for wdg in (self.tap_lines, self.tap_words, self.undo_button, self.redo_button, self.earlier, self.later,
                    self.resync):
            tools.addWidget(wdg)
        tools.addStretch(1)
        tools.addWidget(self.save_button)
        tools.addWidget(self.save_as_button)
        lay.addLayout(tools)
        self.timeline = TimingTimeline(controller.doc)
        lay.addWidget(self.timeline)
        self.open_button.clicked.connect(controller.choose_text)
        self.sync_button.clicked.connect(controller.sync)
        self.cancel_button.clicked.connect(controller.cancel)
        self.tap_lines.toggled.connect(lambda on: controller.set_tapping(on, words=False))
        self.tap_words.toggled.connect(lambda on: controller.set_tapping(on, words=True))
        self.undo_button.clicked.connect(controller.undo)
        self.redo_button.clicked.connect(controller.redo)
        self.earlier.clicked.connect(lambda: controller.nudge(-NUDGE_S))
        self.later.clicked.connect(lambda: controller.nudge(NUDGE_S))
        self.resync.clicked.connect(controller.resync_from_selection)
        self.save_button.clicked.connect(lambda: controller.save())
        self.save_as_button.clicked.connect(controller.save_as)
        self.timeline.edited.connect(controller.after_edit)
        self.timeline.selected.connect(controller.select)
        QShortcut(QKeySequence.StandardKey.Undo, self, controller.undo)
        QShortcut(QKeySequence("Ctrl+Shift+Z"), self, controller.redo)
        QShortcut(QKeySequence("Alt+Left"), self, lambda: controller.nudge(-NUDGE_S))
        QShortcut(QKeySequence("Alt+Right"), self, lambda: controller.nudge(NUDGE_S))

    def _tool(self, text: str, tip: str, checkable: bool = False) -> QToolButton:
        b = QToolButton()
        b.setText(text)
        b.setToolTip(tip)
        b.setCheckable(checkable)
        b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        return b

    def keyPressEvent(self, event) -> None:
        # while tapping, T taps (the text box is read-only then, so T never types into the lyrics)
        if event.key() == TAP_KEY and self.ctl.tapping and not event.isAutoRepeat():
            self.ctl.tap()
            return
        super().keyPressEvent(event)

    def refresh(self) -> None:
        doc = self.ctl.doc
        has = bool(doc.lines)
        for wdg in (self.tap_lines, self.tap_words, self.earlier, self.later, self.resync, self.save_button,
                    self.save_as_button):
            wdg.setEnabled(has and not self.ctl.running)
        self.undo_button.setEnabled(doc.can_undo())
        self.redo_button.setEnabled(doc.can_redo())
        self.sync_button.setEnabled(not self.ctl.running)
        self.cancel_button.setVisible(self.ctl.running)
        self.progress.setVisible(self.ctl.running)
        self.timeline.update()


class LyricsEditorController(QObject):
    """Sync / edit / save for the open song (see the module docstring)."""

    synced = Signal()
    saved = Signal(str)

    def __init__(self, host: EditorHost, parent: QObject | None = None):
        super().__init__(parent)
        self.host = host
        self.doc = TimingDoc()
        self.dialog: LyricsEditor | None = None
        self.task = None
        self.tapping = False
        self._song_key = None

    @property
    def running(self) -> bool:
        return self.task is not None

    # the dialog ----------------------------------------------------------------------------------
    def show(self, parent: QWidget | None = None, current=None) -> LyricsEditor:
        """Open the editor for the open song; ``current``: its lyrics now in the pane (synced lyrics
        are loaded for editing, plain ones into the text box)."""
        song = self.host.song()
        key = getattr(song, "content_hash", None)
        if self.dialog is None:
            self.dialog = LyricsEditor(self, parent)
        if key != self._song_key:
            self._song_key = key
            self.doc = TimingDoc()
            self.dialog.timeline.doc = self.doc
            self.dialog.text.setPlainText("")
            if current is not None and not current.empty:
                if current.synced:
                    self.doc = TimingDoc(from_lyrics(current))
                    self.dialog.timeline.doc = self.doc
                self.dialog.text.setPlainText(current.text())
        self.dialog.refresh()
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    def _status(self, text: str) -> None:
        if self.dialog is not None:
            self.dialog.status.setText(text)

    def choose_text(self) -> None:
        song = self.host.song()
        start = str(song.path.parent) if song is not None else ""
        path, _ = QFileDialog.getOpenFileName(self.dialog, "Open lyrics text", start, "Text (*.txt *.lrc);;All (*)")
        if path:
            self.open_text(path)

    def open_text(self, path: str | Path) -> None:
        from ..commands.align import read_lyrics_text

        self.dialog.text.setPlainText(read_lyrics_text(Path(path)))

    # sync --------------------------------------------------------------------------------------
    def _features(self, cancel):
        song = self.host.song()
        vocals = song.stems.get("vocals")
        return vocal_features(vocals, song.sample_rate, self.host.melody())

    def sync(self) -> None:
        song = self.host.song()
        text = self.dialog.text.toPlainText() if self.dialog else ""
        if song is None or "vocals" not in getattr(song, "stems", {}):
            self.host.notify("Open a song first: the lyrics are timed against its vocals.", "info", 5000)
            return
        if not parse_plain(text):
            self._status("Nothing to sync: paste the lyrics first.")
            return
        if self.task is not None:
            return

        def job(report, cancel):
            report("features", 0.0)
            features = self._features(cancel)
            return align_text(text, features, None, "hmm", cancel, lambda f: report("align", f))

        self._run(job, "Syncing…")

    def resync_from_selection(self) -> None:
        sel = self.dialog.timeline.selection if self.dialog else None
        if sel is None or not self.doc.lines or self.task is not None:
            self._status("Select a word on the timeline: its line and the rest are synced again from there.")
            return
        alignment = self.doc.alignment
        line = sel.line
        start = alignment.lines[line].start

        def job(report, cancel):
            return realign_from(alignment, line, start, self._features(cancel), cancel, lambda f: report("align", f))

        self._run(job, f"Syncing from line {line + 1}…")

    def _run(self, job, message: str) -> None:
        self._status(message)
        self.task = self.host.start_task(job, "lyrics-sync", on_progress=self._progress, on_done=self._done,
                                         on_error=self._failed, on_cancel=self._cancelled)
        if self.dialog:
            self.dialog.progress.setValue(0)
            self.dialog.refresh()

    def _progress(self, stage: str, fraction: float) -> None:
        if self.dialog is not None:
            self.dialog.progress.setValue(int(100 * (0.1 + 0.9 * fraction if stage == "align" else 0.05)))

    def _done(self, alignment: Alignment) -> None:
        self.task = None
        self.doc.replace(alignment)
        self._publish()
        n = len(alignment.words())
        self._status(f"Synced {n} words in {len(alignment.lines)} lines ({alignment.language}). "
                     "Check it while the song plays; fix with tap, drag or nudge; then Save.")
        self.synced.emit()

    def _failed(self, message: str) -> None:
        self.task = None
        self._status(f"Sync failed: {message}")
        self.host.notify(f"Lyrics sync: {message}", "warning", 8000)
        if self.dialog:
            self.dialog.refresh()

    def _cancelled(self) -> None:
        self.task = None
        self._status("Sync cancelled.")
        if self.dialog:
            self.dialog.refresh()

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    # edits ---------------------------------------------------------------------------------------
    def _publish(self) -> None:
        """The lyrics pane follows the edited timing at once."""
        self.host.show_lyrics(self.doc.alignment.to_lyrics(source="lyrics editor (not saved)"))
        if self.dialog is not None:
            self.dialog.refresh()

    def after_edit(self) -> None:
        self._publish()

    def select(self, cursor: Cursor) -> None:
        if self.tapping and not self.doc.tap_words:
            cursor = Cursor(cursor.line, 0)
        self.doc.tap_cursor = cursor if self.tapping else self.doc.tap_cursor

    def set_tapping(self, on: bool, words: bool) -> None:
        self.tapping = on
        if self.dialog is not None:
            other = self.dialog.tap_lines if words else self.dialog.tap_words
            if on and other.isChecked():
                other.blockSignals(True)
                other.setChecked(False)
                other.blockSignals(False)
        if on:
            sel = self.dialog.timeline.selection if self.dialog else None
            at = Cursor(sel.line, sel.word if words else 0) if sel is not None else Cursor(0, 0)
            self.doc.start_tapping(at, words)
        if self.dialog is not None:
            self.dialog.text.setReadOnly(on)
            if on:
                self.dialog.setFocus()
            self.dialog.timeline.update()

    def tap(self, t: float | None = None) -> Cursor | None:
        """A tap at the player's song position (or ``t``): the next line/word starts there."""
        if not self.tapping or not self.doc.lines:
            return None
        done = self.doc.tap(self.host.position() if t is None else t)
        if done is not None:
            self._publish()
        return done

    def nudge(self, dt: float) -> None:
        sel = self.dialog.timeline.selection if self.dialog else None
        if sel is None:
            return
        self.doc.nudge(sel, dt)
        self._publish()

    def undo(self) -> None:
        if self.doc.undo():
            self._publish()

    def redo(self) -> None:
        if self.doc.redo():
            self._publish()

    def tick(self, position: float) -> None:
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.timeline.follow(position)

    # saving --------------------------------------------------------------------------------------
    def _ask_replace(self, target: Path) -> str | None:
        if self.host.ask_replace is not None:
            return self.host.ask_replace(target)
        box = QMessageBox(self.dialog)
        box.setWindowTitle("Replace lyrics file?")
        box.setText(f"{target.name} already exists beside the song and was not written by this editor.")
        replace = box.addButton("Replace", QMessageBox.ButtonRole.DestructiveRole)
        data = box.addButton("Save in App Data", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return "replace" if box.clickedButton() is replace else "data" if box.clickedButton() is data else None

    def save(self, target: str | Path | None = None) -> Path | None:
        """Save as enhanced LRC: to the file the editor wrote before for this song, else beside the
        song (asking before replacing a file the editor did not write: replace, or save in the app's
        data folder instead); remembered in the session."""
        song, session = self.host.song(), self.host.session()
        if song is None or not self.doc.lines:
            return None
        remembered = session.get("lyrics.path") if session is not None else None
        target = Path(target) if target else save_target(song.path, remembered)
        if needs_confirmation(target):
            answer = self._ask_replace(target)
            if answer is None:
                self._status("Not saved.")
                return None
            if answer == "data":
                target = data_lrc_path(self.host.data_dir(), song.content_hash or "song", song.path)
        elif not target.parent.is_dir() or not _writable(target.parent):
            target = data_lrc_path(self.host.data_dir(), song.content_hash or "song", song.path)
        try:
            save_lrc(self.doc.alignment, target)
        except OSError as exc:
            self.host.notify(f"{target}: could not save ({exc.strerror or exc})", "error", 0)
            return None
        self.doc.modified = False
        self.host.open_lyrics_file(target)
        self._status(f"Saved {target}")
        self.saved.emit(str(target))
        return target

    def save_as(self) -> None:
        song = self.host.song()
        if song is None:
            return
        path, _ = QFileDialog.getSaveFileName(self.dialog, "Save lyrics", str(default_lrc_path(song.path)),
                                              "Lyrics (*.lrc)", options=QFileDialog.Option.DontConfirmOverwrite)
        if path:
            self.save(path)


def _writable(folder: Path) -> bool:
    import os

    return os.access(folder, os.W_OK)


def make_lyrics_editor(window, lyrics_ctl, melody_ctl) -> LyricsEditorController:
    """The editor wired to the window's narrow parts."""
    from .. import paths

    host = EditorHost(
        song=lambda: window.song,
        session=lambda: window.session,
        position=lyrics_ctl.position,
        melody=lambda: melody_ctl.contour if getattr(melody_ctl.contour, "weights", None) is None else None,
        show_lyrics=lyrics_ctl.show_lyrics,
        open_lyrics_file=lyrics_ctl.open_file,
        start_task=window.start_task,
        notify=window.notify,
        data_dir=paths.data_dir,
    )
    return LyricsEditorController(host, window)
