"""Fast first, best later: once a song plays from the fast model (Spleeter, play-while-separating), the
best-quality model chosen in Preferences (Hybrid Transformer Demucs, 4 or 6 stems) separates it again in
the background with its own progress; when it is done the window swaps the stems in place (no gap: see
:meth:`~unmix_desktop.audio.player.StemPlayer.replace_stems`), keeping position, faders, mutes, loop and
markers. The result is cached per model like every other, so the next time the best stems come at once.

The controller gets only what it needs: the settings (which model), the model provider and the cache
(the song pipeline), the open song, a ``swap(result)`` callback, ``notify`` and a ``status`` line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal

from ..separation.pipeline import SongRequest
from ..separation.settings import SeparationSettings
from . import jobs

#: The choices of Preferences' "Best quality" row: (model name, label). "" = off.
BEST_CHOICES = [
    ("", "Off (fast stems only: Spleeter, offline)"),
    ("htdemucs", "Best quality: Hybrid Transformer Demucs, 4 stems"),
    ("htdemucs_6s", "Best quality: Hybrid Transformer Demucs, 6 stems (+ guitar, piano)"),
]


def installed_demucs(name: str) -> bool:
    """Whether ``name`` is an installed Demucs model (the registry's user models)."""
    try:
        from ..separation.registry import list_models

        return any(m.name == name and m.family == "demucs" for m in list_models())
    except Exception:  # noqa: BLE001 - a broken registry means: not available
        return False


class UpgradeController(QObject):
    started = Signal(str)      # model name
    upgraded = Signal(object)  # the SongResult now shown
    failed = Signal(str)

    def __init__(self, parent: QObject, *, best_model: Callable[[], str | None], models: jobs.ModelProvider,
                 cache, current_song: Callable[[], object], swap: Callable[[object], None],
                 start_task: Callable[..., object], notify: Callable[[str, str], None],
                 status: Callable[[str], None], is_installed: Callable[[str], bool] = installed_demucs):
        super().__init__(parent)
        self._best_model = best_model
        self._models = models
        self._cache = cache
        self._current_song = current_song
        self._swap = swap
        self._start_task = start_task
        self._notify = notify
        self._status = status
        self._is_installed = is_installed
        self.task = None
        self.path: Path | None = None
        self.model: str | None = None
        self.fraction = 0.0

    @property
    def running(self) -> bool:
        return self.task is not None and self.task.running and not self.task.detached

    def best(self) -> str | None:
        name = self._best_model()
        return name if name and self._is_installed(name) else None

    def on_song(self, result) -> None:
        """A song was shown complete (separated or from the cache): upgrade it when it is not from the best
        model yet. A song opened while another one is upgraded cancels that one."""
        best = self.best()
        if result is None or best is None or result.model_name == best:
            if result is not None and self.path is not None and Path(result.path) != self.path:
                self.cancel()
            return
        path = Path(result.path)
        if self.running and self.path == path and self.model == best:
            return
        self.cancel()
        self.path, self.model, self.fraction = path, best, 0.0
        request = SongRequest(path, best, SeparationSettings())
        models, cache = self._models, self._cache

        def job(report, cancel):
            return jobs.run_separation(request, models, cache, report, cancel)

        self.started.emit(best)
        self._status(f"{path.name}: best-quality stems ({best}) are being separated in the background…")
        self.task = self._start_task(job, "best-quality", on_progress=self._on_progress, on_done=self._on_done,
                                     on_error=self._on_error)

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.task = None
        self.path = None

    def _on_progress(self, stage: str, fraction: float) -> None:
        if stage == "separate":
            self.fraction = fraction
            name = self.path.name if self.path else ""
            self._status(f"{name}: best quality ({self.model}) {fraction * 100:.0f} %")

    def _on_done(self, result) -> None:
        self.task = None
        self.fraction = 1.0
        song = self._current_song()
        if song is None or Path(song.path) != Path(result.path):
            return  # another song is open now; the result waits in the cache
        self._swap(result)
        self.upgraded.emit(result)
        self._notify(f"Switched to the best-quality stems ({result.model_name}): "
                     f"{', '.join(result.stems)}", "info")

    def _on_error(self, message: str) -> None:
        self.task = None
        self.failed.emit(message)
        self._notify(f"Best-quality separation failed: {message}", "warning")
