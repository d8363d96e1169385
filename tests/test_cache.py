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
