"""Run a job (see :mod:`.jobs`) in a ``QThread`` and deliver its outcome on the UI thread.

A :class:`Task` lives on the UI thread. Its :class:`_Worker` is moved to a fresh ``QThread`` and
runs ``job(report, cancel)`` there; the worker's signals are connected to the task's slots (bound
methods of a UI-thread object, hence queued), and the task calls plain Python callbacks from
there. Cancelling sets the ``threading.Event`` the job polls and *detaches* the task at once: the
UI moves on immediately and whatever the thread still delivers is ignored.

:meth:`Task.abandon` is for an owner that goes away (the window closing): the task is cancelled
and kept alive here until its thread has finished, so the owner never waits for it and the
``QThread`` is never destroyed while running. At interpreter exit the abandoned threads are given
a bounded time to stop (they check the cancel flag at least every window of work).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from ..errors import Cancelled, UnmixError

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.05
#: How long the interpreter waits at exit for abandoned tasks to finish cancelling.
EXIT_WAIT_S = 10.0

_ABANDONED: set["Task"] = set()


@atexit.register
def _wait_for_abandoned() -> None:
    deadline = time.monotonic() + EXIT_WAIT_S
    for task in list(_ABANDONED):
        task.wait(max(deadline - time.monotonic(), 0.05))


def describe_error(exc: BaseException) -> str:
    """One line for the user."""
    if isinstance(exc, UnmixError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory: close other programs or use a shorter song"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"unexpected error ({type(exc).__name__}{': ' + text if text else ''})"


class _Worker(QObject):
    progress = Signal(str, float)
    succeeded = Signal(object)
    failed = Signal(str, str)  # message, exception class name
    cancelled = Signal()
    done = Signal()

    def __init__(self, job: Callable[..., Any], cancel: threading.Event):
        super().__init__()
        self._job = job
        self._cancel = cancel
        self._last = (None, 0.0)

    def _report(self, stage: str, fraction: float) -> None:
        now = time.monotonic()
        last_stage, last_t = self._last
        if stage != last_stage or fraction >= 1.0 or now - last_t >= PROGRESS_INTERVAL_S:
            self._last = (stage, now)
            self.progress.emit(stage, float(fraction))

    @Slot()
    def run(self) -> None:
        try:
            result = self._job(self._report, self._cancel)
        except Cancelled:
            self.cancelled.emit()
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            if not isinstance(exc, UnmixError):
                log.error("worker failed:\n%s", traceback.format_exc())
            self.failed.emit(describe_error(exc), type(exc).__name__)
        else:
            self.succeeded.emit(result)
        finally:
            self.done.emit()


class Task(QObject):
    """One job on its own thread. Callbacks run on the UI thread, unless the task was cancelled."""

    finished = Signal()  # the thread has ended (always emitted)

    def __init__(self, job: Callable[..., Any], name: str = "task",
                 on_progress: Callable[[str, float], None] | None = None,
                 on_done: Callable[[Any], None] | None = None,
                 on_error: Callable[[str], None] | None = None,
                 on_cancel: Callable[[], None] | None = None,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.name = name
        self.cancel_event = threading.Event()
        self.detached = False
        self.outcome: str | None = None  # "done", "error", "cancelled"
        self.error: str | None = None
        self.error_kind: str | None = None  # class name of the exception, e.g. "DecodeError"
        self.result: Any = None
        self.cancel_requested_at: float | None = None
        self.ended_at: float | None = None
        self._callbacks = (on_progress, on_done, on_error, on_cancel)
        self._thread = QThread()
        self._thread.setObjectName(f"unmix-{name}")
        self._worker = _Worker(job, self.cancel_event)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.progress.connect(self._on_progress)
        self._worker.succeeded.connect(self._on_succeeded)
        self._worker.failed.connect(self._on_failed)
        self._worker.cancelled.connect(self._on_cancelled)
        # Direct: QThread.quit is thread-safe, and a queued call would need the UI event loop, which
        # no longer runs when the app exits with a task still working (abandoned tasks never ended).
        self._worker.done.connect(self._thread.quit, Qt.ConnectionType.DirectConnection)
        self._thread.finished.connect(self._on_thread_finished)

    def start(self) -> "Task":
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.isRunning()

    def cancel(self) -> None:
        """Ask the job to stop and stop listening to it now."""
        if self.cancel_requested_at is None:
            self.cancel_requested_at = time.monotonic()
        self.cancel_event.set()
        self.detached = True

    def abandon(self) -> None:
        """Cancel, and keep this task alive (without its owner) until its thread has finished."""
        self.cancel()
        if self.running:
            _ABANDONED.add(self)
            self.finished.connect(lambda: _ABANDONED.discard(self))

    def wait(self, timeout_s: float = 10.0) -> bool:
        return self._thread.wait(int(timeout_s * 1000))

    # slots (UI thread) ---------------------------------------------------------------------
    @Slot(str, float)
    def _on_progress(self, stage: str, fraction: float) -> None:
        if not self.detached and self._callbacks[0]:
            self._callbacks[0](stage, fraction)

    @Slot(object)
    def _on_succeeded(self, result: Any) -> None:
        self.outcome, self.result = "done", result
        if not self.detached and self._callbacks[1]:
            self._callbacks[1](result)

    @Slot(str, str)
    def _on_failed(self, message: str, kind: str) -> None:
        self.outcome, self.error, self.error_kind = "error", message, kind
        if not self.detached and self._callbacks[2]:
            self._callbacks[2](message)

    @Slot()
    def _on_cancelled(self) -> None:
        self.outcome = "cancelled"
        if not self.detached and self._callbacks[3]:
            self._callbacks[3]()

    @Slot()
    def _on_thread_finished(self) -> None:
        self.ended_at = time.monotonic()
        self.finished.emit()
