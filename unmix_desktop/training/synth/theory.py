"""Notes, chord labels and scales (pitch classes 0 = C)."""

from __future__ import annotations

from dataclasses import dataclass

PITCH_CLASSES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# chord quality -> intervals above the root (POP909 / Harte labels; unknown qualities fall back by prefix)
QUALITIES = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "aug": (0, 4, 8), "sus2": (0, 2, 7),
    "sus4": (0, 5, 7), "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10),
    "dim7": (0, 3, 6, 9), "hdim7": (0, 3, 6, 10), "minmaj7": (0, 3, 7, 11), "maj6": (0, 4, 7, 9),
    "min6": (0, 3, 7, 9), "9": (0, 4, 7, 10, 14), "maj9": (0, 4, 7, 11, 14), "min9": (0, 3, 7, 10, 14),
    "11": (0, 4, 7, 10, 14, 17), "13": (0, 4, 7, 10, 14, 21), "1": (0,), "5": (0, 7),
}
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)


@dataclass(frozen=True)
class Note:
    """One note: ``start``/``end`` in seconds, MIDI ``pitch`` 0..127, ``velocity`` 1..127."""

    start: float
    end: float
    pitch: int
    velocity: int


@dataclass(frozen=True)
class Chord:
    start: float
    end: float
    root: int                    # pitch class; -1 for no chord ("N")
    intervals: tuple[int, ...]   # above the root
    bass: int                    # pitch class of the bass note (slash chords), -1 for "N"

    @property
    def pitch_classes(self) -> set[int]:
        return {(self.root + i) % 12 for i in self.intervals} if self.root >= 0 else set()


def note_name_to_pc(name: str) -> int:
    pc = PITCH_CLASSES[name[0].upper()]
    for acc in name[1:]:
        pc += 1 if acc == "#" else -1 if acc == "b" else 0
    return pc % 12


_DEGREES = {"1": 0, "b2": 1, "2": 2, "b3": 3, "3": 4, "4": 5, "#4": 6, "b5": 6, "5": 7, "#5": 8, "b6": 8,
            "6": 9, "b7": 10, "7": 11}


def parse_chord(label: str, start: float = 0.0, end: float = 0.0) -> Chord:
    """``"C:maj"``, ``"A:min7/b3"``, ``"Bb:7(9)"``, ``"N"`` -> :class:`Chord`."""
    label = label.strip()
    if not label or label in ("N", "X"):
        return Chord(start, end, -1, (), -1)
    root_s, _, rest = label.partition(":")
    root = note_name_to_pc(root_s)
    rest = rest or "maj"
    quality, _, slash = rest.partition("/")
    quality = quality.split("(")[0] or "maj"
    intervals = QUALITIES.get(quality)
    if intervals is None:
        intervals = QUALITIES["min"] if quality.startswith("min") else QUALITIES["maj"]
    bass = (root + _DEGREES.get(slash, 0)) % 12 if slash else root
    return Chord(start, end, root, intervals, bass)


def scale_for(chords: list[Chord]) -> tuple[int, tuple[int, ...]]:
    """The major/minor key whose scale covers most chord tones (duration-weighted): (tonic, scale)."""
    best, best_score = (0, MAJOR_SCALE), -1.0
    for tonic in range(12):
        for scale in (MAJOR_SCALE, MINOR_SCALE):
            pcs = {(tonic + s) % 12 for s in scale}
            score = sum((c.end - c.start) * (len(c.pitch_classes & pcs) + 0.5 * (c.root == tonic))
                        for c in chords if c.root >= 0)
            if score > best_score:
                best, best_score = (tonic, scale), score
    return best


def transpose(notes: list[Note], semitones: int, lo: int = 0, hi: int = 127) -> list[Note]:
    return [Note(n.start, n.end, min(hi, max(lo, n.pitch + semitones)), n.velocity) for n in notes]
