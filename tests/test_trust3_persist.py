"""Issue 21 section 1: every persisted file the app reads is validated field by field; what does not
validate is set aside (``NAME.bad-<time>``, never deleted) with one notice, and defaults are used."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from unmix_desktop import persist
from unmix_desktop.cache import file_hash
from unmix_desktop.session import Session, SessionStore


def set_aside_files(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".bad-*"))


@pytest.fixture
def notices():
    said: list[str] = []
    previous = persist.set_notice_sink(said.append)
    yield said
    persist.set_notice_sink(previous)


BAD_SESSIONS = [
    {"version": 1, "stems": "vocals"},
    {"version": 1, "stems": {"vocals": [1, 2]}},
    {"version": 1, "stems": {"vocals": {"gain_db": "loud"}}},
    {"version": 1, "stems": {"vocals": {"mute": 1}}},
    {"version": 1, "controls": {"markers": [{"t": "x"}]}},
    {"version": 1, "controls": {"tempo.ratio": [1]}},
    {"version": 1, "controls": "loop"},
    {"version": "1"},
    [1, 2],
]


@pytest.mark.parametrize("data", BAD_SESSIONS, ids=range(len(BAD_SESSIONS)))
def test_a_bad_session_file_is_set_aside_and_the_session_starts_fresh(tmp_path, notices, data):
    store = SessionStore(tmp_path)
    session = Session(["vocals", "accompaniment"], "ab12")
    path = store.path("ab12")
    path.write_text(json.dumps(data))
    assert store.load(session) is False
    assert session.get("vocals.gain_db") == 0.0 and not session.get("vocals.mute")
    assert not path.exists() and len(set_aside_files(path)) == 1
    assert set_aside_files(path)[0].read_text() == json.dumps(data)  # kept as it was
    assert len(notices) == 1 and str(path) in notices[0] and "set aside" in notices[0]


def test_nan_in_a_session_file_is_refused(tmp_path, notices):
    store = SessionStore(tmp_path)
    path = store.path("ab12")
    path.write_text('{"version": 1, "controls": {"master.gain_db": NaN}}')
    assert store.load(Session(["vocals"], "ab12")) is False and set_aside_files(path) and len(notices) == 1


def test_a_good_session_file_still_loads(tmp_path, notices):
    store = SessionStore(tmp_path)
    s = Session(["vocals", "accompaniment"], "ab12")
    s.set_gain_db("vocals", -math.inf)
    s.set("markers", [{"t": 1.5, "label": "verse"}])
    store.save(s)
    again = Session(["vocals", "accompaniment"], "ab12")
    assert store.load(again) and again.get("vocals.gain_db") == -math.inf and again.get("markers")[0]["t"] == 1.5
    assert notices == []


def test_the_window_opens_a_song_whose_session_file_is_bad(harness, song_path, notices):
    w = harness.window
    notes: list[str] = []
    persist.set_notice_sink(None)
    w.persisted_notice.connect(notes.append)
    persist.set_notice_sink(w._notice_sink)
    path = w.sessions.path(file_hash(song_path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1, "stems": {"vocals": [1, 2]}, "controls": {"master.gain_db": -3}}))
    harness.drop_and_wait(song_path)
    assert w.page == "song" and w.session is not None
    assert w.session.get("vocals.gain_db") == 0.0 and w.session.get("master.gain_db") == 0.0
    assert len(set_aside_files(path)) == 1
    assert len(notes) == 1 and "set aside" in notes[0]
    assert w.last_notice == ("warning", notes[0])
    # the mix made now is saved to a fresh session file
    w.session.set_gain_db("vocals", -6.0)
    w.save_session()
    assert json.loads(path.read_text())["stems"]["vocals"]["gain_db"] == -6.0


# -- the batch queue -------------------------------------------------------------------------------
BAD_QUEUES = [
    {"version": 1, "items": 5},
    {"version": 1, "paused": "no", "items": []},
    {"version": 1, "items": [{"id": "one", "path": "a.wav"}]},
    {"version": 1, "items": [{"id": 1, "path": ["a.wav"]}]},
    {"version": 1, "items": [{"id": 1, "path": "a.wav", "progress": "half"}]},
    {"version": 1, "items": [{"id": 1, "path": "a.wav", "state": "exploded"}]},
    "queue",
]


@pytest.mark.parametrize("data", BAD_QUEUES, ids=range(len(BAD_QUEUES)))
def test_a_bad_queue_file_is_set_aside(tmp_path, notices, data):
    from unmix_desktop.library.queue import BatchQueue

    path = tmp_path / "queue.json"
    path.write_text(json.dumps(data))
    q = BatchQueue(path)
    assert q.items == [] and q.paused is False
    assert not path.exists() and len(set_aside_files(path)) == 1
    assert len(notices) == 1 and str(path) in notices[0]


def test_a_good_queue_file_still_loads(tmp_path, notices):
    from unmix_desktop.library.queue import BatchQueue

    path = tmp_path / "queue.json"
    q = BatchQueue(path)
    q.add(["/music/a.wav", "/music/b.wav"])
    again = BatchQueue(path)
    assert [i.path for i in again.items] == ["/music/a.wav", "/music/b.wav"] and notices == []


# -- the helper itself -----------------------------------------------------------------------------
def test_set_aside_never_overwrites_and_unreadable_files_stay(tmp_path, notices):
    path = tmp_path / "x.json"
    for _ in range(3):
        path.write_text("{")
        assert persist.load_json_validated(path, persist.expect_dict, "default") == "default"
    assert len(set_aside_files(path)) == 3 and len(notices) == 3
    folder = tmp_path / "d.json"
    folder.mkdir()
    assert persist.load_json_validated(folder, persist.expect_dict, {}) == {}


def test_notices_with_a_key_are_given_once(notices):
    assert persist.notice("a\nb", key="test-once-key") and not persist.notice("again", key="test-once-key")
    assert notices == ["a\\nb"]


# -- settings --------------------------------------------------------------------------------------
def test_a_damaged_settings_file_is_set_aside(tmp_path, notices):
    from unmix_desktop.ui.settings import AppSettings

    path = tmp_path / "unmix-desktop.ini"
    path.write_bytes(b"[separation\nniter=abc\n")
    s = AppSettings(path)
    assert s.niter == 1 and s.model is None
    assert len(set_aside_files(path)) == 1 and len(notices) == 1 and "settings" in notices[0]
    s.niter = 3
    s.sync()
    assert AppSettings(path).niter == 3 and len(notices) == 1


def test_settings_of_the_wrong_kind_are_dropped_with_a_notice(tmp_path, notices):
    from unmix_desktop.ui.settings import AppSettings

    path = tmp_path / "unmix-desktop.ini"
    path.write_text("[recent]\nfiles=@Variant(\\0\\0\\0\\b\\0\\0\\0\\x1)\n"
                    "[separation]\nfour_stem_model=@Variant(\\0\\0\\0\\b\\0\\0\\0\\x1)\nniter=2\n")
    s = AppSettings(path)
    assert s.recent_files == [] and s.four_stem_model == "dsp" and s.niter == 2
    assert len(notices) == 2 and all(str(path) in n for n in notices)
    assert s.recent_files == [] and len(notices) == 2  # dropped: said once


# -- the library index (cache entries' meta.json) -------------------------------------------------
@pytest.mark.parametrize("field, value", [("created", "yesterday"), ("frames", "many"), ("sample_rate", [44100]),
                                          ("stems", [["vocals", 1]])])
def test_a_cache_entry_with_bad_fields_is_left_out_of_the_library(tmp_path, tiny_umx, notices, field, value):
    from conftest import make_song

    from unmix_desktop.audio.io import save_audio
    from unmix_desktop.cache import META_NAME, StemCache
    from unmix_desktop.library.index import LibraryIndex
    from unmix_desktop.separation.pipeline import Pipeline, SongRequest

    cache = StemCache(tmp_path / "cache" / "stems")
    pipe = Pipeline(lambda name: tiny_umx, cache, threads=1)
    songs = [save_audio(tmp_path / f"s{i}.wav", make_song(0.5, seed=i)["mixture"]) for i in range(2)]
    for song in songs:
        pipe.run(SongRequest(song, "tiny"))
    bad_key = cache.entries()[0][0]
    meta_path = cache.root / bad_key / META_NAME
    meta = json.loads(meta_path.read_text())
    meta[field] = value
    meta_path.write_text(json.dumps(meta))
    entries = LibraryIndex(cache).scan()
    assert len(entries) == 1 and bad_key not in entries[0].keys
    assert len(notices) == 1 and bad_key in notices[0] and f"'{field}" in notices[0]


# -- the beats cache (and the pattern a chords cache uses) -----------------------------------------
@pytest.mark.parametrize("data", [{"bpm": "fast"}, {"bpm": 120, "beats": [0.5, "x"]}, {"bpm": 120, "beats": [1.0, 0.5]},
                                  {"bpm": 120, "beats": [-1.0]}, {"bpm": 120, "beats_per_bar": 0}, [120]])
def test_a_bad_beats_cache_is_set_aside(tmp_path, notices, data):
    from unmix_desktop.ui.practice_view import validate_beats

    path = tmp_path / "ab.beats.json"
    path.write_text(json.dumps(data))
    assert persist.load_json_validated(path, validate_beats, None) is None
    assert set_aside_files(path) and len(notices) == 1


def test_a_good_beats_cache_loads(tmp_path, notices):
    from unmix_desktop.analysis.beats import BeatGrid
    from unmix_desktop.ui.practice_view import validate_beats

    path = BeatGrid(120.0, [0.5, 1.0, 1.5], [0.5], 4, "drums", 0.7).save(tmp_path / "ab.beats.json")
    grid = persist.load_json_validated(path, validate_beats, None)
    assert grid.bpm == 120.0 and grid.beats == [0.5, 1.0, 1.5] and notices == []


def test_the_window_estimates_beats_again_over_a_bad_cache(harness, song_path, notices):
    w = harness.window
    path = w.practice_ctl.beats_path(file_hash(song_path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"bpm": "NaN", "beats": [1, 2]}))
    harness.drop_and_wait(song_path)
    harness.qtbot.waitUntil(lambda: w.practice_ctl.grid is not None, timeout=60_000)
    assert w.practice_ctl.grid.bpm > 0 and set_aside_files(path)
    harness.qtbot.waitUntil(path.exists, timeout=60_000)  # the new estimate is cached again


def test_the_window_opens_over_a_bad_queue_file(qtbot, tmp_path, tiny_umx, notices):
    from test_ui import Harness

    queue = tmp_path / "queue.json"
    queue.write_text(json.dumps({"version": 1, "items": 5}))
    h = Harness(qtbot, tmp_path, tiny_umx)
    try:
        w = h.window
        assert w.library_ctl.runner.queue.items == [] and not queue.exists() and set_aside_files(queue)
        assert "set aside" in w.status_label.text() and str(queue) in w.status_label.text()
    finally:
        h.window.close()
