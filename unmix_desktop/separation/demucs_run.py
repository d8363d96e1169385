"""A Demucs model behind the :class:`~.separator.Separator` interface, so the song pipeline, the window,
the queue and ``unmix separate`` run it the way they run Spleeter: ``stream()`` of final blocks (memory
flat with the song's length), ``separate()``, ``output_targets``, ``windows()``, ``settings``.

The stems are the model's sources (drums, bass, other, vocals [, guitar, piano]) plus ``accompaniment``
= song − vocals (exact, from the same decoded samples: a :class:`_Tee` keeps what the model read until
the block that covers it is out). The inference itself is :func:`~.demucs.stream_demucs` (the reference's
processing: shifts, split, overlap 0.25).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from ..errors import ModelError
from .settings import SeparationSettings

ACCOMPANIMENT = "accompaniment"


@dataclass
class DemucsSettings(SeparationSettings):
    """:class:`SeparationSettings` plus the Demucs options (both in :meth:`key`, so in cache keys and
    result-folder markers). The spectrogram options (EM, masks, window) do not apply."""

    shifts: int = 0        # test-time augmentation: random time shifts averaged (reference semantics)
    overlap: float = 0.25  # overlap of the model's segments


def is_demucs_model(model) -> bool:
    """A waveform Demucs model (``sources``, ``audio_channels``) rather than a SpectrogramModel."""
    return hasattr(model, "sources") and hasattr(model, "audio_channels") and not hasattr(model, "n_fft")


class _Tee:
    """A source that remembers what it handed out until :meth:`take` has used it (bounded: the model
    reads at most a segment and its overlap ahead of the blocks it yields)."""

    def __init__(self, source):
        self._source = source
        self.frames = getattr(source, "frames", None)
        for attr in ("path", "rate", "source_rate"):
            if hasattr(source, attr):
                setattr(self, attr, getattr(source, attr))
        self._buf = np.zeros((0, 2), np.float32)
        self._start = 0  # song frame of self._buf[0]

    def read(self, frames: int) -> np.ndarray:
        block = self._source.read(frames)
        if block.shape[0]:
            self._buf = np.concatenate([self._buf, np.asarray(block, dtype=np.float32)])
        return block

    def take(self, offset: int, n: int) -> np.ndarray:
        """The mixture frames ``[offset, offset + n)``; everything before ``offset + n`` is let go."""
        lo = max(0, offset - self._start)
        out = self._buf[lo:lo + n]
        if out.shape[0] < n:  # more frames out than were read (cannot happen): silence
            out = np.concatenate([out, np.zeros((n - out.shape[0], 2), np.float32)])
        self._buf = self._buf[lo + n:]
        self._start = offset + n
        return out


class DemucsSeparator:
    """Runs a :class:`~.demucs.DemucsModel` with the :class:`~.separator.Separator` interface."""

    native_stems = True  # drums/bass/other come from the model: no four-stem split afterwards

    def __init__(self, model, settings: SeparationSettings | None = None, device=None, threads: int | None = None):
        self.model = model
        self.settings = settings if settings is not None else DemucsSettings()
        self.device = device
        self.threads = threads
        self.sample_rate = int(getattr(model, "samplerate", 44100))

    @property
    def shifts(self) -> int:
        return int(getattr(self.settings, "shifts", 0))

    @property
    def overlap(self) -> float:
        return float(getattr(self.settings, "overlap", 0.25))

    @property
    def output_targets(self) -> list[str]:
        names = list(self.model.sources)
        if "vocals" in names and ACCOMPANIMENT not in names:
            names.append(ACCOMPANIMENT)
        wanted = self.settings.targets
        if wanted:
            unknown = [t for t in wanted if t not in names]
            if unknown:
                raise ModelError(f"model gives {', '.join(names)}; cannot produce {', '.join(unknown)}")
            names = [t for t in names if t in wanted]
        return names

    def segment_frames(self) -> int:
        seconds = (getattr(self.model, "card", None) or {}).get("segment_s")
        try:
            seconds = float(seconds) if seconds is not None else 7.8
        except (TypeError, ValueError):
            seconds = 7.8
        return max(1, int(seconds * self.sample_rate))

    def windows(self, n: int) -> list[tuple[int, int]]:
        """Roughly the model's segments (how many blocks :meth:`stream` yields: > 1 means the window can
        start playing before the end)."""
        seg = self.segment_frames()
        return [(s, min(n, s + seg)) for s in range(0, max(n, 1), seg)]

    def stream(self, audio, progress: Callable[[float], None] | None = None,
               cancel: threading.Event | None = None) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """``(offset, {stem: block})``, final and in order, read from an array or a source."""
        from ..audio.stream import as_source
        from .demucs import stream_demucs

        options: dict = {}
        if isinstance(audio, np.ndarray):  # the whole-song statistics the reference normalises with
            from .demucs import mix_stats

            options["stats"] = mix_stats(audio)[:2]
        tee = _Tee(as_source(audio))
        names = self.output_targets
        acc = ACCOMPANIMENT in names
        for offset, blocks in stream_demucs(self.model, tee, shifts=self.shifts, overlap=self.overlap,
                                            progress=progress, cancel=cancel, device=self.device,
                                            threads=self.threads, **options):
            n = next(iter(blocks.values())).shape[0]
            out = {}
            for name in names:
                if name == ACCOMPANIMENT:
                    continue
                out[name] = np.ascontiguousarray(blocks[name], dtype=np.float32)
            mix = tee.take(offset, n)
            if acc:
                out[ACCOMPANIMENT] = (mix - np.asarray(blocks["vocals"], dtype=np.float32)).astype(np.float32)
            yield offset, {name: out[name] for name in names}

    def separate(self, audio: np.ndarray, progress: Callable[[float], None] | None = None,
                 cancel: threading.Event | None = None) -> dict[str, np.ndarray]:
        from .separator import collect_stream

        return collect_stream(self, audio, progress, cancel)
