"""The lyrics editor and UltraStar in the real window (offscreen): paste -> Sync (worker) -> the pane
follows -> tap-fix at half tempo, drag on the timeline, undo/redo -> save (never over the user's
file without asking) -> reopen; an UltraStar chart imported (melody lane, scorer weights, lyrics)
and the song exported as an UltraStar folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from test_ui import WAIT_MS, Harness

from unmix_desktop.lyrics import parse_lrc
from unmix_desktop.lyrics.timing import Cursor
from unmix_desktop.lyrics.ultrastar import read

PLAIN = "one two three\nfour five\n\nsix seven"


def _open(h: Harness, path) -> None:
    h.drop_and_wait(path)
    h.qtbot.waitUntil(lambda: not h.window.lyrics_ctl.loading, timeout=WAIT_MS)


def _shot(widget, name: str) -> None:
    folder = os.environ.get("UNMIX_SCREENSHOT_DIR")
    if folder:
        widget.grab().save(str(Path(folder) / name))


def test_paste_sync_tap_fix_save_reopen(harness, song_path, tmp_path):
    w = harness.window
    qtbot = harness.qtbot
    _open(harness, song_path)
    assert w.lyrics_ctl.lyrics is None
    ctl = w.lyrics_editor_ctl
    asked: list[Path] = []
    ctl.host.ask_replace = lambda target: asked.append(target) or "data"
    dlg = w.karaoke_ctl.show_lyrics_editor()
    assert dlg.isVisible() and not dlg.save_button.isEnabled()
    dlg.text.setPlainText(PLAIN)
    qtbot.mouseClick(dlg.sync_button, Qt.MouseButton.LeftButton)
    assert ctl.running and dlg.cancel_button.isVisible()
    qtbot.waitUntil(lambda: not ctl.running, timeout=WAIT_MS)
    words = ctl.doc.alignment.words()
    assert [x.text for x in words] == PLAIN.split()
    assert all(b.start >= a.start for a, b in zip(words, words[1:]))
    # the pane follows at once, word by word
    pane = w.lyrics_ctl
    assert pane.lyrics.synced and pane.lyrics.has_word_times
    assert [li.text for li in pane.lyrics.lines] == ["one two three", "four five", "six seven"]
    # tap-along at half tempo: each tap takes the player's song position
    w.session.set("tempo.ratio", 0.5)
    qtbot.mouseClick(dlg.tap_lines, Qt.MouseButton.LeftButton)
    assert ctl.tapping and ctl.doc.tap_cursor == Cursor(0, 0)
    taps = []
    for t in (0.4, 1.6, 2.9):
        w.seek(t)
        taps.append(w.player.position)
        QTest.keyClick(dlg, Qt.Key.Key_T)
    assert [round(li.start, 3) for li in ctl.doc.lines] == [round(t, 3) for t in taps]
    assert pane.lyrics.lines[1].start == pytest.approx(taps[1])
    qtbot.mouseClick(dlg.tap_lines, Qt.MouseButton.LeftButton)  # tapping off
    # drag the start of "seven" on the timeline to 3.5 s
    tl = dlg.timeline
    tl.view_start, tl.span = 0.0, 5.0
    seven = Cursor(2, 1)
    x0 = int(round(tl.x_of(ctl.doc.word(seven).start)))
    x1 = int(round(tl.x_of(3.5)))
    y = int(tl.word_rect(seven).center().y())
    QTest.mousePress(tl, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(x0, y))
    QTest.mouseMove(tl, QPoint(x1, y))
    QTest.mouseRelease(tl, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(x1, y))
    assert ctl.doc.word(seven).start == pytest.approx(3.5, abs=tl.span / tl.width() * 1.5)
    dragged = ctl.doc.word(seven).start
    # nudge the selection, undo it, redo it, undo again
    ctl.nudge(0.05)
    assert ctl.doc.word(seven).start == pytest.approx(dragged + 0.05)
    qtbot.mouseClick(dlg.undo_button, Qt.MouseButton.LeftButton)
    assert ctl.doc.word(seven).start == pytest.approx(dragged)
    qtbot.mouseClick(dlg.redo_button, Qt.MouseButton.LeftButton)
    assert ctl.doc.word(seven).start == pytest.approx(dragged + 0.05)
    ctl.undo()
    _shot(dlg, "lyrics-editor.png")
    # the user's own file beside the song: never replaced without asking ("data" -> app data folder)
    user_file = song_path.with_suffix(".lrc")
    user_file.write_text("[00:01.00]the user's own lyrics\n", encoding="utf-8")
    saved = ctl.save()
    assert asked == [user_file] and saved is not None and saved != user_file
    assert user_file.read_text(encoding="utf-8") == "[00:01.00]the user's own lyrics\n"
    assert saved.is_file() and not list(saved.parent.glob("*.tmp*"))
    assert w.session.get("lyrics.path") == str(saved.resolve())
    lrc = parse_lrc(saved.read_text(encoding="utf-8"))
    assert [li.start for li in lrc.lines] == pytest.approx([round(t, 2) for t in taps], abs=0.006)
    assert lrc.lines[2].words[1].start == pytest.approx(dragged, abs=0.006)
    # saving again goes to the same (our) file without asking
    assert ctl.save() == saved and len(asked) == 1
    # reopen: another song, then this one: the session brings the saved lyrics back
    other = tmp_path / "Other.wav"
    shutil.copyfile(song_path, other)
    with open(other, "ab") as f:
        f.write(b"\0" * 8)  # different bytes: another song
    _open(harness, other)
    _open(harness, song_path)
    assert w.lyrics_ctl.lyrics.source == str(saved.resolve()) or Path(w.lyrics_ctl.lyrics.source) == saved
    assert w.lyrics_ctl.lyrics.lines[1].start == pytest.approx(round(taps[1], 2), abs=0.006)
    dlg = w.karaoke_ctl.show_lyrics_editor()
    assert [li.start for li in ctl.doc.lines] == pytest.approx([round(t, 2) for t in taps], abs=0.006)


CHART = """#VERSION:1.1.0
#TITLE:Chart
#ARTIST:Test
#AUDIO:{audio}
#BPM:120
#GAP:500
: 0 4 4 Hel
* 4 4 7 lo
- 10
F 12 4 0  free
: 16 6 2  style
E
"""


def test_ultrastar_import_and_export_in_the_window(harness, song_path, tmp_path):
    w = harness.window
    qtbot = harness.qtbot
    chart_path = song_path.with_name("chart.txt")
    chart_path.write_text(CHART.format(audio=song_path.name), encoding="utf-8")
    with qtbot.waitSignal(w.song_ready, timeout=WAIT_MS):
        assert w.karaoke_ctl.ultrastar.import_chart(chart_path)
    qtbot.waitUntil(lambda: w.karaoke_ctl.melody.contour is not None and w.lyrics_ctl.lyrics is not None,
                    timeout=WAIT_MS)
    assert [li.text for li in w.lyrics_ctl.lyrics.lines] == ["Hello", "free style"]
    notes = w.karaoke_ctl.melody.lane.notes
    assert [n.midi for n in notes] == [64, 67, 60, 62]
    scorer = w.sing_ctl.scorer
    assert scorer is not None and scorer.weights is not None
    assert set(scorer.weights[scorer.weights > 0].tolist()) == {1.0, 2.0} and (scorer.weights == 0).any()
    assert w.session.get("lyrics.path") == str(chart_path.resolve())
    assert w.lyrics_ctl.reported == []  # a clean chart: no notice
    w.seek(0.7)
    w.karaoke_ctl.tick()
    _shot(w, "ultrastar-import.png")
    # export the open song as an UltraStar folder (in a worker)
    out = tmp_path / "export"
    done = []
    task = w.karaoke_ctl.ultrastar.export(out, on_done=done.append)
    assert task is not None
    qtbot.waitUntil(lambda: bool(done), timeout=WAIT_MS)
    chart = read(out / f"{song_path.stem}.txt")
    assert chart.audio_path.is_file() and chart.vocals_path.is_file() and chart.instrumental_path.is_file()
    assert chart.lyrics().lines and chart.headers["VERSION"] == "1.1.0"
    # a second export into the same folder is refused (never replaces files)
    assert w.karaoke_ctl.ultrastar.export(out) is None
    # a malformed chart for the open song: what parses is shown, what was skipped said once
    broken = song_path.with_name("broken.txt")
    broken.write_text(CHART.format(audio=song_path.name).replace(": 16 6 2  style", ": x y z bad"), encoding="utf-8")
    assert w.karaoke_ctl.ultrastar.import_chart(broken)
    assert [li.text for li in w.lyrics_ctl.lyrics.lines] == ["Hello", "free"]
    assert len(w.lyrics_ctl.reported) == 1 and "1 unreadable line skipped" in w.lyrics_ctl.reported[0]
