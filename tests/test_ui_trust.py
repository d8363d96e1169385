"""Issue 21, section 4 ("what the new user hit"), on the real window (pytest-qt offscreen, tiny models):
a song opened while it separates (export waits for the stems; beats, lyrics at once; analyses of the
stems redone on the whole song), one tempo in the window and `unmix beats`, the cache clear confirmed,
Preferences and four stems, small windows, and the smaller items."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("pytestqt")

from test_beats import groove
from test_ui import WAIT_MS, Harness

from unmix_desktop.audio.io import save_audio
from unmix_desktop.separation.base import SpectrogramModel

SR = 44100


class GatedModel(SpectrogramModel):
    """A tiny real network that separates the first window, then holds every later one until
    ``gate`` is set: the test decides when the separation may end (no race with the clock)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.targets = list(inner.targets)
        self.card = {"name": "gated", "description": "tiny network, held by the test"}
        self.gate = threading.Event()
        self.calls = 0

    def forward(self, mag):
        self.calls += 1
        if self.calls > 1:
            self.gate.wait(WAIT_MS / 1000)
        return self.inner(mag)


@pytest.fixture
def gated(qtbot, tmp_path, tiny_umx):
    """The window over a gated model, 2-s windows (a 16-s song is several windows)."""
    model = GatedModel(tiny_umx)
    h = Harness(qtbot, tmp_path, model, window_s=2.0, overlap_s=0.5)
    h.model = model
    yield h
    model.gate.set()
    h.window.close()


def _groove_song(tmp_path, bpm=110.0, seconds=16.0, name="Groove.wav"):
    path = tmp_path / name
    save_audio(path, groove(bpm, seconds=seconds, seed=7)["mix"], subtype="FLOAT")
    return path


def _cli_bpm(path) -> str:
    r = subprocess.run([sys.executable, "-m", "unmix_desktop.cli", "beats", str(path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()[0]


# ---------------------------------------------------------------------------------------------
# a song opened while it separates
# ---------------------------------------------------------------------------------------------

def test_a_song_opened_while_separating_has_its_whole_beat_grid_lyrics_at_once_and_the_cli_tempo(
        gated, tmp_path):
    """Before: the grid was estimated on the stems as far as they were separated (21 beats ending at
    10.3 s on a 2:46 song) and cached so; the lyrics said "Looking for lyrics…" until the end of the
    separation; the window's BPM (first seconds) differed from `unmix beats` (whole song)."""
    path = _groove_song(tmp_path)
    path.with_suffix(".lrc").write_text("[00:00.50]first line\n[00:04.00]second line\n", "utf-8")
    h, w = gated, gated.window
    h.drop(path)
    h.qtbot.waitUntil(lambda: w.page == "song" and w.live, timeout=WAIT_MS)
    # the lyrics need no stems: shown while the separation is held
    h.qtbot.waitUntil(lambda: w.lyrics_ctl.lyrics is not None, timeout=WAIT_MS)
    assert w.live and not w.song_is_complete
    assert "first line" in [line.text for line in w.lyrics_ctl.lyrics.lines]
    # the beat grid covers the whole song, while it separates
    h.qtbot.waitUntil(lambda: w.practice_ctl.grid is not None, timeout=WAIT_MS)
    assert w.live
    grid = w.practice_ctl.grid
    assert grid.beats[-1] > 14.5 and len(grid.beats) >= 26, grid.beats[-3:]
    # one answer: the window's BPM is `unmix beats`' (the same code path on the same song)
    assert _cli_bpm(path) == f"{grid.bpm:.1f} BPM" == w.practice_ctl.bar.bpm_label.text()
    assert abs(grid.bpm - 110) < 1
    # the melody (from the vocals stem) waits for the whole song
    w.melody_ctl.start()
    assert w.melody_ctl.pending and w.melody_ctl.task is None
    assert "separation" in w.melody_ctl.lane.message
    with h.qtbot.waitSignal(w.song_complete, timeout=WAIT_MS):
        h.model.gate.set()
    assert w.song_is_complete and not w.melody_ctl.pending
    assert w.melody_ctl.task is not None or w.melody_ctl.contour is not None


def test_export_during_separation_waits_for_the_whole_stems(gated, tmp_path):
    """Before: Export stayed enabled while the song separated and wrote the stems at full length with
    digital silence for the unseparated part, then said "Wrote 2 files"."""
    path = _groove_song(tmp_path, seconds=12.0)
    h, w = gated, gated.window
    h.settings.export_choices = {"stems": True, "karaoke": False, "mix": False, "open_folder": False}
    h.drop(path)
    h.qtbot.waitUntil(lambda: w.page == "song" and w.live, timeout=WAIT_MS)
    out = tmp_path / "out"
    out.mkdir()
    dialog = w.show_export()
    dialog.folder_edit.setText(str(out))
    assert "still being separated" in dialog.plan_label.text()
    dialog.export_button.click()
    assert dialog.waiting and dialog.task is None and not dialog.export_button.isEnabled()
    assert "Waiting for the separation" in dialog.status.text() and "% of the song is ready" in dialog.status.text()
    assert 0 < dialog.progress.value() < 1000
    assert not any(out.rglob("*.wav"))  # nothing written while the stems are incomplete
    h.model.gate.set()
    h.qtbot.waitUntil(lambda: len(dialog.written) == 2, timeout=WAIT_MS)
    assert "Wrote 2 files" in dialog.status.text() and not w.live
    for name in ("vocals", "accompaniment"):
        audio, sr = sf.read(out / "Groove - stems" / f"{name}.wav", dtype="float32")
        final = w.song.stems[name]
        assert audio.shape == final.shape
        np.testing.assert_allclose(audio, final, atol=2e-4)  # 16-bit
        tail = audio[-2 * SR:]
        assert np.abs(tail).max() > 1e-3  # the end of the song, not silence
    dialog.close()


def test_export_waiting_when_the_separation_is_cancelled_writes_nothing(gated, tmp_path):
    path = _groove_song(tmp_path, seconds=12.0)
    h, w = gated, gated.window
    h.drop(path)
    h.qtbot.waitUntil(lambda: w.page == "song" and w.live, timeout=WAIT_MS)
    out = tmp_path / "out"
    out.mkdir()
    dialog = w.show_export()
    dialog.folder_edit.setText(str(out))
    dialog.export_button.click()
    assert dialog.waiting
    w.cancel_separation()
    assert not dialog.waiting and dialog.task is None and dialog.written == []
    assert "Nothing was exported" in dialog.status.text() and not dialog.export_button.isEnabled()
    assert not any(out.rglob("*"))
    dialog.close()


# ---------------------------------------------------------------------------------------------
# File -> Clear Separation Cache
# ---------------------------------------------------------------------------------------------

def test_clear_cache_asks_with_count_and_size_keeps_foreign_files_and_the_library_follows(harness, tmp_path):
    """Before: one click deleted everything in the cache folder (995 MB, the whole library), without a
    question; after a clear and a new separation the library still said "0 separated songs"."""
    from unmix_desktop.cache import format_bytes

    h, w = harness, harness.window
    songs = []
    for i in range(2):
        path = tmp_path / f"Song {i}.wav"
        save_audio(path, groove(100 + 10 * i, seconds=3.0, seed=i)["mix"], subtype="FLOAT")
        songs.append(path)
        h.drop_and_wait(path)
    mine = h.cache.root / "my notes.txt"  # not the app's: never deleted
    mine.write_text("keep me")
    (h.cache.root / "my folder").mkdir()
    n, size = h.cache.clearable()
    assert n == 2 and size > 0
    w.library_ctl.show_library()
    h.qtbot.waitUntil(lambda: w.library_ctl.view.status.text() == "2 separated songs", timeout=WAIT_MS)

    w.clear_cache_action.trigger()
    box = w.confirm_box
    assert box.isVisible() and f"2 separated songs ({format_bytes(size)})" in box.text()
    assert box.defaultButton() is box.button(box.StandardButton.Cancel)
    box.button(box.StandardButton.Cancel).click()  # nothing happens
    assert h.cache.clearable()[0] == 2 and h.cache.clearable()[1] >= size  # (+ melody files written meanwhile)

    w.clear_cache_action.trigger()
    box = w.confirm_box
    next(b for b in box.buttons() if b.text() == "Delete Stems").click()
    assert h.cache.clearable() == (0, 0) and h.cache.entries() == []
    assert mine.read_text() == "keep me" and (h.cache.root / "my folder").is_dir()
    assert "Cleared" in w.last_notice[1]
    h.qtbot.waitUntil(lambda: w.library_ctl.view.status.text() == "0 separated songs", timeout=WAIT_MS)
    # a new separation shows up in the library that is open
    h.drop_and_wait(songs[0])
    assert not w.song.from_cache
    h.qtbot.waitUntil(lambda: w.library_ctl.view.status.text() == "1 separated song", timeout=WAIT_MS)


# ---------------------------------------------------------------------------------------------
# Preferences and four stems; Separate Again
# ---------------------------------------------------------------------------------------------

def test_preferences_keep_the_four_stem_choice_and_switching_plays_on_at_the_same_position(harness, song_path):
    """Before: the Stems box showed "Model's stems" while 4 stems were active (any OK went back to 2),
    and switching to 4 stems paused the song, covered the window with the progress card and did not
    resume."""
    h, w = harness, harness.window
    h.drop_and_wait(song_path)
    w.seek(2.0)
    w.player.play()
    d = w.show_preferences()
    d.stems_combo.setCurrentIndex(d.stems_combo.findText("4 stems (drums/bass/other estimated)"))
    with h.qtbot.waitSignal(w.song_loaded, timeout=WAIT_MS):
        d.accept()
        assert w.page == "song" and w.player.playing  # no progress card, the song plays on
        assert w.sep_task is not None and "again" in w.status_label.text()
    assert list(w.song.stems) == ["vocals", "drums", "bass", "other"]
    assert w.player.playing and w.page == "song"
    assert w.player.position == pytest.approx(2.0, abs=0.05)
    assert h.settings.four_stems
    h.wait_song()
    # Preferences show the 4-stem choice; OK without a change keeps it and separates nothing
    d = w.show_preferences()
    assert d.stems_combo.currentText() == "4 stems (drums/bass/other estimated)"
    d.accept()
    assert h.settings.four_stems and w.sep_task is None
    d = w.show_preferences()
    d.stems_combo.setCurrentIndex(d.stems_combo.findText("4 stems (learned splitter: umx-synth4)"))
    pref = d.preferences()
    d.reject()
    assert pref.four_stems and pref.four_stem_model == "umx-synth4"
    h.settings.four_stem_model = "umx-synth4"
    d = w.show_preferences()
    assert d.stems_combo.currentText() == "4 stems (learned splitter: umx-synth4)"
    d.reject()


def test_separate_again_bypasses_the_cache_and_plays_on(harness, song_path):
    """Before: Ctrl+R "Separate Again" loaded the same stems from the cache."""
    h, w = harness, harness.window
    h.drop_and_wait(song_path)
    h.drop_and_wait(song_path)
    assert w.song.from_cache
    w.seek(1.0)
    w.player.play()
    with h.qtbot.waitSignal(w.song_loaded, timeout=WAIT_MS):
        w.actions_.reseparate.trigger()
        assert w.page == "song" and w.player.playing
    assert not w.song.from_cache and w.song.separation_seconds > 0
    assert "separated in" in w.song_page.info.text()
    assert w.player.playing and w.player.position == pytest.approx(1.0, abs=0.05)
    h.wait_song()


def test_separate_again_after_a_cache_clear_stores_the_song_again(harness, song_path):
    """Before: Ctrl+R separated without the cache both ways, so after File -> Clear Separation Cache the song
    separated again was not stored: the library said 0 songs and the next open separated once more."""
    h, w = harness, harness.window
    h.drop_and_wait(song_path)
    assert w.stem_cache.clearable()[0] == 1
    w.clear_cache(confirm=False)
    assert w.stem_cache.clearable() == (0, 0)
    with h.qtbot.waitSignal(w.song_loaded, timeout=WAIT_MS):
        w.actions_.reseparate.trigger()
    assert not w.song.from_cache
    h.qtbot.waitUntil(lambda: w.stem_cache.clearable()[0] == 1, timeout=WAIT_MS)
    h.wait_song()
    h.drop_and_wait(song_path)
    assert w.song.from_cache


# ---------------------------------------------------------------------------------------------
# small windows
# ---------------------------------------------------------------------------------------------

SIZES = ((1600, 1000), (900, 600), (640, 400))


def _shoot(h, name: str) -> None:
    """Save the window as PNG under $UNMIX_SCREENSHOTS (for looking at them), when set."""
    import os

    folder = os.environ.get("UNMIX_SCREENSHOTS")
    if folder:
        h.window.grab().save(os.path.join(folder, name))


def _settle(h, size) -> None:
    w = h.window
    w.resize(*size)
    for _ in range(5):
        h.qtbot.wait(30)
    assert (w.width(), w.height()) == size


def _inside(widget, window) -> bool:
    """The widget is visible and wholly inside the window's client area."""
    from PySide6.QtCore import QPoint, QRect

    top_left = widget.mapTo(window, QPoint(0, 0))
    return widget.isVisible() and QRect(QPoint(0, 0), window.size()).contains(QRect(top_left, widget.size()))


def _check_page(w) -> None:
    """Nothing on the window squeezed: the time beside the seek bar, no button text cut to "…"."""
    from PySide6.QtWidgets import QAbstractButton

    bar = w.song_page.transport
    if w.centralWidget().isVisible():
        time_rect = bar.time_label.geometry().translated(bar.time_label.parentWidget().mapTo(bar, bar.rect().topLeft()))
        seek_rect = bar.seek.geometry().translated(bar.seek.parentWidget().mapTo(bar, bar.rect().topLeft()))
        assert not time_rect.intersects(seek_rect), (time_rect, seek_rect)
        assert bar.time_label.width() >= bar.time_label.sizeHint().width()
        assert bar.seek.width() >= 120
    for b in w.findChildren(QAbstractButton):
        if b.isVisible() and b.text() and w.isAncestorOf(b) and b.objectName() != "qt_dockwidget_closebutton":
            assert b.width() >= b.fontMetrics().horizontalAdvance(b.text()), (b.text(), b.width())


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_small_windows_keep_time_buttons_panel_and_lyrics(harness, song_path, size):
    """Before, at 900x600 with the Songs panel open: the time overlapped the seek bar, buttons shrank to
    "…", the panel and its close button were cut off and nothing hid the panel again; below ~900x600 the
    lyrics pane disappeared even for a song with lyrics."""
    song_path.with_suffix(".lrc").write_text("[00:00.50]a line to sing\n[00:02.00]the next one\n", "utf-8")
    h, w = harness, harness.window
    h.drop_and_wait(song_path)
    h.qtbot.waitUntil(lambda: w.lyrics_ctl.lyrics is not None, timeout=WAIT_MS)
    w.library_ctl.show_library()
    _settle(h, size)
    _shoot(h, f"songs-panel-{size[0]}x{size[1]}.png")
    # the panel, with its close button, inside the window: beside the song page when both fit, else alone
    dock = w.library_ctl.dock
    assert _inside(dock, w)
    assert w.centralWidget().isVisible() == (size[0] >= 1100)
    _check_page(w)
    # a menu item and a shortcut hide it again
    assert w.actions_.hide_panel.shortcut().toString() == "Ctrl+Shift+B"
    w.actions_.hide_panel.trigger()
    assert not dock.isVisible()
    _settle(h, size)
    _shoot(h, f"song-{size[0]}x{size[1]}.png")
    assert w.centralWidget().isVisible()
    _check_page(w)
    # the lyrics have their room at every size
    pane = w.lyrics_ctl.pane
    assert _inside(pane, w) and pane.canvas.height() >= 40
    w.seek(0.6)
    w.karaoke_ctl.tick()
    assert pane.canvas.current_text() == "a line to sing"


# ---------------------------------------------------------------------------------------------
# smaller items
# ---------------------------------------------------------------------------------------------

def test_cached_and_library_songs_start_playing_like_new_ones(harness, song_path):
    """Before: a song separated while playing started at once, one from the cache or the library did not."""
    h, w = harness, harness.window
    h.drop_and_wait(song_path)
    assert h.opened_playing  # a new song (the harness pauses it after)
    other = song_path.with_name("Other.wav")
    save_audio(other, groove(120, seconds=3.0)["mix"], subtype="FLOAT")
    h.drop_and_wait(other)
    h.drop_and_wait(song_path)  # from the cache
    assert w.song.from_cache and h.opened_playing
    w.library_ctl.show_library()
    h.qtbot.waitUntil(lambda: len(w.library_ctl.view.shown) == 2, timeout=WAIT_MS)
    entry = next(e for e in w.library_ctl.view.shown if e.title == "Other")
    with h.qtbot.waitSignal(w.library_ctl.opened, timeout=WAIT_MS):
        w.library_ctl.open_entry(entry)
    assert w.song.path.name == "Other.wav" and w.player.playing
    h.wait_song()
    assert h.opened_playing


def test_sing_is_disabled_from_the_start_without_a_microphone_and_null_is_no_microphone(
        qtbot, tmp_path, tiny_umx, monkeypatch):
    """Before: the Sing button looked enabled until clicked; ALSA's null capture device counted as one."""
    from unmix_desktop.audio import mic as mic_mod
    from unmix_desktop.audio.mic import NO_INPUT, Microphone
    from unmix_desktop.audio.player import StemPlayer
    from unmix_desktop.cache import StemCache
    from unmix_desktop.ui.main_window import MainWindow
    from unmix_desktop.ui.settings import AppSettings

    w = MainWindow(settings=AppSettings(tmp_path / "s.ini"), model_loader=lambda name: tiny_umx,
                   models=[("tiny", "")], default_model="tiny",
                   player_factory=lambda d: StemPlayer(device=d, open_stream=False),
                   stem_cache=StemCache(tmp_path / "cache"), mic_factory=lambda d: Microphone(device="no such mic"))
    qtbot.addWidget(w)
    panel = w.sing_ctl.panel
    assert not panel.button.isEnabled() and "Microphone unavailable" in panel.reason.text()
    w.close()
    # the null device is not listed as a microphone; with nothing else there is no input
    monkeypatch.setattr(mic_mod, "list_devices", lambda kind: [(0, "null, ALSA"), (3, "USB Mic, ALSA")])
    assert mic_mod.list_input_devices() == [(3, "USB Mic, ALSA")]
    monkeypatch.setattr(mic_mod, "list_devices", lambda kind: [(0, "null, ALSA")])
    assert mic_mod.list_input_devices() == []
    sd, _ = mic_mod._sounddevice()
    if sd is not None:
        assert Microphone().unavailable_reason == NO_INPUT


def test_about_shows_the_scores_as_a_table_with_the_readme_numbers():
    """Before: the scores were a raw Python dict, with numbers that differed from the README."""
    import re
    from pathlib import Path

    from unmix_desktop.separation.spleeter import CARD
    from unmix_desktop.ui.dialogs import about_html, score_rows

    page = about_html("spleeter-2stems", CARD)
    assert "{" not in page and "'vocals'" not in page
    rows = score_rows(CARD["scores"])
    assert rows and all(" dB" in text for _, text in rows)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
    line = next(x for x in readme.splitlines() if x.startswith("| `spleeter-2stems`"))
    readme_numbers = set(re.findall(r"\d+\.\d\d", line))
    card_numbers = {f"{v:.2f}" for scores in CARD["scores"].values() for v in scores.values()}
    assert card_numbers <= readme_numbers, (card_numbers, readme_numbers)
    for n in card_numbers:
        assert f"{n} dB" in page
    # the evaluation runner's nested form (open-unmix bundles): SDR of "ours" only, oracles left out
    nested = {"dev": {"tracks": 1, "median": {"ours": {"vocals": {"SDR": 2.1698, "SIR": 13.1}}}},
              "dev_oracles": {"tracks": 1, "median": {"IBM": {"vocals": {"SDR": 13.9}}}}}
    assert score_rows(nested) == [("dev (1 track)", "vocals 2.17 dB")]


def test_export_dialog_forgets_the_last_result_when_the_choice_changes(harness, song_path, tmp_path):
    """Before: "Wrote 2 files" and a full progress bar stayed while a new export was being chosen."""
    h, w = harness, harness.window
    h.drop_and_wait(song_path)
    out = tmp_path / "out"
    out.mkdir()
    dialog = w.show_export()
    dialog.folder_edit.setText(str(out))
    dialog.open_check.setChecked(False)
    dialog.start_export()
    h.qtbot.waitUntil(lambda: bool(dialog.written), timeout=WAIT_MS)
    assert "Wrote" in dialog.status.text() and dialog.progress.value() == 1000
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("flac"))
    assert dialog.status.text() == "" and dialog.progress.value() == 0 and not dialog.open_button.isVisible()
    dialog.close()


def test_unchecked_checkboxes_draw_a_box():
    """Before: the dark style sheet left unchecked boxes without a visible indicator."""
    from PySide6.QtGui import QColor
    from PySide6.QtWidgets import QApplication, QCheckBox

    from unmix_desktop.ui import theme

    theme.apply_theme(QApplication.instance())
    box = QCheckBox("an option")
    box.setChecked(False)
    box.resize(box.sizeHint())
    img = box.grab().toImage()
    border = QColor(theme.CHECK_BORDER)
    hits = sum(1 for x in range(min(img.width(), 30)) for y in range(img.height())
               if abs(img.pixelColor(x, y).red() - border.red()) < 12
               and abs(img.pixelColor(x, y).green() - border.green()) < 12
               and abs(img.pixelColor(x, y).blue() - border.blue()) < 12)
    assert hits >= 20  # the indicator's outline


def test_f1_lists_every_shortcut_of_the_window(harness):
    """Before: the F1 list was written by hand and missed F11, Ctrl+Shift+O/U/L/S, Ctrl+Alt+Left/Right, Ctrl+Q."""
    from PySide6.QtGui import QKeySequence

    w = harness.window
    dialog = w.show_shortcuts()
    keys = {k for k, _ in dialog.rows}
    native = {a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
              for a in w.actions_.shortcuts.values() if not a.text().startswith(("Solo stem", "Mute stem"))}
    assert native <= keys
    for key in ("F11", "Ctrl+Shift+O", "Ctrl+Shift+U", "Ctrl+Shift+L", "Ctrl+Shift+S", "Ctrl+Alt+Left",
                "Ctrl+Alt+Right", "Ctrl+Q", "F1", "Ctrl+Shift+B"):
        assert QKeySequence(key).toString(QKeySequence.SequenceFormat.NativeText) in keys, key
    assert ("1 … 9", "Solo stem 1 … 9 (toggle)") in dialog.rows
    dialog.close()


def test_the_playhead_passes_behind_marker_labels(harness, song_path):
    """Before: the playhead (drawn on top) crossed out the marker labels."""
    h, w = harness, harness.window
    h.drop_and_wait(song_path)
    w.seek(1.0)
    w.practice_ctl.add_marker("Chorus")
    lane = w.song_page.tracks.lanes["mixture"]
    line = lane.marker_items[0]
    assert line.label is not None and line.label.format == "Chorus"
    assert lane.playhead.zValue() < line.zValue()
    assert line.label.fill.color().alpha() == 255  # an opaque background behind the text


def test_memory_freed_by_a_separation_goes_back_to_the_system():
    """RSS ~1.9 GB with one song open: the biggest part that was not the song's own arrays (stems, mixture,
    click: ~230 MiB for 2:46) nor the model (75 MiB) was heap freed by the separation and kept by glibc.
    The window hands it back after a separation, the spectrograms, the beats and the melody (measured
    1204 -> 978 MiB with a 2:46 song, 2 stems; 1404 -> 1165 MiB with 4)."""
    import sys

    from unmix_desktop.separation import allocator
    from unmix_desktop.ui import jobs

    def rss_mib() -> float:
        with open("/proc/self/status") as fh:
            return next(int(x.split()[1]) for x in fh if x.startswith("VmRSS")) / 1024

    if not sys.platform.startswith("linux"):
        assert jobs.release_freed_memory() is False
        return
    # many small blocks freed (as a separation's temporaries are): kept by malloc until trimmed
    blocks = [bytearray(100_000) for _ in range(1500)]  # 150 MB below the mmap threshold
    for b in blocks:
        b[::4096] = b"x" * len(b[::4096])
    keep = blocks[-1]
    del blocks
    before = rss_mib()
    assert jobs.release_freed_memory()  # on its own thread (a trim can take a second): returns at once
    assert jobs.release_freed_memory(wait=True)  # one more pass after the running one, then returns
    assert allocator._trim_thread is None
    after = rss_mib()
    assert after < before - 50, (before, after)
    assert keep[0] == ord("x")
