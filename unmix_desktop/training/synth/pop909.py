"""Reading one POP909 song: ``NNN/NNN.mid`` (tracks MELODY, BRIDGE, PIANO), ``chord_midi.txt``,
``beat_midi.txt`` (time, 2/4 downbeat flag, 4/4 downbeat flag). Times in seconds (MIDI time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .theory import Chord, Note, parse_chord

TRACKS = ("MELODY", "BRIDGE", "PIANO")


@dataclass
class Song:
    name: str
    tracks: dict[str, list[Note]]
    chords: list[Chord]
    beats: np.ndarray                      # beat times (s)
    downbeats: np.ndarray = field(default_factory=lambda: np.zeros(0))  # bar starts (s)

    @property
    def beat_period(self) -> float:
        return float(np.median(np.diff(self.beats))) if len(self.beats) > 1 else 0.5

    def stretched(self, factor: float, offset: float = 0.0) -> "Song":
        """Times mapped ``t -> (t - offset) * factor`` (a tempo change; notes keep their pitch)."""
        def f(t):
            return (t - offset) * factor
        tracks = {k: [Note(f(n.start), f(n.end), n.pitch, n.velocity) for n in v] for k, v in self.tracks.items()}
        chords = [Chord(f(c.start), f(c.end), c.root, c.intervals, c.bass) for c in self.chords]
        return Song(self.name, tracks, chords, f(self.beats), f(self.downbeats))


def read_midi_notes(path: str | Path) -> dict[str, list[Note]]:
    """``{track name: notes}`` of a standard MIDI file, with the tempo map applied."""
    import mido

    mid = mido.MidiFile(str(path))
    tpb = mid.ticks_per_beat
    # tempo map (ticks -> seconds) from every track's set_tempo events
    changes = []
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                changes.append((tick, msg.tempo))
    changes.sort()
    if not changes or changes[0][0] != 0:
        changes.insert(0, (0, 500000))
    seg_ticks = np.array([c[0] for c in changes], dtype=np.float64)
    seg_tempo = np.array([c[1] for c in changes], dtype=np.float64)
    seg_start_s = np.concatenate([[0.0], np.cumsum(np.diff(seg_ticks) * seg_tempo[:-1] / 1e6 / tpb)])

    def to_s(tick: int) -> float:
        i = int(np.searchsorted(seg_ticks, tick, side="right") - 1)
        return float(seg_start_s[i] + (tick - seg_ticks[i]) * seg_tempo[i] / 1e6 / tpb)

    out: dict[str, list[Note]] = {}
    for idx, track in enumerate(mid.tracks):
        name = track.name.strip() or f"track{idx}"
        tick, active, notes = 0, {}, []
        for msg in track:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                active.setdefault((msg.channel, msg.note), []).append((tick, msg.velocity))
            elif msg.type in ("note_off", "note_on"):
                stack = active.get((msg.channel, msg.note))
                if stack:
                    t0, vel = stack.pop(0)
                    notes.append(Note(to_s(t0), to_s(tick), msg.note, vel))
        if notes:
            out[name] = sorted(notes, key=lambda n: (n.start, n.pitch))
    return out


def read_song(folder: str | Path) -> Song:
    folder = Path(folder)
    tracks = read_midi_notes(folder / f"{folder.name}.mid")
    chords = []
    for line in (folder / "chord_midi.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3:
            chords.append(parse_chord(parts[2], float(parts[0]), float(parts[1])))
    beats, down = [], []
    for line in (folder / "beat_midi.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3:
            beats.append(float(parts[0]))
            if float(parts[2]) >= 0.5:
                down.append(float(parts[0]))
    return Song(folder.name, {k: tracks.get(k, []) for k in TRACKS}, chords, np.array(beats), np.array(down))


def song_folders(root: str | Path) -> list[Path]:
    root = Path(root)
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / f"{p.name}.mid").is_file())
