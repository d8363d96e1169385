"""The Qt-free session: named controls, observers, monitoring apart from the mix, the player link, save/load."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from unmix_desktop.audio.export import render_mix
from unmix_desktop.audio.player import StemPlayer
from unmix_desktop.session import Monitor, PlayerLink, Session, SessionError, SessionStore

SR = 44100


def _stems(seconds: float = 1.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    n = int(seconds * SR)
    return {name: (rng.standard_normal((n, 2)) * 0.1).astype(np.float32) for name in ("vocals", "accompaniment")}


def test_named_controls_notify_observers_and_validate():
    s = Session(["vocals", "accompaniment"])
    heard = []
    unsubscribe = s.observe(lambda control, value: heard.append((control, value)))
    s.set("vocals.gain_db", -6)
    s.set_mute("accompaniment", True)
    s.set("vocals.pan", 3.0)  # clamped
    s.set("vocals.gain_db", -6)  # no change: no notification
    assert heard == [("vocals.gain_db", -6.0), ("accompaniment.mute", True), ("vocals.pan", 1.0)]
    assert s.get("vocals.gain_db") == -6.0 and s.get("vocals.pan") == 1.0
    with pytest.raises(SessionError, match="unknown control 'drums.gain_db'"):
        s.set("drums.gain_db", 0)
    with pytest.raises(SessionError, match="must be a number"):
        s.set("vocals.gain_db", "loud")
    with pytest.raises(SessionError, match="loop start"):
        s.set("loop.enabled", True)  # no A and B yet
    # the controls the practice and karaoke features build on exist already
    for control in ("tempo.ratio", "key.semitones", "markers", "lyrics.path"):
        assert control in s.controls
    s.set("key.semitones", 2.6)
    assert s.get("key.semitones") == 3
    s.set("markers", [{"t": 9.0, "label": "chorus"}, {"t": 2, "label": "verse"}])
    assert [m["label"] for m in s.get("markers")] == ["verse", "chorus"]
    # a batch notifies once
    heard.clear()
    s.apply_preset({"vocals"})
    assert heard == [("*", None)]
    assert s.get("vocals.mute") and not s.get("accompaniment.mute") and s.get("vocals.gain_db") == 0.0
    unsubscribe()
    s.set_master_db(-3)
    assert heard == [("*", None)]


def test_loop_controls():
    s = Session(["vocals"])
    s.set_loop_b(7.0)  # no A: the loop starts 5 s earlier and is switched on
    assert s.loop == (2.0, 7.0)
    s.set_loop_a(8.0)  # A after B: B is dropped, the loop is off
    assert s.get("loop.b") is None and s.loop is None
    s.set_loop_b(9.5)
    assert s.loop == (8.0, 9.5)
    s.set("loop.enabled", False)
    assert s.loop is None and s.get("loop.a") == 8.0
    s.clear_loop()
    assert s.get("loop.a") is None


def test_monitor_mute_silences_the_player_but_never_the_mix():
    stems = _stems()
    s = Session(stems)
    monitor = Monitor()
    player = StemPlayer(open_stream=False)
    player.load(stems)
    PlayerLink(s, monitor, player)
    s.set_gain_db("vocals", -6.0)
    s.set_pan("accompaniment", -0.5)
    assert player.mix_state().gain_db["vocals"] == -6.0 and player.mix_state().pan["accompaniment"] == -0.5
    monitor.set_output_muted(True)
    assert player.mix_state().master_db == -math.inf  # the listener hears nothing ...
    state = s.mix_state()
    assert state.master_db == 0.0  # ... but the mix, hence an export, is untouched
    out = render_mix(stems, state)
    assert float(np.sqrt(np.mean(out ** 2))) > 0.05
    s.set_master_db(-2.0)  # a master move while muted stays silent on the output
    assert player.mix_state().master_db == -math.inf
    monitor.set_output_muted(False)
    assert player.mix_state().master_db == -2.0
    # the loop reaches the player
    s.set_loop_a(0.2)
    s.set_loop_b(0.7)
    assert player.loop == pytest.approx((0.2, 0.7))
    s.set("loop.enabled", False)
    assert player.loop is None


def test_save_and_reopen(tmp_path):
    store = SessionStore(tmp_path / "sessions")
    s = Session(["vocals", "accompaniment"], song_key="ab12", title="Song")
    s.set_gain_db("vocals", -math.inf)  # a fader at the bottom
    s.set_solo("accompaniment", True)
    s.set_pan("accompaniment", 0.25)
    s.set_master_db(-1.5)
    s.set_loop_a(1.0)
    s.set_loop_b(3.0)
    s.set("markers", [{"t": 1.0, "label": "in"}])
    path = store.save(s)
    assert path == tmp_path / "sessions" / "ab12.json"
    assert json.loads(path.read_text())["stems"]["vocals"]["gain_db"] is None  # -inf as null: valid JSON
    assert not list(path.parent.glob("*.part"))  # the temporary file was renamed
    again = Session(["vocals", "accompaniment"], song_key="ab12")
    assert store.load(again)
    assert again.to_dict()["stems"] == s.to_dict()["stems"]
    assert again.loop == (1.0, 3.0) and again.get("master.gain_db") == -1.5
    assert again.get("markers") == [{"t": 1.0, "label": "in"}]
    # four stems of the same song: drums/bass/other start from the accompaniment's controls
    four = Session(["vocals", "drums", "bass", "other"], song_key="ab12")
    store.load(four)
    assert four.get("vocals.gain_db") == -math.inf
    assert four.get("drums.pan") == 0.25 and four.get("other.solo")
    # a damaged file is ignored, not an error
    path.write_text("{not json")
    assert not store.load(Session(["vocals"], song_key="ab12"))
    with pytest.raises(SessionError):
        store.path("../escape")
