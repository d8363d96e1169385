"""An UltraStar chart from a song's sung melody and its aligned lyrics (Qt-free).

* **Notes**: :func:`~..analysis.melody.quantise_notes` segments the contour into notes (onset,
  offset, one pitch: the median of a vibrato-tolerant run); :func:`fix_octaves` then folds an
  isolated note 10 or more semitones away from both neighbours back by whole octaves (the
  trackers' typical error is a one-octave slip of a note or two).
* **Grid**: chart beats are sixteenth notes of the song's tempo (``#BPM`` = tempo, the x4 rule),
  ``#GAP`` at the first beat of the beat grid; note starts and ends snap to the grid.
* **Syllables**: each aligned word is cut into syllables (:func:`.text.syllables`), spread over the
  word's time; a syllable takes the first free note it overlaps, further notes in its span hold
  it (``~``), a syllable without a note gets one of its own. Lines follow the aligned lines; without
  lyrics, a line ends at each pause of 0.5 s or more.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..analysis.melody import Contour, Note, quantise_notes
from .align import Alignment
from .text import syllables
from .ultrastar import PITCH_C4, ChartLine, ChartNote, UltraStarSong

PAUSE_S = 0.5


def fix_octaves(notes: Sequence[Note]) -> list[Note]:
    """Fold isolated octave slips back: a note 10 or more semitones away from BOTH its neighbours in
    the same direction (or from its only neighbour, at either end) moves by whole octaves toward
    them. A real octave leap that stays up (the next note is up there too) is kept."""
    out = list(notes)
    for i, n in enumerate(out):
        near = [m.midi for m in (out[i - 1] if i else None, notes[i + 1] if i + 1 < len(notes) else None) if m]
        if not near:
            continue
        diffs = [n.midi - m for m in near]
        if not (all(d >= 10 for d in diffs) or all(d <= -10 for d in diffs)):
            continue
        ref = float(np.mean(near))
        shift = 0
        while n.midi + shift - ref >= 10:
            shift -= 12
        while n.midi + shift - ref <= -10:
            shift += 12
        if shift:
            out[i] = Note(n.start, n.end, n.midi + shift)
    return out


def check_octaves(notes: Sequence[Note], second: Contour) -> list[Note]:
    """Octave decisions checked against a second tracker's contour (e.g. pYIN): where the second
    tracker's median over a note is a whole number of octaves away from the note, the two disagree
    on the octave; the candidate closer to the neighbouring notes' mean wins."""
    out = list(notes)
    midi2 = second.midi()
    for i, n in enumerate(out):
        span = (second.times >= n.start) & (second.times < n.end)
        vals = midi2[span]
        vals = vals[np.isfinite(vals)]
        if vals.size < max(3, span.sum() // 3):
            continue
        diff = float(np.median(vals)) - n.midi
        octaves = int(round(diff / 12.0))
        if octaves == 0 or abs(diff - 12 * octaves) > 1.0:
            continue
        near = [m.midi for m in (out[i - 1] if i else None, notes[i + 1] if i + 1 < len(notes) else None) if m]
        if not near:
            continue
        ref = float(np.mean(near))
        alt = n.midi + 12 * octaves
        if abs(alt - ref) < abs(n.midi - ref):
            out[i] = Note(n.start, n.end, alt)
    return out


def _syllable_spans(alignment: Alignment, language: str) -> list[tuple[int, float, float, str, bool]]:
    """(line index, start, end, text, starts a word) for every syllable of the aligned lyrics."""
    out = []
    for li, line in enumerate(alignment.lines):
        for w in line.words:
            parts = syllables(w.text, language)
            span = max(w.end - w.start, 0.05 * len(parts))
            for k, p in enumerate(parts):
                a = w.start + span * k / len(parts)
                out.append((li, a, a + span / len(parts), p, k == 0))
    return out


def chart_notes(contour: Contour, second: Contour | None = None) -> list[Note]:
    """Notes for a chart: segmented, octaves checked against ``second`` when given, slips folded."""
    notes = quantise_notes(contour)
    if second is not None:
        notes = check_octaves(notes, second)
    return fix_octaves(notes)


def build_chart(contour: Contour, alignment: Alignment | None, bpm: float, first_beat: float,
                headers: dict[str, str] | None = None, second: Contour | None = None) -> UltraStarSong:
    """The chart: ``bpm`` the song's tempo (quarter notes per minute), ``first_beat`` in seconds;
    ``second``: another tracker's contour of the same vocals for the octave check."""
    bpm = float(bpm) if bpm and bpm > 0 else 120.0
    unit = 60.0 / (bpm * 4.0)
    gap = max(0.0, float(first_beat)) % (unit * 16)  # GAP at a beat near the start
    song = UltraStarSong(headers=dict(headers or {}), bpm=round(bpm, 2), gap_ms=round(gap * 1000.0))
    unit = song.beat_seconds
    gap = song.gap_ms / 1000.0
    notes = chart_notes(contour, second)

    def beat(t: float) -> int:
        return max(0, int(round((t - gap) / unit)))

    # snap, no overlaps, at least one beat long
    grid: list[list] = []  # [beat, length, midi, start, end]
    for n in notes:
        b, e = beat(n.start), beat(n.end)
        if grid and b < grid[-1][0] + grid[-1][1]:
            b = grid[-1][0] + grid[-1][1]
        if e <= b:
            e = b + 1
        grid.append([b, e - b, n.midi, n.start, n.end, None, 0])  # text, line
    language = (alignment.language if alignment else "") or "en"
    if alignment is not None and alignment.lines:
        spans = _syllable_spans(alignment, language)
        midi = contour.midi()
        free = 0
        extra = []
        for li, a, z, text, word_start in spans:
            taken = False
            for g in grid[free:]:
                if g[3] >= z:
                    break
                if g[4] > a and g[5] is None:
                    g[5], g[6] = (" " + text if word_start else text), li
                    taken = True
                    free = grid.index(g) + 1
                    break
            if not taken:
                near = midi[(contour.times >= a - 1) & (contour.times <= z + 1)]
                pitch = int(round(float(np.nanmedian(near)))) if np.isfinite(near).any() else PITCH_C4
                extra.append([beat(a), max(1, beat(z) - beat(a)), pitch, a, z, " " + text if word_start else text, li])
        # held notes inside a syllable's span, and notes sung without lyrics, carry '~'
        last_line = 0
        for g in grid:
            if g[5] is None:
                g[5], g[6] = "~", last_line
            last_line = g[6]
        grid = sorted(grid + extra, key=lambda g: (g[0], g[3]))
        for i in range(1, len(grid)):  # keep beats strictly increasing after the merge
            if grid[i][0] < grid[i - 1][0] + grid[i - 1][1]:
                grid[i][0] = grid[i - 1][0] + grid[i - 1][1]
    else:
        line = 0
        for i, g in enumerate(grid):
            if i and g[3] - grid[i - 1][4] >= PAUSE_S:
                line += 1
            g[5], g[6] = " ~" if i == 0 else "~", line
    lines: dict[int, list[ChartNote]] = {}
    for b, length, midi, _s, _e, text, li in grid:
        note = ChartNote("normal", int(b), int(length), int(midi) - PITCH_C4, text, song.time(b), song.time(b + length))
        lines.setdefault(li, []).append(note)
    for li in sorted(lines):
        ns = lines[li]
        first = ns[0]
        ns[0] = ChartNote(first.kind, first.beat, first.length, first.pitch, first.text.lstrip() or "~",
                          first.start, first.end)
        song.lines.append(ChartLine(ns))
    return song


def export_targets(out, song_path) -> dict:
    from pathlib import Path

    out, song_path = Path(out), Path(song_path)
    name = song_path.stem
    return {"chart": out / f"{name}.txt", "audio": out / song_path.name, "vocals": out / f"{name} [VOC].flac",
            "instrumental": out / f"{name} [INSTR].flac"}


def export_folder(out, song_path, vocals: np.ndarray, instrumental: np.ndarray, sample_rate: int, contour: Contour,
                  alignment: Alignment | None, bpm: float, first_beat: float, headers: dict | None = None,
                  second: Contour | None = None) -> UltraStarSong:
    """Write an UltraStar song folder ``out``: the chart, a copy of the audio, the vocals and
    instrumental stems (FLAC), each through a temporary file then renamed. The caller checks first
    that nothing of the user's would be replaced (:func:`export_targets`)."""
    import shutil
    from pathlib import Path

    from ..audio.io import save_audio
    from .ultrastar import write

    out, song_path = Path(out), Path(song_path)
    targets = export_targets(out, song_path)
    head = {"TITLE": song_path.stem, "ARTIST": "Unknown", "AUDIO": targets["audio"].name,
            "VOCALS": targets["vocals"].name, "INSTRUMENTAL": targets["instrumental"].name,
            "CREATOR": "unmix-desktop"}
    head.update(headers or {})
    if alignment is not None and alignment.language:
        head.setdefault("LANGUAGE", alignment.language)
    chart = build_chart(contour, alignment, bpm, first_beat, head, second)
    out.mkdir(parents=True, exist_ok=True)
    if not targets["audio"].exists() or targets["audio"].resolve() != song_path.resolve():
        tmp = targets["audio"].with_name(f".{targets['audio'].name}.part")
        shutil.copyfile(song_path, tmp)
        tmp.replace(targets["audio"])
    save_audio(targets["vocals"], vocals, sample_rate, protect=(song_path,))
    save_audio(targets["instrumental"], instrumental, sample_rate, protect=(song_path,))
    write(chart, targets["chart"])
    chart.path = targets["chart"]
    return chart
