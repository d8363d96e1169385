"""Export dialog: stems, karaoke track and/or the current mix, in a format, to a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QTimer, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..audio.io import native_rate
from .jobs import ExportRequest, export_plan, run_export
from .settings import OUTPUT_FORMATS
from .theme import stem_label
from .worker import Task

FORMAT_LABELS = {
    "wav": "WAV (16-bit, lossless)",
    "flac": "FLAC (16-bit, lossless, smaller)",
    "ogg": "Ogg Vorbis (lossy)",
    "mp3": "MP3 (lossy)",
}


class ExportDialog(QDialog):
    """Built by the window with the song's stems and the session's mix.

    ``mix_state``: a :class:`~unmix_desktop.audio.mixer.MixState`, or a function returning the
    current one (read when the export starts: the session's mix, never the monitoring, so a muted
    output still exports sound). ``choices``: the ticks to start from (``stems``, ``karaoke``,
    ``mix``, ``open_folder``); ``on_choices(choices)`` hears every change, to remember them.
    ``stretch``: the current tempo and key (``tempo``, ``semitones``, ``cents``; or a function returning
    them): every file is rendered with them through the offline stretcher.
    ``pending``: for a song still being separated, a function returning the share of it that is ready
    (``None`` once the stems are whole): Export then waits, showing that progress, and starts when
    the window calls :meth:`stems_complete` with the final stems; :meth:`stems_lost` (separation
    cancelled or failed) says that nothing was exported. Never written: silence for the unseparated
    part as if it were the song.
    """

    def __init__(self, stems: dict, mix_state, source_path: Path | None, title: str, folder: str, fmt: str,
                 open_url: Callable[[QUrl], object] = QDesktopServices.openUrl,
                 on_finished: Callable[[list[Path], str, str], None] | None = None,
                 choices: dict | None = None,
                 on_choices: Callable[[dict], None] | None = None,
                 stretch: Callable[[], dict] | dict | None = None,
                 pending: Callable[[], float | None] | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.setMinimumWidth(560)
        self.stems = stems
        self.mix_state = mix_state
        self.source_path = source_path
        self.title = title
        self.open_url = open_url
        self.on_finished = on_finished
        self.on_choices = on_choices
        self.stretch = stretch
        choices = dict(choices or {})
        self.task: Task | None = None
        self.written: list[Path] = []
        self.pending = pending
        self.waiting = False  # Export was asked for while the stems were being separated
        self.lost: str | None = None
        self._wait_timer = QTimer(self)
        self._wait_timer.setInterval(200)
        self._wait_timer.timeout.connect(self._show_waiting)

        layout = QVBoxLayout(self)
        form = QFormLayout()
        form.setSpacing(8)
        folder_row = QHBoxLayout()
        self.folder_edit = QLineEdit(folder)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)
        form.addRow("Folder:", folder_row)

        names = ", ".join(stem_label(n) for n in stems)
        self.stems_check = QCheckBox(f"Each stem as its own file ({names})")
        self.stems_check.setChecked(choices.get("stems", True))
        self.karaoke_check = QCheckBox("Karaoke track (everything but the vocals)")
        self.karaoke_check.setChecked("vocals" in stems and len(stems) > 1 and choices.get("karaoke", True))
        self.karaoke_check.setEnabled("vocals" in stems and len(stems) > 1)
        self.mix_check = QCheckBox("Current mix (faders, mutes, solos and pans as you hear them)")
        self.mix_check.setEnabled(mix_state is not None)
        self.mix_check.setChecked(mix_state is not None and choices.get("mix", False))
        what = QVBoxLayout()
        for c in (self.stems_check, self.karaoke_check, self.mix_check):
            what.addWidget(c)
            c.toggled.connect(self._update_plan)
        form.addRow("Export:", what)

        self.format_combo = QComboBox()
        for f in OUTPUT_FORMATS:
            self.format_combo.addItem(FORMAT_LABELS[f], f)
        self.format_combo.setCurrentIndex(max(self.format_combo.findData(fmt), 0))
        self.format_combo.currentIndexChanged.connect(self._update_plan)
        form.addRow("Format:", self.format_combo)
        self.rate_combo = QComboBox()
        own = native_rate(source_path)
        self.rate_combo.addItem(f"Song's own ({own} Hz)", 0)
        for r in (44100, 48000):
            self.rate_combo.addItem(f"{r} Hz", r)
        self.rate_combo.setCurrentIndex(max(self.rate_combo.findData(int(choices.get("rate", 0) or 0)), 0))
        self.rate_combo.setToolTip("The stems are separated at 44.1 kHz; they are written at the song's own rate "
                                   "unless you choose one here.")
        form.addRow("Sample rate:", self.rate_combo)
        self.open_check = QCheckBox("Open the folder when done")
        self.open_check.setChecked(choices.get("open_folder", True))
        form.addRow("", self.open_check)
        layout.addLayout(form)
        self.stretch_label = QLabel(self.stretch_text())
        self.stretch_label.setWordWrap(True)
        self.stretch_label.setVisible(bool(self.stretch_text()))
        layout.addWidget(self.stretch_label)

        self.plan_label = QLabel()
        self.plan_label.setObjectName("dim")
        self.plan_label.setWordWrap(True)
        layout.addWidget(self.plan_label)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)
        layout.addWidget(self.progress)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.open_button = QPushButton("Open folder")
        self.open_button.setVisible(False)
        self.open_button.clicked.connect(self._open_folder)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        self.export_button = QPushButton("Export")
        self.export_button.setObjectName("primary")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start_export)
        for b in (self.open_button, self.close_button, self.export_button):
            buttons.addWidget(b)
        layout.addLayout(buttons)
        self.folder_edit.textChanged.connect(self._update_plan)
        for c in (self.stems_check, self.karaoke_check, self.mix_check, self.open_check):
            c.toggled.connect(self._choices_changed)
        # a new choice after an export: the last export's result text, progress and button go
        for c in (self.stems_check, self.karaoke_check, self.mix_check):
            c.toggled.connect(self._clear_result)
        self.format_combo.currentIndexChanged.connect(self._clear_result)
        self.rate_combo.currentIndexChanged.connect(self._clear_result)
        self.folder_edit.textChanged.connect(self._clear_result)
        self.format_combo.currentIndexChanged.connect(self._choices_changed)
        self.rate_combo.currentIndexChanged.connect(self._choices_changed)
        self.folder_edit.editingFinished.connect(self._choices_changed)
        self._update_plan()

    # ------------------------------------------------------------------------------------------
    @property
    def fmt(self) -> str:
        return self.format_combo.currentData()

    @property
    def folder(self) -> Path:
        return Path(self.folder_edit.text().strip()).expanduser()

    def choices(self) -> dict:
        return {"stems": self.stems_check.isChecked(), "karaoke": self.karaoke_check.isChecked(),
                "mix": self.mix_check.isChecked(), "open_folder": self.open_check.isChecked(),
                "format": self.fmt, "folder": self.folder_edit.text().strip(), "rate": self.rate_combo.currentData()}

    @property
    def rate(self) -> int:
        """The files' sample rate: the chosen one, or the song's own."""
        return int(self.rate_combo.currentData() or native_rate(self.source_path))

    def _choices_changed(self) -> None:
        if self.on_choices:
            self.on_choices(self.choices())

    def current_stretch(self) -> dict:
        st = self.stretch() if callable(self.stretch) else self.stretch
        return dict(st or {})

    def stretch_text(self) -> str:
        """What the export does with the tempo and key ("" at the original ones)."""
        st = self.current_stretch()
        tempo, semis, cents = st.get("tempo", 1.0), st.get("semitones", 0.0), st.get("cents", 0.0)
        parts = []
        if tempo != 1.0:
            parts.append(f"tempo {tempo * 100:.0f} %")
        if semis or cents:
            parts.append(f"key {semis:+.0f} st" + (f" {cents:+.0f} ¢" if cents else ""))
        if not parts:
            return ""
        return (f"Every file is exported at the current {' and '.join(parts)} (Rubber Band R3, offline "
                f"high-quality mode); reset them in the transport for the original.")

    def request(self) -> ExportRequest:
        state = self.mix_state() if callable(self.mix_state) else self.mix_state
        st = self.current_stretch()
        stretch = st if (st.get("tempo", 1.0) != 1.0 or st.get("semitones") or st.get("cents")) else None
        return ExportRequest(self.folder, self.stems, self.source_path, self.title, self.fmt,
                             self.stems_check.isChecked(), self.karaoke_check.isChecked(),
                             self.mix_check.isChecked(), state, stretch, self.rate)

    def _clear_result(self, *_) -> None:
        if (self.task is None or not self.task.running) and not self.waiting and self.lost is None:
            self.status.setText("")
            self.status.setStyleSheet("")
            self.progress.setValue(0)
            self.open_button.setVisible(False)

    def ready_fraction(self) -> float | None:
        """The share of the song separated so far, ``None`` when the stems are whole."""
        if self.pending is None:
            return None
        return self.pending()

    def _update_plan(self) -> None:
        plan = export_plan(self.request())
        fraction = self.ready_fraction()
        if self.lost is not None:
            self.plan_label.setText(f"Nothing to export: {self.lost}")
            self.export_button.setEnabled(False)
            return
        if not plan:
            self.plan_label.setText("Choose what to export.")
        else:
            existing = sum(1 for _, p in plan if p.exists())
            lines = [f"{len(plan)} file{'s' * (len(plan) != 1)} in {self.folder}:"]
            stems = [p for what, p in plan if what.startswith("stem:")]
            if stems:
                lines.append(f"  •  {stems[0].parent.name}/  " + ", ".join(p.name for p in stems))
            lines += [f"  •  {p.name}" for what, p in plan if not what.startswith("stem:")]
            if existing:
                lines.append(f"{existing} of them already exist and will be replaced.")
            if fraction is not None:
                lines.append(f"The song is still being separated ({fraction:.0%} ready): the export waits "
                             "for the whole stems.")
            self.plan_label.setText("\n".join(lines))
        self.export_button.setEnabled(bool(plan) and bool(self.folder_edit.text().strip()) and not self.waiting
                                      and (self.task is None or not self.task.running))

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to folder", str(self.folder))
        if folder:
            self.folder_edit.setText(folder)

    def start_export(self) -> Task | None:
        req = self.request()
        if not export_plan(req) or self.lost is not None:
            return None
        if self.ready_fraction() is not None:  # wait for the whole stems, with progress
            self.waiting = True
            self.status.setStyleSheet("")
            self.open_button.setVisible(False)
            self._show_waiting()
            self._wait_timer.start()
            self._update_plan()
            return None
        self.status.setText("Exporting…")
        self.status.setStyleSheet("")
        self.progress.setValue(0)
        self.export_button.setEnabled(False)
        self.open_button.setVisible(False)
        if self.on_choices:
            self.on_choices(self.choices())
        self.task = Task(lambda report, cancel: run_export(req, report, cancel), "export",
                         on_progress=self._on_progress, on_done=self._on_done, on_error=self._on_error,
                         on_cancel=lambda: self.status.setText("Export cancelled."))
        self.task.finished.connect(self._update_plan)
        return self.task.start()

    def _show_waiting(self) -> None:
        fraction = self.ready_fraction()
        if not self.waiting or fraction is None:
            self._wait_timer.stop()
            return
        self.progress.setValue(int(fraction * 1000))
        self.status.setText(f"Waiting for the separation: {fraction:.0%} of the song is ready. The export starts "
                            "when the stems are complete.")

    def stems_complete(self, stems: dict) -> None:
        """The separation ended: the final stems; an export waiting for them starts now."""
        self.stems = stems
        self.pending = None
        self._wait_timer.stop()
        was_waiting, self.waiting = self.waiting, False
        self._update_plan()
        if was_waiting:
            self.start_export()

    def stems_lost(self, reason: str) -> None:
        """The separation stopped before the end: nothing is exported."""
        self.lost = reason
        self.pending = None
        self._wait_timer.stop()
        if self.waiting:
            self.waiting = False
            self.progress.setValue(0)
            self.status.setText(f"Nothing was exported: {reason}")
            self.status.setStyleSheet("color: #ef5b5b;")
        self._update_plan()

    def _on_progress(self, stage: str, fraction: float) -> None:
        self.progress.setValue(int(fraction * 1000))

    def _on_done(self, written: list[Path]) -> None:
        self.written = written
        self.progress.setValue(1000)
        self.status.setText(f"Wrote {len(written)} file{'s' * (len(written) != 1)} to {self.folder}")
        self.open_button.setVisible(True)
        if self.on_finished:
            self.on_finished(written, str(self.folder), self.fmt)
        if self.open_check.isChecked():
            self._open_folder()

    def _on_error(self, message: str) -> None:
        self.progress.setValue(0)
        self.status.setText(f"Export failed: {message}")
        self.status.setStyleSheet("color: #ef5b5b;")

    def _open_folder(self) -> None:
        self.open_url(QUrl.fromLocalFile(str(self.folder)))

    def reject(self) -> None:
        if self.task is not None and self.task.running:
            self.task.abandon()  # stops between files, without holding the window
        super().reject()
