"""Preferences' "Best quality" row: choose Hybrid Transformer Demucs (4 or 6 stems) for "fast first, best
later", with its download size, a Download button and a progress bar (bytes, speed, time left)."""

from __future__ import annotations

import time
from typing import Callable

from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .upgrade_controller import BEST_CHOICES, installed_demucs

PROGRESS_EVERY_S = 0.2


def catalogue() -> dict:
    try:
        from ..separation.model_store import known_models

        return known_models()
    except ImportError:  # the Demucs package is not there: the choice is not offered
        return {}


def download_job(name: str, download=None) -> Callable:
    """The Task job that downloads ``name``; progress arrives as ``(text line, fraction)``."""
    if download is None:
        from ..separation.model_store import download_model as download

    def job(report, cancel):
        last = [0.0]

        def progress(p) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S or (p.total and p.done >= p.total):
                last[0] = now
                report(p.line(), p.fraction or 0.0)

        return download(name, progress=progress, cancel=cancel)

    return job


class BestQualityRow(QWidget):
    def __init__(self, current: str | None, start_task: Callable[..., object], *,
                 is_installed: Callable[[str], bool] = installed_demucs, download=None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self._start_task = start_task
        self._is_installed = is_installed
        self._download = download
        self.task = None
        known = catalogue()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.combo = QComboBox()
        for name, label in BEST_CHOICES:
            if name and name not in known:
                continue
            self.combo.addItem(label, name)
        self.combo.setCurrentIndex(max(self.combo.findData(current or ""), 0))
        self.combo.setToolTip("A new song plays within seconds from the fast model; the best-quality model then "
                              "separates it again in the background and the stems switch in place when it is done.")
        row.addWidget(self.combo, 1)
        self.button = QPushButton("Download")
        self.button.clicked.connect(self.start_download)
        row.addWidget(self.button)
        lay.addLayout(row)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setVisible(False)
        lay.addWidget(self.bar)
        self.info = QLabel("")
        self.info.setObjectName("dim")
        self.info.setWordWrap(True)
        lay.addWidget(self.info)
        self._known = known
        self.combo.currentIndexChanged.connect(self.refresh)
        self.refresh()

    def value(self) -> str | None:
        return self.combo.currentData() or None

    def refresh(self) -> None:
        name = self.value()
        busy = self.task is not None
        if not name:
            self.button.setVisible(False)
            self.info.setText("")
            return
        spec = self._known.get(name, {})
        size = f"{spec['size_mb']:.0f} MB" if spec.get("size_mb") else "size unknown"
        if self._is_installed(name):
            self.button.setVisible(False)
            self.info.setText(f"{name}: installed ({', '.join(spec.get('sources', []))}). MIT weights by Meta "
                              "(facebookresearch/demucs).")
        else:
            self.button.setVisible(True)
            self.button.setEnabled(not busy)
            self.info.setText(f"{name}: {size} download, once (MIT weights by Meta, facebookresearch/demucs). "
                              f"Offline: `unmix models --import FILE.th --name {name}`.")

    def start_download(self):
        name = self.value()
        if not name or self.task is not None:
            return None
        self.bar.setValue(0)
        self.bar.setVisible(True)
        self.button.setEnabled(False)
        self.info.setText(f"Downloading {name}…")

        def progress(line: str, fraction: float) -> None:
            self.bar.setValue(int(fraction * 1000))
            self.info.setText(f"Downloading {name}: {line}")

        def done(_folder) -> None:
            self.task = None
            self.bar.setValue(1000)
            self.bar.setVisible(False)
            self.refresh()

        def failed(message: str) -> None:
            self.task = None
            self.bar.setVisible(False)
            self.button.setEnabled(True)
            self.info.setText(f"Download failed: {message}")

        self.task = self._start_task(download_job(name, self._download), "download", on_progress=progress,
                                     on_done=done, on_error=failed, on_cancel=lambda: failed("cancelled"))
        return self.task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()  # the part file stays: the next download resumes it
            self.task = None


def add_best_quality_row(dialog, current: str | None, start_task, **kwargs) -> BestQualityRow | None:
    """The row in the Preferences form (``None`` when no Demucs model is known to this build)."""
    if not catalogue():
        return None
    row = BestQualityRow(current, start_task, parent=dialog, **kwargs)
    form = dialog.findChild(QFormLayout)
    if form is not None:
        form.addRow("Best quality:", row)
    dialog.rejected.connect(row.cancel)
    return row
