"""The batch queue in the window: :class:`QueueRunner` (separates the queued songs one after
another in a worker, beside whatever plays) and :class:`QueueView` (the list: per-item progress,
reorder by buttons or drag, remove, pause/resume, retry with the failure's one-line reason).

The list itself is :class:`~unmix_desktop.library.queue.BatchQueue` (Qt-free, saved as JSON).
The runner uses the window's song pipeline job (:func:`.jobs.run_separation`) on a
:class:`.worker.Task`; results go to the stem cache only (the stems are not kept in memory), so a
finished song then opens instantly from the library. The player is never touched: the song that
plays keeps playing.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..library.queue import BatchQueue, QueueItem, collect_audio_files
from ..separation.settings import SeparationSettings
from . import jobs
from .pages import ElidedLabel

if TYPE_CHECKING:
    from .main_window import MainWindow
    from .worker import Task

STATE_TEXT = {"pending": "waiting", "running": "separating…", "done": "done", "failed": "failed"}


class QueueRunner(QObject):
    """Runs the queue: one song at a time, the next one when it ends (a failure never stops it)."""

    changed = Signal()
    item_finished = Signal(int, str)   # item id, "done" | "failed"
    drained = Signal()                 # nothing left to run

    def __init__(self, window: MainWindow, path: str | Path | None):
        super().__init__(window)
        self.w = window
        self.queue = BatchQueue(path, on_change=self.changed.emit)
        self.task: Task | None = None
        self.item: QueueItem | None = None

    # editing ---------------------------------------------------------------------------------
    def add_paths(self, paths: Iterable[str | Path]) -> tuple[list[QueueItem], list[str]]:
        """Expand files/folders (recursive, audio only, stable order), queue them, start."""
        files, problems = collect_audio_files(paths)
        added = self.queue.add(files)
        self.pump()
        return added, problems

    def remove(self, item_id: int) -> None:
        if self.item is not None and self.item.id == item_id:
            self._cancel_running()
        self.queue.remove(item_id)
        self.pump()

    def retry(self, item_id: int) -> None:
        if self.queue.retry(item_id):
            self.pump()

    def set_paused(self, paused: bool) -> None:
        """Pausing stops the running song at once (it waits again, first in line)."""
        self.queue.set_paused(paused)
        if paused:
            item = self.item
            self._cancel_running()
            if item is not None and item in self.queue.items:
                self.queue.mark_pending(item)
        else:
            self.pump()

    def _cancel_running(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.task = self.item = None

    # running ---------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.task is not None

    def pump(self) -> None:
        """Start the next pending song when nothing runs."""
        if self.task is not None:
            return
        if getattr(self.w, "closed", False):  # the window closed: the rest waits for the next start
            return
        if self.w.sep_ctl.running:  # the song the listener asked for comes first; pumped again after it
            return
        item = self.queue.next_pending()
        if item is None:
            if not self.queue.paused:
                self.drained.emit()
            return
        model = self.w.models.current()
        if model is None:
            self.queue.mark_failed(item, "no separation model is installed")
            QTimer.singleShot(0, self.pump)
            return
        w = self.w
        four = w.settings.four_stems and jobs.four_stems_available()
        request = jobs.SeparationRequest(Path(item.path), model, w.separation_settings(), four, True,
                                         four_stem_model=w.settings.four_stem_model if four else None)
        provider, cache = w.model_provider, w.stem_cache
        self.item = item
        self.queue.mark_running(item)

        best = w.upgrade_ctl.best()  # "best quality" chosen: its stems go into the cache too (upgrade_controller)
        best_request = jobs.SeparationRequest(Path(item.path), best, SeparationSettings()) if best != model else None

        def job(report, cancel):
            jobs.run_separation(request, provider, cache, report, cancel)
            if best_request is not None and best_request.model_name:
                jobs.run_separation(best_request, provider, cache, report, cancel)
            # the stems are in the cache; nothing big crosses back to the UI

        self.task = w.start_task(job, "queue", lambda stage, f: self._on_progress(item, stage, f),
                                 lambda _: self._on_end(item, None), lambda msg: self._on_end(item, msg),
                                 lambda: self._on_cancelled(item))

    def _on_progress(self, item: QueueItem, stage: str, fraction: float) -> None:
        if stage != "duration" and item is self.item:
            self.queue.set_progress(item, jobs.stage_fraction(stage, fraction))

    def _on_end(self, item: QueueItem, error: str | None) -> None:
        if item is not self.item:
            return
        self.task = self.item = None
        if item in self.queue.items:
            if error is None:
                self.queue.mark_done(item)
            else:
                self.queue.mark_failed(item, error)
            self.item_finished.emit(item.id, item.state)
        QTimer.singleShot(0, self.pump)

    def _on_cancelled(self, item: QueueItem) -> None:
        if item is self.item:
            self.task = self.item = None
            if item in self.queue.items:
                self.queue.mark_pending(item)


class QueueRow(QWidget):
    """One song of the queue: name, state (or the failure's reason), progress, its buttons."""

    def __init__(self, item_id: int, runner: QueueRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.item_id = item_id
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 3, 6, 3)
        lay.setSpacing(2)
        top = QHBoxLayout()
        top.setSpacing(4)
        self.name = ElidedLabel("")
        top.addWidget(self.name, 1)
        self.state = QLabel("")
        self.state.setObjectName("dim")
        top.addWidget(self.state)
        self.retry = QPushButton("Retry")
        self.retry.setFixedHeight(24)
        self.retry.setStyleSheet("padding: 0px 10px;")
        self.retry.setToolTip("Separate this song again")
        self.retry.clicked.connect(lambda: runner.retry(item_id))
        top.addWidget(self.retry)
        self.buttons = {}
        for key, text, tip, slot in (("up", "▲", "Move up", lambda: runner.queue.move_by(item_id, -1)),
                                     ("down", "▼", "Move down", lambda: runner.queue.move_by(item_id, 1)),
                                     ("remove", "✕", "Remove from the queue (the file stays)",
                                      lambda: runner.remove(item_id))):
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.setAutoRaise(True)
            b.setFixedSize(26, 24)
            b.setStyleSheet("padding: 0px;")
            b.clicked.connect(slot)
            top.addWidget(b)
            self.buttons[key] = b
        lay.addLayout(top)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(5)
        lay.addWidget(self.bar)
        self.error = ElidedLabel("")  # the one-line reason; the whole line in the tooltip
        self.error.setObjectName("errorText")
        self.error.setStyleSheet("color: #ff7a7a;")
        lay.addWidget(self.error)

    def show_item(self, item: QueueItem) -> None:
        self.name.setText(item.name)
        self.name.setToolTip(item.path)
        pct = f" {item.progress * 100:.0f} %" if item.state == "running" else ""
        self.state.setText(STATE_TEXT.get(item.state, item.state) + pct)
        self.bar.setValue(round(item.progress * 1000))
        self.bar.setVisible(item.state in ("running", "pending"))
        self.retry.setVisible(item.state == "failed")
        error = item.error or ""
        if error.startswith(item.path):  # "PATH: reason": the name is enough here (the path is the tooltip)
            error = item.name + error[len(item.path):]
        self.error.setText(error)
        self.error.setVisible(bool(error))
        self.error.setToolTip(item.error or "")


class QueueView(QWidget):
    """The queue list with its controls. ``add_clicked`` asks the owner for songs to add."""

    add_clicked = Signal()

    def __init__(self, runner: QueueRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.runner = runner
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        head = QHBoxLayout()
        self.summary = QLabel("")
        self.summary.setObjectName("dim")
        head.addWidget(self.summary, 1)
        self.add_button = QPushButton("Add…")
        self.add_button.setToolTip("Add songs or a folder to the queue (or drop them on the window)")
        self.add_button.clicked.connect(self.add_clicked)
        head.addWidget(self.add_button)
        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(lambda: runner.set_paused(not runner.queue.paused))
        head.addWidget(self.pause_button)
        self.clear_button = QPushButton("Clear done")
        self.clear_button.clicked.connect(runner.queue.clear_finished)
        head.addWidget(self.clear_button)
        lay.addLayout(head)
        self.list = QListWidget()
        self.list.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.list.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.model().rowsMoved.connect(lambda *a: QTimer.singleShot(0, self._sync_order))
        lay.addWidget(self.list, 1)
        self.empty_hint = QLabel("Drop several songs or a folder on the window to separate them one after "
                                 "another, while you keep listening.")
        self.empty_hint.setObjectName("dim")
        self.empty_hint.setWordWrap(True)
        lay.addWidget(self.empty_hint)
        self.rows: dict[int, QueueRow] = {}
        self._ids: list[int] = []
        self._running_id: int | None = None
        runner.changed.connect(self.refresh)
        self.refresh()

    def _sync_order(self) -> None:
        """After a drag: the list's order becomes the queue's."""
        ids = [self.list.item(k).data(Qt.ItemDataRole.UserRole) for k in range(self.list.count())]
        if ids != self._ids:
            self._ids = []  # rebuild the rows (a moved row loses its widget)
            self.runner.queue.reorder(ids)
            self.refresh()

    def refresh(self) -> None:
        q = self.runner.queue
        ids = [i.id for i in q.items]
        if ids != self._ids:
            self.list.clear()
            self.rows = {}
            for item in q.items:
                li = QListWidgetItem()
                li.setData(Qt.ItemDataRole.UserRole, item.id)
                row = QueueRow(item.id, self.runner)
                self.list.addItem(li)
                self.list.setItemWidget(li, row)
                self.rows[item.id] = row
            self._ids = ids
        for k, item in enumerate(q.items):
            row = self.rows[item.id]
            row.show_item(item)
            row.buttons["up"].setEnabled(k > 0)
            row.buttons["down"].setEnabled(k < len(q.items) - 1)
            li = self.list.item(k)
            hint = QSize(0, row.sizeHint().height() + 4)  # the row is as wide as the list, never wider
            if li.sizeHint() != hint:
                li.setSizeHint(hint)
        running = q.running()
        if running is not None and running.id != self._running_id:  # keep the song at work in sight
            self.list.scrollToItem(self.list.item(q.index(running.id)))
        self._running_id = running.id if running is not None else None
        self.summary.setText(q.summary() if q.items else "The queue is empty")
        self.pause_button.setText("Resume" if q.paused else "Pause")
        self.empty_hint.setVisible(not q.items)
        self.clear_button.setEnabled(q.counts()["done"] > 0)
