"""Which line and word are being sung at a song time (no Qt, no state between calls).

:meth:`LyricsFollower.state` is a pure function of song time (seconds into the song, whatever the
playback tempo), so seeks, loops and tempo changes need no notification: the view asks for the
state of the player's current song position on every repaint. The user's offset nudge
(:class:`LyricsSettings`) shifts every lyric time; it is plain JSON for the session file.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from .model import Lyrics

#: A pause longer than this before a line gets countdown dots.
LONG_GAP_S = 4.0
#: Dots shown before such a line (one disappears per ``COUNTDOWN_S / COUNTDOWN_DOTS`` seconds).
COUNTDOWN_S = 3.0
COUNTDOWN_DOTS = 3
#: Before a long pause a line stays highlighted this long after it ends.
HOLD_S = 1.0


@dataclass
class LyricsSettings:
    """Saved with the session: ``offset_ms`` (positive = lyrics later) and ``path`` of a lyrics file
    the user opened by hand (``None``: found automatically)."""

    offset_ms: int = 0
    path: str | None = None

    def to_dict(self) -> dict:
        return {"offset_ms": int(self.offset_ms), "path": self.path}

    @classmethod
    def from_dict(cls, data: dict | None) -> LyricsSettings:
        data = data or {}
        try:
            offset = int(data.get("offset_ms", 0))
        except (TypeError, ValueError):
            offset = 0
        path = data.get("path")
        return cls(offset, path if isinstance(path, str) and path else None)


@dataclass(frozen=True)
class FollowState:
    """What to show at one song time.

    ``line``: index of the line being sung (``None`` before the first line, in a pause, or after
    the last line's end); ``line_progress`` 0..1 through it. ``word``: index of the word being
    sung in that line (``None`` without word times); words before it are sung, ``word_progress``
    is 0..1 through it. ``next_line``: the next non-empty line, ``None`` at the end.
    ``countdown``: dots to show before ``next_line`` after a long pause (0 = none), and
    ``until_next`` the seconds until it starts.
    """

    line: int | None
    line_progress: float
    word: int | None
    word_progress: float
    next_line: int | None
    countdown: int
    until_next: float | None


class LyricsFollower:
    def __init__(self, lyrics: Lyrics, settings: LyricsSettings | None = None,
                 long_gap_s: float = LONG_GAP_S, countdown_s: float = COUNTDOWN_S):
        self.lyrics = lyrics
        self.settings = settings or LyricsSettings()
        self.long_gap_s = float(long_gap_s)
        self.countdown_s = float(countdown_s)
        self._starts = [line.start for line in lyrics.lines]

    @property
    def offset_s(self) -> float:
        return self.settings.offset_ms / 1000.0

    def nudge(self, delta_ms: int) -> int:
        """Shift the lyrics by ``delta_ms`` (positive = later); returns the new offset in ms."""
        self.settings.offset_ms = int(self.settings.offset_ms + delta_ms)
        return self.settings.offset_ms

    def _next_sung(self, index: int) -> int | None:
        lines = self.lyrics.lines
        for j in range(index, len(lines)):
            if lines[j].text:
                return j
        return None

    def state(self, song_time: float) -> FollowState:
        lines = self.lyrics.lines
        t = float(song_time) - self.offset_s
        i = bisect.bisect_right(self._starts, t) - 1  # last line started at or before t
        current: int | None = None
        progress = 0.0
        word: int | None = None
        word_progress = 0.0
        if i >= 0 and lines[i].text:
            line = lines[i]
            # Shown until the next line (or pause) starts; before a long pause, until shortly after it ends.
            next_start = self._starts[i + 1] if i + 1 < len(lines) else math.inf
            hold = next_start if next_start - line.end <= self.long_gap_s else line.end + HOLD_S
            if t < hold:
                current = i
                span = max(line.end - line.start, 1e-6)
                progress = min(1.0, max(0.0, (t - line.start) / span))
                if line.words:
                    w_starts = [w.start for w in line.words]
                    k = bisect.bisect_right(w_starts, t) - 1
                    if k >= 0:
                        w = line.words[k]
                        word = k
                        word_progress = (1.0 if w.end <= w.start
                                         else min(1.0, max(0.0, (t - w.start) / (w.end - w.start))))
        nxt = self._next_sung(i + 1)
        until = None if nxt is None else lines[nxt].start - t
        countdown = 0
        if nxt is not None and until is not None and 0 < until <= self.countdown_s:
            prev_end = 0.0
            for j in range(nxt - 1, -1, -1):
                if lines[j].text:
                    prev_end = lines[j].end
                    break
            if lines[nxt].start - prev_end > self.long_gap_s and t >= prev_end:
                countdown = max(1, math.ceil(until / (self.countdown_s / COUNTDOWN_DOTS)))
        return FollowState(current, progress, word, word_progress, nxt, countdown, until)
