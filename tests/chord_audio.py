"""Generated songs of known chords for the chord tests: harmonic tones (the accompaniment), a bass line on
the roots, and a noise-burst drum on every beat. One chord per bar of four beats; ``N`` bars are silent
apart from the drums."""

from __future__ import annotations

import numpy as np

from unmix_desktop.analysis.chords import QUALITIES, split_label

SR = 44100


def tone(midi: float, dur: float, amp: float = 0.1, harmonics: int = 6, sr: int = SR) -> np.ndarray:
    t = np.arange(int(dur * sr)) / sr
    f = 440.0 * 2 ** ((midi - 69) / 12)
    x = sum((0.6 ** (h - 1)) * np.sin(2 * np.pi * f * h * t) for h in range(1, harmonics + 1) if f * h < sr / 2)
    env = np.minimum(1, t / 0.01) * np.exp(-t * 1.5) * np.minimum(1, (dur - t) / 0.02)
    return (amp * x * env).astype(np.float32)


def song(labels: list[str], beat: float = 0.5, beats_per_chord: int = 4, seed: int = 0, sr: int = SR):
    """``(stems, reference)``: stems ``accompaniment`` (chords + bass + drums), ``bass``, ``drums``, ``other``
    (chords) as float32 ``(n, 2)``; reference ``[(start, end, label)]``."""
    rng = np.random.default_rng(seed)
    n = int(len(labels) * beats_per_chord * beat * sr)
    chords = np.zeros(n, np.float32)
    bass = np.zeros(n, np.float32)
    drums = np.zeros(n, np.float32)
    ref = []
    for i, lab in enumerate(labels):
        t0 = i * beats_per_chord * beat
        ref.append((t0, t0 + beats_per_chord * beat, lab))
        root, quality, _ = split_label(lab)
        for b in range(beats_per_chord):
            s = int((t0 + b * beat) * sr)
            hit = np.exp(-np.arange(int(0.05 * sr)) / sr * 60) * rng.standard_normal(int(0.05 * sr)) * 0.3
            drums[s:s + hit.size] += hit[: n - s]
            if root < 0:
                continue
            bt = tone(36 + root, beat * 0.95, amp=0.25, harmonics=4, sr=sr)
            bass[s:s + bt.size] += bt[: n - s]
            for iv in QUALITIES[quality]:
                pc = (root + iv) % 12
                ct = tone(60 + pc - (12 if pc > 7 else 0), beat * 0.95, amp=0.08, sr=sr)
                chords[s:s + ct.size] += ct[: n - s]

    def st(x):
        return np.stack([x, x], 1)

    return {"accompaniment": st(chords + bass + drums), "bass": st(bass), "drums": st(drums),
            "other": st(chords)}, ref


def overlap_accuracy(ref, chords) -> float:
    """Share of the reference time whose estimated label equals the reference label."""
    total = good = 0.0
    for a, b, lab in ref:
        total += b - a
        for s in chords:
            o = min(b, s.end) - max(a, s.start)
            if o > 0 and s.label == lab:
                good += o
    return good / total
