"""Test helpers for the Demucs tests: the reference package ``demucs`` (a test-only dependency,
installed with --no-deps; see the Makefile) and random-weight checkpoints in the official format."""

from __future__ import annotations

import importlib
import sys
import types
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev" / "waveform-playlist-demo"
SOURCES_4 = ["drums", "bass", "other", "vocals"]
SOURCES_6 = ["drums", "bass", "other", "vocals", "guitar", "piano"]
#: a small HTDemucs (same structure, fewer channels and transformer layers, 2 s segments) for fast tests
SMALL = dict(channels=8, t_layers=2, t_heads=2, segment=Fraction(2))


def reference():
    """Import the reference's ``demucs.api`` (+ htdemucs, states). ``demucs.api`` imports ``sphn`` and
    ``demucs.audio`` imports ``lameenc`` at module level, for reading and writing audio files only; neither
    is installed here, so while importing they are empty stand-in modules (only ``separate_tensor`` is used,
    which touches neither)."""
    try:
        importlib.import_module("demucs.htdemucs")
    except ImportError:
        pytest.skip("reference package demucs not installed (pip install --no-deps demucs==4.1.0 einops julius)")
    added = []
    for name in ("sphn", "lameenc"):
        try:
            importlib.import_module(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)
            added.append(name)
    try:
        api = importlib.import_module("demucs.api")
    finally:
        for name in added:
            sys.modules.pop(name, None)
    return api


def make_checkpoint(folder: Path, sig: str, sources=SOURCES_4, seed: int = 0, **config) -> Path:
    """Save a random-weight HTDemucs as the reference does (serialize_model's dict with half-precision
    state, save_with_checksum's ``<sig>-<sha256[:8]>.th`` name); returns its path."""
    reference()
    from demucs.htdemucs import HTDemucs
    from demucs.states import get_state, save_with_checksum

    torch.manual_seed(seed)
    config.setdefault("segment", Fraction(39, 5))  # the published models' 7.8 s
    net = HTDemucs(sources=list(sources), **config)
    args, kwargs = net._init_args_kwargs
    package = {"klass": HTDemucs, "args": args, "kwargs": kwargs, "state": get_state(net, None, half=True),
               "training_args": {"seed": seed, "dset": {"sources": list(sources)}}}
    folder.mkdir(parents=True, exist_ok=True)
    save_with_checksum(package, folder / f"{sig}.th")
    (path,) = folder.glob(f"{sig}-*.th")
    return path


def dev_mix(start_s: float, seconds: float) -> np.ndarray:
    if not (DEV / "mixture.flac").is_file():
        pytest.skip(f"dev song not found at {DEV} (see ../shared/data/README.md)")
    from unmix_desktop.audio.io import load_audio

    audio = load_audio(DEV / "mixture.flac")
    a = int(start_s * 44100)
    assert a + int(seconds * 44100) <= audio.shape[0], "slice beyond the dev song's end"
    return np.ascontiguousarray(np.asarray(audio, dtype=np.float32)[a:a + int(seconds * 44100)])


def reference_separate(name: str, repo: Path, mix: np.ndarray, shifts: int = 0) -> dict[str, np.ndarray]:
    """The reference: ``demucs.api.Separator(name, repo, shifts, split=True, overlap=0.25)``."""
    api = reference()
    sep = api.Separator(model=name, repo=repo, shifts=shifts, split=True, overlap=0.25, progress=False)
    _, out = sep.separate_tensor(torch.from_numpy(np.ascontiguousarray(mix.T)), 44100)
    return {k: v.numpy().T for k, v in out.items()}
