"""A Demucs model through the song pipeline (what the window and the queue run): play-while-separating
(live), stems = sources + accompaniment, cached per model, no four-stem split of its own stems."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("unmix_desktop.separation.demucs", reason="the Demucs package (branch demucs-core) is not merged")
pytest.importorskip("demucs.htdemucs", reason="the reference demucs package (test-only) is not installed")

from test_demucs_cli import SIX, make_checkpoint, song

from unmix_desktop.cache import StemCache
from unmix_desktop.separation.pipeline import Pipeline, SongRequest
from unmix_desktop.separation.settings import SeparationSettings


def test_live_run_cached_and_four_stems_request_keeps_the_models_stems(tmp_path):
    import torch

    from unmix_desktop.separation.demucs import load_demucs

    torch.set_num_threads(1)
    model = load_demucs(make_checkpoint(tmp_path, SIX))
    x = song(tmp_path / "s.wav", seconds=5.0)
    pipe = Pipeline(lambda name: model, StemCache(tmp_path / "cache"), threads=1)
    seen = []

    def live(partial, growing):
        seen.append((list(partial.stems), growing.ready))

    stages = []
    result = pipe.run(SongRequest(tmp_path / "s.wav", "six", SeparationSettings()), lambda s, f: stages.append(s),
                      threading.Event(), live=live)
    names = ["vocals", "drums", "bass", "other", "guitar", "piano", "accompaniment"]
    assert list(result.stems) == names
    assert seen and seen[0][0] == names and 0 < seen[0][1] < x.shape[0]  # played before the end was separated
    np.testing.assert_allclose(result.stems["accompaniment"] + result.stems["vocals"], x, atol=1e-6)
    # the same song again: from the cache
    again = pipe.run(SongRequest(tmp_path / "s.wav", "six", SeparationSettings()))
    assert again.from_cache and all(np.array_equal(again.stems[k], result.stems[k]) for k in names)
    # a four-stem request (the window's 4-stem preference) keeps the model's own drums/bass/other
    four = pipe.run(SongRequest(tmp_path / "s.wav", "six", SeparationSettings(), four_stems=True, use_cache=False))
    assert list(four.stems) == names
    np.testing.assert_allclose(four.stems["drums"], result.stems["drums"], atol=1e-6)
