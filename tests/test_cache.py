"""Separation cache: content-hash keys, atomic writes, eviction, and the separation job's cache hit."""

from __future__ import annotations

import hashlib
import shutil
import threading

import numpy as np
import pytest

from unmix_desktop import cache as cache_mod
from unmix_desktop.audio.io import save_audio
from unmix_desktop.cache import StemCache, file_hash, format_bytes, make_key
from unmix_desktop.separation.separator import SeparationSettings
from unmix_desktop.ui import jobs


def _stems(n: int = 2000, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"vocals": rng.standard_normal((n, 2)).astype(np.float32),
            "accompaniment": rng.standard_normal((n, 2)).astype(np.float32)}


def test_key_depends_on_content_model_and_settings(tmp_path):
    a = tmp_path / "a.wav"
    a.write_bytes(b"RIFF" + bytes(range(256)) * 50)
    b = tmp_path / "renamed copy.wav"
    shutil.copy(a, b)
    assert file_hash(a) == hashlib.sha256(a.read_bytes()).hexdigest()
    assert file_hash(a) == file_hash(b)  # a renamed/moved song still hits
    k = make_key(file_hash(a), "spleeter-2stems", SeparationSettings().key())
    assert k == make_key(file_hash(b), "spleeter-2stems", SeparationSettings().key())
    assert k != make_key(file_hash(a), "umxhq", SeparationSettings().key())
    assert k != make_key(file_hash(a), "spleeter-2stems", SeparationSettings(niter=2).key())
    assert k != make_key(file_hash(a), "spleeter-2stems", SeparationSettings().key(), "4stems")
    c = tmp_path / "c.wav"
    c.write_bytes(a.read_bytes()[:-1] + b"\x00")
    assert file_hash(c) != file_hash(a)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Exception, match="cancelled"):
        file_hash(a, cancel)


def test_put_get_roundtrip_and_clear(tmp_path):
    cache = StemCache(tmp_path / "stems")
    stems = _stems()
    mixture = stems["vocals"] + stems["accompaniment"]
    key = make_key("abc", "m", "s")
    assert cache.get(key) is None and not cache.has(key)
    folder = cache.put(key, stems, mixture, {"model": "m", "card": {"name": "m"}})
    assert folder.is_dir() and cache.has(key)
    entry = cache.get(key)
    assert list(entry.stems) == ["vocals", "accompaniment"]
    for name in stems:
        np.testing.assert_array_equal(entry.stems[name], stems[name])
    np.testing.assert_array_equal(entry.mixture, mixture)
    assert entry.meta["model"] == "m" and entry.meta["card"] == {"name": "m"}
    size = cache.size_bytes()
    assert size >= 3 * stems["vocals"].nbytes
    assert cache.clear() == size
    assert cache.size_bytes() == 0 and cache.get(key) is None
    assert format_bytes(1536) == "1.5 KB" and format_bytes(10) == "10 B"


def test_write_is_atomic(tmp_path, monkeypatch):
    """A failure in the middle of a write leaves neither an entry nor a temporary folder."""
    cache = StemCache(tmp_path / "stems")
    key = make_key("abc", "m", "s")
    real_save = np.save
    calls = []

    def failing_save(path, arr, allow_pickle=False):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_save(path, arr, allow_pickle=allow_pickle)

    monkeypatch.setattr(cache_mod.np, "save", failing_save)
    with pytest.raises(OSError):
        cache.put(key, _stems())
    assert len(calls) == 2
    assert cache.get(key) is None
    assert list((tmp_path / "stems").iterdir()) == []  # the temporary folder is gone too


def test_damaged_entry_is_dropped(tmp_path):
    cache = StemCache(tmp_path / "stems")
    key = make_key("abc", "m", "s")
    folder = cache.put(key, _stems())
    npy = folder / "stem0.npy"
    npy.write_bytes(npy.read_bytes()[:100])  # truncated
    assert cache.get(key) is None
    assert not folder.exists()


def test_eviction_drops_the_least_recently_used(tmp_path):
    one = sum(a.nbytes for a in _stems().values())
    cache = StemCache(tmp_path / "stems", max_bytes=int(2.5 * one))  # two entries fit
    k = [make_key(str(i), "m", "s") for i in range(4)]
    cache.put(k[0], _stems(seed=0))
    cache.put(k[1], _stems(seed=1))
    assert cache.get(k[0]) is not None  # reading k[0] makes k[1] the least recently used
    cache.put(k[2], _stems(seed=2))
    assert [cache.has(x) for x in k] == [True, False, True, False]
    cache.put(k[3], _stems(seed=3))
    assert [cache.has(x) for x in k] == [False, False, True, True]
    assert cache.size_bytes() <= 2.5 * one


@pytest.fixture
def song_file(tmp_path):
    from conftest import make_song

    path = tmp_path / "song.wav"
    save_audio(path, make_song(3.0)["mixture"])
    return path


def test_separation_job_uses_the_cache(song_file, tmp_path, tiny_umx):
    loads = []

    def loader(name):
        loads.append(name)
        return tiny_umx

    provider = jobs.ModelProvider(loader)
    cache = StemCache(tmp_path / "stems")
    stages = []
    request = jobs.SeparationRequest(song_file, "tiny", SeparationSettings())
    first = jobs.run_separation(request, provider, cache, lambda s, f: stages.append(s), threading.Event())
    assert not first.from_cache
    assert list(first.stems) == ["vocals", "accompaniment"]
    assert {"read", "decode", "model", "separate", "save"} <= set(stages)
    np.testing.assert_allclose(first.stems["vocals"] + first.stems["accompaniment"], first.mixture, atol=1e-5)

    # A renamed copy of the same file is a hit: no model load, no decode, same arrays.
    copy = tmp_path / "copy of song.wav"
    shutil.copy(song_file, copy)
    stages.clear()
    second = jobs.run_separation(jobs.SeparationRequest(copy, "tiny", SeparationSettings()), provider, cache,
                                 lambda s, f: stages.append(s), threading.Event())
    assert second.from_cache and loads == ["tiny"]
    assert "decode" not in stages and "separate" not in stages
    for name in first.stems:
        np.testing.assert_array_equal(second.stems[name], first.stems[name])
    np.testing.assert_array_equal(second.mixture, first.mixture)

    # Other settings are another entry.
    third = jobs.run_separation(jobs.SeparationRequest(song_file, "tiny", SeparationSettings(niter=0)), provider,
                                cache, lambda s, f: None, threading.Event())
    assert not third.from_cache
    assert len(cache.entries()) == 2


# --- damaged entries: never served, deleted, recomputed -----------------------------------------------

def _data_offset(npy) -> int:
    with open(npy, "rb") as fh:
        assert np.lib.format.read_magic(fh) == (1, 0)
        np.lib.format.read_array_header_1_0(fh)
        return fh.tell()


def _flip_bit(folder):
    npy = folder / "stem1.npy"
    data = bytearray(npy.read_bytes())
    data[len(data) // 2] ^= 0x10
    npy.write_bytes(bytes(data))


def _zero_data(folder):
    npy = folder / "stem0.npy"
    off = _data_offset(npy)
    data = npy.read_bytes()
    npy.write_bytes(data[:off] + bytes(len(data) - off))


def _nan_data(folder):
    npy = folder / "mixture.npy"
    off = _data_offset(npy)
    data = npy.read_bytes()
    npy.write_bytes(data[:off] + np.full((len(data) - off) // 4, np.nan, np.float32).tobytes())


def _truncate(folder):
    npy = folder / "stem0.npy"
    npy.write_bytes(npy.read_bytes()[:-8])


def _meta(text):
    def damage(folder):
        (folder / "meta.json").write_bytes(text)
    return damage


def _npz_stem(folder):
    """The stem file replaced by an .npz archive (same name) holding the same array."""
    arr = np.load(folder / "stem0.npy")
    with open(folder / "stem0.npy", "wb") as fh:
        np.savez(fh, arr)


def _edit_meta(edit):
    def damage(folder):
        import json

        meta = json.loads((folder / "meta.json").read_text())
        edit(meta, folder)
        (folder / "meta.json").write_text(json.dumps(meta))
    return damage


def _rename_stem(meta, folder):  # an unexpected stem file name (an .npz) in the listing
    (folder / "stem0.npy").rename(folder / "stem0.npz")
    meta["stems"][0][1] = "stem0.npz"
    meta["checks"]["stem0.npz"] = meta["checks"].pop("stem0.npy")


def _outside_stem(meta, folder):  # a listing that points outside the entry
    meta["stems"][0][1] = "../../../outside.npy"  # = tmp_path/outside.npy


def _float64_stem(meta, folder):  # a well-formed .npy of the wrong dtype, with a matching checksum
    import zlib

    np.save(folder / "stem0.npy", np.load(folder / "stem0.npy").astype(np.float64))
    data = (folder / "stem0.npy").read_bytes()
    meta["checks"]["stem0.npy"] = {"size": len(data), "crc32": zlib.crc32(data)}


def _old_format(meta, folder):  # an entry of the previous format (no checksums)
    meta["format"] = 1
    del meta["checks"]


DAMAGES = {
    "bit flip": _flip_bit,
    "zeroed data": _zero_data,
    "NaN data": _nan_data,
    "truncated": _truncate,
    "meta []": _meta(b"[]"),
    "meta null": _meta(b"null"),
    "meta garbage": _meta(b"\xff\xfe{not json"),
    "meta {}": _meta(b"{}"),
    "meta deep": _meta(b"[" * 100000),
    "npz stem": _npz_stem,
    "npz stem name": _edit_meta(_rename_stem),
    "stem outside the entry": _edit_meta(_outside_stem),
    "float64 stem": _edit_meta(_float64_stem),
    "missing mixture": lambda folder: (folder / "mixture.npy").unlink(),
    "stem is a folder": lambda folder: ((folder / "stem1.npy").unlink(), (folder / "stem1.npy").mkdir()),
    "other entry's meta": _edit_meta(lambda meta, folder: meta.update(key="0" * 40)),
    "old format": _edit_meta(_old_format),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_entry_is_a_miss_and_is_deleted(tmp_path, damage):
    root = tmp_path / "cache" / "stems"
    cache = StemCache(root)
    outside = tmp_path / "outside.npy"  # a file of the user's next to the cache: never read, never deleted
    np.save(outside, np.zeros((2000, 2), np.float32))
    stems = _stems()
    mixture = stems["vocals"] + stems["accompaniment"]
    key = make_key("abc", "m", "s")
    other = make_key("def", "m", "s")
    cache.put(other, _stems(seed=5), mixture)
    folder = cache.put(key, stems, mixture)
    assert cache.get(key) is not None

    DAMAGES[damage](folder)
    assert cache.get(key) is None
    assert not folder.exists()
    assert outside.is_file() and cache.get(other) is not None  # only that entry was deleted
    # the caller recomputes and stores it again: served once more
    cache.put(key, stems, mixture)
    entry = cache.get(key)
    np.testing.assert_array_equal(entry.stems["accompaniment"], stems["accompaniment"])
    np.testing.assert_array_equal(entry.mixture, mixture)


def test_a_linked_entry_is_unlinked_not_followed(tmp_path):
    """An entry folder that is a symbolic link to a user's folder: a miss, and only the link goes."""
    cache = StemCache(tmp_path / "stems")
    key = make_key("abc", "m", "s")
    folder = cache.put(key, _stems())
    user = tmp_path / "my folder"
    folder.rename(user)
    folder.symlink_to(user, target_is_directory=True)
    assert cache.get(key) is None
    assert not folder.is_symlink() and not folder.exists()
    assert sorted(p.name for p in user.iterdir()) == ["meta.json", "stem0.npy", "stem1.npy"]
    cache.put(key, _stems())
    assert cache.get(key) is not None and sorted(p.name for p in user.iterdir())[0] == "meta.json"
    cache.clear()
    assert (user / "stem0.npy").is_file()


def test_meta_records_size_and_checksum_of_each_file(tmp_path):
    import json
    import zlib

    cache = StemCache(tmp_path / "stems")
    folder = cache.put(make_key("abc", "m", "s"), _stems(), np.zeros((2000, 2), np.float32))
    meta = json.loads((folder / "meta.json").read_text())
    names = ["stem0.npy", "stem1.npy", "mixture.npy"]
    assert sorted(meta["checks"]) == sorted(names)
    for name in names:
        data = (folder / name).read_bytes()
        assert meta["checks"][name] == {"size": len(data), "crc32": zlib.crc32(data)}
        assert np.load(folder / name).dtype == np.float32  # plain .npy files


def test_stale_partial_writes_are_removed(tmp_path):
    import os
    import time

    cache = StemCache(tmp_path / "stems")
    cache.root.mkdir(parents=True)
    stale = cache.root / ".0123abcd.x1.part"
    fresh = cache.root / ".4567abcd.x2.part"  # maybe another process writing right now: kept
    for part in (stale, fresh):
        part.mkdir()
        (part / "stem0.npy").write_bytes(b"partial")
    old = time.time() - 2 * cache_mod.STALE_PART_SECONDS
    os.utime(stale, (old, old))
    cache.put(make_key("abc", "m", "s"), _stems())
    assert not stale.exists() and fresh.is_dir()


def test_separation_job_recomputes_a_damaged_entry(song_file, tmp_path, tiny_umx):
    loads = []

    def loader(name):
        loads.append(name)
        return tiny_umx

    provider = jobs.ModelProvider(loader)
    cache = StemCache(tmp_path / "stems")
    request = jobs.SeparationRequest(song_file, "tiny", SeparationSettings())
    first = jobs.run_separation(request, provider, cache, lambda s, f: None, threading.Event())
    [(key, _, _)] = cache.entries()
    _flip_bit(cache.root / key)

    second = jobs.run_separation(request, provider, cache, lambda s, f: None, threading.Event())
    assert not second.from_cache  # recomputed, not served
    for name in first.stems:
        np.testing.assert_allclose(second.stems[name], first.stems[name], atol=1e-6)
    third = jobs.run_separation(request, provider, cache, lambda s, f: None, threading.Event())
    assert third.from_cache  # the recomputed entry was stored again
    for name in first.stems:
        np.testing.assert_array_equal(third.stems[name], second.stems[name])


def test_an_analysis_finishing_after_a_clear_does_not_bring_its_entry_back(tmp_path, monkeypatch):
    """Before: File -> Clear Separation Cache while a song's chords or melody were still being computed could
    leave the entry's folder behind with the analysis's file in it (a clean-clone run of
    test_clear_cache_asks_with_count_...: 0 songs but 2626 bytes still to clear). The writer had checked
    that the folder existed before the clear, then its atomic write re-created the folder; or it put its
    temporary file in the folder while the clear was deleting it. Now the analyses write into an existing
    folder only, and the clear renames an entry away before deleting it."""
    from pathlib import Path

    from unmix_desktop.analysis import chords, melody
    from unmix_desktop.atomic import atomic_path

    cache = StemCache(tmp_path / "stems")
    sr = 44100
    t = np.arange(sr) / sr
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    stems = {"vocals": np.stack([tone, tone], 1), "accompaniment": np.stack([tone, tone], 1)}
    chart = chords.analyse_chords(stems, sr)
    key = make_key("abc", "m", "s")

    # 1. the writers' folder check ran before the clear, their write after it
    folder = cache.put(key, stems)
    cache.clear()
    assert not folder.exists()
    real_is_dir = Path.is_dir
    monkeypatch.setattr(Path, "is_dir", lambda self: True if self == folder else real_is_dir(self))
    chords.write_cached(folder / "chords-majmin7.json", chart)
    contour = melody.melody_for_audio(stems["vocals"], sr, folder / "melody-swift-f0.csv")
    monkeypatch.undo()
    assert len(contour.times) > 0  # the analysis itself still returns its result
    assert not folder.exists() and cache.clearable() == (0, 0) and list(cache.root.iterdir()) == []

    # 2. a temporary file already in the entry when the clear runs cannot land after it
    folder = cache.put(key, stems)
    with pytest.raises(FileNotFoundError):
        with atomic_path(folder / "melody-swift-f0.csv", mkdir=False) as tmp:
            tmp.write_text("time,hz\n")
            cache.clear()
    assert cache.clearable() == (0, 0) and list(cache.root.iterdir()) == []

    # 3. what a failed delete leaves is still the cache's own, and the next clear removes it
    folder = cache.put(key, stems)
    monkeypatch.setattr(cache_mod.shutil, "rmtree", lambda *a, **k: None)
    cache.clear()
    monkeypatch.undo()
    [left] = list(cache.root.iterdir())
    assert left.name.startswith(f".{key}.discard-") and left.name.endswith(".part")
    assert cache.clearable()[0] == 0 and cache.clearable()[1] > 0 and cache.entries() == []
    assert cache.clear() > 0 and list(cache.root.iterdir()) == []
