"""Chord-voiced accompaniment parts ("other"): strummed guitar, sustained pad/strings/organ and
arpeggios, voiced from the chord labels in the mid register (MIDI 48..79)."""

from __future__ import annotations

import numpy as np

from .grooves import step_times
from .theory import Chord, Note

KINDS = ("strum", "pad", "arpeggio", "stabs")
# General MIDI programs (0-based) per role
PROGRAMS = {
    "strum": [24, 25, 26, 27, 28, 29, 30],          # guitars
    "pad": [48, 49, 50, 52, 88, 89, 90, 91, 94, 16, 19],  # strings, choir-less pads, organs
    "arpeggio": [0, 1, 2, 4, 5, 6, 8, 11, 46, 24, 25],    # pianos, e-pianos, mallets, harp, guitar
    "stabs": [16, 17, 18, 61, 62, 81, 4, 5],        # organs, brass, saw lead, e-piano
}


def voicing(chord: Chord, low: int = 52, high: int = 76) -> list[int]:
    """Close voicing of the chord's pitch classes from the first chord tone >= ``low``."""
    if chord.root < 0:
        return []
    pitches = []
    for iv in sorted(chord.intervals):
        p = low + ((chord.root + iv - low) % 12)
        while p in pitches:
            p += 12
        if p <= high:
            pitches.append(p)
    return sorted(pitches)


def generate(kind: str, chords: list[Chord], beats: np.ndarray, downbeat_index: int,
             rng: np.random.Generator) -> list[Note]:
    steps = step_times(beats)
    step_len = float(np.median(np.diff(beats))) / 4 if len(beats) > 1 else 0.125
    low = int(rng.integers(48, 60))
    notes: list[Note] = []
    if kind == "pad":
        for c in chords:
            for p in voicing(c, low, low + 24):
                notes.append(Note(c.start, c.end, p, int(rng.integers(55, 90))))
        return notes
    rhythm = {"strum": rng.choice(["x.x.x.x.x.x.x.x.", "x..x..x.x..x..x.", "x...x...x.x.x..."]),
              "arpeggio": "xxxxxxxxxxxxxxxx" if rng.random() < 0.5 else "x.x.x.x.x.x.x.x.",
              "stabs": rng.choice(["..x...x...x...x.", "x.....x...x.....", "....x.......x..."])}[kind]
    arp_i = 0
    for i, t in enumerate(steps):
        bar_pos = (((i // 4) - downbeat_index) % 4) * 4 + i % 4
        if rhythm[bar_pos] != "x":
            continue
        c = next((c for c in chords if c.start - 1e-6 <= t < c.end), None)
        if c is None or c.root < 0:
            continue
        v = voicing(c, low, low + 24)
        if not v:
            continue
        vel = int(np.clip(rng.normal(85 if bar_pos % 4 == 0 else 70, 10), 30, 127))
        if kind == "strum":
            down = rng.random() < 0.7
            for k, p in enumerate(v if down else v[::-1]):
                s = t + k * float(rng.uniform(0.006, 0.018))
                notes.append(Note(s, t + step_len * 2 * 0.95, p, max(1, vel - 4 * k)))
        elif kind == "arpeggio":
            p = v[arp_i % len(v)]
            arp_i += 1
            notes.append(Note(t, t + step_len * 1.9, p, vel))
        else:  # stabs
            for p in v:
                notes.append(Note(t, t + step_len * 1.5, p, vel))
    return notes
