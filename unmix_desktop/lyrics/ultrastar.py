"""UltraStar song files (``.txt``), read and written (Qt-free). Follows the published format
specification (github.com/UltraStar-Deluxe/format): version 1.x and the older unversioned files.

* Header ``#KEY:VALUE``; ``#BPM`` may use a decimal comma; a beat lasts ``60 / (BPM * 4)`` s (the
  "x4 rule"); ``#GAP`` is milliseconds before beat 0; the audio is ``#AUDIO`` (v1.1+) or ``#MP3``;
  ``#VOCALS`` / ``#INSTRUMENTAL`` name stems; ``#RELATIVE:YES`` (old files) makes beats relative to
  the last line break; ``#ENCODING:CP1252`` (legacy) decodes the file as Windows-1252.
* Notes ``TYPE START LENGTH PITCH TEXT``: ``:`` normal, ``*`` golden, ``F`` freestyle, ``R`` rap,
  ``G`` golden rap; pitch 0 = C4 (MIDI 60); a syllable starting a new word carries its leading
  space (``~`` continues the previous syllable). ``- BEAT`` ends a line; ``P1``/``P2`` pick the
  singer of a duet; ``E`` ends the file.
* Reading never raises on bad lines: what parses is kept and :attr:`UltraStarSong.problems` says
  once what was skipped.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .model import Line, Lyrics, Word

NOTE_TYPES = {":": "normal", "*": "golden", "F": "freestyle", "R": "rap", "G": "golden-rap"}
TYPE_CHARS = {v: k for k, v in NOTE_TYPES.items()}
PITCH_C4 = 60
VERSION = "1.1.0"


class UltraStarError(ValueError):
    """The file is not an UltraStar song at all (no #BPM, or nothing readable)."""


@dataclass(frozen=True)
class ChartNote:
    """One note: ``beat``/``length`` in chart beats, ``start``/``end`` in song seconds, ``midi``
    note number, ``kind`` one of :data:`NOTE_TYPES` values, ``text`` the syllable as written."""

    kind: str
    beat: int
    length: int
    pitch: int
    text: str
    start: float
    end: float
    singer: int = 1

    @property
    def midi(self) -> int:
        return self.pitch + PITCH_C4

    @property
    def scored(self) -> bool:
        return self.kind != "freestyle"

    @property
    def weight(self) -> float:
        """Score weight: golden notes count double, freestyle not at all."""
        return 0.0 if self.kind == "freestyle" else 2.0 if self.kind in ("golden", "golden-rap") else 1.0


@dataclass
class ChartLine:
    notes: list[ChartNote]
    singer: int = 1

    @property
    def text(self) -> str:
        return "".join(n.text for n in self.notes).replace("~", "").strip()


@dataclass
class UltraStarSong:
    headers: dict[str, str] = field(default_factory=dict)
    bpm: float = 0.0
    gap_ms: float = 0.0
    lines: list[ChartLine] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    path: Path | None = None
    encoding: str = "utf-8"

    @property
    def beat_seconds(self) -> float:
        return 60.0 / (self.bpm * 4.0)

    def time(self, beat: float) -> float:
        return self.gap_ms / 1000.0 + beat * self.beat_seconds

    def notes(self, singer: int | None = None) -> list[ChartNote]:
        return [n for li in self.lines if singer is None or li.singer == singer for n in li.notes]

    @property
    def singers(self) -> list[int]:
        return sorted({li.singer for li in self.lines})

    def _file(self, key: str) -> Path | None:
        value = self.headers.get(key)
        if not value:
            return None
        base = self.path.parent if self.path else Path(".")
        return base / value

    @property
    def audio_path(self) -> Path | None:
        return self._file("AUDIO") or self._file("MP3")

    @property
    def vocals_path(self) -> Path | None:
        return self._file("VOCALS")

    @property
    def instrumental_path(self) -> Path | None:
        return self._file("INSTRUMENTAL")

    def lyrics(self, singer: int | None = None) -> Lyrics:
        """The chart's lyrics (a line per chart line, a word per syllable run) for the lyrics pane."""
        singer = singer if singer is not None else (self.singers[0] if self.singers else 1)
        out: list[Line] = []
        for li in self.lines:
            if li.singer != singer or not li.notes:
                continue
            words: list[Word] = []
            for n in li.notes:
                text = n.text.replace("~", "")
                if words and not n.text.startswith(" ") and not words[-1].text.endswith(" "):
                    last = words[-1]
                    words[-1] = Word(last.start, n.end, last.text + text)
                else:
                    if words and not words[-1].text.endswith(" "):
                        words[-1] = Word(words[-1].start, words[-1].end, words[-1].text + " ")
                    words.append(Word(n.start, n.end, text.lstrip()))
            if not words:
                continue
            out.append(Line(words[0].start, li.notes[-1].end, "".join(w.text for w in words).strip(), tuple(words)))
        return Lyrics(lines=out, source=str(self.path or ""), metadata={k.lower(): v for k, v in self.headers.items()
                                                                          if k in ("TITLE", "ARTIST")})


# -- reading -------------------------------------------------------------------------------------
def _number(value: str) -> float:
    return float(value.strip().replace(",", "."))


def decode(data: bytes) -> tuple[str, str]:
    """Text of an UltraStar file: UTF-8 (with or without BOM), or the legacy ``#ENCODING`` / CP1252."""
    head = data[:4096].decode("latin-1").upper()
    m = re.search(r"#ENCODING:\s*([\w-]+)", head)
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if m and m.group(1).replace("-", "") not in ("UTF8", "AUTO"):
        name = {"CP1252": "cp1252", "CP1250": "cp1250", "LOCALE": "cp1252"}.get(m.group(1).upper(), m.group(1))
        try:
            return data.decode(name, errors="replace"), name
        except LookupError:
            pass
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), "cp1252"


NOTE_LINE = re.compile(r"^([:*FRG])\s*(-?\d+)\s+(-?\d+)\s+(-?\d+)(?: (.*))?$")


def parse(text: str, path: str | os.PathLike | None = None) -> UltraStarSong:
    song = UltraStarSong(path=Path(path) if path else None)
    skipped: list[int] = []
    relative = False
    rel_base = 0
    singer = 1
    raw_notes: list[tuple[str, int, int, int, str, int]] = []
    breaks: list[tuple[int, int]] = []  # (index into raw_notes where a new line starts, singer)
    rows = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    ended = False
    for number, row in enumerate(rows, start=1):
        if ended:
            break
        stripped = row.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            key, sep, value = stripped[1:].partition(":")
            if not sep:
                skipped.append(number)
                continue
            song.headers[key.strip().upper()] = value.strip()
            continue
        tag = stripped[0]
        relative = song.headers.get("RELATIVE", "").upper() in ("YES", "TRUE", "1")
        if tag == "E":
            ended = True
            continue
        if tag == "P" and stripped[1:].strip().isdigit():
            singer = int(stripped[1:].strip())
            breaks.append((len(raw_notes), singer))
            continue
        if tag == "-":
            parts = stripped[1:].split()
            try:
                beat = int(parts[0])
                extra = int(parts[1]) if len(parts) > 1 else None
            except (ValueError, IndexError):
                skipped.append(number)
                continue
            if relative:
                rel_base += extra if extra is not None else beat
            breaks.append((len(raw_notes), singer))
            continue
        m = NOTE_LINE.match(row.rstrip("\n").lstrip())
        if not m:
            skipped.append(number)
            continue
        kind, beat, length, pitch, syl = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4)), m.group(5)
        if length < 0:
            skipped.append(number)
            continue
        raw_notes.append((kind, beat + (rel_base if relative else 0), length, pitch, syl or "", singer))
    try:
        song.bpm = _number(song.headers.get("BPM", ""))
        if not song.bpm > 0:
            raise ValueError
    except ValueError:
        song.problems.append(f"#BPM {song.headers.get('BPM', '(missing)')!r} is not a positive number")
        song.bpm = 0.0
    try:
        song.gap_ms = _number(song.headers.get("GAP", "0") or "0")
    except ValueError:
        song.problems.append(f"#GAP {song.headers['GAP']!r} is not a number of milliseconds; 0 used")
    if skipped:
        shown = ", ".join(map(str, skipped[:5])) + (" ..." if len(skipped) > 5 else "")
        song.problems.append(f"{len(skipped)} unreadable line{'s' if len(skipped) > 1 else ''} skipped ({shown})")
    if song.bpm <= 0:
        return song
    # split into lines at the breaks
    cut_points = sorted({0, len(raw_notes)} | {b for b, _ in breaks})
    singer_at = {0: 1}
    for b, s in breaks:
        singer_at[b] = s
    active = 1
    for a, b in zip(cut_points, cut_points[1:]):
        active = singer_at.get(a, active)
        notes = [ChartNote(NOTE_TYPES[k], bt, ln, p, s, song.time(bt), song.time(bt + ln), sg)
                 for k, bt, ln, p, s, sg in raw_notes[a:b]]
        if notes:
            song.lines.append(ChartLine(notes, notes[0].singer))
    return song


def read(path: str | os.PathLike) -> UltraStarSong:
    """Read an UltraStar ``.txt`` (or the first ``.txt`` chart in a song folder)."""
    path = Path(path)
    if path.is_dir():
        charts = sorted(p for p in path.glob("*.txt") if _looks_like_chart(p))
        if not charts:
            raise UltraStarError(f"{path}: no UltraStar .txt file in this folder")
        path = charts[0]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UltraStarError(f"{path}: {exc.strerror or exc}") from exc
    text, encoding = decode(data)
    song = parse(text, path)
    song.encoding = encoding
    if song.bpm <= 0:
        raise UltraStarError(f"{path}: not an UltraStar song ({song.problems[0]})")
    if not song.lines:
        raise UltraStarError(f"{path}: no notes")
    return song


def looks_like_ultrastar(data: bytes) -> bool:
    """A ``#BPM`` header and at least one note line near the start."""
    head = data[:8192].decode("latin-1")
    return bool(re.search(r"^\s*#BPM\s*:", head, re.M | re.I)) and bool(re.search(r"^\s*[:*FRG]\s*-?\d+\s", head, re.M))


def _looks_like_chart(path: Path) -> bool:
    try:
        return looks_like_ultrastar(path.read_bytes()[:8192])
    except OSError:
        return False


def chart_melody(song: UltraStarSong, singer: int | None = None, hop: float = 0.01):
    """The chart's notes as a melody :class:`~..analysis.melody.Contour` (what the note lane draws
    and the singer is scored against) with per-frame ``weights``: 2 on golden notes, 0 on freestyle
    (not scored), 1 elsewhere; plus the display notes."""
    import numpy as np

    from ..analysis.melody import ChartContour, Note, midi_to_hz

    singer = singer if singer is not None else (song.singers[0] if song.singers else 1)
    notes = song.notes(singer)
    end = max((n.end for n in notes), default=0.0) + 1.0
    times = np.arange(0.0, end, hop)
    hz = np.zeros(times.size, np.float32)
    weights = np.ones(times.size, np.float32)
    for n in notes:
        span = (times >= n.start) & (times < n.end)
        hz[span] = midi_to_hz(n.midi)
        weights[span] = n.weight
    contour = ChartContour(times, hz, weights)
    display = [Note(n.start, n.end, n.midi) for n in notes]
    return contour, display


# -- writing -------------------------------------------------------------------------------------
def to_text(song: UltraStarSong) -> str:
    """UltraStar v1.1 text: ``#VERSION`` first, ``#MP3`` beside ``#AUDIO`` for older players,
    notes, line breaks at each line's end (or the next line's start), ``P1``/``P2`` for duets, ``E``."""
    headers = {"VERSION": VERSION}
    headers.update({k: v for k, v in song.headers.items() if k not in ("VERSION", "ENCODING", "RELATIVE")})
    headers["BPM"] = f"{song.bpm:g}"
    headers["GAP"] = f"{song.gap_ms:g}"
    if "AUDIO" in headers and "MP3" not in headers:
        headers["MP3"] = headers["AUDIO"]
    order = ["VERSION", "TITLE", "ARTIST", "LANGUAGE", "AUDIO", "MP3", "VOCALS", "INSTRUMENTAL", "BPM", "GAP"]
    rows = [f"#{k}:{headers[k]}" for k in order if k in headers]
    rows += [f"#{k}:{v}" for k, v in headers.items() if k not in order]
    duet = len(song.singers) > 1
    for singer in song.singers:
        if duet:
            rows.append(f"P{singer}")
        lines = [li for li in song.lines if li.singer == singer]
        for i, line in enumerate(lines):
            for n in line.notes:
                rows.append(f"{TYPE_CHARS[n.kind]} {n.beat} {n.length} {n.pitch} {n.text}")
            if i + 1 < len(lines):
                end = line.notes[-1].beat + line.notes[-1].length
                rows.append(f"- {min(end, lines[i + 1].notes[0].beat)}")
    rows.append("E")
    return "\n".join(rows) + "\n"


def write(song: UltraStarSong, path: str | os.PathLike) -> Path:
    from ..atomic import atomic_write_text

    return atomic_write_text(path, to_text(song))
