"""The karaoke half of the window (issue 16), on real widgets (pytest-qt offscreen): lyrics from a
generated .lrc beside the song and from a FLAC tag following the player's song position (seek,
loop, tempo), the offset nudge saved with the session, the full-screen view, a malformed file
(what parses shown, one notice), the melody lane computed in a worker from a generated vocal and
shifted with the key, and Sing without a microphone / on the ALSA null device."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("pytestqt")

from conftest import make_song
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QKeySequence
from PySide6.QtWidgets import QFileDialog
from test_player_stream import needs_portaudio, run_python
from test_ui import WAIT_MS, Harness, _render

from unmix_desktop.audio.io import save_audio
from unmix_desktop.ui import theme
from unmix_desktop.ui.melody_lane import melody_cache_file

SR = 44100

LRC = """[ti:Generated]
[ar:Test]
[00:00.50]<00:00.50>one <00:00.90>two <00:01.30>three <00:01.45>
[00:01.50]second line here
[00:03.00]third line
"""


def _open(h: Harness, path) -> None:
    """Drop the song and wait for it and for its lyrics (read in a worker)."""
    h.drop_and_wait(path)
    h.qtbot.waitUntil(lambda: not h.window.lyrics_ctl.loading, timeout=WAIT_MS)


def _at(h: Harness, seconds: float) -> None:
    h.window.seek(seconds)
    h.window.karaoke_ctl.tick()


def test_lyrics_from_lrc_follow_position_seek_loop_and_tempo(harness, song_path):
    song_path.with_suffix(".lrc").write_text(LRC, "utf-8")
    w = harness.window
    _open(harness, song_path)
    pane = w.lyrics_ctl.pane
    assert pane.isVisible() and "My Song.lrc" in pane.title.text() and "word times" in pane.title.text()
    canvas = pane.canvas
    _at(harness, 0.0)
    assert canvas.current_text() == "" and canvas.next_text() == "one two three"
    _at(harness, 1.0)  # word by word: "two" is being sung
    assert canvas.current_text() == "one two three" and w.lyrics_ctl.state.word == 1
    assert 0.1 < w.lyrics_ctl.state.word_progress < 0.4
    assert canvas.next_text() == "second line here"
    _at(harness, 3.2)  # a seek forward
    assert canvas.current_text() == "third line"
    _at(harness, 1.6)  # and back
    assert canvas.current_text() == "second line here" and canvas.next_text() == "third line"
    # playback advances the song position: the timer tick follows it
    harness.qtbot.keyClick(w, Qt.Key.Key_Space)
    assert w.player.playing
    _render(w.player, int(1.6 * SR))  # 1.6 -> 3.2 s
    harness.qtbot.waitUntil(lambda: canvas.current_text() == "third line", timeout=2000)
    # a loop 1.5-2.5 s: rendering 1.5 s wraps back into the second line
    _at(harness, 1.6)
    w.session.set("loop.a", 1.5)
    w.session.set("loop.b", 2.5)
    w.session.set("loop.enabled", True)
    _render(w.player, int(1.5 * SR))
    harness.qtbot.waitUntil(lambda: canvas.current_text() == "second line here", timeout=2000)
    assert 1.5 <= w.player.position < 2.5
    w.session.set("loop.enabled", False)
    # at half tempo 2 s of output is 1 s of song: the lyrics follow song time, not wall time
    _at(harness, 0.0)
    w.player.set_tempo(0.5)
    frames = 0
    deadline = time.monotonic() + 20
    while w.player.position < 1.0 and time.monotonic() < deadline:
        _render(w.player, 2048)  # the stretcher runs in its own thread: pace the "device"
        frames += 2048
        time.sleep(0.002)
    w.karaoke_ctl.tick()
    assert 1.0 <= w.player.position < 1.45, w.player.position
    assert frames >= 1.8 * w.player.position * SR  # output ran about twice as long as the song
    assert canvas.current_text() == "one two three"
    # the pane painted the highlighted (vocals-coloured) part
    image = canvas.grab().toImage()
    colours = {image.pixelColor(x, y).name() for x in range(0, image.width(), 2) for y in range(0, image.height(), 2)}
    assert any(QColor(c).red() > 200 and QColor(c).green() < 140 for c in colours)


def test_lyrics_from_a_flac_tag(harness, tmp_path):
    from mutagen.flac import FLAC

    path = tmp_path / "Tagged.flac"
    sf.write(path, make_song(4.0)["mixture"], SR, subtype="PCM_16")
    tagged = FLAC(path)
    tagged["LYRICS"] = "[00:00.40]from the tag\n[00:02.00]tag line two\n"
    tagged.save()
    w = harness.window
    _open(harness, path)
    assert "LYRICS" in w.lyrics_ctl.pane.title.text()
    _at(harness, 2.5)
    assert w.lyrics_ctl.pane.canvas.current_text() == "tag line two"


def test_no_lyrics_says_so_quietly(harness, song_path):
    w = harness.window
    _open(harness, song_path)
    assert w.lyrics_ctl.lyrics is None and w.lyrics_ctl.reported == []
    assert "No lyrics" in w.lyrics_ctl.pane.canvas.note
    assert w.last_notice is None or w.last_notice[0] != "warning"
    # a small window keeps its lanes and transport: the melody lane, then the whole area, step aside
    area, lane = w.karaoke_ctl.area, w.melody_ctl.lane
    assert area.isVisible() and lane.isVisible()
    w.resize(1100, 680)
    harness.qtbot.waitUntil(lambda: not lane.isVisible(), timeout=2000)
    assert area.isVisible() and w.lyrics_ctl.pane.isVisible()
    w.resize(900, 600)
    harness.qtbot.waitUntil(lambda: not area.isVisible(), timeout=2000)
    assert w.song_page.transport.isVisible()
    w.resize(640, 400)
    harness.qtbot.wait(50)
    assert not area.isVisible() and w.song_page.transport.isVisible()
    w.resize(1320, 820)
    harness.qtbot.waitUntil(lambda: area.isVisible() and lane.isVisible(), timeout=2000)


def test_offset_nudge_is_saved_with_the_session(qtbot, tmp_path, tiny_umx, song_path):
    song_path.with_suffix(".lrc").write_text(LRC, "utf-8")
    h = Harness(qtbot, tmp_path, tiny_umx)
    w = h.window
    _open(h, song_path)
    _at(h, 1.45)
    assert w.lyrics_ctl.pane.canvas.current_text() == "one two three"
    for _ in range(2):  # the shortcut: lyrics 0.1 s later, twice
        qtbot.keySequence(w, QKeySequence("Ctrl+Alt+Right"))
    assert w.session.get("lyrics.offset_ms") == 200
    assert "+0.2 s" in w.lyrics_ctl.pane.offset_label.text()
    _at(h, 1.6)  # 1.6 s of song = 1.4 s of lyrics: still the first line
    assert w.lyrics_ctl.pane.canvas.current_text() == "one two three"
    w.lyrics_ctl.pane.earlier.click()
    assert w.session.get("lyrics.offset_ms") == 100
    w.close()
    # a new window on the same settings and cache: the offset is back
    h2 = Harness(qtbot, tmp_path, tiny_umx)
    _open(h2, song_path)
    assert h2.window.session.get("lyrics.offset_ms") == 100
    assert h2.window.lyrics_ctl.follower.offset_s == pytest.approx(0.1)
    assert "+0.1 s" in h2.window.lyrics_ctl.pane.offset_label.text()
    h2.window.close()


def test_full_screen_view_opens_follows_and_closes(harness, song_path):
    song_path.with_suffix(".lrc").write_text(LRC + "[00:03.60]\n", "utf-8")
    w = harness.window
    _open(harness, song_path)
    harness.qtbot.keySequence(w, QKeySequence("F11"))
    view = w.karaoke_ctl.view
    assert view is not None and view.isVisible() and view.isFullScreen()
    _at(harness, 3.1)
    assert view.current_text() == "third line" and view.position == pytest.approx(3.1, abs=0.05)
    image = view.grab().toImage()
    assert image.pixelColor(5, 5) == QColor("#07080b")
    harness.qtbot.keyClick(view, Qt.Key.Key_Escape)
    harness.qtbot.waitUntil(lambda: w.karaoke_ctl.view is None, timeout=2000)
    assert not view.isVisible()
    # the same shortcut toggles it on and off again
    harness.qtbot.keySequence(w, QKeySequence("F11"))
    assert w.karaoke_ctl.view is not None
    w.karaoke_ctl.toggle_full_screen()
    assert w.karaoke_ctl.view is None and w.page == "song"


def test_malformed_lyrics_show_what_parses_and_one_notice(harness, song_path, tmp_path, monkeypatch):
    bad = tmp_path / "bad.lrc"
    bad.write_bytes(b"[00:00.50]good one\n[00:xx.00]broken tag\nstray text\n[00:02.00]<00:02.0>good <00:01.00>two\n"
                    b"[99:99.99]bad time\n[00:03.00]good three\n")
    w = harness.window
    _open(harness, song_path)
    notices = []
    orig = w.notify
    monkeypatch.setattr(w, "notify", lambda text, level="info", timeout_ms=0: (notices.append((level, text)),
                                                                                orig(text, level, timeout_ms)))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(bad), "")))
    harness.qtbot.keySequence(w, QKeySequence("Ctrl+Shift+L"))  # File -> Open Lyrics...
    warnings = [n for n in notices if n[0] == "warning"]
    assert len(warnings) == 1 and "bad.lrc" in warnings[0][1] and "problem" in warnings[0][1]
    assert w.notice.isVisible()
    texts = [line.text for line in w.lyrics_ctl.lyrics.lines]
    assert texts == ["good one", "good two", "good three"]
    _at(harness, 3.1)
    assert w.lyrics_ctl.pane.canvas.current_text() == "good three"
    _at(harness, 0.6)  # moving on does not report again
    assert len([n for n in notices if n[0] == "warning"]) == 1
    assert w.session.get("lyrics.path") == str(bad.resolve())
    # a file that is not lyrics at all: one error, the lyrics shown stay
    binary = tmp_path / "noise.lrc"
    binary.write_bytes(bytes(range(256)) * 4)
    assert w.lyrics_ctl.open_file(binary) is False
    assert w.last_error and "noise.lrc" in w.last_error[1]
    assert [line.text for line in w.lyrics_ctl.lyrics.lines] == texts


def _vocal(seconds: float, sr: int = SR) -> np.ndarray:
    """A generated singer: A3 (220 Hz) for 1.5 s, a rest, then C#4 (277.2 Hz); float32 (n, 2)."""
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f0 = np.where(t < 1.5, 220.0, 277.18)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 6)) * 0.2
    x[(t > 1.5) & (t < 2.0)] = 0.0
    return np.stack([x, x], 1).astype(np.float32)


def test_melody_lane_draws_notes_of_the_vocals_and_follows_the_key(harness, song_path):
    w = harness.window
    _open(harness, song_path)
    ctl = w.melody_ctl
    harness.qtbot.waitUntil(lambda: ctl.task is None, timeout=WAIT_MS)  # the separated stem's melody
    # the song's vocals replaced by a generated singer: the lane computes its melody in a worker
    w.song = replace(w.song, stems={**w.song.stems, "vocals": _vocal(4.0)})
    cache_file = melody_cache_file(w)
    assert cache_file is not None and cache_file.parent.is_dir()
    cache_file.unlink(missing_ok=True)
    with harness.qtbot.waitSignal(ctl.ready, timeout=WAIT_MS):
        ctl.start()
        assert ctl.task is not None and ctl.task.running or ctl.contour is not None  # off the UI thread
    pitches = [n.midi for n in ctl.lane.notes]
    assert 57 in pitches and 61 in pitches, pitches      # A3, C#4
    assert cache_file.is_file()                          # cached with the stems
    _at(harness, 1.0)
    assert ctl.lane.position == pytest.approx(1.0, abs=0.05)
    assert [n.midi for n in ctl.lane.visible_notes()][:2] == [57, 61]

    def note_pixels() -> int:
        img = ctl.lane.grab().toImage()
        pink = QColor(theme.STEM_COLOURS["vocals"])
        hits = 0
        for x in range(0, img.width(), 3):
            for y in range(0, img.height(), 2):
                c = img.pixelColor(x, y)
                hits += abs(c.red() - pink.red()) < 60 and abs(c.green() - pink.green()) < 60 and c.blue() > 60
        return hits

    assert note_pixels() > 20
    w.session.set("key.semitones", 2)  # the key change shifts the lane
    assert [n.midi for n in ctl.lane.visible_notes()][:2] == [59, 63]
    assert note_pixels() > 20
    # a second start reads the cache
    with harness.qtbot.waitSignal(ctl.ready, timeout=WAIT_MS):
        ctl.start()
    assert [n.midi for n in ctl.lane.notes][:2] == [59, 63]


def test_sing_without_a_microphone_says_why_and_the_rest_keeps_working(qtbot, tmp_path, tiny_umx, song_path):
    from unmix_desktop.audio.mic import Microphone

    song_path.with_suffix(".lrc").write_text(LRC, "utf-8")
    h = Harness(qtbot, tmp_path, tiny_umx)
    w = h.window
    w.sing_ctl.mic_factory = lambda device: Microphone(device="no such microphone")
    _open(h, song_path)
    qtbot.keySequence(w, QKeySequence("Ctrl+Shift+S"))
    panel = w.sing_ctl.panel
    assert not w.sing_ctl.singing and not panel.button.isEnabled() and not panel.button.isChecked()
    assert "Microphone unavailable" in panel.reason.text() and panel.reason.isVisible()
    assert w.last_notice[0] == "warning" and "microphone unavailable" in w.last_notice[1]
    # everything else still works: seeking, the lyrics, the mix
    _at(h, 1.6)
    assert w.lyrics_ctl.pane.canvas.current_text() == "second line here"
    qtbot.keyClick(w, Qt.Key.Key_K)
    assert w.player.mix_state().mute["vocals"]
    w.close()


def test_scores_a_generated_singer_fed_through_the_window(harness, song_path):
    """The sing path without a device: readings fed as song times score per line and per song."""
    song_path.with_suffix(".lrc").write_text("[00:00.20]first\n[00:01.60]second\n[00:03.50]\n", "utf-8")
    w = harness.window
    _open(harness, song_path)
    harness.qtbot.waitUntil(lambda: w.melody_ctl.task is None, timeout=WAIT_MS)
    w.song = replace(w.song, stems={**w.song.stems, "vocals": _vocal(4.0)})
    melody_cache_file(w).unlink()  # the melody of the separated stem was cached: compute the new one
    with harness.qtbot.waitSignal(w.melody_ctl.ready, timeout=WAIT_MS):
        w.melody_ctl.start()
    sing = w.sing_ctl
    assert sing.scorer is not None
    times = np.arange(0.2, 1.4, 0.01)
    sing.add_sung(times, np.full(times.size, 110.0))        # an octave below A3: a hit
    times2 = np.arange(2.1, 3.4, 0.01)
    sing.add_sung(times2, np.full(times2.size, 300.0))      # ~140 cents off C#4: a miss
    _at(harness, 0.5)
    sing._score_lines(False, 0.5)
    _at(harness, 2.0)
    sing._score_lines(False, 2.0)
    assert sing.line_scores[0] == pytest.approx(1.0)
    assert "100 %" in sing.panel.line_score.text()
    _at(harness, 3.6)
    sing._score_lines(False, 3.6)
    assert sing.line_scores[1] == pytest.approx(0.0)
    assert 0.4 < sing.song_score < 0.6
    assert len(w.melody_ctl.lane.live) == times.size + times2.size


SING_ON_NULL = r"""
import json, os, sys, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
sys.path.insert(0, "tests")
from PySide6.QtWidgets import QApplication
app = QApplication([])
from unmix_desktop.audio.player import StemPlayer
from unmix_desktop.cache import StemCache
from unmix_desktop.ui.main_window import MainWindow
from unmix_desktop.ui.settings import AppSettings
import tempfile
tmp = tempfile.mkdtemp()
w = MainWindow(settings=AppSettings(tmp + "/s.ini"), model_loader=lambda n: None, models=[("tiny", "")],
               default_model="tiny", player_factory=lambda d: StemPlayer(device=d, open_stream=False),
               stem_cache=StemCache(tmp + "/cache"))
w.show()
ok = w.sing_ctl.start()
end = time.monotonic() + 30  # until > 10 readings (not a fixed second, which a loaded machine can miss)
while ok and time.monotonic() < end and (w.sing_ctl.mic is None or w.sing_ctl.mic.count <= 10):
    app.processEvents()
    time.sleep(0.01)
mic = w.sing_ctl.mic
r = {"started": ok, "singing": w.sing_ctl.singing, "count": mic.count if mic else 0,
     "latency": mic.latency_s if mic else None, "reason": w.sing_ctl.reason,
     "meter_enabled": w.sing_ctl.panel.meter.isEnabled(), "checked": w.sing_ctl.panel.button.isChecked()}
w.sing_ctl.toggle()
r["stopped"] = not w.sing_ctl.singing and w.sing_ctl.mic is None
w.close()
print(json.dumps(r))
"""


@needs_portaudio
def test_sing_opens_a_real_input_stream_on_the_null_device():
    r = run_python(SING_ON_NULL)
    assert r["started"] and r["singing"] and r["checked"] and r["meter_enabled"] and r["reason"] is None, r
    assert r["count"] > 10 and r["stopped"]
    assert r["latency"] < 0.1


def test_countdown_dots_before_a_line_after_a_long_pause(harness, tmp_path):
    path = tmp_path / "Long.wav"
    save_audio(path, make_song(9.0)["mixture"], subtype="FLOAT")
    path.with_suffix(".lrc").write_text("[00:00.30]intro line\n[00:01.20]\n[00:07.50]after the pause\n", "utf-8")
    w = harness.window
    _open(harness, path)
    view = w.karaoke_ctl.open_full_screen()
    _at(harness, 3.0)  # in the pause, more than 3 s before the line: no dots yet
    assert w.lyrics_ctl.state.line is None and w.lyrics_ctl.state.countdown == 0
    assert view.current_text() == "" and w.lyrics_ctl.pane.canvas.next_text() == "after the pause"
    dots = []
    for t in (4.6, 5.6, 6.6):
        _at(harness, t)
        dots.append(w.lyrics_ctl.state.countdown)
    assert dots == [3, 2, 1]
    img = view.grab().toImage()  # the dots are drawn in the middle of the screen
    row = int(img.height() * 0.42)
    pink = QColor(theme.STEM_COLOURS["vocals"])
    assert any(img.pixelColor(x, row) == pink for x in range(img.width()))
    _at(harness, 7.6)
    assert view.current_text() == "after the pause" and w.lyrics_ctl.state.countdown == 0
    view.close()


def test_song_score_at_the_end_and_microphone_choice_in_preferences(harness, song_path):
    w = harness.window
    _open(harness, song_path)
    harness.qtbot.waitUntil(lambda: w.melody_ctl.task is None, timeout=WAIT_MS)
    w.song = replace(w.song, stems={**w.song.stems, "vocals": _vocal(4.0)})
    melody_cache_file(w).unlink()
    with harness.qtbot.waitSignal(w.melody_ctl.ready, timeout=WAIT_MS):
        w.melody_ctl.start()
    sing = w.sing_ctl
    times = np.arange(0.1, 1.4, 0.01)
    sing.add_sung(times, np.full(times.size, 220.0 * 2 ** (20 / 1200)))  # 20 cents sharp: hits
    sing._was_playing = True
    sing._score_lines(False, w.song.duration)  # playback stopped at the end of the song
    assert sing.song_score == pytest.approx(1.0)
    assert w.last_notice[1].startswith("Song score: 100 %") and w.notice.isVisible()
    # Preferences: a Microphone choice, saved in the settings
    dialog = w.show_preferences()
    combo = dialog.input_combo
    assert combo.itemText(0) == "System default" and combo.isVisible()
    combo.addItem("Test mic, ALSA", "Test mic, ALSA")
    combo.setCurrentIndex(combo.count() - 1)
    dialog.accept()
    assert w.sing_ctl.device == "Test mic, ALSA"
    assert w.settings.q.value("audio/input_device") == "Test mic, ALSA"
