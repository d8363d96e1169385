"""The window on the session model: the defects a new user hit (issue 12), each with the user's steps on
real widgets (pytest-qt offscreen), a real StemPlayer rendered by the test, real files and the cache."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("pytestqt")

from conftest import make_song
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QFileDialog, QWidget
from test_ui import WAIT_MS, Harness, _render

from unmix_desktop.separation.separator import Separator
from unmix_desktop.ui.dialogs import Preferences
from unmix_desktop.ui.strips import db_to_fader

SR = 44100


def _close_dialogs(window) -> None:
    for dialog in window.findChildren(QDialog):
        if dialog.isVisible():
            dialog.reject()
    window.activateWindow()  # what a window manager does when a dialog closes (offscreen has none)


def test_every_menu_then_every_shortcut(harness, song_path, monkeypatch):
    """Defect 1: opening the Mix menu registered K, 0 and M a second time, and then neither worked."""
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: ("", "")))
    w = harness.window
    harness.drop_and_wait(song_path)
    for menu_action in w.menuBar().actions():
        menu = menu_action.menu()
        menu.popup(w.mapToGlobal(QPoint(20, 20)))
        harness.qtbot.wait(20)
        assert menu.isVisible() and menu.actions()
        menu.hide()
    shortcuts = {}
    for action in w.findChildren(QAction):
        if not action.shortcut().isEmpty():
            key = action.shortcut().toString()
            assert key not in shortcuts, f"{key} is bound twice"
            shortcuts[key] = action
    assert {"K", "0", "M", "Space", "[", "]", "L", "1", "Alt+1", "Ctrl+E", "F1"} <= set(shortcuts)
    last = {"Ctrl+R", "Ctrl+Q"}
    for key, action in sorted(shortcuts.items()):
        if key in last:
            continue
        fired = []
        action.triggered.connect(lambda _=False, fired=fired: fired.append(1))
        harness.qtbot.keySequence(w, QKeySequence(key))
        _close_dialogs(w)
        assert fired == [1], f"shortcut {key} ({action.text()}) did not fire once"
    # and they do what they say, after the menus were opened
    harness.qtbot.keyClick(w, Qt.Key.Key_K)
    assert w.player.mix_state().mute["vocals"]
    harness.qtbot.keyClick(w, Qt.Key.Key_0)
    assert not w.player.mix_state().mute["vocals"]
    muted = w.player.mix_state().master_db == -math.inf
    harness.qtbot.keyClick(w, Qt.Key.Key_M)
    assert (w.player.mix_state().master_db == -math.inf) != muted
    with harness.qtbot.waitSignal(w.song_ready, timeout=WAIT_MS):
        harness.qtbot.keySequence(w, QKeySequence("Ctrl+R"))  # separate again
    quit_fired = []
    shortcuts["Ctrl+Q"].triggered.connect(lambda _=False: quit_fired.append(1))
    harness.qtbot.keySequence(w, QKeySequence("Ctrl+Q"))
    assert quit_fired == [1] and not w.isVisible()


def test_loop_set_while_playing_takes_effect_on_the_first_pass(harness, song_path):
    """Defect 2: ``]`` at the play head while playing: the head is already past B, so it played on."""
    w = harness.window
    harness.drop_and_wait(song_path)
    w.seek(1.0)
    harness.qtbot.keyClick(w, Qt.Key.Key_BracketLeft)
    harness.qtbot.keyClick(w, Qt.Key.Key_Space)
    assert w.player.playing
    _render(w.player, int(1.5 * SR))  # play from 1.0 s to 2.5 s
    harness.qtbot.keyClick(w, Qt.Key.Key_BracketRight)
    assert w.player.loop == pytest.approx((1.0, 2.5), abs=0.02)
    positions = []
    for _ in range(40):  # 40 x 1024 frames: about 0.9 s more
        _render(w.player, 1024)
        positions.append(w.player.position)
    assert max(positions) <= 2.5 + 1e-3  # looping now, not after the end of the song
    assert min(positions) < 1.5


@pytest.mark.serial  # real time / wall-clock bound: runs alone (make test)
def test_closing_during_a_separation_is_instant(qtbot, tmp_path, tiny_umx, song_path):
    """Defect 3: closing waited for the worker (up to 5 s); now the job is cancelled and abandoned."""
    release = threading.Event()

    def slow_loader(name):  # loading a model cannot be interrupted: the worker is busy for a while
        release.wait(3.0)
        return tiny_umx

    h = Harness(qtbot, tmp_path, tiny_umx)
    h.window.model_provider._loader = slow_loader
    w = h.window
    w.open_song(song_path)
    task = w.sep_task
    qtbot.waitUntil(lambda: task.running, timeout=30_000)  # the worker is busy loading (not a fixed 200 ms)
    t0 = time.perf_counter()
    w.close()
    closed_in = time.perf_counter() - t0
    print(f"window closed in {closed_in * 1000:.0f} ms during a separation")
    assert closed_in < 0.5 and not w.isVisible()
    assert task.cancel_event.is_set()
    release.set()
    qtbot.waitUntil(lambda: task.ended_at is not None, timeout=10_000)
    assert task.outcome == "cancelled"  # the worker finished cancelling on its own
    assert h.cache.entries() == []


def _inside(widget: QWidget, window: QWidget) -> bool:
    top_left = widget.mapTo(window, QPoint(0, 0))
    rect = widget.rect().translated(top_left)
    return window.rect().contains(rect)


def _text_fits(label) -> bool:
    return label.fontMetrics().horizontalAdvance(label.text()) <= label.contentsRect().width()


def test_layout_at_the_minimum_size_and_at_900x600(harness, song_path):
    """Defect 4: at 640x400 the time, loop and mix controls were clipped and M/S covered the dB label;
    at 900x600 the seek bar shrank to ~60 px once a loop was set."""
    w = harness.window
    harness.drop_and_wait(song_path)
    w.seek(1.0)
    harness.qtbot.keyClick(w, Qt.Key.Key_BracketLeft)
    w.seek(3.5)
    harness.qtbot.keyClick(w, Qt.Key.Key_BracketRight)
    t = w.song_page.transport
    for size in ((640, 400), (900, 600)):
        w.resize(*size)
        harness.qtbot.wait(50)
        assert (w.width(), w.height()) == size
        for widget in (t.time_label, t.a_button, t.b_button, t.loop_button, t.loop_label, t.presets,
                       t.play_button, w.song_page.export_button, w.song_page.model_badge):
            assert widget.isVisible() and _inside(widget, w), widget
            assert widget.width() >= widget.minimumSizeHint().width(), widget
        assert _text_fits(t.time_label) and _text_fits(t.loop_label) and t.loop_label.text()
        assert t.seek.width() >= 160
        for strip in w.song_page.tracks.strips.values():
            label = strip.gain_label.geometry()
            for button in (strip.mute_button, strip.solo_button):
                assert not button.geometry().intersects(label)
            assert strip.height() >= strip.minimumSizeHint().height()
    assert t.seek.width() >= 400  # 900 px wide: the loop and mix controls went to a second row


def test_mix_box_export_memory_meters_and_model_badge(harness, song_path, tmp_path):
    """Defect 5: "Custom" after a fader move; the Export dialog remembers; meters dark while paused;
    the model label opens the model's card."""
    w = harness.window
    harness.drop_and_wait(song_path)
    t = w.song_page.transport
    assert t.presets.currentData() == "full"
    w.song_page.tracks.strips["vocals"].fader.setValue(db_to_fader(-6.0))
    assert t.presets.currentText() == "Custom"
    harness.qtbot.keyClick(w, Qt.Key.Key_K)  # a preset is a whole mix: faders back at 0 dB
    assert t.presets.currentData() == "karaoke" and w.player.mix_state().gain_db["vocals"] == 0.0

    dialog = w.show_export()
    dialog.stems_check.setChecked(False)
    dialog.mix_check.setChecked(True)
    dialog.open_check.setChecked(False)
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("flac"))
    dialog.folder_edit.setText(str(tmp_path / "out"))
    dialog.folder_edit.editingFinished.emit()
    dialog.reject()
    again = w.show_export()
    assert not again.stems_check.isChecked() and again.mix_check.isChecked() and not again.open_check.isChecked()
    assert again.fmt == "flac" and again.folder_edit.text() == str(tmp_path / "out")
    again.reject()

    meter = w.song_page.tracks.strips["accompaniment"].meter
    harness.qtbot.keyClick(w, Qt.Key.Key_Space)
    _render(w.player, 8192)
    w._tick()
    assert meter.lit
    harness.qtbot.keyClick(w, Qt.Key.Key_Space)
    _render(w.player, 1024)
    w._tick()
    assert not w.player.playing and not meter.lit

    badge = w.song_page.model_badge
    assert "tiny" in badge.text()
    harness.qtbot.mouseClick(badge, Qt.MouseButton.LeftButton)
    assert w.about_dialog.isVisible() and "tiny" in w.about_dialog.text.toPlainText()
    w.about_dialog.close()


def test_two_to_four_stems_reuses_the_cache_and_keeps_the_mix(harness, song_path, monkeypatch):
    """Defect 6: switching to four stems ran the network again and reset every fader."""
    w = harness.window
    harness.drop_and_wait(song_path)
    calls = []
    real = Separator.separate
    monkeypatch.setattr(Separator, "separate", lambda self, *a, **k: (calls.append(1), real(self, *a, **k))[1])
    w.song_page.tracks.strips["vocals"].fader.setValue(db_to_fader(-6.0))
    w.song_page.tracks.strips["accompaniment"].pan.setValue(30)
    w.seek(1.0)
    harness.qtbot.keyClick(w, Qt.Key.Key_BracketLeft)
    w.seek(2.0)
    harness.qtbot.keyClick(w, Qt.Key.Key_BracketRight)
    with harness.qtbot.waitSignal(w.song_ready, timeout=WAIT_MS):
        w.apply_preferences(Preferences("tiny", 1, True, "wav", None))
    assert list(w.song.stems) == ["vocals", "drums", "bass", "other"]
    assert calls == []  # the network did not run again
    assert w.player.mix_state().gain_db["vocals"] == pytest.approx(-6.0, abs=0.1)
    assert w.player.mix_state().pan["drums"] == pytest.approx(0.3)
    assert w.song_page.tracks.strips["vocals"].fader.value() == db_to_fader(-6.0)
    assert w.player.loop == pytest.approx((1.0, 2.0))


def test_random_bytes_mp3_is_a_decode_failure(harness, tmp_path):
    """Defect 7: "File does not exist ... (possibly a pipe?)" and "Separation failed" for a decode failure."""
    w = harness.window
    bad = tmp_path / "noise.mp3"
    bad.write_bytes(np.random.default_rng(1).integers(0, 256, 40_000, dtype=np.uint8).tobytes())
    with harness.qtbot.waitSignal(w.separation_failed, timeout=WAIT_MS) as blocker:
        harness.drop(bad)
    message = blocker.args[0]
    assert str(bad) in message and "cannot decode" in message and "pipe" not in message
    assert w.status_label.text() == "Could not decode noise.mp3"
    assert w.notice.isVisible() and w.last_notice == ("error", message)
    # a folder without songs is shown the same way (a folder with songs goes to the queue)
    empty = tmp_path / "empty"
    empty.mkdir()
    harness.drop(empty)
    assert w.notice.isVisible() and w.last_notice[0] == "error" and "is a folder" in w.last_notice[1]


def test_export_current_mix_while_the_output_is_muted(harness, song_path, tmp_path):
    w = harness.window
    harness.drop_and_wait(song_path)
    harness.qtbot.keyClick(w, Qt.Key.Key_M)
    assert w.player.mix_state().master_db == -math.inf
    assert w.song_page.tracks.master.mute_button.isChecked()
    dialog = w.show_export()
    dialog.folder_edit.setText(str(tmp_path / "out"))
    dialog.stems_check.setChecked(False)
    dialog.karaoke_check.setChecked(False)
    dialog.mix_check.setChecked(True)
    dialog.start_export()
    harness.qtbot.waitUntil(lambda: len(dialog.written) == 1, timeout=WAIT_MS)
    audio, _ = sf.read(dialog.written[0], dtype="float32")
    rms = float(np.sqrt(np.mean(audio ** 2)))
    print(f"current mix exported while muted: RMS {rms:.4f}")
    assert rms > 0.01
    dialog.close()


def test_the_mix_survives_reopening(qtbot, tmp_path, tiny_umx, song_path):
    h = Harness(qtbot, tmp_path, tiny_umx)
    w = h.window
    with qtbot.waitSignal(w.song_ready, timeout=WAIT_MS):
        w.open_song(song_path)
    w.song_page.tracks.strips["vocals"].fader.setValue(db_to_fader(-12.0))
    qtbot.mouseClick(w.song_page.tracks.strips["accompaniment"].solo_button, Qt.MouseButton.LeftButton)
    w.song_page.tracks.strips["accompaniment"].pan.setValue(-50)
    w.song_page.tracks.master.fader.setValue(db_to_fader(-3.0))
    w.seek(0.5)
    qtbot.keyClick(w, Qt.Key.Key_BracketLeft)
    w.seek(1.5)
    qtbot.keyClick(w, Qt.Key.Key_BracketRight)
    w.session.set("markers", [{"t": 0.5, "label": "verse"}])
    saved = w.session.to_dict()
    w.close()

    h2 = Harness(qtbot, tmp_path, tiny_umx)
    w2 = h2.window
    with qtbot.waitSignal(w2.song_ready, timeout=WAIT_MS):
        w2.open_song(song_path)
    assert w2.song.from_cache
    assert w2.session.to_dict()["stems"] == saved["stems"]
    assert w2.session.get("master.gain_db") == pytest.approx(-3.0, abs=0.1)
    assert w2.session.loop == pytest.approx((0.5, 1.5)) and w2.player.loop == pytest.approx((0.5, 1.5))
    assert w2.session.get("markers") == [{"t": 0.5, "label": "verse"}]
    state = w2.player.mix_state()
    assert state.gain_db["vocals"] == pytest.approx(-12.0, abs=0.1) and state.solo["accompaniment"]
    strip = w2.song_page.tracks.strips["accompaniment"]
    assert strip.solo_button.isChecked() and strip.pan.value() == -50
    w2.close()


def test_switching_the_output_device_keeps_song_mix_and_position(qtbot, tmp_path, tiny_umx, song_path):
    from unmix_desktop.audio.player import StemPlayer

    devices = []

    def factory(device):
        devices.append(device)
        return StemPlayer(device=device, open_stream=False)

    h = Harness(qtbot, tmp_path, tiny_umx, player_factory=factory)
    w = h.window
    with qtbot.waitSignal(w.song_ready, timeout=WAIT_MS):
        w.open_song(song_path)
    w.song_page.tracks.strips["vocals"].fader.setValue(db_to_fader(-9.0))
    qtbot.keyClick(w, Qt.Key.Key_M)  # output muted: a monitoring setting, kept too
    w.seek(2.0)
    old = w.player
    w.apply_preferences(Preferences("tiny", 1, False, "wav", "Other device"))
    assert devices == [None, "Other device"] and w.player is not old
    assert w.player.names[:2] == ("vocals", "accompaniment") and w.player.position == pytest.approx(2.0)
    assert w.player.mix_state().gain_db["vocals"] == pytest.approx(-9.0, abs=0.1)
    assert w.player.mix_state().master_db == -math.inf and w.monitor.device == "Other device"
    assert h.settings.audio_device == "Other device"
    w.session.set_mute("accompaniment", True)  # the new player follows the session
    assert w.player.mix_state().mute["accompaniment"]
    w.close()


def test_the_learned_splitter_is_chosen_in_preferences(harness, song_path):
    """Issue 14: the shipped drums/bass/other model is selectable in the window, beside the DSP split;
    the four stems it gives still sum to the song, and the DSP result stays cached apart."""
    w = harness.window
    harness.drop_and_wait(song_path)
    dialog = w.prefs_ctl.show_preferences()
    labels = [dialog.stems_combo.itemText(i) for i in range(dialog.stems_combo.count())]
    assert any("umx-synth4" in label for label in labels), labels
    dialog.stems_combo.setCurrentIndex(next(i for i, label in enumerate(labels) if "umx-synth4" in label))
    chosen = dialog.preferences()
    dialog.reject()
    assert chosen.four_stems and chosen.four_stem_model == "umx-synth4"
    with harness.qtbot.waitSignal(w.song_ready, timeout=WAIT_MS):
        w.apply_preferences(chosen)
    assert list(w.song.stems) == ["vocals", "drums", "bass", "other"]
    assert w.settings.four_stem_model == "umx-synth4"
    total = sum(w.song.stems.values())
    assert np.abs(total - w.song.mixture).max() < 1e-3
    learned_drums = w.song.stems["drums"].copy()
    with harness.qtbot.waitSignal(w.song_ready, timeout=WAIT_MS):
        w.apply_preferences(Preferences("tiny", 1, True, "wav", None, "dsp"))
    assert w.settings.four_stem_model == "dsp"
    assert not np.allclose(w.song.stems["drums"], learned_drums)  # a different split, not the cached one


def test_the_window_exports_at_the_songs_own_rate(harness, tmp_path):
    """Issue 17: a 48 kHz song's exported stems are 48 kHz and as long as the song, to the sample; a chosen
    rate (remembered with the export choices) overrides it."""
    import soxr

    w = harness.window
    mix = make_song(3.0)["mixture"]
    song48 = tmp_path / "song48.flac"
    n48 = 3 * 48000
    sf.write(song48, soxr.resample(mix, 44100, 48000)[:n48], 48000, subtype="PCM_24")
    harness.drop_and_wait(song48)
    dialog = w.show_export()
    assert dialog.rate_combo.currentData() == 0 and "48000" in dialog.rate_combo.currentText()
    dialog.folder_edit.setText(str(tmp_path / "own"))
    dialog.start_export()
    harness.qtbot.waitUntil(lambda: len(dialog.written) >= 2, timeout=WAIT_MS)
    for path in dialog.written:
        info = sf.info(path)
        assert (info.samplerate, info.frames) == (48000, n48), path
    dialog.close()
    dialog = w.show_export()
    dialog.rate_combo.setCurrentIndex(dialog.rate_combo.findData(44100))
    dialog.folder_edit.setText(str(tmp_path / "forced"))
    dialog.start_export()
    harness.qtbot.waitUntil(lambda: len(dialog.written) >= 2, timeout=WAIT_MS)
    assert {sf.info(p).samplerate for p in dialog.written} == {44100}
    dialog.close()
    assert w.settings.export_choices["rate"] == 44100
