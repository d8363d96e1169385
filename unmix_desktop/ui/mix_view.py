"""The mixer's view model: strips, master strip, preset box and meters follow the session.

Widgets send controls to the :class:`~unmix_desktop.session.Session` (and output mute to the
:class:`~unmix_desktop.session.Monitor`); this controller observes both and redraws. It never
writes to the player: :class:`~unmix_desktop.session.PlayerLink` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

from ..session import Monitor, Session
from .presets import matching_preset, presets_for

if TYPE_CHECKING:
    from .pages import SongPage


class MixController(QObject):
    def __init__(self, page: "SongPage", monitor: Monitor, parent: QObject | None = None):
        super().__init__(parent)
        self.page = page
        self.monitor = monitor
        self.session: Session | None = None
        self._unsubscribe = None
        monitor.observe(lambda control, value: self.refresh())

    def bind(self, session: Session | None) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.session = session
        if session is not None:
            self._unsubscribe = session.observe(lambda control, value: self.refresh())
            self.page.transport.set_presets(presets_for(list(session.names)))
        self.refresh()

    def connect_lane(self, name: str) -> None:
        """Wire a lane's strip (built after the song is shown) to the session."""
        tracks = self.page.tracks
        if name == "mixture":
            tracks.master.master_changed.connect(lambda db: self.session and self.session.set_master_db(db))
            tracks.master.mute_all_toggled.connect(self.monitor.set_output_muted)
        else:
            strip = tracks.strips[name]
            strip.gain_changed.connect(lambda n, db: self.session and self.session.set_gain_db(n, db))
            strip.mute_toggled.connect(lambda n, on: self.session and self.session.set_mute(n, on))
            strip.solo_toggled.connect(lambda n, on: self.session and self.session.set_solo(n, on))
            strip.pan_changed.connect(lambda n, p: self.session and self.session.set_pan(n, p))
        self.refresh()

    def toggle_index(self, kind: str, index: int) -> None:
        """Number keys: toggle solo (or mute) of the ``index``-th stem."""
        if self.session is not None and index < len(self.session.names):
            self.session.toggle(f"{self.session.names[index]}.{kind}")

    def current_preset(self) -> str | None:
        s = self.session
        if s is None or not s.is_default_level():
            return None
        muted = {n for n in s.names if s.get(f"{n}.mute")}
        soloed = {n for n in s.names if s.get(f"{n}.solo")}
        preset = matching_preset(presets_for(list(s.names)), muted, soloed)
        return preset.key if preset else None

    def refresh(self) -> None:
        s = self.session
        if s is None:
            return
        state = s.mix_state()
        tracks = self.page.tracks
        for name, strip in tracks.strips.items():
            if name in state.gain_db:
                strip.show_state(state.gain_db[name], state.mute[name], state.solo[name], state.pan[name],
                                 state.audible(name))
        if tracks.master is not None:
            tracks.master.show_state(state.master_db, self.monitor.output_muted)
        self.page.transport.show_preset(self.current_preset())

    def show_levels(self, levels: dict[str, float], playing: bool) -> None:
        """Meters: the player's post-fader peaks while playing; dark at once when paused."""
        tracks = self.page.tracks
        for name, strip in tracks.strips.items():
            if playing:
                strip.meter.set_level(levels.get(name, 0.0))
            else:
                strip.meter.reset()
        if tracks.master is not None:
            if playing:
                tracks.master.meter.set_level(max(levels.values(), default=0.0))
            else:
                tracks.master.meter.reset()
