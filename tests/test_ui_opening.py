"""A song opening in the real window (pytest-qt, offscreen, tiny real network): it starts playing and keeps
playing while every background result arrives, and the race that stopped the soak test at 0:00.

The player is the real :class:`StemPlayer` without a device; :class:`AudioClock` stands in for the sound card:
a timer on the UI thread renders one block per event (slower than real time, so a loaded machine cannot make
the song end before the results are in, and nothing races the test), and :meth:`AudioClock.block_in_thread`
renders one block on another thread, held at a chosen point, for the orderings that need the audio thread in
the middle of a block.

The race (issue 21, soak test, once in five clean-clone runs): playback stopped at 0:00 for good right after
the song opened. The soak's driver loops the whole song as ``[`` and ``]`` do: seek 0, A, seek to the end,
B, seek 0, all while playing. When the audio thread applied the seek to the end and was still in that block
(numpy releases the GIL) while the UI set B and jumped back to A, the UI still saw ``playing`` and asked for
seeks only; the block then reached the end of the song and stopped, and the seek to 0 landed on a stopped
player: stopped at 0:00 forever (the beat grid's pending metronome reload then reloaded it there).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QTimer
from test_beats import groove
from test_ui import WAIT_MS, Harness

from unmix_desktop.audio import mixer as mixer_mod
from unmix_desktop.audio.io import save_audio
from unmix_desktop.audio.player import StemPlayer

SR = 44100
BLOCK = 512


class AudioClock:
    """Renders the player's output, one block per timer event on the UI thread (at most ~0.6x real time)."""

    def __init__(self, player: StemPlayer, interval_ms: int = 20):
        self.player = player
        self.out = np.zeros((BLOCK, 2), np.float32)
        self.frames = 0
        self.sound_frames = 0
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.render_block)

    def start(self) -> None:
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def render_block(self) -> None:
        self.player.process(self.out)
        self.frames += BLOCK
        if np.any(self.out):
            self.sound_frames += BLOCK

    def block_in_thread(self, hold_when, monkeypatch):
        """Render one block on another thread; while its engine is in the state ``hold_when(engine)``
        (checked as each part of the block is rendered), it waits there until the returned ``go`` event
        is set. Returns ``(held, go, thread)``."""
        held, go = threading.Event(), threading.Event()
        render_block = mixer_mod.MixEngine._render_block

        def gated(engine, out, target):
            if not held.is_set() and hold_when(engine):
                held.set()
                go.wait(WAIT_MS / 1000)
            return render_block(engine, out, target)

        monkeypatch.setattr(mixer_mod.MixEngine, "_render_block", gated)
        thread = threading.Thread(target=self.render_block, daemon=True)
        thread.start()
        return held, go, thread


def _player(device):
    return StemPlayer(device=device, open_stream=False, stretch_thread=False)


@pytest.fixture
def opened(qtbot, tmp_path, tiny_umx):
    """The window over the tiny model (2-s windows: the 6-s song plays while it separates); the test renders
    the audio itself."""
    path = tmp_path / "Groove.wav"
    save_audio(path, groove(120.0, seconds=6.0, seed=3)["mix"], subtype="FLOAT")
    h = Harness(qtbot, tmp_path, tiny_umx, player_factory=_player, window_s=2.0, overlap_s=0.5)
    w = h.window
    clock = AudioClock(w.player)
    h.clock = clock
    h.path = path
    yield h
    clock.stop()
    w.close()


def _keeps_playing(h, blocks: int) -> None:
    """Block after block, with the window's transport tick (and the metronome reload it may do) after each,
    the player plays and its position moves on by one block."""
    w, clock = h.window, h.clock
    sound = clock.sound_frames
    for _ in range(blocks):
        before = w.player.position
        clock.render_block()
        w.transport_ctl.tick()
        pos = w.player.position
        assert w.player.playing, f"stopped at {pos:.2f} s"
        assert pos == pytest.approx(before + BLOCK / SR, abs=1e-6), (before, pos)
    h.qtbot.wait(1)
    assert w.player.playing and clock.sound_frames - sound >= blocks * BLOCK // 2


def test_whole_song_loop_set_while_the_audio_thread_reaches_the_end_keeps_playing(opened, monkeypatch):
    """The soak test's opening, with the ordering that stopped it: the audio thread takes the seek to the
    song's end and is still in that block when the UI sets B there and jumps back to A (it still sees the
    player playing); the block then plays into the end of the song. Before the fix the player stayed
    stopped at 0:00 for good (and the beat grid's pending metronome reload reloaded it there)."""
    h, w = opened, opened.window
    with h.qtbot.waitSignal(w.song_ready, timeout=WAIT_MS):
        h.drop(h.path)
    for _ in range(8):
        h.clock.render_block()  # it plays (autoplay)
    h.qtbot.waitUntil(lambda: w.practice_ctl.grid is not None, timeout=WAIT_MS)
    w.transport_ctl.tick()
    assert w.player.playing and "click" not in w.player.names  # the metronome waits for a pause
    # the soak driver's start(): loop the whole song as [ and ] do, while playing
    duration, t = w.song.duration, w.transport_ctl
    w.seek(0.0)
    t.set_loop_a()
    w.seek(duration)
    held, go, thread = h.clock.block_in_thread(lambda e: e.playing and e.pos >= e.n_frames, monkeypatch)
    assert held.wait(WAIT_MS / 1000)  # the audio thread applied the seek to the end, mid-block
    t.set_loop_b()
    w.seek(0.0)
    if not w.player.playing:
        w.toggle_play()
    go.set()
    thread.join(WAIT_MS / 1000)
    assert not thread.is_alive()
    monkeypatch.undo()
    assert w.session.loop == (0.0, duration)
    _keeps_playing(h, 200)  # 2.3 s
    assert w.player.loop == pytest.approx((0.0, duration)) and "click" not in w.player.names


class Gates:
    """Holds the beat grid's worker and the separation's later windows until the test opens each gate:
    the order in which the background results reach the window is the test's, not the clock's."""

    def __init__(self, monkeypatch, model):
        from unmix_desktop.ui import practice_view

        self.beats = threading.Event()
        self.separation = model.gate
        song_beats = practice_view.song_beats

        def held_beats(*args, **kwargs):
            self.beats.wait(WAIT_MS / 1000)
            return song_beats(*args, **kwargs)

        monkeypatch.setattr(practice_view, "song_beats", held_beats)


class Watch:
    """On every transport tick from the moment the song is shown: the player plays, and its position
    moves (it may stand while the play head waits at the part not separated yet)."""

    def __init__(self, window, clock: AudioClock):
        self.w = window
        self.clock = clock
        self._frames = 0
        self.ticks = 0
        self.stops: list[str] = []
        self.stalls = 0
        self.events: list[str] = []
        self._last = None
        window.transport_ctl.timer.timeout.connect(self.tick)

    def tick(self) -> None:
        p = self.w.player
        pos = p.position
        self.ticks += 1
        if not p.playing:
            self.stops.append(f"stopped at {pos:.2f} s after {self.events}")
        elif self._last is not None and pos == self._last and self.clock.frames > self._frames and not p.waiting:
            self.stalls += 1  # audio was rendered since the last tick, and the play head did not move
        self._last, self._frames = pos, self.clock.frames


@pytest.mark.parametrize("order", ["beats, then the rest of the song", "the rest of the song, then beats"])
def test_a_song_plays_from_its_opening_through_every_background_result(qtbot, tmp_path, tiny_umx, monkeypatch,
                                                                       order):
    """Dropped on the window, a song starts playing while it separates and keeps playing, position moving,
    through the beat grid (held so that it arrives right after play starts, or after the separation ends),
    the rest of the separation (song complete), the spectrograms, the melody, the chords and the lyrics;
    the metronome joins at the next pause, at the same position, and playback goes on after it."""
    from test_ui_trust import GatedModel

    path = tmp_path / "Opening.wav"
    save_audio(path, groove(120.0, seconds=24.0, seed=5)["mix"], subtype="FLOAT")
    path.with_suffix(".lrc").write_text("[00:00.50]first line\n[00:03.00]second line\n", "utf-8")
    model = GatedModel(tiny_umx)
    gates = Gates(monkeypatch, model)
    h = Harness(qtbot, tmp_path, model, player_factory=_player, window_s=4.0, overlap_s=0.5)
    w = h.window
    clock = AudioClock(w.player)
    watch = Watch(w, clock)
    w.song_loaded.connect(clock.start)
    for name, signal in (("song complete", w.song_complete), ("beats", w.practice_ctl.beats_ready),
                         ("song ready", w.song_ready), ("melody", w.melody_ctl.ready),
                         ("chords", w.chord_ctl.ready), ("lyrics", w.lyrics_ctl.changed)):
        signal.connect(lambda *_, name=name: watch.events.append(name))
    try:
        h.drop(path)
        qtbot.waitUntil(lambda: w.page == "song" and clock.frames >= 4 * BLOCK, timeout=WAIT_MS)
        assert w.live and w.player.playing  # shown after the first window, playing at once
        first, second = (gates.beats, gates.separation) if order.startswith("beats") else (
            gates.separation, gates.beats)
        first.set()  # right after play started
        qtbot.waitUntil(lambda: ("beats" if first is gates.beats else "song complete") in watch.events,
                        timeout=WAIT_MS)
        second.set()
        qtbot.waitUntil(lambda: {"song complete", "beats", "song ready", "melody", "chords", "lyrics"}
                        <= set(watch.events), timeout=WAIT_MS)
        assert w.song_is_complete and w.practice_ctl.grid is not None and w.practice_ctl.grid.found
        assert w.melody_ctl.contour is not None and w.chord_ctl.chart is not None
        assert "first line" in [line.text for line in w.lyrics_ctl.lyrics.lines]
        qtbot.wait(300)  # a few more ticks after the last result
        assert watch.stops == [] and w.player.playing, watch.stops
        assert watch.ticks >= 10 and watch.stalls <= 2, (watch.ticks, watch.stalls)
        assert clock.sound_frames >= SR // 2  # sound, not a player held silent
        assert "click" not in w.player.names  # never reloaded under the music
        # the metronome stem joins at the next pause, where the song was paused; playback goes on after
        w.toggle_play()
        qtbot.waitUntil(lambda: "click" in w.player.names, timeout=WAIT_MS)
        paused_at = w.player.position
        assert not w.player.playing and paused_at > 0.5
        w.toggle_play()
        qtbot.waitUntil(lambda: w.player.position > paused_at + 0.3, timeout=WAIT_MS)
        assert w.player.playing
    finally:
        gates.beats.set()
        model.gate.set()
        clock.stop()
        w.close()
