"""The vocals stem and its melody for a song file or a stems folder (Qt-free): what the aligner and
the UltraStar export read. A song file goes through the song pipeline (separation/pipeline.py)
with the stem cache, so a second run (or the window, which shares the cache) separates nothing;
the melody is cached beside the cached stems like the window's melody lane does."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..analysis.melody import Contour, melody_for_audio, melody_for_stems, vocals_file
from ..audio.io import SAMPLE_RATE, load_audio
from ..errors import UnmixError


@dataclass
class SongVocals:
    path: Path
    vocals: np.ndarray          # float32 (n, 2) at sample_rate
    sample_rate: int
    contour: Contour
    mixture: np.ndarray | None = None
    stems: dict | None = None   # all stems when separated here


def song_vocals(path: str | Path, model: str | None = None, use_cache: bool = True,
                report: Callable[[str, float], None] | None = None,
                cancel: threading.Event | None = None, keep_stems: bool = False) -> SongVocals:
    """Vocals + melody of ``path`` (an audio file, or a stems folder holding ``vocals.wav``)."""
    path = Path(path)
    report = report or (lambda stage, fraction: None)
    if path.is_dir():
        vf = vocals_file(path)
        if vf is None:
            raise UnmixError(f"{path}: no vocals stem in this folder")
        vocals = np.load(vf) if vf.suffix == ".npy" else load_audio(vf)
        report("melody", 0.0)
        return SongVocals(path, np.asarray(vocals, np.float32), SAMPLE_RATE, melody_for_stems(path))
    from .. import cache as cache_mod
    from ..cache import StemCache
    from ..separation.pipeline import ModelProvider, Pipeline, SongRequest, check_song_path, worker_threads
    from ..separation.registry import default_model_name
    from ..separation.settings import SeparationSettings

    path = check_song_path(path)
    cache = StemCache() if use_cache else None
    model_name = model or default_model_name()
    request = SongRequest(path, model_name, SeparationSettings(), use_cache=use_cache)
    result = Pipeline(ModelProvider(), cache, threads=worker_threads()).run(request, report, cancel)
    vocals = result.stems["vocals"]
    cache_file = None
    if cache is not None:
        try:
            key = cache_mod.make_key(result.content_hash or "", result.model_name, result.settings_key)
            folder = cache._folder(key)
            cache_file = folder / "melody-swift-f0.csv" if folder.is_dir() else None
        except Exception:  # noqa: BLE001 - the cache layout is an optimisation only
            cache_file = None
    report("melody", 0.0)
    contour = melody_for_audio(vocals, result.sample_rate, cache_file)
    return SongVocals(path, vocals, result.sample_rate, contour, result.mixture if keep_stems else None,
                      dict(result.stems) if keep_stems else None)
