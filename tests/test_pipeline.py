"""The song pipeline: stages, cache, four stems from the cached two, scoped threads, model options,
decode failures, the block stream, cancel; evaluation and training's quick scores go through it."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from conftest import make_song

from unmix_desktop.audio.io import save_audio
from unmix_desktop.cache import StemCache
from unmix_desktop.errors import Cancelled
from unmix_desktop.evaluation.runner import model_separate_fn
from unmix_desktop.evaluation.tracks import Track
from unmix_desktop.separation import pipeline as pl
from unmix_desktop.separation.separator import Separator
from unmix_desktop.separation.settings import SeparationSettings
from unmix_desktop.training.quickeval import score_model


@pytest.fixture
def song_file(tmp_path):
    path = tmp_path / "song.wav"
    save_audio(path, make_song(3.0)["mixture"], subtype="FLOAT")
    return path


@pytest.fixture
def count_separations(monkeypatch):
    calls = []
    real = Separator.separate

    def spy(self, *args, **kwargs):
        calls.append(torch.get_num_threads())
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Separator, "separate", spy)
    return calls


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_run_reports_stages_caches_and_reuses_two_stems_for_four(song_file, tmp_path, tiny_umx, count_separations,
                                                                  restore_threads):
    torch.set_num_threads(2)
    pipe = pl.Pipeline(lambda name: tiny_umx, StemCache(tmp_path / "stems"), threads=1)
    stages = []
    first = pipe.run(pl.SongRequest(song_file, "tiny"), lambda s, f: stages.append((s, f)))
    assert [s for s, _ in stages if s != "duration"][:4] == ["read", "decode", "model", "separate"]
    assert stages[-1] == ("save", 1.0)
    assert all(0.0 <= f <= 1.0 for s, f in stages if s != "duration")
    assert list(first.stems) == ["vocals", "accompaniment"] and not first.from_cache
    assert first.content_hash and len(first.content_hash) == 64
    assert count_separations == [1]  # torch ran with the pipeline's thread count ...
    assert torch.get_num_threads() == 2  # ... and the process's count is back
    # four stems of the same song: the cached two-stem result is split, the network does not run again
    four = pipe.run(pl.SongRequest(song_file, "tiny", four_stems=True))
    assert count_separations == [1]
    assert list(four.stems) == ["vocals", "drums", "bass", "other"] and four.reused_two_stems
    np.testing.assert_array_equal(four.stems["vocals"], first.stems["vocals"])
    np.testing.assert_allclose(sum(four.stems.values()), first.mixture, atol=1e-4)
    again = pipe.run(pl.SongRequest(song_file, "tiny", four_stems=True))
    assert again.from_cache and not again.reused_two_stems and count_separations == [1]


def test_a_fresh_four_stem_run_keeps_the_two_stem_result(song_file, tmp_path, tiny_umx, count_separations):
    pipe = pl.Pipeline(lambda name: tiny_umx, StemCache(tmp_path / "stems"), threads=1)
    pipe.run(pl.SongRequest(song_file, "tiny", four_stems=True))
    two = pipe.run(pl.SongRequest(song_file, "tiny"))
    assert two.from_cache and count_separations == [1]


def test_refresh_separates_afresh_and_replaces_the_cached_entry(song_file, tmp_path, tiny_umx, count_separations):
    """Before: a fresh separation (the window's Ctrl+R) bypassed the cache both ways, so its stems were never
    stored: after a cache clear the song stayed out of the cache and the library. ``use_cache=False`` still
    leaves the cache alone (the CLIs' --no-cache)."""
    cache = StemCache(tmp_path / "stems")
    pipe = pl.Pipeline(lambda name: tiny_umx, cache, threads=1)
    pipe.run(pl.SongRequest(song_file, "tiny"))
    [(key, _, _)] = cache.entries()
    created = cache.get(key).meta["created"]
    fresh = pipe.run(pl.SongRequest(song_file, "tiny", refresh=True))
    assert not fresh.from_cache and count_separations == [1, 1]
    assert [k for k, _, _ in cache.entries()] == [key] and cache.get(key).meta["created"] > created
    cache.clear()
    pipe.run(pl.SongRequest(song_file, "tiny", refresh=True))
    assert count_separations == [1, 1, 1] and [k for k, _, _ in cache.entries()] == [key]
    again = pipe.run(pl.SongRequest(song_file, "tiny"))
    assert again.from_cache and count_separations == [1, 1, 1]
    np.testing.assert_array_equal(again.stems["vocals"], fresh.stems["vocals"])
    cache.clear()
    pipe.run(pl.SongRequest(song_file, "tiny", use_cache=False))
    assert count_separations == [1, 1, 1, 1] and cache.entries() == []


def test_spleeter_exponent_follows_the_power_setting(restore_threads):
    from unmix_desktop.separation.spleeter import SpleeterModel

    model = SpleeterModel(segment=64).eval()
    audio = make_song(0.5)["mixture"]
    for settings, exponent in ((SeparationSettings(power=2.0), 2.0), (SeparationSettings(power=1.0), 1.0),
                               (SeparationSettings(power=1.0, softmask=False), 2.0)):
        stems = pl.separate_audio(model, audio, settings)
        assert model.exponent == exponent
        assert set(stems) == {"vocals", "accompaniment"}


def test_random_bytes_are_a_decode_failure_naming_the_file(tmp_path):
    bad = tmp_path / "noise.mp3"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(pl.DecodeError) as info:
        pl.Pipeline(lambda name: None, None).run(pl.SongRequest(bad, "tiny"))
    text = str(info.value)
    assert text.startswith(f"{bad}: cannot decode") and "pipe" not in text and "does not exist" not in text
    with pytest.raises(pl.AudioError, match="file not found"):
        pl.Pipeline(lambda name: None, None).run(pl.SongRequest(tmp_path / "gone.mp3", "tiny"))


def test_stream_yields_the_song_block_by_block_and_restores_threads(tiny_umx, restore_threads):
    torch.set_num_threads(2)
    audio = make_song(6.0)["mixture"]
    pipe = pl.Pipeline(lambda name: tiny_umx, None, threads=1)
    settings = SeparationSettings(window_s=2.0, overlap_s=0.5)
    blocks = []
    for offset, stems in pipe.stream(audio, "tiny", settings):
        assert torch.get_num_threads() == 1
        blocks.append((offset, stems))
    assert torch.get_num_threads() == 2
    assert len(blocks) > 2 and blocks[0][0] == 0
    ends = [o + b["vocals"].shape[0] for o, b in blocks]
    assert [o for o, _ in blocks[1:]] == ends[:-1] and ends[-1] == audio.shape[0]
    whole = pipe.separate(audio, "tiny", settings)
    np.testing.assert_allclose(np.concatenate([b["vocals"] for _, b in blocks]), whole["vocals"], atol=1e-6)


def test_cancel_caches_nothing(song_file, tmp_path, tiny_umx):
    cache = StemCache(tmp_path / "stems")
    cancel = threading.Event()

    def report(stage, fraction):
        if stage == "separate" and fraction > 0:
            cancel.set()

    pipe = pl.Pipeline(lambda name: tiny_umx, cache, threads=1)
    with pytest.raises(Cancelled):
        pipe.run(pl.SongRequest(song_file, "tiny", SeparationSettings(window_s=1.0, overlap_s=0.25)), report, cancel)
    assert cache.entries() == []


def test_evaluation_and_quick_scores_use_the_pipeline(tiny_umx, restore_threads, count_separations):
    song = make_song(2.0)
    torch.set_num_threads(1)
    fn = model_separate_fn(tiny_umx, SeparationSettings(niter=0), ["vocals", "accompaniment"])
    stems = fn(song["mixture"])
    assert torch.get_num_threads() == 1  # the separator's "every core" did not leak into the process
    np.testing.assert_allclose(stems["vocals"] + stems["accompaniment"], song["mixture"], atol=1e-4)
    torch.set_num_threads(2)
    track = Track("t", song["mixture"], {"vocals": song["vocals"],
                                         "accompaniment": song["mixture"] - song["vocals"]})
    scores = score_model(tiny_umx, [track], threads=1)
    assert torch.get_num_threads() == 2  # quick scores no longer leave torch at 1 thread
    assert np.isfinite(scores["median"]["vocals"]["gSDR"])
    assert count_separations[-1] == 1  # ... while they ran with 1


def test_the_command_line_builds_its_separator_through_the_pipeline(restore_threads):
    """`unmix separate --power 2` sets Spleeter's mask exponent too (the options no longer drift apart)."""
    from unmix_desktop.cli import build_parser
    from unmix_desktop.commands.separate import _make_separator

    args = build_parser().parse_args(["separate", "x.wav", "--out", "o", "--model", "spleeter-2stems",
                                      "--power", "2", "--device", "cpu"])
    separator = _make_separator(args, threads=1)
    assert separator.model.exponent == 2.0 and separator.settings.power == 2.0
