"""The window's practice controls (pytest-qt, offscreen, real widgets): tempo and key, beats (BPM, grid,
snap, nudge), metronome strip, count-in, loop trainer, markers, export at a tempo, About licences.

The song is a generated groove (drum bursts every 0.5 s: 120 BPM); the model is the tiny real
open-unmix network (conftest ``tiny_umx``); the player is the real :class:`StemPlayer` without an
audio stream and with its stretch producer run in the callback (``stretch_thread=False``), so the
test drives it block by block with :meth:`StemPlayer.process`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("pytestqt")

from conftest import make_song
from PySide6.QtGui import QKeySequence
from test_ui import WAIT_MS, Harness

from unmix_desktop.audio.io import save_audio
from unmix_desktop.audio.player import StemPlayer
from unmix_desktop.ui.dialogs import about_html
from unmix_desktop.ui.strips import db_to_fader

SR = 44100
BLOCK = 512


def _player(device):
    return StemPlayer(device=device, open_stream=False, stretch_thread=False)


@pytest.fixture
def groove(tmp_path) -> Path:
    path = tmp_path / "Groove.wav"
    save_audio(path, make_song(8.0)["mixture"], subtype="FLOAT")
    return path


def _open(qtbot, tmp_path, tiny_umx, path) -> Harness:
    h = Harness(qtbot, tmp_path, tiny_umx, player_factory=_player)
    h.drop_and_wait(path)
    ctl = h.window.practice_ctl
    qtbot.waitUntil(lambda: ctl.grid is not None and "click" in h.window.player.names, timeout=WAIT_MS)
    return h


def _render(player: StemPlayer, seconds: float) -> np.ndarray:
    frames = int(seconds * SR) // BLOCK * BLOCK
    out = np.zeros((frames, 2), np.float32)
    for start in range(0, frames, BLOCK):
        player.process(out[start:start + BLOCK])
    return out


def _key(h: Harness, seq: str) -> None:
    h.qtbot.keySequence(h.window, QKeySequence(seq))


def test_tempo_and_key_controls_reach_session_player_title_and_persist(qtbot, tmp_path, tiny_umx, groove):
    h = _open(qtbot, tmp_path, tiny_umx, groove)
    w, bar = h.window, h.window.song_page.transport.practice
    assert bar.tempo_spin.minimum() == 25 and bar.tempo_spin.maximum() == 200 and bar.tempo_spin.singleStep() == 5
    bar.tempo_spin.setValue(80)
    assert w.session.get("tempo.ratio") == pytest.approx(0.8) and w.player.tempo == pytest.approx(0.8)
    assert "Tempo 80 %" in w.windowTitle()
    _key(h, "-")
    assert w.player.tempo == pytest.approx(0.75) and bar.tempo_spin.value() == 75
    _key(h, "=")
    _key(h, "=")
    assert w.session.get("tempo.ratio") == pytest.approx(0.85) and w.player.tempo == pytest.approx(0.85)
    assert "Tempo 85 %" in w.status_label.text()
    _key(h, "Backspace")
    assert w.player.tempo == 1.0 and bar.tempo_spin.value() == 100 and "Tempo" not in w.windowTitle()
    bar.key_spin.setValue(-2)
    bar.cents_spin.setValue(10)
    assert w.player.key == (-2, 10) and (w.session.get("key.semitones"), w.session.get("key.cents")) == (-2, 10)
    assert "Key −2 st +10 ¢" in w.windowTitle()
    _key(h, "Ctrl+=")
    assert w.player.key == (-1, 10) and bar.key_spin.text() == "−1 st"
    bar.key_reset_button.click()
    assert w.player.key == (0, 0) and bar.cents_spin.value() == 0
    _key(h, "Ctrl+-")
    _key(h, "Ctrl+-")
    assert w.player.key == (-2, 0)

    # the position stays in song time: 2 s of output at tempo 0.5 play 1 s of the song
    bar.tempo_spin.setValue(50)
    w.seek(1.0)
    w.toggle_play()
    _render(w.player, 2.0)
    assert w.player.position == pytest.approx(2.0, abs=0.12)
    w.toggle_play()

    # saved with the session and restored (player too) when the song is opened again
    bar.tempo_spin.setValue(80)
    w.save_session()
    w.close()
    h2 = _open(qtbot, tmp_path, tiny_umx, groove)
    w2 = h2.window
    assert w2.session.get("tempo.ratio") == pytest.approx(0.8) and w2.player.tempo == pytest.approx(0.8)
    assert w2.player.key == (-2, 0) and w2.song_page.transport.practice.tempo_spin.value() == 80
    w2.close()


def test_beats_in_a_worker_grid_drawn_cached_snap_and_nudge(qtbot, tmp_path, tiny_umx, groove):
    h = Harness(qtbot, tmp_path, tiny_umx, player_factory=_player)
    w, ctl = h.window, h.window.practice_ctl
    with qtbot.waitSignal(w.song_loaded, timeout=WAIT_MS):
        h.drop(groove)
    assert ctl.task is not None and ctl.grid is None  # estimated in a worker after the song is shown
    assert w.song_page.transport.practice.bpm_label.text() == "… BPM"
    qtbot.waitUntil(lambda: ctl.grid is not None, timeout=WAIT_MS)
    assert ctl.grid.bpm == pytest.approx(120.0, rel=0.01)
    assert w.song_page.transport.practice.bpm_label.text() == f"{ctl.grid.bpm:.1f} BPM"
    qtbot.waitUntil(lambda: w.song_page.tracks.is_built, timeout=WAIT_MS)  # (the beats may come first)
    lane = w.song_page.tracks.lanes["mixture"]
    # beats and bar lines, one curve item each; drawn when the lane's plot exists, which on a loaded machine
    # can be after the grid arrives (the lane keeps the grid and draws it then): wait, do not race it
    qtbot.waitUntil(lambda: len(lane.grid_items) == 2, timeout=WAIT_MS)
    xs = np.concatenate([item.getData()[0] for item in lane.grid_items])
    assert xs.size == 2 * len(ctl.grid.beats)
    path = ctl.beats_path(w.song.content_hash)
    assert path.exists()

    # snap A and B to the beats, nudge them by a beat
    beats = np.asarray(ctl.grid.beats)
    _key(h, "Ctrl+G")
    assert ctl.snap and w.song_page.transport.practice.snap_button.isChecked()
    w.seek(2.13)
    _key(h, "[")
    a = w.session.get("loop.a")
    assert np.min(np.abs(beats - a)) < 1e-6 and abs(a - 2.13) < 0.26
    w.seek(5.9)
    _key(h, "]")
    b = w.session.get("loop.b")
    assert np.min(np.abs(beats - b)) < 1e-6 and w.player.loop == pytest.approx((a, b), abs=1e-4)
    _key(h, "Ctrl+Right")
    assert w.session.get("loop.a") == pytest.approx(a + 0.5, abs=0.02)
    _key(h, "Ctrl+Shift+Left")
    assert w.session.get("loop.b") == pytest.approx(b - 0.5, abs=0.02)
    assert w.player.loop == pytest.approx((a + 0.5, b - 0.5), abs=0.02)
    w.close()

    # opened again: the beats come from the cache, no worker
    h2 = Harness(qtbot, tmp_path, tiny_umx, player_factory=_player)
    h2.drop_and_wait(groove)
    c2 = h2.window.practice_ctl
    assert c2.task is None and c2.grid.bpm == pytest.approx(ctl.grid.bpm)
    assert "click" in h2.window.player.names
    h2.window.close()


def test_metronome_strip_and_count_in(qtbot, tmp_path, tiny_umx, groove):
    h = _open(qtbot, tmp_path, tiny_umx, groove)
    w, bar = h.window, h.window.song_page.transport.practice
    strip = bar.metronome
    assert strip.isEnabled() and strip.muted and w.player.mix_state().mute["click"]
    silent = _render_from(w, 0.0, 1.0)
    strip.button.click()  # click on
    assert not w.session.get("click.mute") and not w.player.mix_state().mute["click"]
    strip.fader.setValue(db_to_fader(-12.0))
    assert w.session.get("click.gain_db") == pytest.approx(-12.0, abs=0.1)
    assert w.player.mix_state().gain_db["click"] == pytest.approx(-12.0, abs=0.1)
    with_click = _render_from(w, 0.0, 1.0)
    assert np.abs(with_click - silent).max() > 0.01  # the clicks are heard
    w.session.set_solo("vocals", True)  # a solo does not silence the click
    assert w.player.mix_state().audible("click")
    w.session.set_solo("vocals", False)
    _key(h, "C")
    assert w.player.mix_state().mute["click"] and not strip.button.isChecked()

    # count-in: one bar at the stretched tempo before the song starts from a stop
    bar.count_in_button.click()
    assert w.session.get("click.count_in")
    bar.tempo_spin.setValue(80)
    w.transport_ctl.stop()
    bar_s = 4 * 60 / (w.practice_ctl.grid.bpm * 0.8)
    click = w.practice_ctl.count_in_audio()
    assert click.shape[0] == pytest.approx(bar_s * SR, abs=2)
    w.toggle_play()
    _render(w.player, bar_s - 0.3)
    assert w.player.position < 0.05  # still counting in
    _render(w.player, 1.0)
    assert w.player.position > 0.3
    w.toggle_play()
    assert w.practice_ctl.count_in_audio() is None  # paused mid-song: resume without a count-in
    _key(h, "Shift+C")
    assert not w.session.get("click.count_in")
    w.close()


def _render_from(w, start: float, seconds: float) -> np.ndarray:
    w.seek(start)
    w.player.play()
    out = _render(w.player, seconds)
    w.player.pause()
    _render(w.player, 0.05)
    return out


def test_loop_trainer_raises_the_tempo_after_each_pass(qtbot, tmp_path, tiny_umx, groove):
    h = _open(qtbot, tmp_path, tiny_umx, groove)
    w, bar, ctl = h.window, h.window.song_page.transport.practice, h.window.practice_ctl
    _key(h, "Ctrl+L")
    assert ctl.trainer is None and "loop first" in w.last_notice[1]  # no loop yet
    w.session.set_loop_a(1.0)
    w.session.set_loop_b(2.0)
    bar.trainer_start.setValue(70)
    bar.trainer_step.setValue(10)
    bar.trainer_target.setValue(90)
    bar.trainer_button.click()
    assert ctl.trainer is not None and w.player.tempo == pytest.approx(0.7)
    assert bar.trainer_label.text() == "70 % → 90 %"
    w.seek(1.0)
    w.toggle_play()
    tempos = []
    for _ in range(int(8.0 * SR / BLOCK)):
        out = np.zeros((BLOCK, 2), np.float32)
        w.player.process(out)
        w.transport_ctl.tick()
        if not tempos or tempos[-1] != w.player.tempo:
            tempos.append(w.player.tempo)
    w.toggle_play()
    assert tempos == pytest.approx([0.7, 0.8, 0.9])
    assert w.player.loop_passes >= 2 and bar.trainer_label.text() == "90 % → 90 %"
    assert 1.0 <= w.player.position <= 2.0
    # count-in also when playback starts from A (not from anywhere else in the song)
    w.session.set("click.count_in", True)
    w.seek(1.5)
    assert w.practice_ctl.count_in_audio() is None
    w.seek(1.0)
    click = w.practice_ctl.count_in_audio()
    assert click is not None and click.shape[0] == pytest.approx(4 * 60 / (ctl.grid.bpm * 0.9) * SR, abs=2)
    _key(h, "Ctrl+L")
    assert ctl.trainer is None and bar.trainer_label.text() == ""
    w.close()


def test_markers_add_rename_jump_and_persist(qtbot, tmp_path, tiny_umx, groove):
    h = _open(qtbot, tmp_path, tiny_umx, groove)
    w, ctl = h.window, h.window.practice_ctl
    w.seek(3.0)
    _key(h, "Ctrl+M")
    w.seek(1.0)
    w.song_page.transport.practice.marker_button.click()
    assert w.session.get("markers") == [{"t": 1.0, "label": "Marker 2"}, {"t": 3.0, "label": "Marker 1"}]
    lane = w.song_page.tracks.lanes["mixture"]
    assert [m.value() for m in lane.marker_items] == [1.0, 3.0]
    _key(h, "F2")  # rename the marker at the play head through the dialog
    dialog = ctl.rename_dialog
    assert dialog.isVisible() and dialog.textValue() == "Marker 2"
    dialog.setTextValue("Verse")
    dialog.accept()
    assert w.session.get("markers")[0]["label"] == "Verse"
    assert lane.marker_items[0].label.toPlainText() == "Verse"
    w.seek(0.0)
    _key(h, ".")
    assert w.player.position == pytest.approx(1.0)
    _key(h, ".")
    assert w.player.position == pytest.approx(3.0)
    _key(h, ",")
    assert w.player.position == pytest.approx(1.0)
    ctl.jump_to(1)
    assert w.player.position == pytest.approx(3.0)
    w.save_session()
    w.close()
    h2 = _open(qtbot, tmp_path, tiny_umx, groove)
    assert h2.window.session.get("markers") == [{"t": 1.0, "label": "Verse"}, {"t": 3.0, "label": "Marker 1"}]
    assert len(h2.window.song_page.tracks.lanes["vocals"].marker_items) == 2
    h2.window.close()


def test_export_uses_the_current_tempo_and_key(qtbot, tmp_path, tiny_umx, groove):
    h = _open(qtbot, tmp_path, tiny_umx, groove)
    w = h.window
    w.song_page.transport.practice.tempo_spin.setValue(80)
    dialog = w.show_export()
    assert "tempo 80 %" in dialog.stretch_label.text() and dialog.stretch_label.isVisibleTo(dialog)
    dialog.folder_edit.setText(str(tmp_path / "out"))
    dialog.stems_check.setChecked(False)
    dialog.karaoke_check.setChecked(True)
    dialog.mix_check.setChecked(True)
    task = dialog.start_export()
    with qtbot.waitSignal(task.finished, timeout=WAIT_MS):
        pass
    assert len(dialog.written) == 2
    for path in dialog.written:
        info = sf.info(str(path))
        assert info.frames / SR == pytest.approx(w.song.duration * 1.25, abs=0.01), path
    w.close()


def test_about_lists_third_party_licences():
    text = about_html("tiny", {"name": "tiny"})
    for needle in ("GPL-3.0-or-later", "Rubber Band", "GPL-2.0-or-later", "Spleeter", "LGPL-3.0", "PyTorch",
                   "norbert", "soxr", "sounddevice", "pyqtgraph", "swift-f0", "mutagen"):
        assert needle in text, needle


def test_practice_shortcuts_are_registered_once(qtbot, tmp_path, tiny_umx):
    from PySide6.QtGui import QAction

    h = Harness(qtbot, tmp_path, tiny_umx, player_factory=_player)
    keys = [a.shortcut().toString() for a in h.window.findChildren(QAction) if not a.shortcut().isEmpty()]
    assert len(keys) == len(set(keys))
    assert {"-", "=", "Backspace", "Ctrl+-", "Ctrl+=", "Ctrl+Backspace", "Ctrl+G", "C", "Shift+C", "Ctrl+L",
            "Ctrl+M", "F2", ",", ".", "Ctrl+Left", "Ctrl+Shift+Right"} <= set(keys)
    h.window.close()


WINDOW_ON_NULL_DEVICE = r"""
import json, os, sys, tempfile, time
from pathlib import Path
tmp = Path(tempfile.mkdtemp(prefix="unmix-practice-"))
os.environ["QT_QPA_PLATFORM"] = "offscreen"
for var in ("UNMIX_DATA_DIR", "UNMIX_CACHE_DIR", "UNMIX_CONFIG_DIR"):
    os.environ[var] = str(tmp / var)
import numpy as np, torch
sys.path.insert(0, "tests")
from conftest import make_song
from PySide6.QtWidgets import QApplication
from unmix_desktop.audio.io import save_audio
from unmix_desktop.audio.player import StemPlayer
from unmix_desktop.cache import StemCache
from unmix_desktop.separation.model import MultiTargetUMX, OpenUnmix
from unmix_desktop.ui.main_window import MainWindow
from unmix_desktop.ui.settings import AppSettings

torch.manual_seed(0)
model = MultiTargetUMX({"vocals": OpenUnmix(hidden_size=16, nb_layers=1, max_bin=128)}, card={"name": "tiny"}).eval()
app = QApplication([])
w = MainWindow(settings=AppSettings(tmp / "s.ini"), model_loader=lambda name: model, models=[("tiny", "tiny")],
               default_model="tiny", player_factory=lambda device: StemPlayer(device=device),
               stem_cache=StemCache(tmp / "cache"))
w.show()
song = tmp / "groove.wav"
save_audio(song, make_song(8.0)["mixture"])

def run(seconds, until=None):
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (until and until()):
        app.processEvents()
        time.sleep(0.005)

w.open_song(song)
run(60, lambda: w.practice_ctl.grid is not None and "click" in w.player.names)
bar = w.song_page.transport.practice
w.session.set("click.mute", False)
w.toggle_play()
run(0.4)
bar.tempo_spin.setValue(75)
run(0.4)
bar.key_spin.setValue(-2)
run(0.4)
bar.tempo_spin.setValue(120)
run(0.4)
pos, playing = w.player.position, w.player.playing
w.toggle_play()
run(0.2)
print(json.dumps({"available": w.player.available, "reason": w.player.unavailable_reason, "playing": playing,
                  "underruns": w.player.underruns, "pos": pos, "tempo": w.player.tempo,
                  "key": list(w.player.key), "stretching": w.player.stretching,
                  "error": w.player.callback_error}))
w.close()
"""


@pytest.mark.serial  # real time / wall-clock bound: runs alone (make test)
def test_window_tempo_and_key_changes_on_a_real_stream():
    """The window with a real PortAudio stream (ALSA null device, unclocked): tempo and key changed
    mid-play from the practice row reach the playing stream, with no PortAudio underrun and no callback error."""
    from test_player_stream import needs_portaudio, run_python

    if needs_portaudio.args[0]:
        pytest.skip("libportaudio2 is not installed")
    r = run_python(WINDOW_ON_NULL_DEVICE, timeout=180)
    if not r["available"]:
        pytest.skip(f"no output device: {r['reason']}")
    assert r["error"] is None and r["underruns"] == 0
    assert r["tempo"] == pytest.approx(1.2) and r["key"] == [-2, 0] and r["stretching"]
    assert r["pos"] > 0.2  # the null device is not clocked: the song may have played to its end


def test_beats_found_while_playing_join_the_player_at_the_next_pause(qtbot, tmp_path, tiny_umx, groove):
    h = Harness(qtbot, tmp_path, tiny_umx, player_factory=_player)
    w, ctl = h.window, h.window.practice_ctl
    with qtbot.waitSignal(w.song_loaded, timeout=WAIT_MS):
        h.drop(groove)
    w.seek(2.0)
    assert w.player.playing  # a song starts playing when it opens (issue 21)
    qtbot.waitUntil(lambda: ctl.grid is not None, timeout=WAIT_MS)
    w.transport_ctl.tick()
    assert w.player.playing and "click" not in w.player.names  # never reloaded under the music
    _render(w.player, 0.5)
    w.toggle_play()
    _render(w.player, 0.05)
    pos = w.player.position
    w.transport_ctl.tick()
    assert "click" in w.player.names and w.player.position == pytest.approx(pos, abs=1e-3)
    w.close()
