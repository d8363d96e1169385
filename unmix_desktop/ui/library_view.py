"""The library in the window: :class:`LibraryView` (search, sort, the list of separated songs) and
:class:`LibraryController`, which puts the queue and the library in one side panel (a dock:
the queue above, the library below), scans the index in a worker, opens an entry from the cache, reveals its file and
deletes an entry (its cache and session only, never the song).

The index is :class:`~unmix_desktop.library.index.LibraryIndex` (Qt-free).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, QUrl, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..audio.io import AUDIO_EXTENSIONS
from ..library.index import SORT_KEYS, LibraryEntry, LibraryIndex
from ..separation.pipeline import SongResult, order_stems
from . import jobs, theme
from .queue_view import QueueRunner, QueueView

if TYPE_CHECKING:
    from .main_window import MainWindow

COLUMNS = ("Title", "Artist", "Length", "File", "Model", "Stems", "Separated")


def format_date(t: float) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(t)) if t else ""


def _titled(title: str, widget: QWidget) -> QWidget:
    box = QWidget()
    lay = QVBoxLayout(box)
    lay.setContentsMargins(0, 4, 0, 0)
    lay.setSpacing(0)
    label = QLabel(title)
    label.setObjectName("sectionTitle")
    label.setStyleSheet("font-weight: 600; padding-left: 6px;")
    lay.addWidget(label)
    lay.addWidget(widget, 1)
    return box


class LibraryView(QWidget):
    """Search box, sort choice, the list, and Open / Reveal / Delete."""

    open_requested = Signal(object)      # LibraryEntry
    reveal_requested = Signal(object)
    delete_requested = Signal(object)
    refresh_requested = Signal()

    def __init__(self, index: LibraryIndex, parent: QWidget | None = None):
        super().__init__(parent)
        self.index = index
        self.shown: list[LibraryEntry] = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        head = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search title, artist, file, model…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.refresh)
        head.addWidget(self.search, 1)
        self.sort = QComboBox()
        for key in SORT_KEYS:
            self.sort.addItem(f"Sort: {key}", key)
        self.sort.currentIndexChanged.connect(self.refresh)
        head.addWidget(self.sort)
        lay.addLayout(head)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.itemDoubleClicked.connect(lambda *_: self._emit(self.open_requested))
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        for column, width in enumerate((132, 92, 54, 112, 50, 58, 84)):
            self.tree.setColumnWidth(column, width)
        lay.addWidget(self.tree, 1)
        self.status = QLabel("")
        self.status.setObjectName("dim")
        lay.addWidget(self.status)
        row = QHBoxLayout()
        self.open_button = QPushButton("Open")
        self.open_button.setObjectName("primary")
        self.reveal_button = QPushButton("Show File")
        self.delete_button = QPushButton("Delete Stems")
        self.delete_button.setToolTip("Delete the separated stems and saved mix of this song (the song file stays)")
        self.refresh_button = QPushButton("Refresh")
        for b, sig in ((self.open_button, self.open_requested), (self.reveal_button, self.reveal_requested),
                       (self.delete_button, self.delete_requested)):
            b.clicked.connect(lambda _=False, sig=sig: self._emit(sig))
            row.addWidget(b)
        row.addStretch(1)
        self.refresh_button.clicked.connect(self.refresh_requested)
        row.addWidget(self.refresh_button)
        lay.addLayout(row)
        self._update_buttons()

    def current(self) -> LibraryEntry | None:
        k = self.tree.indexOfTopLevelItem(self.tree.currentItem()) if self.tree.currentItem() else -1
        return self.shown[k] if 0 <= k < len(self.shown) else None

    def _emit(self, signal) -> None:
        entry = self.current()
        if entry is not None:
            signal.emit(entry)

    def _update_buttons(self) -> None:
        entry = self.current()
        for b in (self.open_button, self.reveal_button, self.delete_button):
            b.setEnabled(entry is not None)

    def refresh(self) -> None:
        """Show the index's entries that match the search, in the chosen order."""
        keep = self.current()
        self.shown = self.index.query(self.search.text(), self.sort.currentData() or "date")
        self.tree.clear()
        for e in self.shown:
            stems = ", ".join(theme.stem_label(n).lower() for n in e.stems)
            item = QTreeWidgetItem([e.title, e.artist, jobs.format_time(e.duration),
                                    "missing" if e.missing else e.source.name, e.model,
                                    f"{len(e.stems)} stems", format_date(e.date)])
            item.setToolTip(0, str(e.source))
            item.setToolTip(6, time.strftime("%Y-%m-%d %H:%M", time.localtime(e.date)) if e.date else "")
            item.setToolTip(5, stems)
            item.setToolTip(3, f"{e.source} (the file is no longer there; the stems still open)"
                            if e.missing else str(e.source))
            if e.missing:  # shown as such, not as an error: the stems still open
                for column in range(len(COLUMNS)):
                    item.setForeground(column, self.palette().placeholderText())
                font = item.font(3)
                font.setItalic(True)
                item.setFont(3, font)
            self.tree.addTopLevelItem(item)
            if keep is not None and e.keys == keep.keys:
                self.tree.setCurrentItem(item)
        total = len(self.index.entries)
        self.status.setText(f"{len(self.shown)} of {total} songs" if self.search.text().strip()
                            else f"{total} separated song{'s' if total != 1 else ''}")
        self._update_buttons()


#: The song page's width at the window's minimum (640 px): beside the Songs panel it needs this much.
PAGE_MIN_WIDTH = 620


class LibraryController(QObject):
    """The side panel (queue + library tabs) and what its buttons do."""

    scanned = Signal()
    opened = Signal(object)   # the SongResult shown

    def __init__(self, window: MainWindow, queue_path: str | Path | None):
        super().__init__(window)
        self.w = window
        self.index = LibraryIndex(window.stem_cache, window.sessions.root)
        self.runner = QueueRunner(window, queue_path)
        self.queue_view = QueueView(self.runner)
        self.view = LibraryView(self.index)
        self.splitter = QSplitter(Qt.Orientation.Vertical)  # the queue above, the library below
        self.splitter.addWidget(_titled("Queue", self.queue_view))
        self.splitter.addWidget(_titled("Library", self.view))
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        self.dock = QDockWidget("Songs", window)
        self.dock.setObjectName("libraryDock")
        self.dock.setWidget(self.splitter)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.dock.hide()
        # A window too narrow for the song page and the panel side by side gives the panel the whole
        # width while it is open (nothing squeezed under its minimum, nothing cut off).
        self.dock.visibilityChanged.connect(lambda _: self.fit())
        window.installEventFilter(self)
        self.scan_task = None
        self._dirty = True
        self.queue_view.add_clicked.connect(self.choose_queue_files)
        self.view.open_requested.connect(self.open_entry)
        self.view.reveal_requested.connect(self.reveal)
        self.view.delete_requested.connect(self.delete)
        self.view.refresh_requested.connect(self.rescan)
        self.runner.item_finished.connect(self._on_item_finished)
        for signal in (window.sep_ctl.done, window.sep_ctl.failed, window.sep_ctl.cancelled):
            signal.connect(lambda *_: QTimer.singleShot(0, self.runner.pump))
        window.sep_ctl.done.connect(lambda result: self.changed())  # a new song in the library
        self.dock.visibilityChanged.connect(lambda _: self._maybe_scan())
        if self.runner.queue.load_error:
            window.status_label.setText(self.runner.queue.load_error)

    # showing ---------------------------------------------------------------------------------
    def eventFilter(self, obj, event) -> bool:
        if obj is self.w and event.type() == QEvent.Type.Resize:
            self.fit()
        return False

    def fit(self) -> None:
        """The song page beside the panel when both fit their minimum widths, else the panel alone."""
        central = self.w.centralWidget()
        if central is None:
            return
        need = PAGE_MIN_WIDTH + self.dock.minimumSizeHint().width()
        central.setVisible(not self.dock.isVisible() or self.dock.isFloating() or self.w.width() >= need)

    def hide_panel(self) -> None:
        self.dock.hide()

    def show_queue(self) -> None:
        self.dock.show()
        self.dock.raise_()

    def show_library(self) -> None:
        self._dirty = True  # songs may have moved since the last look
        self.dock.show()
        self.dock.raise_()
        self._maybe_scan()  # (focus stays put: a focused search box would eat the one-key shortcuts)

    def toggle_library(self) -> None:
        """The menu/shortcut: show the library; hide the panel when the library is already in use."""
        focus = self.w.focusWidget()
        if self.dock.isVisible() and focus is not None and self.dock.isAncestorOf(focus):
            self.dock.hide()
        else:
            self.show_library()

    def _maybe_scan(self) -> None:
        if self._dirty and self.dock.isVisible():
            self.rescan()

    def rescan(self):
        """Read the cache's entries (and tags, hashes) in a worker; the view refreshes when done."""
        if self.scan_task is not None:
            self.scan_task.cancel()
        self._dirty = False
        index = self.index
        self.view.status.setText("Reading the library…")

        def done(entries) -> None:
            self.scan_task = None
            self.view.refresh()
            self.scanned.emit()

        def failed(message: str) -> None:
            self.scan_task = None
            self.view.status.setText(f"Could not read the library: {message}")

        self.scan_task = self.w.start_task(lambda report, cancel: index.scan(cancel), "library",
                                           on_done=done, on_error=failed)
        return self.scan_task

    def _on_item_finished(self, item_id: int, state: str) -> None:
        self.changed()

    def changed(self) -> None:
        """The cache changed (a song separated in the window or the queue, the cache cleared): read
        the library again now when it is shown, else when it is next shown."""
        self._dirty = True
        self._maybe_scan()

    # the queue -------------------------------------------------------------------------------
    def queue_paths(self, paths) -> bool:
        """Queue dropped/chosen files and folders; problems are shown like every other error."""
        added, problems = self.runner.add_paths(paths)
        if added:
            self.show_queue()
            self.w.status_label.setText(f"Added {len(added)} song{'s' if len(added) != 1 else ''} to the queue")
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            if added:
                self.w.notify(problems[0] + more, "warning")
            else:
                self.w.show_error("Nothing to queue", problems[0] + more)
        return bool(added)

    def choose_queue_files(self) -> QFileDialog:
        """File → Add to Queue…: a non-blocking file dialog (several files)."""
        recent = self.w.settings.recent_files
        start = str(Path(recent[0]).parent) if recent else str(Path.home())
        pattern = " ".join(f"*{e}" for e in sorted(AUDIO_EXTENSIONS))
        dialog = QFileDialog(self.w, "Add songs to the queue", start, f"Audio files ({pattern});;All files (*)")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFiles)
        dialog.filesSelected.connect(self.queue_paths)
        self.queue_dialog = dialog
        dialog.open()
        return dialog

    # library actions -------------------------------------------------------------------------
    def open_entry(self, entry: LibraryEntry):
        """Open from the cache (no separation; works when the song file is gone too)."""
        cache = self.w.stem_cache
        index = self.index

        def job(report, cancel):
            t0 = time.perf_counter()
            for key in entry.keys:
                cached = cache.get(key)
                if cached is not None and cached.mixture is not None:
                    break
            else:
                return None
            digest = entry.content_hash or (None if entry.missing else index._content_hash(entry.source, cancel))
            meta = cached.meta
            return SongResult(entry.source, cached.mixture, order_stems(cached.stems), entry.model,
                              meta.get("card", {}), True, time.perf_counter() - t0, 0.0, entry.settings,
                              four_stems=str(meta.get("variant", "")).startswith("4stems"),
                              content_hash=digest)

        def done(result) -> None:
            if result is None:  # damaged or evicted meanwhile
                self._dirty = True
                self._maybe_scan()
                if entry.missing:
                    self.w.show_error("Cannot open this song",
                                      f"{entry.source}: the stems are gone and the file is missing")
                else:
                    self.w.open_song(entry.source)
                return
            if not entry.missing:
                self.w.settings.add_recent(result.path)
            self.w.show_song(result)
            self.opened.emit(result)

        return self.w.start_task(job, "library-open", on_done=done,
                                 on_error=lambda msg: self.w.show_error("Cannot open this song", msg))

    def reveal_url(self, entry: LibraryEntry) -> QUrl:
        """The folder that holds the song (its cache folder when the song is missing)."""
        folder = entry.source.parent if not entry.missing else self.w.stem_cache.root / entry.key
        return QUrl.fromLocalFile(str(folder))

    def reveal(self, entry: LibraryEntry) -> QUrl:
        url = self.reveal_url(entry)
        self.w.open_url(url)
        return url

    def delete(self, entry: LibraryEntry, confirm: bool = True) -> list[Path]:
        if confirm:
            box = QMessageBox(QMessageBox.Icon.Question, "Delete stems",
                              f"Delete the separated stems and saved mix of “{entry.title}”?\n"
                              f"The song file itself is kept.",
                              QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self.w)
            self.confirm_box = box
            yes = QMessageBox.StandardButton.Yes
            box.buttonClicked.connect(lambda b: self.delete(entry, confirm=False)
                                      if box.standardButton(b) == yes else None)
            box.open()
            return []
        removed = self.index.delete(entry)
        self.view.refresh()
        self.w.status_label.setText(f"Deleted the stems of {entry.title} (the song file is kept)")
        return removed
