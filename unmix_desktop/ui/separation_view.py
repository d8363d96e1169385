"""Separation in the window: start / cancel the song pipeline in a worker, the progress page, the ETA.

Signals ``done(SongResult)``, ``failed(message, kind)`` (``kind``: the exception class, e.g.
``"DecodeError"``), ``cancelled()`` and ``live(partial SongResult, GrowingStems)``: a song of more
than one window can be played from its first separated window on (the window shows it at once; the
stems fill while it plays, :mod:`unmix_desktop.audio.growing`); ``done`` follows with the result,
whose stems are the same buffers. The job is :func:`.jobs.run_separation` (the song pipeline
with the window's thread policy).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal

from . import jobs
from .worker import Task

if TYPE_CHECKING:
    from .main_window import MainWindow

ETA_MS = 200


class SeparationController(QObject):
    done = Signal(object)
    failed = Signal(str, str)
    cancelled = Signal()
    live = Signal(object, object)  # partial SongResult, GrowingStems (emitted from the worker: queued)

    def __init__(self, window: "MainWindow"):
        super().__init__(window)
        self.w = window
        self.task: Task | None = None
        self.request: jobs.SeparationRequest | None = None
        self._eta: jobs.EtaEstimator | None = None
        self._stage = ("read", 0.0)
        self._duration_hint: float | None = None
        self.growing = None  # the buffers of the song playing while it is separated
        self.in_place = False  # the open song separated again: progress in the status bar, it plays on
        self.timer = QTimer(self)
        self.timer.setInterval(ETA_MS)
        self.timer.timeout.connect(self.show_progress)
        window.progress_page.cancel_clicked.connect(self.cancel)

    @property
    def running(self) -> bool:
        return self.task is not None

    def start(self, request: jobs.SeparationRequest, in_place: bool = False) -> Task:
        w = self.w
        if self.task is not None:
            self.task.cancel()
        self.request = request
        self.in_place = in_place
        self._eta = None
        self._stage = ("read", 0.0)
        self._duration_hint = None
        self.growing = None
        w.progress_page.start(request.path.name)
        provider, stem_cache = w.model_provider, w.stem_cache

        def on_live(partial, growing):  # worker thread: a queued signal to the UI thread
            self.live.emit(partial, growing)

        def job(report, cancel):
            return jobs.run_separation(request, provider, stem_cache, report, cancel, live=on_live)

        self.task = w.start_task(job, "separation", self.on_progress, self._on_done, self._on_error,
                                 self._on_cancelled)
        self.timer.start()
        return self.task

    def cancel(self) -> None:
        """Stop: the window goes back at once, the thread stops at its next check."""
        task = self.task
        if task is None:
            return
        task.cancel()
        self._finish()
        self.cancelled.emit()

    def _finish(self) -> None:
        self.task = None
        self.in_place = False
        self.timer.stop()
        self.growing = None

    def accept_live(self, partial, growing) -> bool:
        """Whether a ``live`` emission belongs to the running separation (a stale one is ignored)."""
        ok = self.task is not None and self.request is not None and partial.path == self.request.path
        if ok:
            self.growing = growing
        return ok

    def live_status(self, waiting: bool) -> str:
        """The status line while a song plays as it is separated."""
        growing = self.growing
        if growing is None:
            return ""
        text = f"Separating {self.request.path.name if self.request else ''}: {growing.fraction:.0%} ready"
        return text + ("  ·  waiting for separation…" if waiting else "  ·  playing what is ready")

    # progress --------------------------------------------------------------------------------
    def on_progress(self, stage: str, fraction: float) -> None:
        if stage == "duration":
            self._duration_hint = fraction
            return
        if stage == "separate" and self._eta is None:
            rate = self.w.settings.seconds_per_second(self.request.model_name if self.request else "")
            prior = rate * self._duration_hint if rate and self._duration_hint else None
            self._eta = jobs.EtaEstimator(prior)
        if stage == "separate" and self._eta is not None:
            self._eta.update(fraction)
        self._stage = (stage, fraction)
        self.show_progress()

    def show_progress(self) -> None:
        stage, fraction = self._stage
        label = jobs.stage_label(stage)
        if stage == "separate" and self._eta is not None:
            shown, left = self._eta.estimate()
            eta = jobs.format_eta(left)
            overall = jobs.stage_fraction(stage, shown)
            label = f"Separating with {self.request.model_name if self.request else ''}…"
        else:
            overall = jobs.stage_fraction(stage, fraction)
            eta = "" if stage in ("read", "decode", "model", "cache") else "finishing…"
        self.w.progress_page.show_progress(label, overall, eta)
        if self.in_place and self.task is not None:
            name = self.request.path.name if self.request else ""
            self.w.status_label.setText(f"Separating {name} again: {overall:.0%}{'  ·  ' + eta if eta else ''}"
                                        "  ·  the current stems play until the new ones are ready")

    # outcome ---------------------------------------------------------------------------------
    def _on_done(self, result: jobs.SongResult) -> None:
        self._finish()
        if not result.from_cache and result.separation_seconds > 0 and result.duration > 0 \
                and not result.reused_two_stems:
            self.w.settings.set_seconds_per_second(result.model_name, result.separation_seconds / result.duration)
        self.done.emit(result)

    def _on_error(self, message: str) -> None:
        kind = self.task.error_kind if self.task is not None else ""
        self._finish()
        self.failed.emit(message, kind or "")

    def _on_cancelled(self) -> None:  # only reached when the job stopped on its own
        self._finish()
        self.cancelled.emit()


def failure_status(path: Path | None, kind: str) -> str:
    """The status-bar line for a failed separation: what kind of failure, for which file."""
    name = path.name if path is not None else "the song"
    if kind == "DecodeError":
        return f"Could not decode {name}"
    if kind == "AudioError":
        return f"Could not read {name}"
    if kind == "ModelError":
        return f"Could not load the model for {name}"
    return f"Separation of {name} failed"
