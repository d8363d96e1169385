"""Evaluation data sets on disk: one folder per track holding one audio file per source.

Layout (any extension that ``audio.io`` reads)::

    DIR/<track>/mixture.wav      optional; when absent the mixture is the sum of the targets
    DIR/<track>/vocals.flac
    DIR/<track>/accompaniment.ogg ...

MIR-1K (``shared/data/mir1k/valid``) has no mixture file: the mix is vocals + accompaniment.
A folder that directly holds the audio files (e.g. ``dev/waveform-playlist-demo``) is one track.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..audio.io import SAMPLE_RATE, audio_files, load_audio
from ..errors import AudioError

MIXTURE_NAMES = ("mixture", "mix")


@dataclass
class Track:
    """One evaluation track: the mixture and its true sources, float32 (n, 2) at 44.1 kHz."""

    name: str
    mixture: np.ndarray
    sources: dict[str, np.ndarray] = field(default_factory=dict)
    path: Path | None = None
    mixture_is_sum: bool = False
    sample_rate: int = SAMPLE_RATE

    @property
    def duration(self) -> float:
        return self.mixture.shape[0] / float(self.sample_rate)


def _audio_files(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for p in audio_files(folder):
        name = p.name[: -len(p.suffix)].lower()
        if name.endswith(".stem"):  # musdb .stem.mp4: not a single source
            continue
        files.setdefault(name, p)
    return files


def load_track_folder(
    folder: str | os.PathLike,
    targets: Iterable[str] | None = None,
    sample_rate: int = SAMPLE_RATE,
    max_duration: float | None = None,
) -> Track:
    """Load ``folder/{mixture,<target>...}`` as a :class:`Track`.

    ``targets``: the sources to load (default: every audio file except the mixture). A requested
    target without a file raises :class:`AudioError`. When there is no mixture file the mixture
    is the sum of the loaded targets (MIR-1K layout). Files of slightly different lengths (lossy
    codecs, resampling) are cut to the shortest; ``max_duration`` (s) crops long tracks.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise AudioError(folder, "not a folder of track files")
    files = _audio_files(folder)
    mix_name = next((m for m in MIXTURE_NAMES if m in files), None)
    if targets is None:
        wanted = [n for n in files if n not in MIXTURE_NAMES]
    else:
        wanted = [t.strip().lower() for t in targets if t.strip()]
    missing = [t for t in wanted if t not in files]
    if missing:
        have = ", ".join(sorted(files)) or "no audio files"
        raise AudioError(folder, f"no file for target(s) {', '.join(missing)} (found: {have})")
    if not wanted:
        raise AudioError(folder, "no source files to evaluate")
    if mix_name is None and len(wanted) < 2:
        raise AudioError(folder, "no mixture file, and the mixture cannot be the sum of a single target")
    sources = {t: load_audio(files[t], sample_rate=sample_rate) for t in wanted}
    mixture = load_audio(files[mix_name], sample_rate=sample_rate) if mix_name else None
    lengths = [a.shape[0] for a in sources.values()] + ([mixture.shape[0]] if mixture is not None else [])
    n = min(lengths)
    if max(lengths) - n > 0.01 * n + sample_rate * 0.1:
        raise AudioError(folder, f"source files differ in length ({n} vs {max(lengths)} samples)")
    if max_duration is not None:
        n = min(n, int(round(max_duration * sample_rate)))
    sources = {t: np.ascontiguousarray(a[:n]) for t, a in sources.items()}
    if mixture is None:
        mixture = np.sum([a for a in sources.values()], axis=0).astype(np.float32)
    else:
        mixture = np.ascontiguousarray(mixture[:n])
    return Track(name=folder.name, mixture=mixture, sources=sources, path=folder, mixture_is_sum=mix_name is None,
                 sample_rate=sample_rate)


def find_track_folders(root: str | os.PathLike) -> list[Path]:
    """Track folders under ``root``: its sub-folders holding audio files, or ``root`` itself
    when it directly holds audio files."""
    root = Path(root)
    if not root.exists():
        raise AudioError(root, "folder not found")
    if not root.is_dir():
        raise AudioError(root, "is a file, expected a folder of tracks")
    if _audio_files(root):
        return [root]
    folders = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".") and _audio_files(p)]
    if not folders:
        raise AudioError(root, "no track folders with audio files found")
    return folders


def iter_tracks(
    root: str | os.PathLike,
    targets: Iterable[str] | None = None,
    max_tracks: int | None = None,
    max_duration: float | None = None,
) -> Iterator[Track]:
    """Load the tracks under ``root`` one at a time (so only one is in memory)."""
    folders = find_track_folders(root)
    if max_tracks is not None:
        folders = folders[: max(0, int(max_tracks))]
    targets = list(targets) if targets is not None else None
    for folder in folders:
        yield load_track_folder(folder, targets=targets, max_duration=max_duration)
