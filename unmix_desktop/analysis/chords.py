"""Chords and key of a song from its stems (numpy/scipy only, no Qt).

Method (a compact Chordino-style pipeline, Mauch & Dixon 2010, over the beat grid):

1. **Log-frequency spectrum**: mono, 11.025 kHz, 4096-point Hann frames, hop 512 (46 ms); the
   magnitude is mapped onto semitone bins (MIDI 28..107, A4 = 440 Hz after a global tuning estimate
   in thirds of a semitone) and whitened along frequency (running mean and deviation over an octave).
2. **Beat-synchronous NNLS transcription**: the frames between two beats (:class:`~.beats.BeatGrid`,
   extended over the whole song with its period; a fixed 0.5 s grid where the grid is not confident)
   are averaged and explained as a non-negative sum of note profiles (harmonics decaying 0.6^h), which
   removes most overtones: a note salience per semitone (MIDI 28..95) per beat.
3. **Chroma**: the *bass* chroma from the bass stem (or the low band of the accompaniment, MIDI
   28..54, weighted towards the bottom) names the root; the *treble* chroma from the accompaniment
   (the song without vocals; MIDI 48..95) gives the quality.
4. **Emissions**: chord templates (``majmin``: maj, min; ``sevenths``: + 7, maj7, min7) scored by the
   cosine of the treble chroma with the template and the bass chroma's share on the root; ``N`` when the
   harmonic energy of a beat is low against the song's.
5. **Viterbi** over the beats with a sticky self-transition; consecutive equal labels merged; segment
   boundaries are beat times.
6. **Key**: Temperley (Kostka-Payne) major/minor profiles correlated with the chroma summed over
   ~16-beat windows, an HMM over those (a key change is rare), and the song's key = the local key that
   covers the most time.

Labels are Harte syntax (``C:maj``, ``A:min7``, ``G:7``, ``N``); keys ``A:min``/``Eb:maj``.
Audio is float32 ``(n, 2)`` or ``(n,)`` at ``sample_rate``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..atomic import atomic_write_json, atomic_write_text
from ..audio.io import SAMPLE_RATE

ANALYSIS_SR = 11025
N_FFT = 4096
HOP = 512
MIDI_LO, MIDI_HI = 28, 108          # log-frequency bins (semitones), E1 .. C8 (exclusive)
NOTE_LO, NOTE_HI = 28, 96           # transcribed notes
BASS_HI = 55                        # bass chroma: notes below G3
TREBLE_LO = 48                      # treble chroma: notes from C3
N_HARMONICS = 8
HARMONIC_DECAY = 0.6
FALLBACK_GRID_S = 0.5               # analysis step where no confident beat grid exists
N_LEVEL = 0.25                      # tonal energy (x the song's 60th percentile) below which N is likely
MAX_CELL_S = 0.5                    # beats longer than this are split in two (or three)
BEAT_CONFIDENCE = 1.3               # BeatGrid.confidence from which chords snap to beats

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
_PITCH = {n: i for i, n in enumerate(SHARP_NAMES)} | {n: i for i, n in enumerate(FLAT_NAMES)} | {
    "Cb": 11, "Fb": 4, "E#": 5, "B#": 0}

QUALITIES = {            # intervals (semitones above the root)
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
}
VOCABULARIES = {"majmin": ("maj", "min"), "sevenths": ("maj", "min", "7", "maj7", "min7")}
DEFAULT_VOCABULARY = "majmin"
#: log-prior of each quality (a seventh must explain the chroma clearly better than its triad)
QUALITY_PRIOR = {"maj": 0.0, "min": 0.0, "7": -0.6, "maj7": -0.8, "min7": -0.6}

# Temperley's (Kostka-Payne corpus) key profiles
MAJOR_PROFILE = np.array([0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400])
MINOR_PROFILE = np.array([0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330])


class ChordError(ValueError):
    """A chord label or a chords file that cannot be read."""


# ------------------------------------------------------------------------------------------------
# labels
# ------------------------------------------------------------------------------------------------

def pitch_class(name: str) -> int:
    """``"Eb"`` -> 3; raises :class:`ChordError` for an unknown note name."""
    try:
        return _PITCH[name[0].upper() + name[1:]]
    except (KeyError, IndexError):
        raise ChordError(f"unknown note name {name!r}") from None


def split_label(label: str) -> tuple[int, str, str]:
    """``"A:min7/b3"`` -> ``(9, "min7", "/b3")``; ``"N"`` -> ``(-1, "", "")``; ``"C"`` -> ``(0, "maj", "")``."""
    label = label.strip()
    if label in ("N", "X", ""):
        return -1, "", ""
    root, _, rest = label.partition(":")
    quality, slash, bass = (rest or "maj").partition("/")
    return pitch_class(root), quality or "maj", (slash + bass)


def transpose_label(label: str, semitones: int, flats: bool | None = None) -> str:
    """A Harte label moved by ``semitones`` (``N`` stays ``N``); the bass interval is kept. Spelling: flats
    or sharps when ``flats`` says so, else the house spelling (:data:`NOTE_NAMES`)."""
    root, quality, bass = split_label(label)
    if root < 0:
        return "N"
    names = NOTE_NAMES if flats is None else FLAT_NAMES if flats else SHARP_NAMES
    return f"{names[(root + semitones) % 12]}:{quality}{bass}"


def display_label(label: str, semitones: int = 0, flats: bool | None = None) -> str:
    """Short chart spelling: ``A:min7`` -> ``Am7``, ``G:7`` -> ``G7``, ``C:maj`` -> ``C``, ``N`` -> ``N.C.``."""
    root, quality, bass = split_label(label)
    if root < 0:
        return "N.C."
    names = NOTE_NAMES if flats is None else FLAT_NAMES if flats else SHARP_NAMES
    suffix = {"maj": "", "min": "m", "7": "7", "maj7": "maj7", "min7": "m7"}.get(quality, quality)
    return f"{names[(root + semitones) % 12]}{suffix}{bass}"


def key_uses_flats(key: str) -> bool:
    """Flats for F, Bb, Eb, Ab, Db major and D, G, C, F, Bb minor; else sharps."""
    root, quality, _ = split_label(key)
    if root < 0:
        return True
    tonic = root if quality != "min" else (root + 3) % 12  # the relative major
    return tonic in (5, 10, 3, 8, 1)


def key_name(key: str, semitones: int = 0) -> str:
    """``"A:min"`` -> ``"A minor"`` (moved by ``semitones``, spelt for that key)."""
    root, quality, _ = split_label(key)
    if root < 0:
        return "unknown"
    moved = transpose_label(key, semitones)
    flats = key_uses_flats(moved)
    names = FLAT_NAMES if flats else SHARP_NAMES
    return f"{names[(root + semitones) % 12]} {'minor' if quality == 'min' else 'major'}"


#: open-position keys for a guitar and how much a guitarist likes them (lower is better)
EASY_SHAPES = {"maj": {7: 0.0, 0: 0.0, 2: 0.5, 4: 1.0, 9: 1.5}, "min": {4: 0.0, 9: 0.0, 2: 1.0}}


def capo_hint(key: str, semitones: int = 0) -> str:
    """A guitarist's hint for the key as heard: ``"capo 3, play G shapes"`` (the open-position key that is
    the best trade of a low capo and a friendly shape), or ``""`` when the heard key already is one."""
    root, quality, _ = split_label(key)
    if root < 0:
        return ""
    q = "min" if quality == "min" else "maj"
    heard = (root + semitones) % 12
    if heard in EASY_SHAPES[q]:
        return ""
    options = [(0.5 * capo + EASY_SHAPES[q][(heard - capo) % 12], capo) for capo in range(1, 8)
               if (heard - capo) % 12 in EASY_SHAPES[q]]
    if not options:
        return ""
    capo = min(options)[1]
    return f"capo {capo}, play {SHARP_NAMES[(heard - capo) % 12]}{'m' if q == 'min' else ''} shapes"


# ------------------------------------------------------------------------------------------------
# result
# ------------------------------------------------------------------------------------------------

@dataclass
class Segment:
    start: float
    end: float
    label: str

    def to_dict(self) -> dict:
        return {"start": round(self.start, 4), "end": round(self.end, 4), "label": self.label}


@dataclass
class ChordChart:
    """The song's key, local keys and chord segments (seconds); ``beats`` the grid they were found on."""

    key: str
    chords: list[Segment]
    keys: list[Segment] = field(default_factory=list)
    vocabulary: str = DEFAULT_VOCABULARY
    beats: list[float] = field(default_factory=list)
    beats_per_bar: int = 4
    downbeats: list[float] = field(default_factory=list)
    snapped: bool = True    # boundaries are beat times (a confident grid)

    def to_dict(self) -> dict:
        return {"key": self.key, "chords": [s.to_dict() for s in self.chords],
                "keys": [s.to_dict() for s in self.keys], "vocabulary": self.vocabulary,
                "beats": [round(t, 4) for t in self.beats], "downbeats": [round(t, 4) for t in self.downbeats],
                "beats_per_bar": self.beats_per_bar, "snapped": self.snapped}

    @classmethod
    def from_dict(cls, d: Mapping) -> "ChordChart":
        """Validated field by field: anything malformed raises :class:`ChordError`."""
        try:
            if not isinstance(d, Mapping):
                raise TypeError("not an object")
            key = str(d["key"])
            split_label(key)
            vocab = str(d.get("vocabulary", DEFAULT_VOCABULARY))
            if vocab not in VOCABULARIES:
                raise ValueError(f"unknown vocabulary {vocab!r}")

            def segs(items) -> list[Segment]:
                out = []
                for s in items:
                    seg = Segment(float(s["start"]), float(s["end"]), str(s["label"]))
                    split_label(seg.label)
                    if not (math.isfinite(seg.start) and math.isfinite(seg.end)) or seg.end < seg.start:
                        raise ValueError(f"bad segment {s!r}")
                    out.append(seg)
                return out

            beats = [float(t) for t in d.get("beats", [])]
            downbeats = [float(t) for t in d.get("downbeats", [])]
            if not all(math.isfinite(t) for t in beats + downbeats):
                raise ValueError("non-finite beat time")
            return cls(key, segs(d["chords"]), segs(d.get("keys", [])), vocab, beats,
                       int(d.get("beats_per_bar", 4)), downbeats, bool(d.get("snapped", True)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ChordError(f"not a chords file ({exc})") from None

    def save_json(self, path: str | os.PathLike, full: bool = True) -> Path:
        """Atomic JSON: the whole chart (``full``) or the public ``{"key", "chords"}`` form."""
        d = self.to_dict() if full else {"key": self.key, "chords": [s.to_dict() for s in self.chords]}
        return atomic_write_json(path, d)

    @classmethod
    def load_json(cls, path: str | os.PathLike) -> "ChordChart":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ChordError(f"{path}: cannot read ({exc})") from None

    def to_lab(self) -> str:
        """MIREX ``.lab`` text: ``start end label`` per line."""
        return "".join(f"{s.start:.3f}\t{s.end:.3f}\t{s.label}\n" for s in self.chords)

    def save_lab(self, path: str | os.PathLike) -> Path:
        return atomic_write_text(path, self.to_lab())

    def at(self, t: float) -> int:
        """Index of the chord sounding at ``t`` (-1 before the first / after the last)."""
        starts = [s.start for s in self.chords]
        i = int(np.searchsorted(starts, t, side="right")) - 1
        if 0 <= i < len(self.chords) and t < self.chords[i].end:
            return i
        return -1

    def key_at(self, t: float) -> str:
        for s in self.keys:
            if s.start <= t < s.end:
                return s.label
        return self.key


# ------------------------------------------------------------------------------------------------
# signal -> note salience
# ------------------------------------------------------------------------------------------------

def _mono(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    from .beats import mono_at

    return mono_at(audio, sample_rate, ANALYSIS_SR)


def _spectrogram(mono: np.ndarray) -> np.ndarray:
    """Magnitude ``(F, T)``; frame t is centred at ``t * HOP / ANALYSIS_SR`` seconds."""
    x = np.pad(mono, (N_FFT // 2, N_FFT // 2))
    if x.shape[0] < N_FFT:
        x = np.pad(x, (0, N_FFT - x.shape[0]))
    n = 1 + (x.shape[0] - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(x, (n, N_FFT), (x.strides[0] * HOP, x.strides[0]))
    win = np.hanning(N_FFT).astype(np.float32)
    out = np.empty((N_FFT // 2 + 1, n), np.float32)
    step = 512
    for i in range(0, n, step):
        out[:, i:i + step] = np.abs(np.fft.rfft(frames[i:i + step] * win, axis=1)).T
    return out


def _logfreq_matrix(bins_per_semitone: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """``(P, F)`` triangular filters mapping STFT bins onto ``bins_per_semitone`` bins per semitone
    from MIDI_LO to MIDI_HI (bin k centred at ``MIDI_LO + k / bps``)."""
    freqs = np.arange(N_FFT // 2 + 1) * ANALYSIS_SR / N_FFT
    with np.errstate(divide="ignore"):
        midi = 69 + 12 * np.log2(np.maximum(freqs, 1e-6) / 440.0)
    centres = MIDI_LO - 1 + np.arange((MIDI_HI - MIDI_LO + 2) * bins_per_semitone) / bins_per_semitone
    width = 1.0 / bins_per_semitone
    m = np.maximum(0.0, 1.0 - np.abs(midi[None, :] - centres[:, None]) / width)
    # low notes fall between STFT bins: spread each STFT bin at least onto its nearest log bin
    return m.astype(np.float32), centres


def log_spectrum(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, float]:
    """Semitone-spaced log-frequency magnitude ``(MIDI_HI - MIDI_LO, T)`` (tuning-corrected) and the
    frame rate (frames per second)."""
    mono = _mono(audio, sample_rate)
    spec = _spectrogram(mono)
    m, centres = _logfreq_matrix(3)
    lf = m @ spec                                          # (3 * (semis + 2), T)
    # tuning: which third of a semitone carries the most energy over the song
    phase_energy = [lf[p::3].sum() for p in range(3)]
    p = int(np.argmax(phase_energy))                       # 0: -1/3 st, 1: in tune, 2: +1/3 st
    start = 3 + p                                          # bin of MIDI_LO (+ the tuning offset)
    n_semis = MIDI_HI - MIDI_LO
    idx = start + 3 * np.arange(n_semis)
    # a semitone bin = its centre third + half of each neighbour (tolerates +-1/6 st of drift)
    semis = lf[idx] + 0.5 * (lf[idx - 1] + lf[np.minimum(idx + 1, lf.shape[0] - 1)])
    return semis.astype(np.float32), ANALYSIS_SR / HOP


def _whiten(x: np.ndarray) -> np.ndarray:
    """Subtract the running mean along frequency and divide by the running deviation (one octave)."""
    from scipy.ndimage import uniform_filter1d

    mean = uniform_filter1d(x, 13, axis=0, mode="nearest")
    sq = uniform_filter1d(x * x, 13, axis=0, mode="nearest")
    std = np.sqrt(np.maximum(sq - mean * mean, 1e-12))
    return np.maximum((x - mean) / (std + 1e-9 + 0.1 * std.mean(axis=0, keepdims=True)), 0.0)


def note_dictionary() -> np.ndarray:
    """``(bins, notes)``: each note's harmonic profile on the semitone bins."""
    n_bins = MIDI_HI - MIDI_LO
    notes = np.arange(NOTE_LO, NOTE_HI)
    d = np.zeros((n_bins, notes.size), np.float64)
    for j, note in enumerate(notes):
        for h in range(1, N_HARMONICS + 1):
            b = int(round(note + 12 * math.log2(h))) - MIDI_LO
            if 0 <= b < n_bins:
                d[b, j] += HARMONIC_DECAY ** (h - 1)
    return d / np.linalg.norm(d, axis=0, keepdims=True)


_DICT: np.ndarray | None = None


def nnls_notes(spectra: np.ndarray) -> np.ndarray:
    """Note salience ``(NOTE_HI - NOTE_LO, S)`` of semitone spectra ``(bins, S)`` by non-negative least
    squares against :func:`note_dictionary`."""
    from scipy.optimize import nnls

    global _DICT
    if _DICT is None:
        _DICT = note_dictionary()
    out = np.zeros((_DICT.shape[1], spectra.shape[1]), np.float32)
    for s in range(spectra.shape[1]):
        col = spectra[:, s].astype(np.float64)
        if col.max() <= 0:
            continue
        out[:, s] = nnls(_DICT, col, maxiter=200)[0]
    return out


def grid_for(duration: float, beats: Sequence[float] | None, confidence: float = 0.0) -> tuple[np.ndarray, bool]:
    """Boundaries covering ``[0, duration]``: the beat times (extended with the beat period to both
    ends) when the grid is confident, else a fixed :data:`FALLBACK_GRID_S` grid. ``(times, snapped)``."""
    b = np.asarray(list(beats or []), np.float64)
    b = b[(b >= 0) & (b <= duration)]
    if b.size >= 4 and confidence >= BEAT_CONFIDENCE:
        period = float(np.median(np.diff(b)))
        before = np.arange(b[0] - period, 0.0, -period)[::-1] if b[0] > period * 0.5 else np.zeros(0)
        after = np.arange(b[-1] + period, duration, period)
        t = np.concatenate([[0.0], before[before > period * 0.25], b, after, [duration]])
        t = np.unique(np.round(t, 6))
        parts = int(math.ceil(period / MAX_CELL_S - 0.15))  # 0.5 s beats (120 BPM) +- a little stay whole
        if parts > 1:  # a slow grid (half or third time): chords may change within a beat
            t = np.unique(np.concatenate([t[:-1, None] + np.diff(t)[:, None] * np.arange(parts) / parts]).ravel())
            t = np.append(t, duration)
        keep = np.concatenate([[True], np.diff(t) > 0.05])
        return t[keep], True
    n = max(int(math.ceil(duration / FALLBACK_GRID_S)), 1)
    return np.minimum(np.arange(n + 1) * FALLBACK_GRID_S, duration), False


def _pool(frames: np.ndarray, fps: float, grid: np.ndarray) -> np.ndarray:
    """Mean of the frames inside each grid cell ``(bins, cells)`` (a cell with no frame takes its nearest)."""
    t = np.arange(frames.shape[1]) / fps
    cells = grid.size - 1
    out = np.zeros((frames.shape[0], cells), np.float32)
    idx = np.searchsorted(t, grid)
    for c in range(cells):
        a, b = idx[c], idx[c + 1]
        if b <= a:
            a = min(int(np.searchsorted(t, 0.5 * (grid[c] + grid[c + 1]))), frames.shape[1] - 1)
            b = a + 1
        out[:, c] = frames[:, a:b].mean(axis=1)
    return out


def beat_notes(audio: np.ndarray, sample_rate: int, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Note salience per grid cell ``(notes, cells)`` of one signal, and its tonal energy per cell
    (what the treble bins stand above their running mean: peaks, not broadband noise such as drums)."""
    from scipy.ndimage import uniform_filter1d

    spec, fps = log_spectrum(audio, sample_rate)
    pooled = _pool(np.sqrt(spec), fps, grid)
    above = np.maximum(pooled - uniform_filter1d(pooled, 13, axis=0, mode="nearest"), 0.0)
    return nnls_notes(_whiten(pooled)), above[TREBLE_LO - MIDI_LO:].sum(axis=0)


def chromas(bass_notes: np.ndarray, treble_notes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(bass chroma, treble chroma, treble energy)``: ``(12, S)``, ``(12, S)``, ``(S,)``."""
    notes = np.arange(NOTE_LO, NOTE_HI)
    low = notes < BASS_HI
    w_bass = np.where(low, np.clip((BASS_HI - notes) / 12.0, 0.25, 1.0), 0.0)
    w_treble = np.where(notes >= TREBLE_LO, 1.0, np.where(notes >= 40, 0.5, 0.0))
    bass = np.zeros((12, bass_notes.shape[1]), np.float32)
    treble = np.zeros((12, treble_notes.shape[1]), np.float32)
    for j, n in enumerate(notes):
        bass[n % 12] += w_bass[j] * bass_notes[j]
        treble[n % 12] += w_treble[j] * treble_notes[j]
    return bass, treble, treble.sum(axis=0)


# ------------------------------------------------------------------------------------------------
# chords: templates + Viterbi
# ------------------------------------------------------------------------------------------------

def chord_states(vocabulary: str = DEFAULT_VOCABULARY) -> list[str]:
    if vocabulary not in VOCABULARIES:
        raise ChordError(f"unknown vocabulary {vocabulary!r} (choose {', '.join(VOCABULARIES)})")
    return ["N"] + [f"{NOTE_NAMES[r]}:{q}" for q in VOCABULARIES[vocabulary] for r in range(12)]


#: emission and transition weights (tuned on development songs, POP909 n % 20 == 0, FluidR3 renders)
PARAMS = {"cos": 20.0, "bass": 0.5, "power": 1.0, "switch": 2.0, "n_level": N_LEVEL}


def emissions(bass: np.ndarray, treble: np.ndarray, energy: np.ndarray,
              vocabulary: str = DEFAULT_VOCABULARY, params: Mapping | None = None) -> tuple[list[str], np.ndarray]:
    """Log-scores ``(states, S)`` for each chord state per grid cell: ``cos`` x (cosine of the compressed
    treble chroma with the chord's template - 1) + ``bass`` x log of the bass chroma's share on the root
    (weighted by how much bass there is) + the quality's prior; ``N`` from the tonal energy."""
    p = {**PARAMS, **(params or {})}
    states = chord_states(vocabulary)
    tc = np.power(np.maximum(treble, 0.0), p["power"])
    tn = tc / (np.linalg.norm(tc, axis=0, keepdims=True) + 1e-9)
    bn = bass / (bass.sum(axis=0, keepdims=True) + 1e-9)
    bass_strength = bass.sum(axis=0)
    ref = np.percentile(bass_strength, 75) if bass_strength.size else 0.0
    bass_weight = np.clip(bass_strength / (ref + 1e-9), 0.0, 1.0)  # no bass, no say
    scores = np.zeros((len(states), treble.shape[1]), np.float32)
    for i, name in enumerate(states[1:], start=1):
        root, quality, _ = split_label(name)
        t = np.zeros(12)
        for iv in QUALITIES[quality]:
            t[(root + iv) % 12] = 1.0
        t /= np.linalg.norm(t)
        scores[i] = (p["cos"] * (t @ tn - 1.0) + p["bass"] * bass_weight * (np.log(bn[root] + 0.05) - math.log(1.05))
                     + QUALITY_PRIOR[quality])
    e_ref = np.percentile(energy, 60) if energy.size else 0.0
    rel = energy / (e_ref + 1e-9)
    best = scores[1:].max(axis=0)
    # N: better than the best chord when the cell's tonal energy is far below the song's typical harmony
    scores[0] = best + 8.0 * (p["n_level"] - rel) / p["n_level"] - 2.0
    return states, scores


def viterbi(scores: np.ndarray, switch: float) -> np.ndarray:
    """Most likely state path for log-scores ``(states, S)`` with a uniform change log-penalty ``switch``."""
    n, s = scores.shape
    if s == 0:
        return np.zeros(0, int)
    delta = scores[:, 0].astype(np.float64).copy()
    back = np.zeros((n, s), np.int32)
    for t in range(1, s):
        best = int(np.argmax(delta))
        stay = delta
        move = delta[best] - switch
        take_move = move > stay
        back[:, t] = np.where(take_move, best, np.arange(n))
        delta = np.where(take_move, move, stay) + scores[:, t]
    path = np.zeros(s, int)
    path[-1] = int(np.argmax(delta))
    for t in range(s - 1, 0, -1):
        path[t - 1] = back[path[t], t]
    return path


def _segments(labels: Sequence[str], grid: np.ndarray) -> list[Segment]:
    out: list[Segment] = []
    for i, lab in enumerate(labels):
        a, b = float(grid[i]), float(grid[i + 1])
        if out and out[-1].label == lab:
            out[-1].end = b
        else:
            out.append(Segment(a, b, lab))
    return out


def estimate_key(chroma: np.ndarray, grid: np.ndarray, window: int = 16,
                 switch: float = 12.0) -> tuple[str, list[Segment]]:
    """The song's key and its local keys from chroma per cell ``(12, S)``."""
    names = [f"{NOTE_NAMES[r]}:maj" for r in range(12)] + [f"{NOTE_NAMES[r]}:min" for r in range(12)]
    rows = []
    for base in (MAJOR_PROFILE, MINOR_PROFILE):
        for r in range(12):
            p = np.roll(base, r)
            rows.append((p - p.mean()) / np.linalg.norm(p - p.mean()))
    prof = np.array(rows)                                   # (24, 12)
    s = chroma.shape[1]
    if s == 0:
        return "N", []
    from scipy.ndimage import uniform_filter1d

    local = uniform_filter1d(chroma.astype(np.float64), max(min(window, s), 1), axis=1, mode="nearest")
    local = local - local.mean(axis=0, keepdims=True)
    local /= np.linalg.norm(local, axis=0, keepdims=True) + 1e-9
    corr = prof @ local                                     # (24, S)
    glob = chroma.sum(axis=1) - chroma.sum(axis=1).mean()
    glob /= np.linalg.norm(glob) + 1e-9
    # the song-wide correlation as a mild prior: local evidence must be clear to leave it
    scores = 4.0 * corr + 1.0 * (prof @ glob)[:, None]
    path = viterbi(scores, switch)
    segs = _segments([names[i] for i in path], grid)
    # drop key segments shorter than 8 cells into their neighbours
    changed = True
    while changed and len(segs) > 1:
        changed = False
        for i, seg in enumerate(segs):
            n_cells = np.searchsorted(grid, seg.end) - np.searchsorted(grid, seg.start)
            if n_cells < 8:
                j = i - 1 if i > 0 else i + 1
                segs[j].start, segs[j].end = min(segs[j].start, seg.start), max(segs[j].end, seg.end)
                del segs[i]
                merged: list[Segment] = []
                for sg in segs:
                    if merged and merged[-1].label == sg.label:
                        merged[-1].end = sg.end
                    else:
                        merged.append(sg)
                segs = merged
                changed = True
                break
    totals: dict[str, float] = {}
    for seg in segs:
        totals[seg.label] = totals.get(seg.label, 0.0) + seg.end - seg.start
    return max(totals, key=lambda label: totals[label]), segs


def _stem_sources(stems: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(harmony audio, bass audio or None, description) from a stems dict: the accompaniment (or the sum
    of the non-vocal, non-drum stems, or the mix) and the bass stem when there is one."""
    def total(names):
        arrs = [stems[n] for n in names if n in stems]
        if not arrs:
            return None
        length = max(a.shape[0] for a in arrs)
        out = np.zeros((length,) + arrs[0].shape[1:], np.float32)
        for a in arrs:
            out[: a.shape[0]] += a
        return out

    bass = stems.get("bass")
    if "accompaniment" in stems:
        return stems["accompaniment"], bass, "accompaniment"
    if "other" in stems:
        harm = total(["other", "bass"])
        return harm, bass, "other+bass"
    if "mix" in stems:
        return stems["mix"], bass, "mix"
    return total(list(stems)), bass, "mix"


def analyse_chords(stems: Mapping[str, np.ndarray], sample_rate: int = SAMPLE_RATE,
                   grid=None, vocabulary: str = DEFAULT_VOCABULARY) -> ChordChart:
    """The :class:`ChordChart` of a song from its stems (name -> float32 ``(n, 2)``).

    ``grid``: a :class:`~.beats.BeatGrid` (estimated from the stems when ``None``). A single ``"mix"``
    entry analyses the mix alone (its low band stands in for the bass)."""
    chord_states(vocabulary)  # validates
    if not stems:
        raise ChordError("no audio to analyse")
    harmony, bass, _ = _stem_sources(stems)
    if grid is None:
        from .beats import estimate_beats

        grid = estimate_beats(dict(stems), sample_rate)
    feats = chord_features(harmony, bass, sample_rate, grid)
    return decode(feats, grid, vocabulary)


def chord_features(harmony: np.ndarray, bass: np.ndarray | None, sample_rate: int, grid) -> dict:
    """The analysis grid (``cells``, ``snapped``) and per-cell ``bass``/``treble`` chroma and ``energy``."""
    duration = harmony.shape[0] / float(sample_rate)
    cells, snapped = grid_for(duration, grid.beats, grid.confidence)
    treble_notes, energy = beat_notes(harmony, sample_rate, cells)
    bass_notes = beat_notes(bass, sample_rate, cells)[0] if bass is not None else treble_notes
    b, t, _ = chromas(bass_notes, treble_notes)
    return {"cells": cells, "snapped": snapped, "bass": b, "treble": t, "energy": energy}


def decode(feats: dict, grid, vocabulary: str = DEFAULT_VOCABULARY, params: Mapping | None = None) -> ChordChart:
    """Chords (Viterbi over the cells) and keys from :func:`chord_features`."""
    p = {**PARAMS, **(params or {})}
    cells, snapped, b, t = feats["cells"], feats["snapped"], feats["bass"], feats["treble"]
    states, scores = emissions(b, t, feats["energy"], vocabulary, p)
    cell_s = np.diff(cells)
    step = float(np.median(cell_s)) if cell_s.size else FALLBACK_GRID_S
    # the change penalty per cell scales with the cell's length (a fixed expected chord length in seconds)
    path = viterbi(scores, switch=p["switch"] * min(max(step / 0.5, 0.5), 2.0))
    chords = _segments([states[i] for i in path], cells)
    key, keys = estimate_key(t + 0.5 * b, cells, window=max(int(round(8.0 / max(step, 0.1))), 4))
    return ChordChart(key, chords, keys, vocabulary,
                      [float(x) for x in grid.beats] if snapped else [],
                      int(getattr(grid, "beats_per_bar", 4)),
                      [float(x) for x in getattr(grid, "downbeats", [])] if snapped else [], snapped)


# ------------------------------------------------------------------------------------------------
# text output
# ------------------------------------------------------------------------------------------------

def chart_text(chart: ChordChart, semitones: int = 0, bars_per_line: int = 4) -> str:
    """A readable chord chart: ``| C . . . | Am . G . |`` one bar per cell with one slot per beat, four bars
    a line, each line led by its time; without a beat grid, ``time  chord`` lines."""
    flats = key_uses_flats(transpose_label(chart.key, semitones)) if chart.key != "N" else None
    if not chart.snapped or len(chart.beats) < 2 or not chart.chords:
        from ..progress import format_time

        return "".join(f"{format_time(s.start):>7}  {display_label(s.label, semitones, flats)}\n"
                       for s in chart.chords)
    from ..progress import format_time

    beats = np.asarray(chart.beats)
    per_bar = max(chart.beats_per_bar, 1)
    first_down = chart.downbeats[0] if chart.downbeats else beats[0]
    i0 = int(np.argmin(np.abs(beats - first_down)))
    period = float(np.median(np.diff(beats)))
    # beats before the first downbeat form a pickup bar
    lead = i0 % per_bar
    pre = [beats[0] - period * k for k in range(per_bar - lead, 0, -1)] if lead else []
    slots = list(pre) + list(beats)
    lines, bar_cells, line_start = [], [], None
    prev = None
    for k in range(0, len(slots), per_bar):
        cell = []
        for t in slots[k:k + per_bar]:
            i = chart.at(t + 0.02)
            lab = chart.chords[i].label if i >= 0 else "N"
            cell.append(display_label(lab, semitones, flats) if lab != prev else ".")
            prev = lab
        if line_start is None:
            line_start = slots[k]
        bar_cells.append(" ".join(f"{c:<5}" for c in cell).rstrip())
        if len(bar_cells) == bars_per_line:
            lines.append(f"{format_time(max(line_start or 0.0, 0.0)):>7}  | " + " | ".join(bar_cells) + " |")
            bar_cells, line_start = [], None
    if bar_cells:
        lines.append(f"{format_time(max(line_start or 0.0, 0.0)):>7}  | " + " | ".join(bar_cells) + " |")
    return "\n".join(lines) + "\n"


def chord_sheet(chart: ChordChart, lines: Sequence[tuple[float, float, str]], semitones: int = 0) -> str:
    """Lyrics with chords above the words: ``lines`` are ``(start, end, text)``; each chord starting within
    a line is placed over the character its time reaches (linear in time over the line)."""
    flats = key_uses_flats(transpose_label(chart.key, semitones)) if chart.key != "N" else None
    out = [f"Key: {key_name(chart.key, semitones)}"]
    hint = capo_hint(chart.key, semitones)
    if hint:
        out[0] += f"  ({hint})"
    out.append("")
    for start, end, text in lines:
        text = text.rstrip()
        span = max(end - start, 1e-3)
        row: list[str] = []
        names = []
        i = chart.at(start + 1e-3)
        if i >= 0 and chart.chords[i].label != "N":
            names.append((0, display_label(chart.chords[i].label, semitones, flats)))
        for seg in chart.chords:
            if start + 1e-3 < seg.start < end and seg.label != "N":
                col = int(round((seg.start - start) / span * max(len(text), 1)))
                names.append((col, display_label(seg.label, semitones, flats)))
        for col, name in names:
            col = max(col, len("".join(row)) + (1 if row else 0))
            row.append(" " * (col - len("".join(row))) + name)
        if row:
            out.append("".join(row))
        out.append(text)
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------------
# cache
# ------------------------------------------------------------------------------------------------

#: bumped when the method changes, so cached charts of an older method are recomputed
METHOD_VERSION = 1


def cache_name(vocabulary: str = DEFAULT_VOCABULARY) -> str:
    return f"chords-{vocabulary}.json"


def read_cached(path: str | os.PathLike | None, vocabulary: str) -> ChordChart | None:
    """The chart cached at ``path``, or ``None`` when it is missing, damaged, of another vocabulary or of
    an older method (every field validated; a damaged cache is a miss)."""
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        return None
    try:
        d = json.loads(p.read_text())
        if not isinstance(d, dict) or d.get("method") != METHOD_VERSION:
            return None
        chart = ChordChart.from_dict(d)
    except (OSError, UnicodeDecodeError, ValueError, ChordError):
        return None
    return chart if chart.vocabulary == vocabulary else None


def write_cached(path: str | os.PathLike | None, chart: ChordChart) -> None:
    """Write the chart to ``path`` (atomic); an unwritable cache is skipped silently (it is only a cache)."""
    if path is None or not Path(path).parent.is_dir():
        return
    try:  # never re-create an entry folder that a cache clear removed since the check
        atomic_write_json(path, {**chart.to_dict(), "method": METHOD_VERSION}, mkdir=False)
    except OSError:
        pass


def chords_for_stems(stems: Mapping[str, np.ndarray], sample_rate: int = SAMPLE_RATE,
                     cache_file: str | os.PathLike | None = None, vocabulary: str = DEFAULT_VOCABULARY,
                     grid=None) -> tuple[ChordChart, bool]:
    """``(chart, from_cache)``: read from ``cache_file`` when it holds a valid chart, else computed and
    written there."""
    cached = read_cached(cache_file, vocabulary)
    if cached is not None:
        return cached, True
    chart = analyse_chords(stems, sample_rate, grid, vocabulary)
    write_cached(cache_file, chart)
    return chart, False
