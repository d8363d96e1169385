"""Transport: play/pause, seek, A–B loop and the ~30 Hz display tick.

The loop lives in the session (``loop.a``, ``loop.b``, ``loop.enabled``); the player follows it
through :class:`~unmix_desktop.session.PlayerLink`. This controller turns keys and buttons into
session controls and player transport calls, and draws the player's position.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import QObject, QTimer

from ..errors import UnmixError
from ..session import SessionError

if TYPE_CHECKING:
    from .main_window import MainWindow

TICK_MS = 30
#: When B is set at the playhead while playing, the play head is already at (or past) B: jump back
#: to A at once instead of playing on to the end of the song and looping only on the next pass.
LOOP_JUMP_MARGIN_S = 0.25


class TransportController(QObject):
    def __init__(self, window: "MainWindow", notify: Callable[[str, str, int], None]):
        super().__init__(window)
        self.w = window
        self.notify = notify
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self.tick)
        self._reported_callback_error: str | None = None
        t = window.song_page.transport
        t.play_clicked.connect(self.toggle_play)
        t.stop_clicked.connect(self.stop)
        t.rewind_clicked.connect(lambda: self.seek(0.0))
        t.seek_requested.connect(self.seek)
        t.set_a_clicked.connect(self.set_loop_a)
        t.set_b_clicked.connect(self.set_loop_b)
        t.loop_toggled.connect(self.set_loop_enabled)
        window.song_page.tracks.seek_requested.connect(self.seek)

    @property
    def _ready(self) -> bool:
        return self.w.song is not None and self.w.session is not None

    # transport ---------------------------------------------------------------------------------
    def toggle_play(self) -> None:
        w = self.w
        if not self._ready or w.page != "song":
            return
        player = w.player
        if not player.available:
            self.notify(f"Playback unavailable: {player.unavailable_reason}. Separation and export still work.",
                        "warning", 0)
            return
        try:
            if player.playing:
                player.pause()
            else:
                click = w.practice_ctl.count_in_audio()
                player.play() if click is None else player.play(count_in=click)
        except UnmixError as exc:
            w.show_error("Playback failed", str(exc))
        self.tick()

    def stop(self) -> None:
        if self._ready:
            self.w.player.stop()
            self.tick()

    def seek(self, seconds: float) -> None:
        if self._ready:
            self.w.player.seek(min(max(seconds, 0.0), self.w.song.duration))
            self.tick()

    def seek_relative(self, delta: float) -> None:
        if self._ready:
            self.seek(self.w.player.position + delta)

    # loop ------------------------------------------------------------------------------------
    def set_loop_a(self) -> None:
        if self._ready:
            self.w.session.set_loop_a(self.w.practice_ctl.snapped(self.w.player.position))

    def set_loop_b(self) -> None:
        if not self._ready:
            return
        player, session = self.w.player, self.w.session
        session.set_loop_b(self.w.practice_ctl.snapped(player.position))
        loop = session.loop
        if loop is not None and player.playing and player.position >= loop[1] - LOOP_JUMP_MARGIN_S:
            player.seek(loop[0])
        self.tick()

    def set_loop_enabled(self, enabled: bool) -> None:
        if not self._ready:
            return
        try:
            self.w.session.set("loop.enabled", enabled)
        except SessionError:
            self.notify("Set the loop start with A ([) and its end with B (]) first.", "info", 5000)
        self.show_loop()

    def toggle_loop(self) -> None:
        if self._ready:
            self.set_loop_enabled(not self.w.session.get("loop.enabled"))

    def clear_loop(self) -> None:
        if self._ready:
            self.w.session.clear_loop()

    def show_loop(self) -> None:
        s = self.w.session
        if s is None:
            return
        a, b, enabled = s.get("loop.a"), s.get("loop.b"), s.loop is not None
        self.w.song_page.transport.show_loop(a, b, enabled)
        self.w.song_page.tracks.set_loop((a, b) if a is not None and b is not None else None)

    # display -----------------------------------------------------------------------------------
    def tick(self) -> None:
        w = self.w
        if w.song is None:
            return
        player = w.player
        pos, playing = player.position, player.playing
        page = w.song_page
        page.transport.show_position(pos)
        page.transport.show_playing(playing)
        page.tracks.set_position(pos)
        live = getattr(w, "live", False)  # playing while separating: shade and say what is not ready
        page.tracks.set_ready(player.ready_seconds if live else None)
        if live:
            w.status_label.setText(w.sep_ctl.live_status(player.waiting))
        w.mix_ctl.show_levels(player.levels(), playing)
        w.practice_ctl.tick()
        error = getattr(player, "callback_error", None)
        if error and error != self._reported_callback_error:
            self._reported_callback_error = error
            w.show_error("Playback error", error)
