"""Drums / bass / other from the separated accompaniment with a learned network (a model bundle
whose targets are drums, bass and other, e.g. ``resources/models/umx-synth4``), as an alternative
to the signal-processing split of :mod:`.fourstems`.

The accompaniment ``(n, 2)`` is separated by the app's :class:`~.separator.Separator` (windows,
STFT, the network's three magnitude estimates, multichannel Wiener filter with EM across the three
sources, no residual); then ``other = accompaniment - drums - bass`` so the three stems add up to
the accompaniment exactly, and vocals + drums + bass + other to the song.

Names: ``"dsp"`` (or ``"hpss-4stems"``) is the signal-processing split; ``"hybrid"`` chooses per
stem (below); any other name is a model of the registry (``unmix models``) or a bundle folder.
:data:`DEFAULT` is the one ``--stems 4`` uses when none is given.

``"hybrid"``: the bass from the learned splitter (:data:`HYBRID_SPLITTER`), the drums from the DSP
split of what is left (``accompaniment - bass``), ``other`` = the rest (``accompaniment - drums -
bass``), so the stems still sum to the song. Measured against DSP and learned alone on the dev song
and 22 held-out synthetic songs together (benchmarks/four_stem_choice.py): not better than DSP
(even on the synthetic songs, -1.3 dB on the dev song), so it is selectable, not the default. Streamed like the DSP
split (:func:`stream_hybrid`: the learned splitter runs window by window on the accompaniment as it
comes, the DSP split on the residual behind it), so memory does not grow with the song.
"""

from __future__ import annotations

import threading
from typing import Callable, Iterable, Iterator, Mapping

import numpy as np

from ..errors import ModelError

DSP_NAMES = ("dsp", "hpss-4stems")
HYBRID = "hybrid"
HYBRID_SPLITTER = "umx-synth4"  # the bundled learned splitter whose bass the hybrid uses
# Neither the learned splitter nor a per-stem combination beat the DSP split on the dev song and the
# held-out synthetic songs together (benchmarks/results/four_stem_choice.json, MODEL_CARD.md), so the
# DSP split stays the default; the others are selectable by name.
DEFAULT = "dsp"
STEMS = ("drums", "bass", "other")
_cache: dict[str, object] = {}
_lock = threading.Lock()


def resolve(name: str | None) -> str:
    """The four-stem method a name means (``None`` -> :data:`DEFAULT`)."""
    return name or DEFAULT


def is_dsp(name: str | None) -> bool:
    return resolve(name) in DSP_NAMES


def is_hybrid(name: str | None) -> bool:
    return resolve(name) == HYBRID


def load_splitter(name: str):
    """The bundle ``name`` (registry name or folder), checked to give drums, bass and other."""
    with _lock:
        if name not in _cache:
            from .registry import load_model

            model = load_model(name)
            missing = [t for t in STEMS if t not in getattr(model, "targets", [])]
            if missing:
                raise ModelError(f"model '{name}' is not a drums/bass/other splitter (it gives "
                                 f"{', '.join(getattr(model, 'targets', []))})")
            _cache[name] = model
        return _cache[name]


def _separator(name: str, niter: int = 1, window_s: float | None = None):
    """The app's separator running the splitter ``name`` (Wiener EM across drums, bass, other; no
    residual); ``window_s`` overrides its processing window (tests)."""
    import torch

    from .separator import Separator
    from .settings import SeparationSettings

    settings = SeparationSettings(niter=niter, residual=False, targets=list(STEMS))
    if window_s is not None:
        settings.window_s, settings.overlap_s = window_s, min(settings.overlap_s, window_s / 4)
    return Separator(load_splitter(name), settings, device="cpu", threads=torch.get_num_threads())


def split_accompaniment_learned(accompaniment: np.ndarray, name: str,
                                progress: Callable[[float], None] | None = None,
                                cancel: threading.Event | None = None,
                                niter: int = 1, window_s: float | None = None) -> dict[str, np.ndarray]:
    """``accompaniment`` (n, 2) float32 -> ``{"drums", "bass", "other"}`` (n, 2), summing to it."""
    audio = np.asarray(accompaniment, dtype=np.float32)
    if audio.ndim != 2 or audio.shape[1] != 2:
        raise ValueError(f"expected (n, 2) audio, got {audio.shape}")
    if audio.shape[0] == 0:
        return {"drums": np.zeros_like(audio), "bass": np.zeros_like(audio), "other": audio.copy()}
    out = _separator(name, niter, window_s).separate(audio, progress=progress, cancel=cancel)
    drums, bass = out["drums"], out["bass"]
    return {"drums": drums, "bass": bass, "other": audio - drums - bass}


def split_accompaniment_hybrid(accompaniment: np.ndarray,
                               progress: Callable[[float], None] | None = None,
                               cancel: threading.Event | None = None,
                               splitter: str = HYBRID_SPLITTER, learned_window_s: float | None = None,
                               **params) -> dict[str, np.ndarray]:
    """``accompaniment`` (n, 2) -> ``{"drums", "bass", "other"}``: learned bass, DSP drums of the rest
    (``params``: the DSP split's, see :data:`.fourstems.DEFAULTS`)."""
    from .fourstems import split_accompaniment

    audio = np.asarray(accompaniment, dtype=np.float32)
    half = (lambda f: progress(0.5 * f)) if progress else None
    bass = split_accompaniment_learned(audio, splitter, half, cancel, window_s=learned_window_s)["bass"]
    residual = audio - bass
    rest = split_accompaniment(residual, progress=(lambda f: progress(0.5 + 0.5 * f)) if progress else None,
                               cancel=cancel, **params)
    drums = rest["drums"]
    return {"drums": drums, "bass": bass, "other": residual - drums}


class _Tee:
    """A source that hands on what it reads from ``source`` and keeps it until :meth:`take`."""

    def __init__(self, source):
        self.source = source
        self.frames = source.frames
        self._buf: list[np.ndarray] = []

    def read(self, frames: int) -> np.ndarray:
        out = self.source.read(frames)
        self._buf.append(out)
        return out

    def take(self, frames: int) -> np.ndarray:
        data = np.concatenate(self._buf) if self._buf else np.zeros((0, 2), np.float32)
        out, rest = data[:frames], data[frames:]
        self._buf = [rest] if rest.shape[0] else []
        return out


def stream_hybrid(blocks: Iterable[tuple[int, Mapping[str, np.ndarray]]],
                  progress: Callable[[float], None] | None = None,
                  cancel: threading.Event | None = None, frames: int | None = None,
                  splitter: str = HYBRID_SPLITTER, learned_window_s: float | None = None,
                  **params) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """The separator's stream of ``(offset, {vocals, accompaniment, ...})`` blocks -> a stream of
    ``(offset, {vocals, drums, bass, other})`` blocks, as :func:`split_accompaniment_hybrid` gives
    them (float rounding); holds about two windows of audio, whatever the song's length."""
    from .fourstems import _AccompanimentSource, stream_four_stems

    source = _AccompanimentSource(blocks, frames)
    tee = _Tee(source)
    sep = _separator(splitter, window_s=learned_window_s)

    def residual_blocks():
        for offset, block in sep.stream(tee, cancel=cancel):
            bass = block["bass"]
            acc = tee.take(bass.shape[0])
            yield offset, {"vocals": source.take_vocals(offset, offset + bass.shape[0]), "learned_bass": bass,
                           "accompaniment": acc - bass}

    for offset, block in stream_four_stems(residual_blocks(), progress=progress, cancel=cancel, frames=frames,
                                           carry=("vocals", "learned_bass"), **params):
        # block: DSP drums/bass/other of the residual; its bass and other go back together to "other"
        yield offset, {"vocals": block["vocals"], "drums": block["drums"], "bass": block["learned_bass"],
                       "other": block["bass"] + block["other"]}


def four_stems_learned(stems: Mapping[str, np.ndarray], name: str,
                       progress: Callable[[float], None] | None = None,
                       cancel: threading.Event | None = None) -> dict[str, np.ndarray]:
    """``{vocals, accompaniment}`` -> ``{vocals, drums, bass, other}`` with the learned splitter
    (or the ``hybrid`` per-stem choice)."""
    if is_hybrid(name):
        parts = split_accompaniment_hybrid(stems["accompaniment"], progress, cancel)
        return {"vocals": np.asarray(stems["vocals"], dtype=np.float32), **parts}
    parts = split_accompaniment_learned(stems["accompaniment"], name, progress, cancel)
    return {"vocals": np.asarray(stems["vocals"], dtype=np.float32), **parts}
