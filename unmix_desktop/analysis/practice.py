"""Practice helpers without Qt: metronome click strip, count-in, loop trainer, markers.

Audio is float32 ``(n, 2)`` at 44.1 kHz. Times are seconds of the original song (song time), so
they stay valid at any tempo: the click strip is played through the stretcher like any stem and
follows the stretched beat grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..audio.io import SAMPLE_RATE
from ..errors import UnmixError

CLICK_STEM = "click"
CLICK_S = 0.03
ACCENT_HZ, BEAT_HZ = 1760.0, 1320.0


class PracticeError(UnmixError):
    """An invalid loop-trainer or marker setting."""


def _click(freq: float, sample_rate: int, level: float) -> np.ndarray:
    t = np.arange(int(CLICK_S * sample_rate)) / sample_rate
    return (level * np.sin(2 * np.pi * freq * t) * np.exp(-t / 0.006)).astype(np.float32)


def _place(out: np.ndarray, times: Iterable[float], sound: np.ndarray, sample_rate: int) -> None:
    for t in times:
        i = int(round(t * sample_rate))
        if 0 <= i < out.shape[0]:
            m = min(sound.shape[0], out.shape[0] - i)
            out[i:i + m, 0] += sound[:m]
            out[i:i + m, 1] += sound[:m]


def click_track(beats: Sequence[float], downbeats: Sequence[float], n_frames: int,
                sample_rate: int = SAMPLE_RATE, level: float = 0.5) -> np.ndarray:
    """A metronome stem (n_frames, 2): a short high click on each beat, higher on downbeats.
    Load it beside the stems (name :data:`CLICK_STEM`) to get a fader and a mute for it."""
    out = np.zeros((int(n_frames), 2), np.float32)
    down = {round(t, 4) for t in downbeats}
    _place(out, [t for t in beats if round(t, 4) not in down], _click(BEAT_HZ, sample_rate, level), sample_rate)
    _place(out, downbeats, _click(ACCENT_HZ, sample_rate, level), sample_rate)
    return out


def count_in(bpm: float, beats_per_bar: int = 4, tempo: float = 1.0, sample_rate: int = SAMPLE_RATE,
             level: float = 0.5) -> np.ndarray:
    """One bar of clicks (first accented) at ``bpm`` played at ``tempo``, exactly one bar long:
    play it before the song (``StemPlayer.play(count_in=...)``) and the song starts on the next beat."""
    if not (bpm > 0 and math.isfinite(bpm)):
        raise PracticeError(f"count-in needs a tempo, got {bpm} BPM")
    period = 60.0 / (bpm * tempo)
    out = np.zeros((int(round(beats_per_bar * period * sample_rate)), 2), np.float32)
    _place(out, [0.0], _click(ACCENT_HZ, sample_rate, level), sample_rate)
    _place(out, [k * period for k in range(1, beats_per_bar)], _click(BEAT_HZ, sample_rate, level), sample_rate)
    return out


class LoopTrainer:
    """Play a loop at ``start`` tempo and raise it by ``step`` after each pass, up to ``target``
    (e.g. 0.7 -> 1.0 in 0.05 steps). Call :meth:`on_pass` at each loop wrap (or :meth:`update` with
    the player's ``loop_passes`` counter); apply the tempo it returns."""

    def __init__(self, start: float = 0.7, step: float = 0.05, target: float = 1.0):
        from ..audio.stretch import check_tempo

        self.start = check_tempo(start)
        self.target = check_tempo(target)
        self.step = float(step)
        if not self.step > 0:
            raise PracticeError(f"loop trainer step must be > 0, got {step}")
        self.passes = 0
        self._seen: int | None = None

    @property
    def tempo(self) -> float:
        """The tempo of the current pass."""
        direction = 1.0 if self.target >= self.start else -1.0
        t = self.start + direction * self.step * self.passes
        return round(min(t, self.target) if direction > 0 else max(t, self.target), 6)

    @property
    def done(self) -> bool:
        return self.tempo == round(self.target, 6)

    def on_pass(self) -> float:
        """One pass finished: the tempo for the next one."""
        self.passes += 1
        return self.tempo

    def update(self, loop_passes: int) -> float | None:
        """Feed the player's pass counter; returns the new tempo when a pass has finished, else None."""
        if self._seen is None:
            self._seen = loop_passes
            return None
        if loop_passes == self._seen:
            return None
        self.passes += loop_passes - self._seen
        self._seen = loop_passes
        return self.tempo

    def reset(self) -> float:
        self.passes = 0
        self._seen = None
        return self.tempo

    def to_dict(self) -> dict:
        return {"start": self.start, "step": self.step, "target": self.target}

    @classmethod
    def from_dict(cls, d: dict) -> "LoopTrainer":
        return cls(float(d["start"]), float(d["step"]), float(d["target"]))


@dataclass
class Marker:
    time: float  # seconds of the song
    name: str


class Markers:
    """Named positions in a song (song time), kept sorted; JSON-serialisable via :meth:`to_list`."""

    def __init__(self, items: Iterable[Marker] = ()):
        self._items: list[Marker] = sorted(items, key=lambda m: m.time)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self):
        return iter(list(self._items))

    def __getitem__(self, index: int) -> Marker:
        return self._items[index]

    def add(self, time: float, name: str | None = None) -> int:
        """Add a marker; returns its index. The default name is "Marker N"."""
        t = float(time)
        if not (t >= 0 and math.isfinite(t)):
            raise PracticeError(f"marker time must be >= 0 seconds, got {time}")
        if name is None:
            used = {m.name for m in self._items}
            k = len(self._items) + 1
            while f"Marker {k}" in used:
                k += 1
            name = f"Marker {k}"
        marker = Marker(t, str(name))
        self._items.append(marker)
        self._items.sort(key=lambda m: m.time)
        return self._items.index(marker)

    def rename(self, index: int, name: str) -> None:
        name = str(name).strip()
        if not name:
            raise PracticeError("a marker needs a name")
        self._check(index)
        self._items[index].name = name

    def remove(self, index: int) -> Marker:
        self._check(index)
        return self._items.pop(index)

    def _check(self, index: int) -> None:
        if not 0 <= index < len(self._items):
            raise PracticeError(f"no marker {index} (there are {len(self._items)})")

    def next_after(self, time: float, eps: float = 0.05) -> Marker | None:
        """The first marker later than ``time`` (by more than ``eps``): where "jump forward" goes."""
        return next((m for m in self._items if m.time > time + eps), None)

    def previous_before(self, time: float, eps: float = 0.5) -> Marker | None:
        """The last marker earlier than ``time`` - ``eps`` (a little grace, as on a CD player)."""
        return next((m for m in reversed(self._items) if m.time < time - eps), None)

    def find(self, name: str) -> Marker | None:
        return next((m for m in self._items if m.name == name), None)

    def to_list(self) -> list[dict]:
        return [{"time": round(m.time, 4), "name": m.name} for m in self._items]

    @classmethod
    def from_list(cls, items: Iterable[dict]) -> "Markers":
        return cls(Marker(float(d["time"]), str(d["name"])) for d in items)
