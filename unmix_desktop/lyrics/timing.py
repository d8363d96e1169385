"""The timing editor's document (Qt-free): an :class:`~.align.Alignment` with edits, undo/redo,
tap-along and where to save it.

Every edit keeps the words in order: a word's start stays between its neighbours' starts, a word
ends where the next one starts (or keeps its own end when the next is later), a line starts with
its first word and ends with its last. Times are song seconds; the window passes the player's song
position, which already accounts for the practice tempo and loop (a tap at 50 % tempo lands at the
song time being heard).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

from .align import AlignedLine, AlignedWord, Alignment

MIN_WORD_S = 0.05
NUDGE_S = 0.05


@dataclass(frozen=True)
class Cursor:
    """A word: ``line`` index and ``word`` index within it."""

    line: int
    word: int


class TimingDoc:
    def __init__(self, alignment: Alignment | None = None, limit: int = 200):
        self.alignment = alignment or Alignment([])
        self._undo: list[Alignment] = []
        self._redo: list[Alignment] = []
        self.limit = limit
        self.tap_cursor = Cursor(0, 0)
        self.tap_words = False  # tap each word (True) or each line (False)
        self.modified = False

    # history -----------------------------------------------------------------------------------
    def _push(self) -> None:
        self._undo.append(copy.deepcopy(self.alignment))
        del self._undo[:-self.limit]
        self._redo.clear()
        self.modified = True

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> bool:
        if not self._undo:
            return False
        self._redo.append(self.alignment)
        self.alignment = self._undo.pop()
        self.modified = True
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        self._undo.append(self.alignment)
        self.alignment = self._redo.pop()
        self.modified = True
        return True

    def replace(self, alignment: Alignment) -> None:
        """A new alignment (a sync run) as one undoable step."""
        self._push()
        self.alignment = alignment
        self.tap_cursor = Cursor(0, 0)

    # queries ---------------------------------------------------------------------------------
    @property
    def lines(self) -> list[AlignedLine]:
        return self.alignment.lines

    def flat(self) -> list[Cursor]:
        return [Cursor(i, j) for i, li in enumerate(self.lines) for j in range(len(li.words))]

    def word(self, c: Cursor) -> AlignedWord:
        return self.lines[c.line].words[c.word]

    def nearest(self, t: float) -> Cursor | None:
        """The word whose start is nearest to song time ``t``."""
        cursors = self.flat()
        if not cursors:
            return None
        return min(cursors, key=lambda c: abs(self.word(c).start - t))

    # edits -----------------------------------------------------------------------------------
    def _bounds(self, c: Cursor) -> tuple[float, float]:
        flat = self.flat()
        k = flat.index(c)
        lo = self.word(flat[k - 1]).start + MIN_WORD_S if k > 0 else 0.0
        hi = self.word(flat[k + 1]).start - MIN_WORD_S if k + 1 < len(flat) else float("inf")
        return lo, hi

    def _set(self, c: Cursor, t: float) -> float:
        lo, hi = self._bounds(c)
        t = min(max(t, lo), hi)
        w = self.word(c)
        w.start = t
        flat = self.flat()
        k = flat.index(c)
        if k > 0:
            prev = self.word(flat[k - 1])
            if flat[k - 1].line == c.line or prev.end > t:
                prev.end = t
        if w.end < t + MIN_WORD_S:
            nxt = self.word(flat[k + 1]).start if k + 1 < len(flat) else t + 0.5
            w.end = max(t + MIN_WORD_S, min(nxt, t + 0.5))
        self._fix_lines()
        return t

    def _fix_lines(self) -> None:
        for li in self.lines:
            if li.words:
                li.start = li.words[0].start
                li.end = max(li.words[-1].end, li.start)

    def set_word_start(self, c: Cursor, t: float) -> float:
        self._push()
        return self._set(c, t)

    def set_line_start(self, line: int, t: float) -> float:
        """Move a line's first word (the rest of the line keeps its times)."""
        return self.set_word_start(Cursor(line, 0), t)

    def shift_line(self, line: int, dt: float) -> None:
        """Move a whole line by ``dt`` (clamped by its neighbours)."""
        self._push()
        words = self.lines[line].words
        flat = self.flat()
        first = flat.index(Cursor(line, 0))
        last = first + len(words) - 1
        lo = (self.word(flat[first - 1]).start + MIN_WORD_S - words[0].start) if first > 0 else -words[0].start
        hi = (self.word(flat[last + 1]).start - MIN_WORD_S - words[-1].start) if last + 1 < len(flat) else dt
        dt = min(max(dt, lo), hi)
        for w in words:
            w.start += dt
            w.end += dt
        self._fix_lines()

    def nudge(self, c: Cursor, dt: float = NUDGE_S) -> float:
        return self.set_word_start(c, self.word(c).start + dt)

    def set_word_end(self, c: Cursor, t: float) -> None:
        self._push()
        w = self.word(c)
        flat = self.flat()
        k = flat.index(c)
        hi = self.word(flat[k + 1]).start if k + 1 < len(flat) else float("inf")
        w.end = min(max(t, w.start + MIN_WORD_S), hi)
        self._fix_lines()

    # tap-along ---------------------------------------------------------------------------------
    def start_tapping(self, at: Cursor | None = None, words: bool = False) -> None:
        self.tap_cursor = at or Cursor(0, 0)
        self.tap_words = words

    def tap(self, t: float) -> Cursor | None:
        """Set the start of the item under the tap cursor to song time ``t`` and move on (the next
        word, or the next line's first word). Earlier taps are kept; returns what was set."""
        c = self.tap_cursor
        if c.line >= len(self.lines):
            return None
        self._push()
        if self.tap_words:
            self._set(c, t)
        else:  # a line tap moves the whole line, keeping its word spacing
            words = self.lines[c.line].words
            flat = self.flat()
            k = flat.index(Cursor(c.line, 0))
            if k > 0:
                t = max(t, self.word(flat[k - 1]).start + MIN_WORD_S)
            offsets = [(w.start - words[0].start, w.end - words[0].start) for w in words]
            span = max(offsets[-1][1], 1e-6)
            nxt = flat[k + len(words)] if k + len(words) < len(flat) else None
            room = self.word(nxt).start - t if nxt is not None else span
            scale = min(1.0, max(room, MIN_WORD_S * len(words)) / span)
            for w, (s0, e0) in zip(words, offsets):
                w.start, w.end = t + s0 * scale, t + e0 * scale
            if k > 0:
                prev = self.word(flat[k - 1])
                prev.end = min(prev.end, t)
            self._fix_lines()
        done = c
        if self.tap_words:
            if c.word + 1 < len(self.lines[c.line].words):
                self.tap_cursor = Cursor(c.line, c.word + 1)
            else:
                self.tap_cursor = Cursor(c.line + 1, 0)
        else:
            self.tap_cursor = Cursor(c.line + 1, 0)
        return done


# -- saving ------------------------------------------------------------------------------------
def default_lrc_path(song_path: str | os.PathLike) -> Path:
    return Path(song_path).with_suffix(".lrc")


def data_lrc_path(data_dir: str | os.PathLike, content_hash: str, song_path: str | os.PathLike) -> Path:
    return Path(data_dir) / "lyrics" / f"{Path(song_path).stem}-{content_hash[:12]}.lrc"


#: The ``[re:]`` tag of every .lrc the editor writes: how it knows a file is its own.
CREATOR_TAG = "unmix-desktop lyrics editor"


def written_by_us(path: str | os.PathLike) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(4096).decode("utf-8", errors="replace")
    except OSError:
        return False
    return f"[re:{CREATOR_TAG}]" in head


def needs_confirmation(target: str | os.PathLike) -> bool:
    """Saving over ``target`` needs the user's yes when a file is there that the editor did not write."""
    target = Path(target)
    return target.exists() and not written_by_us(target)


def save_target(song_path: str | os.PathLike, remembered: str | os.PathLike | None) -> Path:
    """Where Save writes: the file this song's session remembers when the editor wrote it, else
    ``<song>.lrc`` beside the song."""
    if remembered and Path(remembered).suffix.lower() == ".lrc" and written_by_us(remembered):
        return Path(remembered)
    return default_lrc_path(song_path)


def save_lrc(alignment: Alignment, target: str | os.PathLike) -> Path:
    from ..atomic import atomic_write_text

    Path(target).parent.mkdir(parents=True, exist_ok=True)
    tagged = Alignment(alignment.lines, alignment.language, alignment.method,
                       {**alignment.metadata, "re": CREATOR_TAG})
    return atomic_write_text(target, tagged.to_lrc())
