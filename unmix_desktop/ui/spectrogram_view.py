"""Spectrogram scheduling: computed in a worker once a song's lanes are built and painted.

The worker and the first paint of the lanes would otherwise compete for the CPU and the GIL, so the
job starts :data:`DELAY_MS` after :attr:`TrackView.built`. ``ready`` is emitted once per song when
the lanes are built and the spectrograms drawn (or failed: the window still works without them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import QObject, QTimer, Signal

from . import jobs
from .worker import Task

if TYPE_CHECKING:
    from .main_window import MainWindow

DELAY_MS = 120


class SpectrogramController(QObject):
    ready = Signal()

    def __init__(self, window: "MainWindow", warn: Callable[[str], None]):
        super().__init__(window)
        self.w = window
        self.warn = warn
        self.task: Task | None = None
        self._task_song = None   # the song object ``task`` computes for
        self.spectrograms: dict = {}
        self.error: str | None = None
        self._ready_sent = False
        window.song_page.tracks.built.connect(self._on_tracks_built)

    def reset(self) -> None:
        """A new song is shown: forget the old spectrograms, stop computing them."""
        if self.task is not None:
            self.task.cancel()
        self.task = None
        self._task_song = None
        self.spectrograms = {}
        self.error = None
        self._ready_sent = False

    def _on_tracks_built(self) -> None:
        QTimer.singleShot(DELAY_MS, self.start)
        self._maybe_ready()

    def start(self) -> None:
        """Compute the spectrograms of the song shown now (once; a job running for another song object,
        e.g. the partial result of a song whose finished result has just replaced it, is replaced)."""
        song = self.w.song
        if song is None or self.spectrograms or getattr(self.w, "live", False):
            return  # (a song still being separated gets its spectrograms when it is done)
        if self.task is not None:
            if self._task_song is song:
                return
            self.task.cancel()
        mixture, stems = song.mixture, song.stems
        self._task_song = song
        self.task = self.w.start_task(lambda report, cancel: jobs.run_spectrograms(mixture, stems, report, cancel),
                                      "spectrograms", None, lambda specs: self._on_done(specs, song), self._on_error)

    def _on_done(self, specs: dict, song=None) -> None:
        if song is not None and song is not self.w.song:
            # the window moved on to another song (or replaced this one by its finished result) while they
            # were computed: its own job runs or starts now (dropping this outcome without one lost
            # ``ready`` for good when the partial song's job was the only one)
            if self._task_song is song:
                self.task = None
                self._task_song = None
                self.start()
            return
        self.task = None
        self._task_song = None
        self.spectrograms = specs
        self.w.song_page.tracks.set_spectrograms(specs)
        self._maybe_ready()

    def _on_error(self, message: str) -> None:
        self.task = None
        self._task_song = None
        self.error = message
        self.warn(f"Could not draw the spectrograms: {message}")
        self._maybe_ready()

    def _maybe_ready(self) -> None:
        tracks = self.w.song_page.tracks
        done = tracks.spectrograms_ready or (self.error is not None and tracks.is_built)
        if self.w.song is not None and done and not self._ready_sent:
            self._ready_sent = True
            self.ready.emit()
