"""Host mode in the real window (offscreen, tiny model): turns, per-singer settings, failures skipped,
separation ahead of the turn, the remote on/off through the UI thread, the room screen, --party."""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from conftest import make_song

from unmix_desktop.audio.io import save_audio
from unmix_desktop.party.catalog import song_id_for

WAIT_MS = 90_000


def songs(tmp_path: Path, n: int = 3) -> list[Path]:
    out = []
    for i in range(n):
        p = tmp_path / "music" / f"Song {i}.wav"
        p.parent.mkdir(exist_ok=True)
        save_audio(p, make_song(2.0, seed=i)["mixture"], subtype="FLOAT")
        out.append(p)
    return out


@pytest.fixture
def party(harness, tmp_path):
    ctl = harness.window.party(rotation_path=tmp_path / "party" / "rotation.json", countdown_s=0)
    yield ctl
    ctl.close()


def test_turns_apply_singer_settings_and_move_on(harness, party, tmp_path, qtbot):
    w = harness.window
    files = songs(tmp_path, 2)
    assert party.add_files(files) == 2
    rot = party.rotation
    ann, bob = rot.add_singer("Ann"), rot.add_singer("Bob")
    rot.set_prefs(ann.id, key=-2, tempo=0.9, guide=0.5)
    rot.request(ann.id, song_id_for(files[0]), "Song 0")
    rot.request(bob.id, song_id_for(files[1]), "Song 1", key=3)
    qtbot.waitUntil(lambda: party.panel.singers.count() == 2, timeout=10_000)  # refreshed once for the burst
    assert "next" in party.panel.singers.item(0).text()

    with qtbot.waitSignal(party.turn_started, timeout=WAIT_MS) as first:
        party.start_next()
    assert first.args == [rot.current.request.id]
    assert rot.current.request.title == "Song 0"
    s = w.session
    assert s.get("key.semitones") == -2 and s.get("tempo.ratio") == pytest.approx(0.9)
    assert s.get("vocals.gain_db") == pytest.approx(-6.02, abs=0.01) and not s.get("vocals.mute")
    info = party.room_info()
    assert info["singer"] == "Ann" and info["next"] == "Bob — Song 1" and not info["between"]

    # the song plays to its end: history, countdown (0 here), Bob's turn with his own key
    party._heard_playing = True
    w.player.pause()
    w.player.seek(w.song.duration)
    with qtbot.waitSignal(party.turn_started, timeout=WAIT_MS):
        party._on_tick()
    assert rot.history[-1]["singer"] == "Ann" and rot.history[-1]["outcome"] == "sung"
    assert rot.current.request.title == "Song 1"
    assert w.session.get("key.semitones") == 3 and w.session.get("vocals.mute")  # guide 0: no vocal

    # the host changes the tempo during Bob's turn: it is Bob's preference from now on (his key asked
    # for with this song stays the song's own)
    party.command("tempo", 0.8)
    party.command("key", 1)
    assert w.session.get("tempo.ratio") == pytest.approx(0.8)
    assert rot.prefs(bob.id).tempo == pytest.approx(0.8) and rot.prefs(bob.id).key == 0
    party.skip_song()
    assert rot.history[-1]["outcome"] == "skipped" and rot.current is None
    qtbot.waitUntil(lambda: "Nobody is singing" in party.panel.now.text(), timeout=10_000)
    assert party.panel.history.text() == "Sung tonight: Bob — Song 1 (skipped); Ann — Song 0"


def test_failing_song_is_marked_and_skipped(harness, party, tmp_path, qtbot):
    files = songs(tmp_path, 1)
    broken = tmp_path / "music" / "Broken.wav"
    broken.write_bytes(b"RIFF not really audio")
    party.add_files([broken, *files])
    rot = party.rotation
    ann, bob = rot.add_singer("Ann"), rot.add_singer("Bob")
    rot.request(ann.id, song_id_for(broken), "Broken")
    rot.request(bob.id, song_id_for(files[0]), "Song 0")
    failed = []
    party.turn_failed.connect(lambda rid, reason: failed.append(reason))
    with qtbot.waitSignal(party.turn_started, timeout=WAIT_MS):
        party.start_next()
    assert failed and "Broken.wav" in failed[0]
    assert rot.singers[ann.id].requests[0].state == "failed"
    assert rot.current.request.title == "Song 0"  # the evening went on by itself
    qtbot.waitUntil(lambda: party.panel.singers.count() == 2, timeout=10_000)
    party.panel.singers.setCurrentRow(0)
    assert "failed" in party.panel.songs.item(0).text()


def test_songs_not_separated_are_queued_ahead_and_failures_marked(harness, party, tmp_path, qtbot):
    files = songs(tmp_path, 2)
    party.add_files(files)
    rot = party.rotation
    ann = rot.add_singer("Ann")
    runner = harness.window.library_ctl.runner
    rot.request(ann.id, song_id_for(files[1]), "Song 1")
    qtbot.waitUntil(lambda: [Path(i.path).name for i in runner.queue.items] == ["Song 1.wav"], timeout=10_000)
    qtbot.waitUntil(lambda: runner.queue.items[0].state == "done", timeout=WAIT_MS)
    assert party.catalog.get(song_id_for(files[1])).separated
    # a song whose separation fails ahead of its turn says so in the rotation
    broken = tmp_path / "music" / "Broken.wav"
    broken.write_bytes(b"RIFF not really audio")
    party.add_files([broken])
    rot.request(ann.id, song_id_for(broken), "Broken")
    qtbot.waitUntil(lambda: any(r.state == "failed" for r in rot.singers[ann.id].requests), timeout=WAIT_MS)
    assert "Broken.wav" in rot.singers[ann.id].requests[-1].error


def _get(url: str, headers: dict | None = None, data: bytes | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_remote_on_off_commands_reach_the_ui_thread(harness, party, tmp_path, qtbot):
    files = songs(tmp_path, 1)
    party.add_files(files)
    url = party.enable_remote("127.0.0.1", 0, "2468")
    assert url.startswith("http://127.0.0.1:") and party.qr is not None and not party.qr.isNull()
    assert party.panel.remote_button.isChecked() and "2468" in party.panel.url.text()
    base, token = url.split("/?t=")
    pool = concurrent.futures.ThreadPoolExecutor(1)
    hdr = {"X-Party-Token": token, "Content-Type": "application/json"}
    fut = pool.submit(_get, base + "/api/join", hdr, json.dumps({"name": "Guest"}).encode())
    qtbot.waitUntil(fut.done, timeout=WAIT_MS)  # the UI thread runs the join while the test waits
    status, me = fut.result()
    assert status == 200 and party.rotation.singers[me["singer_id"]].name == "Guest"
    qtbot.waitUntil(lambda: party.panel.singers.count() == 1, timeout=10_000)
    assert party.panel.singers.item(0).text().startswith("Guest")
    fut = pool.submit(_get, base + "/api/request", hdr, json.dumps(
        {"singer_id": me["singer_id"], "secret": me["secret"], "song_id": song_id_for(files[0])}).encode())
    qtbot.waitUntil(fut.done, timeout=WAIT_MS)
    assert fut.result()[0] == 200
    fut = pool.submit(_get, base + "/api/host/login", hdr, json.dumps({"pin": "2468"}).encode())
    qtbot.waitUntil(fut.done, timeout=WAIT_MS)
    host = dict(hdr, **{"X-Host-Session": fut.result()[1]["host"]})
    with qtbot.waitSignal(party.turn_started, timeout=WAIT_MS):
        fut = pool.submit(_get, base + "/api/host/start_next", host, b"{}")
        qtbot.waitUntil(fut.done, timeout=WAIT_MS)
    fut = pool.submit(_get, base + "/api/host/key", host, json.dumps({"value": 4}).encode())
    qtbot.waitUntil(fut.done, timeout=WAIT_MS)
    assert harness.window.session.get("key.semitones") == 4
    fut = pool.submit(_get, base + "/api/host/guide", host, json.dumps({"value": 1.0}).encode())
    qtbot.waitUntil(fut.done, timeout=WAIT_MS)
    assert harness.window.session.get("vocals.gain_db") == 0.0 and not harness.window.session.get("vocals.mute")

    # the room screen: singer's name, the QR code
    view = party.open_room_screen()
    assert type(view).__name__ == "RoomScreen"
    qtbot.waitUntil(lambda: view.isVisible(), timeout=10_000)
    assert party.room_info()["singer"] == "Guest" and party.room_info()["url"] == url
    image = view.grab().toImage()
    assert image.width() > 100
    view.close()

    party.panel.remote_button.setChecked(False)  # the host turns it off in the panel
    assert party.server is None and not party.panel.remote_button.isChecked()
    with pytest.raises(OSError):
        urllib.request.urlopen(base + "/api/state", timeout=5)
    pool.shutdown()


def test_panel_drag_hold_skip_move_remove(harness, party, qtbot):
    from PySide6.QtCore import QModelIndex

    rot = party.rotation
    a, b, c = (rot.add_singer(n) for n in ("Ann", "Bob", "Cy"))
    ra = rot.request(a.id, "s1", "One")
    panel = party.panel
    qtbot.waitUntil(lambda: panel.singers.count() == 3, timeout=10_000)
    # a drag in the list is a row move in its model: Cy to the top
    assert panel.singers.model().moveRows(QModelIndex(), 2, 1, QModelIndex(), 0)
    assert [rot.singers[i].name for i in rot.order] == ["Cy", "Ann", "Bob"]
    qtbot.waitUntil(lambda: panel.singers.item(0).text().startswith("Cy"), timeout=10_000)
    panel.singers.setCurrentRow(1)  # Ann
    panel.hold_button.click()
    assert rot.singers[a.id].held
    qtbot.waitUntil(lambda: "on hold" in panel.singers.item(1).text(), timeout=10_000)
    panel.singers.setCurrentRow(1)
    panel.hold_button.click()
    assert not rot.singers[a.id].held
    panel.singers.setCurrentRow(1)
    panel.skip_singer_button.click()
    assert a.id in rot.done
    # move Ann's song to Bob through the menu
    qtbot.waitUntil(lambda: panel.singers.count() == 3, timeout=10_000)
    panel.singers.setCurrentRow(1)
    panel.songs.setCurrentRow(0)
    menu = panel._move_menu()
    next(act for act in menu.actions() if act.text() == "Bob").trigger()
    assert [r.id for r in rot.singers[b.id].requests] == [ra.id] and not rot.singers[a.id].requests
    qtbot.waitUntil(lambda: panel.singers.count() == 3, timeout=10_000)
    panel.singers.setCurrentRow(2)  # Bob
    panel.songs.setCurrentRow(0)
    panel.drop_button.click()
    assert not rot.singers[b.id].requests
    panel.singers.setCurrentRow(0)  # Cy
    panel.remove_button.click()
    assert c.id not in rot.singers
    # a refusal is a notice, never an exception
    party.guard(lambda: rot.add_singer("<bad>"))
    assert harness.window.last_notice[0] == "warning" and "name" in harness.window.last_notice[1]


def test_restart_mid_evening_keeps_the_rotation(harness, tmp_path, qtbot):
    path = tmp_path / "party" / "rotation.json"
    ctl = harness.window.party(rotation_path=path, countdown_s=0)
    a = ctl.rotation.add_singer("Ann")
    ctl.rotation.request(a.id, "abc", "Lost Song")
    ctl.rotation.start_next()
    ctl.close()
    from unmix_desktop.party.rotation import Rotation

    again = Rotation(path)
    assert again.current.request.title == "Lost Song" and again.singers[a.id].name == "Ann"


def test_party_cli_prints_the_url_first_and_stops_cleanly(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-m", "unmix_desktop.ui.app", "--party", "--host", "127.0.0.1",
                             "--pin", "9876"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        first = proc.stdout.readline().strip()
        assert first.startswith("Party remote: http://127.0.0.1:") and "/?t=" in first, (first, proc.stderr.read()
                                                                                         if proc.poll() else "")
        url = first.split(": ", 1)[1]
        base, token = url.split("/?t=")
        status, state = _get(base + "/api/state", {"X-Party-Token": token})
        assert status == 200 and state["singers"] == [] and "playback" in state
        assert _get(base + "/api/state", {"X-Party-Token": "x"})[0] == 403
    finally:
        proc.terminate()
        proc.wait(30)
    bad = subprocess.run([sys.executable, "-m", "unmix_desktop.ui.app", "--party", "--port", "99999"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "port" in bad.stderr
