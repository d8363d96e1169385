"""The batch queue and the library in the window (issue 17, part 1): real widgets (pytest-qt
offscreen), the tiny real model, real files in tmp folders, a real StemPlayer rendered by the test."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pytestqt")

from conftest import make_song
from PySide6.QtCore import QUrl
from test_ui import WAIT_MS, Harness, _render

from unmix_desktop.audio.io import save_audio

SR = 44100


def _songs(folder, n=3, seconds=2.0, corrupt_at=None):
    """``n`` generated songs in ``folder`` (one nested), the one at ``corrupt_at`` garbage bytes."""
    paths = []
    for k in range(n):
        sub = folder / ("disc 2" if k == n - 1 else "")
        sub.mkdir(parents=True, exist_ok=True)
        p = sub / f"{k + 1:02d} song {k + 1}.wav"
        if k == corrupt_at:
            p.write_bytes(b"not a wave file at all" * 200)
        else:
            save_audio(p, make_song(seconds, seed=k)["mixture"], subtype="FLOAT")
        paths.append(p)
    (folder / "cover.jpg").write_bytes(b"\xff\xd8 not audio")
    return paths


def _wait_queue(h, timeout=WAIT_MS * 3):
    runner = h.window.library_ctl.runner
    h.qtbot.waitUntil(lambda: not runner.running and runner.queue.next_pending() is None, timeout=timeout)


def test_queue_a_folder_with_a_corrupt_song_then_retry(qtbot, tmp_path, tiny_umx):
    h = Harness(qtbot, tmp_path, tiny_umx)
    w = h.window
    album = tmp_path / "album"
    paths = _songs(album, n=4, corrupt_at=1)
    h.drop(album)  # a real drop of a folder: queued (recursive, audio only, stable order)
    ctl = w.library_ctl
    assert ctl.dock.isVisible() and ctl.queue_view.isVisible()
    q = ctl.runner.queue
    assert [i.path for i in q.items] == [str(p) for p in paths]
    assert w.page == "empty"  # the queue separates in the background: the window stays where it was
    _wait_queue(h)
    assert [i.state for i in q.items] == ["done", "failed", "done", "done"]
    failed = q.items[1]
    assert "02 song 2.wav" in failed.error and "cannot decode" in failed.error and "\n" not in failed.error
    row = ctl.queue_view.rows[failed.id]
    assert row.error.isVisible() and row.error.toolTip() == failed.error
    assert row.error.text() == "02 song 2.wav" + failed.error[len(str(paths[1])):]  # the name, not the path
    assert row.retry.isVisible() and not ctl.queue_view.rows[q.items[0].id].retry.isVisible()
    assert "1 failed" in ctl.queue_view.summary.text()
    # the finished songs are in the cache: each opens instantly
    assert len(h.cache.entries()) == 3
    # fix the file and retry: it is separated too
    save_audio(paths[1], make_song(2.0, seed=9)["mixture"], subtype="FLOAT")
    row.retry.click()
    assert q.items[1].state in ("pending", "running")
    _wait_queue(h)
    assert [i.state for i in q.items] == ["done"] * 4
    assert not ctl.queue_view.rows[failed.id].error.isVisible()
    w.close()


def test_queue_editing_pause_and_resume_after_restart(qtbot, tmp_path, tiny_umx):
    h = Harness(qtbot, tmp_path, tiny_umx)
    w = h.window
    ctl = w.library_ctl
    paths = _songs(tmp_path / "in", n=3)
    ctl.runner.set_paused(True)
    assert ctl.queue_view.pause_button.text() == "Resume"
    assert ctl.queue_paths(paths)
    q = ctl.runner.queue
    ids = [i.id for i in q.items]
    assert not ctl.runner.running and all(i.state == "pending" for i in q.items)
    # reorder with the row buttons, remove one (the file stays)
    ctl.queue_view.rows[ids[2]].buttons["up"].click()
    assert [i.id for i in q.items] == [ids[0], ids[2], ids[1]]
    ctl.queue_view.rows[ids[0]].buttons["remove"].click()
    assert [i.id for i in q.items] == [ids[2], ids[1]] and paths[0].is_file()
    assert ctl.queue_view.list.count() == 2
    # a drag in the list reorders the queue too (the list's model moves the row)
    ctl.queue_view.list.model().moveRow(ctl.queue_view.list.rootIndex(), 1, ctl.queue_view.list.rootIndex(), 0)
    qtbot.waitUntil(lambda: [i.id for i in q.items] == [ids[1], ids[2]], timeout=2000)
    saved = json.loads((tmp_path / "queue.json").read_text())
    assert saved["paused"] and [i["id"] for i in saved["items"]] == [ids[1], ids[2]]
    w.close()

    # a new window reads the persisted queue: still paused, nothing runs until resumed
    h2 = Harness(qtbot, tmp_path, tiny_umx)
    ctl2 = h2.window.library_ctl
    q2 = ctl2.runner.queue
    assert [i.path for i in q2.items] == [str(paths[1]), str(paths[2])]
    assert q2.paused and not ctl2.runner.running
    ctl2.queue_view.pause_button.click()
    _wait_queue(h2)
    assert [i.state for i in q2.items] == ["done", "done"]
    h2.window.close()


def test_pending_items_resume_on_start(qtbot, tmp_path, tiny_umx):
    paths = _songs(tmp_path / "in", n=2)
    h = Harness(qtbot, tmp_path, tiny_umx)
    ctl = h.window.library_ctl
    ctl.runner.set_paused(True)
    ctl.queue_paths(paths)
    ctl.runner.queue.items[0].state = "running"  # as if the app had been killed during it
    ctl.runner.queue.save()
    data = json.loads((tmp_path / "queue.json").read_text())
    data["paused"] = False
    (tmp_path / "queue.json").write_text(json.dumps(data))
    h.window.close()
    h2 = Harness(qtbot, tmp_path, tiny_umx)  # resumes on its own
    q2 = h2.window.library_ctl.runner.queue
    _wait_queue(h2)
    assert [i.state for i in q2.items] == ["done", "done"]
    h2.window.close()


def test_playback_keeps_going_while_the_queue_runs(qtbot, tmp_path, tiny_umx):
    h = Harness(qtbot, tmp_path, tiny_umx)
    w = h.window
    current = tmp_path / "Now Playing.wav"
    save_audio(current, make_song(30.0)["mixture"], subtype="FLOAT")
    h.drop_and_wait(current)
    if not w.player.playing:  # a song longer than one window already plays while it separates
        w.toggle_play()
    assert w.player.playing
    paths = _songs(tmp_path / "batch", n=2, seconds=4.0)
    w.library_ctl.queue_paths(paths)
    runner = w.library_ctl.runner
    assert runner.running
    positions, during = [], 0
    while runner.running or runner.queue.next_pending() is not None:
        before = w.player.position
        _render(w.player, 2048)  # what the audio callback does, while the worker separates
        positions.append(w.player.position)
        assert positions[-1] > before
        during += runner.running
        qtbot.wait(10)
    assert during >= 3 and w.player.playing and w.page == "song"
    assert positions[-1] > positions[0]
    assert [i.state for i in runner.queue.items] == ["done", "done"]
    assert w.song.path == current  # the open song was never replaced
    w.close()


def test_library_lists_searches_opens_reveals_and_deletes(qtbot, tmp_path, tiny_umx):
    h = Harness(qtbot, tmp_path, tiny_umx)
    w = h.window
    ctl = w.library_ctl
    paths = _songs(tmp_path / "music", n=3)
    ctl.queue_paths(paths)
    _wait_queue(h)
    gone = paths[2]
    gone.unlink()  # a song moved away after it was separated
    with qtbot.waitSignal(ctl.scanned, timeout=WAIT_MS):
        w.actions_.show_library.trigger()
    view = ctl.view
    assert view.isVisible() and view.tree.topLevelItemCount() == 3
    titles = {view.tree.topLevelItem(k).text(0) for k in range(3)}
    assert titles == {p.stem for p in paths}  # no tags in these WAVs: the file name
    missing = [view.tree.topLevelItem(k) for k in range(3) if view.tree.topLevelItem(k).text(3) == "missing"]
    assert len(missing) == 1 and missing[0].text(0) == gone.stem
    first = view.tree.topLevelItem(0)
    assert first.text(4) == "tiny" and first.text(5) == "2 stems" and first.text(2) == "0:02"
    # search
    view.search.setText("song 2")
    assert view.tree.topLevelItemCount() == 1 and view.tree.topLevelItem(0).text(0) == paths[1].stem
    assert "1 of 3" in view.status.text()
    view.search.setText("")
    # sort by title
    view.sort.setCurrentIndex(view.sort.findData("title"))
    assert [view.tree.topLevelItem(k).text(0) for k in range(3)] == sorted(p.stem for p in paths)
    # open from the cache (no separation), with a double click's path: the Open button
    view.tree.setCurrentItem(view.tree.topLevelItem(0))
    loads = len(h.loads)
    with qtbot.waitSignal(w.song_ready, timeout=WAIT_MS):
        view.open_button.click()
    assert w.page == "song" and w.song.path == paths[0] and w.song.from_cache and len(h.loads) == loads
    assert w.session.song_key is not None
    # the missing song still opens from its stems
    view.tree.setCurrentItem(view.tree.topLevelItem(2))
    with qtbot.waitSignal(w.song_ready, timeout=WAIT_MS):
        view.open_button.click()
    assert w.song.path == gone and w.song.mixture.shape[0] == 2 * SR
    # reveal: the folder holding the song
    view.tree.setCurrentItem(view.tree.topLevelItem(1))
    view.reveal_button.click()
    assert h.opened[-1] == QUrl.fromLocalFile(str(paths[1].parent))
    # delete asks first; the song file stays, its cache entry and session go
    w.session.set_gain_db(w.session.names[0], -3.0)
    view.tree.setCurrentItem(view.tree.topLevelItem(0))
    with qtbot.waitSignal(w.song_ready, timeout=WAIT_MS):
        w.library_ctl.open_entry(view.current())
    assert w.song.path == paths[0]
    w.session.set_gain_db(w.session.names[0], -3.0)
    w.save_session()
    session_file = tmp_path / "sessions" / f"{w.session.song_key}.json"
    assert session_file.is_file()
    ctl.rescan()
    qtbot.waitUntil(lambda: ctl.scan_task is None, timeout=WAIT_MS)
    view.tree.setCurrentItem(view.tree.topLevelItem(0))
    entry = view.current()
    assert entry.source == paths[0] and entry.has_session
    view.delete_button.click()
    box = ctl.confirm_box
    assert box.isVisible() and "song file itself is kept" in box.text()
    box.button(box.StandardButton.Yes).click()
    assert paths[0].is_file() and paths[0].stat().st_size > 0
    assert not session_file.exists()
    assert not any((h.cache.root / k).exists() for k in entry.keys)
    assert view.tree.topLevelItemCount() == 2 and len(h.cache.entries()) == 2
    w.close()


def test_add_to_queue_menu_and_bad_drops(qtbot, tmp_path, tiny_umx):
    h = Harness(qtbot, tmp_path, tiny_umx)
    w = h.window
    w.actions_.add_to_queue.trigger()
    dialog = w.library_ctl.queue_dialog
    assert dialog.isVisible()
    paths = _songs(tmp_path / "pick", n=2)
    w.library_ctl.runner.set_paused(True)
    dialog.filesSelected.emit([str(p) for p in paths])
    dialog.reject()
    assert [i.path for i in w.library_ctl.runner.queue.items] == [str(p) for p in paths]
    empty = tmp_path / "empty folder"
    empty.mkdir()
    assert not w.handle_drop([str(empty)])
    assert w.last_notice[0] == "error" and "no audio files" in w.last_notice[1]
    assert len(w.library_ctl.runner.queue.items) == 2
    # the Library shortcut shows the panel, and hides it when the library is in use
    dock = w.library_ctl.dock
    dock.hide()
    w.actions_.show_library.trigger()
    assert dock.isVisible()
    w.library_ctl.view.search.setFocus()
    qtbot.waitUntil(lambda: w.focusWidget() is w.library_ctl.view.search, timeout=2000)
    w.actions_.show_library.trigger()
    assert not dock.isVisible()
    w.close()


def test_pause_stops_the_running_song_and_the_open_song_goes_first(qtbot, tmp_path, tiny_umx):
    h = Harness(qtbot, tmp_path, tiny_umx)
    w = h.window
    ctl = w.library_ctl
    runner = ctl.runner
    paths = _songs(tmp_path / "in", n=2, seconds=20.0)
    ctl.queue_paths(paths)
    first = runner.queue.items[0]
    assert runner.running and first.state == "running"
    qtbot.waitUntil(lambda: first.progress > 0.0, timeout=WAIT_MS)
    task = runner.task
    ctl.queue_view.pause_button.click()  # stops at once: the song waits again, first in line
    assert task.cancel_event.is_set() and not runner.running
    assert first.state == "pending" and first.progress == 0.0 and runner.queue.paused
    assert ctl.queue_view.pause_button.text() == "Resume"
    qtbot.waitUntil(lambda: not task.running, timeout=WAIT_MS)
    assert first.state == "pending"  # the cancelled job reported nothing back
    # a song opened in the window is separated before the queue goes on
    song = tmp_path / "open me.wav"
    save_audio(song, make_song(2.0)["mixture"], subtype="FLOAT")
    runner.set_paused(False)
    assert runner.running
    runner.set_paused(True)
    w.open_song(song)
    runner.queue.set_paused(False)
    runner.pump()
    assert w.sep_ctl.running and not runner.running
    with qtbot.waitSignal(w.song_loaded, timeout=WAIT_MS):
        pass
    qtbot.waitUntil(lambda: runner.running, timeout=WAIT_MS)  # and then the queue goes on by itself
    task = runner.task
    w.close()  # closing stops the queue: the song at work is abandoned, the next one waits for a restart
    assert task.cancel_event.is_set()
    runner.pump()
    assert runner.task is None or runner.task is task
    assert json.loads((tmp_path / "queue.json").read_text())["items"][0]["state"] == "running"
