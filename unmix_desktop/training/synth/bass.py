"""Bass lines from chords on a beat grid: root, root/fifth, walking, octave and syncopated patterns.

Every note is a chord tone or a tone of the song's scale (no chromatic passing notes), in the
bass register E1..G3 (MIDI 28..55), and starts on a sixteenth of the grid (before humanising).
"""

from __future__ import annotations

import numpy as np

from .grooves import step_times
from .theory import Chord, Note

PATTERNS = ("root", "root_fifth", "walking", "octave", "syncopated", "eighths")
LOW, HIGH = 28, 55
_SYNC = "x..x..x...x..x.."


def _chord_at(chords: list[Chord], t: float) -> Chord | None:
    for c in chords:
        if c.start - 1e-6 <= t < c.end:
            return c
    return None


def _place(pc: int, near: int) -> int:
    """The pitch of class ``pc`` closest to ``near`` within the bass register."""
    cands = [p for p in range(LOW, HIGH + 1) if p % 12 == pc % 12]
    return min(cands, key=lambda p: abs(p - near))


def generate(chords: list[Chord], beats: np.ndarray, downbeat_index: int, rng: np.random.Generator,
             scale: tuple[int, tuple[int, ...]], pattern: str | None = None,
             humanize_ms: float = 5.0) -> tuple[list[Note], np.ndarray]:
    """Bass notes following ``chords`` over ``beats``; ``scale`` = (tonic, intervals).
    Returns (notes, grid times the notes were placed on)."""
    pattern = pattern or str(rng.choice(PATTERNS))
    tonic, intervals = scale
    scale_pcs = sorted({(tonic + i) % 12 for i in intervals})
    steps = step_times(beats)
    center = int(rng.integers(36, 44))
    notes, grid = [], []
    step_len = float(np.median(np.diff(beats))) / 4 if len(beats) > 1 else 0.125
    prev = center
    for i, t in enumerate(steps):
        beat_i = i // 4
        bar_pos = ((beat_i - downbeat_index) % 4) * 4 + i % 4
        c = _chord_at(chords, t)
        if c is None or c.root < 0:
            continue
        chord_start = abs(t - c.start) < step_len * 0.75
        root = c.bass if c.bass >= 0 else c.root
        fifth = (c.root + 7) % 12 if 7 in c.intervals else root
        pc, length = None, 4
        if pattern == "root":
            if bar_pos % 8 == 0 or chord_start:
                pc, length = root, 8
        elif pattern == "root_fifth":
            if bar_pos % 4 == 0 or chord_start:
                pc = root if (bar_pos in (0, 8) or chord_start) else fifth
        elif pattern == "walking":
            if bar_pos % 4 == 0:
                if chord_start or bar_pos == 0:
                    pc = root
                else:
                    options = sorted(c.pitch_classes) + scale_pcs
                    pc = int(rng.choice(options))
        elif pattern == "octave":
            if bar_pos % 2 == 0:
                pc, length = root, 2
        elif pattern == "syncopated":
            if _SYNC[bar_pos] == "x" or chord_start:
                pc, length = (root if chord_start or rng.random() < 0.75 else fifth), 3
        else:  # eighths
            if bar_pos % 2 == 0:
                pc, length = root, 2
        if pc is None:
            continue
        pitch = _place(pc, prev)
        if pattern == "octave" and bar_pos % 4 == 2 and pitch + 12 <= HIGH:
            pitch += 12
        prev = pitch if pattern != "octave" else prev
        start = max(0.0, t + rng.normal(0, humanize_ms / 1000.0))
        dur = step_len * length * float(rng.uniform(0.7, 0.95))
        vel = int(np.clip(rng.normal(95 if bar_pos % 4 == 0 else 80, 8), 40, 127))
        notes.append(Note(float(start), float(start + dur), int(pitch), vel))
        grid.append(t)
    return notes, np.asarray(grid)
