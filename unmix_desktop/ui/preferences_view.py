"""Preferences: show the dialog, apply it, switch the output device (keeping the song, mix and position)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

from .. import cache as cache_mod
from ..separation.pipeline import four_stems_available
from .best_quality import add_best_quality_row
from .dialogs import Preferences, PreferencesDialog
from .sing_view import add_input_device_row

if TYPE_CHECKING:
    from .main_window import MainWindow


def output_devices() -> list[str]:
    try:
        from ..audio.player import list_output_devices

        return [name for _, name in list_output_devices()]
    except Exception:  # noqa: BLE001 - no PortAudio: no devices to offer
        return []


def splitter_models() -> list[str]:
    """Installed drums/bass/other models (the learned alternatives to the signal-processing split)."""
    try:
        from ..separation.registry import list_models

        return [m.name for m in list_models() if m.splitter]
    except Exception:  # noqa: BLE001 - a broken registry only hides the choice
        return []


class PreferencesController(QObject):
    def __init__(self, window: "MainWindow"):
        super().__init__(window)
        self.w = window
        self.dialog: PreferencesDialog | None = None

    def current(self) -> Preferences:
        s = self.w.settings
        return Preferences(self.w.models.current() or "", s.niter, s.four_stems, s.output_format, s.audio_device,
                           s.four_stem_model)

    def show_preferences(self) -> PreferencesDialog:
        w = self.w
        cache_text = f"{cache_mod.format_bytes(w.stem_cache.size_bytes())} in {w.stem_cache.root}"
        dialog = PreferencesDialog(self.current(), w.models.available(), output_devices(), four_stems_available(),
                                   cache_text, w.clear_cache, w, splitters=splitter_models())
        dialog.accepted.connect(lambda: self.apply(dialog.preferences()))
        dialog.input_combo = add_input_device_row(dialog, w.sing_ctl.device)
        dialog.accepted.connect(lambda: w.sing_ctl.set_device(dialog.input_combo.currentData()))
        dialog.best_row = add_best_quality_row(dialog, w.settings.best_model, w.start_task)
        dialog.accepted.connect(lambda: self.apply_best(dialog.best_row))
        self.dialog = dialog
        dialog.open()
        return dialog

    def apply(self, new: Preferences) -> None:
        w = self.w
        old = self.current()
        if new.model != old.model:
            w.models.session_model = None
        s = w.settings
        s.model = new.model or None
        s.niter = new.niter
        s.four_stems = new.four_stems
        s.four_stem_model = new.four_stem_model
        s.output_format = new.output_format
        s.audio_device = new.audio_device
        s.sync()
        if new.audio_device != old.audio_device:
            self.switch_device(new.audio_device)
        changed = ((new.model, new.niter, new.four_stems, new.four_stem_model)
                   != (old.model, old.niter, old.four_stems, old.four_stem_model))
        if changed and w.song is not None:  # the open song plays on until its new stems replace it
            w.start_separation(w.song.path, in_place=True)

    def apply_best(self, row) -> None:
        """"Best quality" chosen: the open song is upgraded now (when that model is installed)."""
        if row is None or row.value() == self.w.settings.best_model:
            return
        self.w.settings.best_model = row.value()
        self.w.settings.sync()
        if self.w.song is not None and not self.w.live:
            self.w.upgrade_ctl.on_song(self.w.song)

    def switch_device(self, device: str | None) -> None:
        """A new player on ``device``; the song, the session's mix and loop and the position carry over."""
        w = self.w
        position = w.player.position if w.song else 0.0
        try:
            w.player.close()
        except Exception:  # noqa: BLE001
            pass
        w.monitor.set_device(device)
        w.player = w.player_factory(device)
        if w.song is not None:
            w.attach_player(position)
        w.show_playback_state()
