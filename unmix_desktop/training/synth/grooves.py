"""Drum grooves on a beat grid: styles, fills, accents, swing and humanised timing (GM drum keys).

A bar is 4 beats x 4 sixteenths; patterns are 16-character strings per drum ('x' accent, 'o' soft,
'.' rest). Step times come from the song's beat times (linear between beats), so grooves follow
the song's own tempo curve; swing delays every second sixteenth (or eighth) by a fraction of the step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .theory import Note

KICK, SIDESTICK, SNARE, CLAP, CLOSED_HH, PEDAL_HH, OPEN_HH = 36, 37, 38, 39, 42, 44, 46
LOW_TOM, MID_TOM, HIGH_TOM, CRASH, RIDE, RIDE_BELL, TAMB, COWBELL, SHAKER = 45, 47, 50, 49, 51, 53, 54, 56, 70

STYLES: dict[str, dict[int, str]] = {
    "pop":      {KICK: "x.......x.x.....", SNARE: "....x.......x...", CLOSED_HH: "x.o.x.o.x.o.x.o."},
    "rock":     {KICK: "x.....x.x.......", SNARE: "....x.......x...", CLOSED_HH: "x.x.x.x.x.x.x.x."},
    "disco":    {KICK: "x...x...x...x...", SNARE: "....x.......x...", OPEN_HH: "..x...x...x...x.",
                 CLOSED_HH: "o.o.o.o.o.o.o.o."},
    "funk":     {KICK: "x..x..x...x..x..", SNARE: "....x..o.o..x..o", CLOSED_HH: "xoxoxoxoxoxoxoxo"},
    "halftime": {KICK: "x.........x.....", SNARE: "........x.......", CLOSED_HH: "x.x.x.x.x.x.x.x."},
    "ballad":   {KICK: "x.......x.......", SIDESTICK: "....x.......x...", CLOSED_HH: "x...x...x...x..."},
    "ride":     {KICK: "x.....x...x.....", SNARE: "....x.......x...", RIDE: "x.x.x.x.x.x.x.x."},
    "hiphop":   {KICK: "x......x..x.....", SNARE: "....x.......x...", CLOSED_HH: "x.x.x.x.x.x.x.x."},
    "shuffle":  {KICK: "x.....x.x.......", SNARE: "....x.......x...", CLOSED_HH: "x.ox.ox.ox.ox.o."},
    "latin":    {KICK: "x..x....x..x....", SIDESTICK: "x..x..x...x..x..", SHAKER: "xoooxoooxoooxooo"},
    "edm":      {KICK: "x...x...x...x...", CLAP: "....x.......x...", OPEN_HH: "..x...x...x...x."},
    "train":    {KICK: "x.......x.......", SNARE: "oooxoooxoooxooox", CLOSED_HH: "x.x.x.x.x.x.x.x."},
}
SWING = {"shuffle": 0.33, "hiphop": 0.18, "funk": 0.08}  # default swing (fraction of a step)
FILL_DRUMS = (SNARE, HIGH_TOM, MID_TOM, LOW_TOM)


@dataclass
class GrooveSettings:
    style: str = "pop"
    swing: float = 0.0             # 0..0.5 of a sixteenth: delay of the off sixteenths
    humanize_ms: float = 6.0       # std of the timing jitter
    velocity_scale: float = 1.0
    fill_every: int = 4            # bars between fills (0: none)
    crash_on_phrase: bool = True
    ghost_prob: float = 0.1        # extra soft snare notes


def random_settings(rng: np.random.Generator) -> GrooveSettings:
    style = str(rng.choice(list(STYLES)))
    swing = SWING.get(style, 0.0) + (float(rng.uniform(0, 0.15)) if rng.random() < 0.2 else 0.0)
    return GrooveSettings(style=style, swing=min(swing, 0.5), humanize_ms=float(rng.uniform(2, 12)),
                          velocity_scale=float(rng.uniform(0.7, 1.1)), fill_every=int(rng.choice([0, 4, 8, 8])),
                          crash_on_phrase=bool(rng.random() < 0.8), ghost_prob=float(rng.uniform(0, 0.25)))


def step_times(beats: np.ndarray, swing: float = 0.0) -> np.ndarray:
    """Sixteenth-note times (4 per beat interval) for beats ``beats[0..-1)``; swing delays the
    2nd and 4th sixteenth of each beat by ``swing`` of a step."""
    beats = np.asarray(beats, dtype=np.float64)
    if len(beats) < 2:
        return np.zeros(0)
    d = np.diff(beats)
    frac = np.array([0.0, 0.25 + swing * 0.25, 0.5, 0.75 + swing * 0.25])
    return (beats[:-1, None] + d[:, None] * frac[None]).ravel()


def _vel(ch: str, rng, scale: float) -> int:
    base = rng.uniform(92, 122) if ch == "x" else rng.uniform(45, 75)
    return int(np.clip(base * scale, 1, 127))


def generate(beats: np.ndarray, downbeat_index: int, rng: np.random.Generator,
             settings: GrooveSettings | None = None) -> tuple[list[Note], np.ndarray]:
    """Drum notes over ``beats`` (seconds); ``downbeat_index``: the index of a bar start in ``beats``.
    Returns (notes, the un-humanised grid times each note was placed on, one per note)."""
    s = settings or random_settings(rng)
    pattern = STYLES[s.style]
    steps = step_times(beats, s.swing)
    n_steps = len(steps)
    notes, grid = [], []
    step_len = float(np.median(np.diff(beats))) / 4 if len(beats) > 1 else 0.125
    for i in range(n_steps):
        beat_i = i // 4
        bar_pos = ((beat_i - downbeat_index) % 4) * 4 + i % 4   # step within the bar 0..15
        bar_no = (beat_i - downbeat_index) // 4
        in_fill = (s.fill_every and bar_no >= 0 and (bar_no + 1) % s.fill_every == 0 and bar_pos >= 8)
        hits: list[tuple[int, str]] = []
        if in_fill:
            if rng.random() < 0.75:
                drum = FILL_DRUMS[min(3, (bar_pos - 8) // 2)] if rng.random() < 0.7 else SNARE
                hits.append((drum, "x" if i % 2 == 0 else "o"))
            if bar_pos % 4 == 0:
                hits.append((KICK, "x"))
        else:
            for drum, pat in pattern.items():
                ch = pat[bar_pos]
                if ch != ".":
                    hits.append((drum, ch))
            if s.ghost_prob and bar_pos % 2 == 1 and rng.random() < s.ghost_prob:
                hits.append((SNARE, "o"))
        if bar_pos == 0 and s.crash_on_phrase and bar_no >= 0 and s.fill_every and bar_no % s.fill_every == 0 \
                and bar_no > 0:
            hits.append((CRASH, "x"))
        for drum, ch in hits:
            t = steps[i] + rng.normal(0, s.humanize_ms / 1000.0)
            t = max(t, 0.0)
            dur = step_len * (4 if drum in (CRASH, OPEN_HH, RIDE) else 1)
            notes.append(Note(float(t), float(t + dur), drum, _vel(ch, rng, s.velocity_scale)))
            grid.append(steps[i])
    order = np.argsort([n.start for n in notes], kind="stable")
    return [notes[k] for k in order], np.asarray(grid)[order] if grid else np.zeros(0)
