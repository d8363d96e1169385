"""The Qt-free library parts (issue 17): the batch queue (expansion, editing, persistence) and the
library index (real cache entries made by the real pipeline with the tiny model, real tags)."""

from __future__ import annotations

import json

import pytest
from conftest import make_song

from unmix_desktop.audio.io import save_audio
from unmix_desktop.cache import StemCache
from unmix_desktop.library.index import LibraryIndex, read_tags
from unmix_desktop.library.queue import BatchQueue, collect_audio_files
from unmix_desktop.separation.pipeline import Pipeline, SongRequest
from unmix_desktop.session import Session, SessionStore


def _wav(path, seconds=1.0, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    save_audio(path, make_song(seconds, seed=seed)["mixture"], subtype="FLOAT")
    return path


def test_collect_audio_files_recursive_stable_audio_only(tmp_path):
    root = tmp_path / "Music"
    b = _wav(root / "b.wav")
    a = _wav(root / "A.wav")
    deep = _wav(root / "Album" / "CD1" / "01.wav")
    _wav(root / ".hidden" / "x.wav")
    (root / "cover.jpg").write_bytes(b"jpeg")
    (root / "notes.txt").write_text("x")
    single = _wav(tmp_path / "single.wav")
    files, problems = collect_audio_files([root, single, a, tmp_path / "gone.wav", tmp_path / "x.txt"])
    assert files == [a, b, deep, single]  # folder order first (top level, then sub-folders), no duplicates
    assert problems == [f"{tmp_path / 'gone.wav'}: file not found", f"{tmp_path / 'x.txt'}: file not found"]
    (tmp_path / "x.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    assert collect_audio_files([tmp_path / "x.txt", tmp_path / "empty"])[1] == [
        f"{tmp_path / 'x.txt'}: not a supported audio file", f"{tmp_path / 'empty'}: is a folder with no audio files"]
    assert collect_audio_files([root])[0] == collect_audio_files([root])[0]


def test_queue_edits_failures_and_persistence(tmp_path):
    path = tmp_path / "data" / "queue.json"
    changes = []
    q = BatchQueue(path, on_change=lambda: changes.append(1))
    items = q.add([tmp_path / f"{k}.wav" for k in range(4)])
    assert [i.id for i in items] == [1, 2, 3, 4] and changes
    assert q.add([tmp_path / "0.wav"]) == []  # already waiting
    assert q.move_by(4, -2) and [i.id for i in q.items] == [1, 4, 2, 3]
    assert q.reorder([3, 1]) and [i.id for i in q.items] == [3, 1, 4, 2]
    removed = q.remove(4)
    assert removed.id == 4 and [i.id for i in q.items] == [3, 1, 2]
    first = q.next_pending()
    q.mark_running(first)
    q.set_progress(first, 0.5)
    q.mark_failed(first, "x.wav: cannot decode: bad\nsecond line")
    assert first.error == "x.wav: cannot decode: bad"
    nxt = q.next_pending()  # one failure never stops the queue
    assert nxt.id == 1
    q.mark_running(nxt)
    q.set_paused(True)
    assert q.next_pending() is None
    saved = json.loads(path.read_text())
    assert saved["version"] == 1 and saved["paused"] and [i["state"] for i in saved["items"]] == [
        "failed", "running", "pending"]
    assert not list(path.parent.glob(".*part*"))  # atomic write left no temporary file

    again = BatchQueue(path)  # a restart: the running song is pending again, the failure is kept
    assert [(i.id, i.state) for i in again.items] == [(3, "failed"), (1, "pending"), (2, "pending")]
    assert again.items[0].error == "x.wav: cannot decode: bad" and again.paused
    assert again.add([tmp_path / "new.wav"])[0].id == 4  # ids stay unique among the items
    assert again.retry(3) and again.items[0].state == "pending" and again.items[0].error is None
    again.set_paused(False)
    assert again.next_pending().id == 3
    assert "to do" in again.summary()

    path.write_text("{not json")
    broken = BatchQueue(path)
    assert broken.items == [] and "not valid JSON" in broken.load_error and "set aside" in broken.load_error


@pytest.fixture
def separated(tmp_path, tiny_umx):
    """Three songs run through the real pipeline into a real cache (one with tags, one 4-stem)."""
    cache = StemCache(tmp_path / "cache" / "stems")
    pipe = Pipeline(lambda name: tiny_umx, cache, threads=1)
    music = tmp_path / "music"
    tagged = music / "tagged.flac"
    tagged.parent.mkdir(parents=True)
    save_audio(tagged, make_song(1.5, seed=1)["mixture"])
    from mutagen.flac import FLAC

    f = FLAC(str(tagged))
    f["title"], f["artist"] = "Blue Moon", "The Testers"
    f.save()
    plain = _wav(music / "plain song.wav", 2.0, seed=2)
    four = _wav(music / "four.wav", 1.0, seed=3)
    results = [pipe.run(SongRequest(p, "tiny")) for p in (tagged, plain)]
    results.append(pipe.run(SongRequest(four, "tiny", four_stems=True)))
    return cache, music, results


def test_index_lists_tags_missing_search_sort_and_delete(tmp_path, separated):
    cache, music, results = separated
    assert read_tags(music / "tagged.flac")[:2] == ("Blue Moon", "The Testers")
    store = SessionStore(tmp_path / "cache" / "sessions")
    for r in results:
        store.save(Session(list(r.stems), r.content_hash, r.title))
    (music / "plain song.wav").rename(tmp_path / "moved.wav")  # its source is now missing
    index = LibraryIndex(cache)
    entries = index.scan()
    assert len(entries) == 3 and len(cache.entries()) == 4  # the 2- and 4-stem entries are one song
    by_title = {e.title: e for e in entries}
    assert set(by_title) == {"Blue Moon", "plain song", "four"}
    moon, plain, four = by_title["Blue Moon"], by_title["plain song"], by_title["four"]
    assert moon.artist == "The Testers" and moon.duration == pytest.approx(1.5, abs=0.01)
    assert plain.missing and plain.duration == pytest.approx(2.0, abs=0.01) and plain.content_hash is None
    assert four.stems == ["vocals", "drums", "bass", "other"] and len(four.keys) == 2 and four.four_stems
    assert moon.has_session and moon.content_hash == results[0].content_hash
    assert [e.title for e in index.query("testers")] == ["Blue Moon"]
    assert [e.title for e in index.query("tiny FOUR")] == ["four"]
    assert [e.title for e in index.query(sort="title")] == ["Blue Moon", "four", "plain song"]
    assert [e.title for e in index.query(sort="duration")] == ["four", "Blue Moon", "plain song"]
    with pytest.raises(ValueError):
        index.query(sort="colour")

    source_bytes = (music / "four.wav").read_bytes()
    removed = index.delete(four)
    assert (music / "four.wav").read_bytes() == source_bytes  # never the song
    assert not (tmp_path / "cache" / "sessions" / f"{results[2].content_hash}.json").exists()
    assert all(p.is_relative_to(tmp_path / "cache") for p in removed) and len(removed) == 3
    assert len(cache.entries()) == 2 and len(LibraryIndex(cache).scan()) == 2
