"""The chord lane in the real window (offscreen Qt): computed in a worker once the song is separated,
cached beside the stems, the chord now and next at the playhead, moved with the practice key shift (with
a capo hint), the key in the title, chords in the full-screen karaoke view, the exports.

Set ``UNMIX_CHORD_SCREENSHOTS=docs/screenshots`` to write the lane's screenshots there."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from chord_audio import song
from test_ui import WAIT_MS

from unmix_desktop.audio.io import save_audio
from unmix_desktop.ui.chord_lane import song_cache_folder

LABELS = ["A:min", "F:maj", "C:maj", "G:maj", "A:min", "D:min", "E:maj", "A:min"]   # 2 s a bar
LRC = "[00:00.00]hello darkness my old friend\n[00:04.00]I have come to talk again\n[00:08.00]\n"


def _tick(h, seconds: float) -> None:
    h.window.seek(seconds)
    h.window.transport_ctl.timer.timeout.emit()


def _grab(widget, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("UNMIX_CHORD_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    assert widget.grab().save(str(path))
    return path


def test_chord_lane_follows_the_song_and_the_key_shift(harness, tmp_path):
    stems, ref = song(LABELS, seed=4)
    path = tmp_path / "Chord Song.wav"
    save_audio(path, stems["accompaniment"], subtype="FLOAT")
    path.with_suffix(".lrc").write_text(LRC, "utf-8")
    w = harness.window
    ctl = w.chord_ctl
    with harness.qtbot.waitSignal(ctl.ready, timeout=WAIT_MS):  # started once the song is drawn
        harness.drop(path)
    folder = song_cache_folder(w)
    assert folder is not None and (folder / "chords-majmin.json").is_file()  # cached beside the stems
    # the tiny test model separates nothing useful: give the lane the true stems and compute again
    w.song = replace(w.song, stems={"vocals": stems["other"] * 0, "accompaniment": stems["accompaniment"],
                                    "bass": stems["bass"]})
    ctl.song = w.song
    (folder / "chords-majmin.json").unlink()
    with harness.qtbot.waitSignal(ctl.ready, timeout=WAIT_MS):
        ctl.start()
        assert ctl.task is not None  # off the UI thread
    chart = ctl.chart
    assert chart.key == "A:min"
    assert [s.label for s in chart.chords if s.end - s.start > 1.0][:8] == LABELS
    lane = ctl.lane
    assert lane.isVisible() and lane.y() < w.song_page.scroll.y()   # above the spectrograms
    _tick(harness, 4.5)   # C major bar, G next
    assert lane.current_text() == "C" and lane.next_text() == "G"
    assert lane.beats_until_next() == 3
    assert lane.key_text() == "Key A minor" and lane.capo_text() == ""
    assert "A minor" in w.windowTitle() and "BPM" in w.windowTitle()
    normal = _grab(lane, "chord-lane.png", tmp_path)

    w.session.set("key.semitones", 3)   # the practice key shift: everything moves up a minor third
    assert lane.current_text() == "Eb" and lane.next_text() == "Bb"
    assert lane.key_text() == "Key C minor"
    assert lane.capo_text() == "capo 3, play Am shapes"
    assert lane.detail_text() == "song: A minor  ·  capo 3, play Am shapes"
    assert "A minor → C minor" in w.windowTitle()
    shifted = _grab(lane, "chord-lane-shifted.png", tmp_path)
    _grab(w, "chord-lane-window.png", tmp_path)
    assert normal.stat().st_size > 1000 and shifted.stat().st_size > 1000

    # chord names in the full-screen karaoke view, as an option
    view = w.karaoke_ctl.open_full_screen()
    try:
        _tick(harness, 4.5)
        assert view.chord_text == ""
        lane.karaoke_button.click()
        _tick(harness, 4.5)
        assert view.chord_text.startswith("Eb") and "Bb" in view.chord_text
        view.resize(960, 540)
        _grab(view, "karaoke-chords.png", tmp_path)
    finally:
        view.close()

    # exports: .lab and .json in the song's key, the chord sheet as heard
    lab = ctl.export("lab", tmp_path / "out.lab").read_text().splitlines()
    assert lab[0].split("\t")[2] == "A:min" and len(lab) >= 8
    d = json.loads(ctl.export("json", tmp_path / "out.json").read_text())
    assert d["key"] == "A:min" and d["chords"][0]["label"] == "A:min"
    harness.qtbot.waitUntil(lambda: not w.lyrics_ctl.loading, timeout=WAIT_MS)
    assert lane.export_actions["sheet"].isEnabled()
    sheet = ctl.export("sheet", tmp_path / "sheet.txt").read_text().splitlines()
    assert sheet[0] == "Key: C minor  (capo 3, play Am shapes)"
    i = sheet.index("hello darkness my old friend")
    assert sheet[i - 1].startswith("Cm") and "Ab" in sheet[i - 1]

    # the 7ths toggle computes the sevenths chart (cached beside the majmin one)
    with harness.qtbot.waitSignal(ctl.ready, timeout=WAIT_MS):
        lane.sevenths_button.click()
    assert ctl.chart.vocabulary == "sevenths" and (folder / "chords-sevenths.json").is_file()
    assert [s.label for s in ctl.chart.chords if s.end - s.start > 1.0][:3] == LABELS[:3]


def test_song_opened_while_separating_gets_its_chords_when_done(harness, tmp_path):
    """A song long enough to play while it separates (several windows): the lane says the chords follow,
    and they are computed once the separation is complete (song_ready), from the whole song."""
    stems, _ = song(LABELS * 2, seed=5)   # 32 s: three separation windows
    path = tmp_path / "Long.wav"
    save_audio(path, stems["accompaniment"], subtype="FLOAT")
    w = harness.window
    ctl = w.chord_ctl
    messages, complete = [], []
    show = ctl.lane.set_message
    ctl.lane.set_message = lambda text: (messages.append(text), show(text))
    ctl.ready.connect(lambda chart: complete.append(w.growing is None and w.song.path == path))
    with harness.qtbot.waitSignal(ctl.ready, timeout=WAIT_MS):
        harness.drop(path)
    assert any("once the song is separated" in m for m in messages), messages   # shown while separating
    assert complete == [True]                                                   # computed after it
    assert ctl.chart.chords[-1].end == pytest.approx(32.0, abs=0.1)             # over the whole song
