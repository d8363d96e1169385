"""Rendering note lists to audio: FluidSynth with a General MIDI soundfont, or a numpy fallback.

A *part* is ``Part(notes, program, drums, pan, volume)``; a stem is rendered from several parts,
each on its own MIDI channel (drums on channel 10, bank 128, ``program`` = kit). Output float32
``(n, 2)`` at ``sample_rate``. FluidSynth's own reverb and chorus are off (production adds reverb).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...audio.io import SAMPLE_RATE
from .theory import Note

SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/MuseScore_General.sf2",
    "/usr/share/sounds/sf3/MuseScore_General.sf3",
    "/usr/share/sounds/sf2/default-GM.sf2",
)
DRUM_KITS = (0, 8, 16, 24, 25, 32, 40)  # GM2/GS kits in FluidR3 / MuseScore General


@dataclass
class Part:
    notes: list[Note]
    program: int = 0
    drums: bool = False
    pan: float = 0.0       # -1 (left) .. 1 (right)
    volume: int = 100      # MIDI CC7


def find_soundfonts() -> list[str]:
    env = os.environ.get("UNMIX_SOUNDFONT")
    found = [env] if env and Path(env).is_file() else []
    found += [p for p in SOUNDFONT_CANDIDATES if Path(p).is_file() and os.path.realpath(p) not in
              {os.path.realpath(f) for f in found}]
    return found


def fluidsynth_available() -> bool:
    try:
        import fluidsynth  # noqa: F401
    except (ImportError, OSError):
        return False
    return bool(find_soundfonts())


class FluidRenderer:
    """One FluidSynth instance (soundfont loaded once) rendering stems one after another."""

    def __init__(self, soundfont: str | None = None, sample_rate: int = SAMPLE_RATE) -> None:
        import fluidsynth

        self.soundfont = soundfont or find_soundfonts()[0]
        self.sample_rate = sample_rate
        self.synth = fluidsynth.Synth(gain=0.4, samplerate=float(sample_rate), **{
            "synth.reverb.active": 0, "synth.chorus.active": 0, "synth.polyphony": 256})
        self.sfid = self.synth.sfload(self.soundfont)
        if self.sfid < 0:
            raise RuntimeError(f"{self.soundfont}: FluidSynth could not load this soundfont")

    def render(self, parts: list[Part], n: int) -> np.ndarray:
        fs = self.synth
        fs.system_reset()
        events = []  # (sample, order, kind, channel, key, velocity)
        melodic = iter([c for c in range(16) if c != 9])
        for part in parts:
            ch = 9 if part.drums else next(melodic)
            fs.program_select(ch, self.sfid, 128 if part.drums else 0, int(part.program))
            fs.cc(ch, 7, int(np.clip(part.volume, 0, 127)))
            fs.cc(ch, 10, int(np.clip(64 + part.pan * 63, 0, 127)))
            for nt in part.notes:
                s0 = int(round(nt.start * self.sample_rate))
                s1 = max(s0 + 1, int(round(nt.end * self.sample_rate)))
                if s0 >= n or s1 <= 0:
                    continue
                events.append((max(s0, 0), 1, 1, ch, nt.pitch, nt.velocity))
                events.append((s1, 0, 0, ch, nt.pitch, 0))
        events.sort()
        out = np.zeros((n, 2), dtype=np.float32)
        pos = 0
        for sample, _, on, ch, key, vel in events:
            if sample > pos:
                end = min(sample, n)
                if end > pos:
                    out[pos:end] = _s16(fs.get_samples(end - pos))
                    pos = end
            if pos >= n:
                break
            if on:
                fs.noteon(ch, key, vel)
            else:
                fs.noteoff(ch, key)
        if pos < n:
            out[pos:] = _s16(fs.get_samples(n - pos))
        return out

    def close(self) -> None:
        self.synth.delete()


def _s16(block) -> np.ndarray:
    return (np.asarray(block, dtype=np.float32).reshape(-1, 2) / 32768.0)


class NumpyRenderer:
    """A small additive/noise synthesiser with the same interface (no soundfont needed): melodic
    programs as decaying harmonic tones (brightness and envelope from the GM family), drums as
    filtered noise and pitch-swept sines. For tests and machines without FluidSynth."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, seed: int = 0) -> None:
        self.sample_rate = sample_rate
        self.seed = seed

    def render(self, parts: list[Part], n: int) -> np.ndarray:
        sr = self.sample_rate
        out = np.zeros((n, 2), dtype=np.float32)
        rng = np.random.default_rng(self.seed)
        for part in parts:
            mono = np.zeros(n, dtype=np.float32)
            family = part.program // 8
            n_harm = 2 + family % 6
            sustain = family in (2, 6, 10, 11)  # organ, strings/ensemble, pads
            for nt in part.notes:
                s0 = max(0, int(nt.start * sr))
                if s0 >= n:
                    continue
                amp = nt.velocity / 127.0 * 0.2
                if part.drums:
                    length = int(sr * (0.35 if nt.pitch in (36, 45, 47, 50) else 0.15 if nt.pitch < 49 else 0.6))
                    t = np.arange(min(length, n - s0)) / sr
                    if nt.pitch in (36, 45, 47, 50):
                        f0 = {36: 55.0, 45: 90.0, 47: 120.0, 50: 160.0}[nt.pitch]
                        sig = np.sin(2 * np.pi * f0 * t * (1 + 1.5 * np.exp(-t * 40))) * np.exp(-t * 9)
                    else:
                        sig = rng.standard_normal(len(t)) * np.exp(-t * (25 if nt.pitch in (42, 44) else 12))
                        if nt.pitch in (38, 37, 39, 40):
                            sig = 0.6 * sig + 0.5 * np.sin(2 * np.pi * 190 * t) * np.exp(-t * 20)
                else:
                    dur = max(nt.end - nt.start, 0.02) + 0.05
                    t = np.arange(min(int(dur * sr), n - s0)) / sr
                    f0 = 440.0 * 2 ** ((nt.pitch - 69) / 12)
                    sig = np.zeros(len(t))
                    for h in range(1, n_harm + 1):
                        if f0 * h < sr / 2:
                            sig += np.sin(2 * np.pi * f0 * h * t) / h
                    env = np.minimum(1.0, t / 0.01) * (np.ones_like(t) if sustain else np.exp(-t * 3))
                    env *= np.clip((dur - t) / 0.05, 0, 1)
                    sig *= env
                mono[s0:s0 + len(sig)] += (amp * sig).astype(np.float32)
            g_l = np.cos((part.pan + 1) * np.pi / 4)
            g_r = np.sin((part.pan + 1) * np.pi / 4)
            vol = (part.volume / 127.0) ** 2
            out[:, 0] += mono * g_l * vol
            out[:, 1] += mono * g_r * vol
        return out

    def close(self) -> None:
        pass


def make_renderer(kind: str = "auto", sample_rate: int = SAMPLE_RATE, soundfont: str | None = None, seed: int = 0):
    """``auto``: FluidSynth when the binding and a soundfont are installed, else numpy."""
    if kind == "fluidsynth" or (kind == "auto" and (soundfont or fluidsynth_available())):
        return FluidRenderer(soundfont, sample_rate)
    if kind in ("numpy", "auto"):
        return NumpyRenderer(sample_rate, seed)
    raise ValueError(f"unknown renderer '{kind}' (auto, fluidsynth or numpy)")
