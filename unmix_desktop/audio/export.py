"""Offline rendering and export of mixes: karaoke track, custom mix, single stems.

:func:`render_mix` drives the same :class:`~unmix_desktop.audio.mixer.MixEngine` as the live player
callback, so an export equals what the player plays with those faders, sample for sample.
Files are written through :func:`unmix_desktop.audio.io.save_audio` (temporary file, then rename);
the source song is never overwritten.

With a tempo or key (``tempo``, ``semitones``, ``cents``), the mix then goes through Rubber Band's
offline R3 path (:func:`~unmix_desktop.audio.stretch.stretch_offline`): the same library as the
live player, in its high-quality mode. At tempo 1 and no shift nothing changes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from ..errors import AudioError
from .io import WRITE_FORMATS, resample, save_audio
from .mixer import SAMPLE_RATE, MixEngine, MixState
from .stretch import stretch_offline

KARAOKE_REMOVES = "vocals"
RENDER_BLOCK = 4096

PathLike = str | os.PathLike


def render_mix(stems: Mapping[str, np.ndarray], state: MixState, blocksize: int = RENDER_BLOCK,
               tempo: float = 1.0, semitones: float = 0.0, cents: float = 0.0) -> np.ndarray:
    """The mix of ``stems`` (name -> float32 (n, 2)) with the settings of ``state``, float32 (n, 2).

    Every name in ``stems`` must be in ``state``. The length is that of the longest stem, divided by
    ``tempo``; ``semitones`` + ``cents`` transpose it.
    """
    names = list(stems)
    engine = MixEngine([stems[n] for n in names], state.gains(names), max_block=blocksize, meters=False)
    out = np.empty((engine.n_frames, 2), np.float32)
    engine.start()
    for start in range(0, engine.n_frames, blocksize):
        engine.render(out[start : start + blocksize])
    return stretch_offline(out, tempo, semitones, cents, SAMPLE_RATE)


def _protected(source_path) -> tuple[PathLike, ...]:
    if source_path is None:
        return ()
    if isinstance(source_path, (str, os.PathLike)):
        return (source_path,)
    return tuple(source_path)


def check_export_path(path: Path, source_path) -> None:
    """Refuse before rendering: an unknown format, or the source song itself."""
    if path.suffix.lower() not in WRITE_FORMATS:
        raise AudioError(path, f"cannot write '{path.suffix or path.name}' files (use wav, flac, ogg or mp3)")
    for src in _protected(source_path):
        src = Path(src)
        same = path.resolve() == src.resolve()
        if not same and path.exists() and src.exists():
            same = os.path.samefile(path, src)
        if same:
            raise AudioError(path, "refusing to overwrite the source song")


def export_mix(
    path: PathLike,
    stems: Mapping[str, np.ndarray],
    state: MixState,
    source_path: PathLike | Iterable[PathLike] | None = None,
    subtype: str | None = None,
    *,
    tempo: float = 1.0,
    semitones: float = 0.0,
    cents: float = 0.0,
    rate: int | None = None,
) -> Path:
    """Render ``stems`` with ``state`` (and tempo/key) and write it to ``path`` (wav/flac/ogg/mp3 from the
    suffix) at ``rate`` Hz (``None``: the stems' own 44.1 kHz; otherwise resampled with soxr, e.g. back
    to the song's own 48 kHz)."""
    path = Path(path)
    check_export_path(path, source_path)
    audio = render_mix(stems, state, tempo=tempo, semitones=semitones, cents=cents)
    if rate and int(rate) != SAMPLE_RATE:
        audio = resample(audio, SAMPLE_RATE, int(rate))
    return save_audio(path, audio, int(rate or SAMPLE_RATE), subtype=subtype, protect=_protected(source_path))


def karaoke_state(names: Iterable[str]) -> MixState:
    """Every stem at unity except ``vocals``, which is muted."""
    state = MixState.from_names(names)
    state.set_mute(KARAOKE_REMOVES, True)
    return state


def export_karaoke(
    path: PathLike,
    stems: Mapping[str, np.ndarray],
    source_path: PathLike | Iterable[PathLike] | None = None,
    subtype: str | None = None,
    **stretch,
) -> Path:
    """Write the karaoke track: all stems but ``vocals`` (``stretch``: tempo/semitones/cents)."""
    path = Path(path)
    if KARAOKE_REMOVES not in stems:
        raise AudioError(path, f"no '{KARAOKE_REMOVES}' stem to remove (stems: {', '.join(stems) or 'none'})")
    if len(stems) < 2:
        raise AudioError(path, "no stem besides vocals: the karaoke track would be silent")
    return export_mix(path, stems, karaoke_state(stems), source_path=source_path, subtype=subtype, **stretch)


def export_stems(
    out_dir: PathLike,
    stems: Mapping[str, np.ndarray],
    fmt: str = "wav",
    source_path: PathLike | Iterable[PathLike] | None = None,
    subtype: str | None = None,
    **stretch,
) -> list[Path]:
    """Write each stem alone (unity gain, through the same limiter) as ``out_dir/<stem>.<fmt>``
    (``stretch``: tempo/semitones/cents)."""
    out_dir = Path(out_dir)
    suffix = "." + fmt.lower().lstrip(".")
    if suffix not in WRITE_FORMATS:
        raise AudioError(out_dir, f"cannot write '{fmt}' files (use wav, flac, ogg or mp3)")
    if out_dir.exists() and not out_dir.is_dir():
        raise AudioError(out_dir, "is a file, not a folder")
    targets = {name: out_dir / f"{name}{suffix}" for name in stems}
    for target in targets.values():
        check_export_path(target, source_path)
    written = []
    for name, target in targets.items():
        one = {name: stems[name]}
        written.append(export_mix(target, one, MixState.from_names([name]), source_path, subtype, **stretch))
    return written
