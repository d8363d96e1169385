"""Lyrics data: lines (with optional word times) in song seconds, plus what could not be parsed."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Word:
    """One timed word (or syllable) of a line; ``text`` keeps its trailing space if it had one."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Line:
    """A line shown from ``start`` (seconds); ``end`` is when it is over (the last word's end, a
    following blank line, or an estimate), ``words`` is empty when the source has no word times.
    An empty ``text`` marks a pause (an instrumental gap) in synced lyrics."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()


@dataclass
class Lyrics:
    """Synced ``lines`` sorted by start, or (``synced`` False) ``plain`` text only.

    ``problems`` lists what could not be read (one message per bad line or tag); the good part
    is kept. ``source`` names where the lyrics came from (a path, or ``"path [ID3 SYLT]"``).
    ``metadata`` holds LRC ID tags (``ar``, ``ti``, ``al``, ``by``, ``length``...)."""

    lines: list[Line] = field(default_factory=list)
    plain: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    source: str = ""

    @property
    def synced(self) -> bool:
        return bool(self.lines)

    @property
    def has_word_times(self) -> bool:
        return any(line.words for line in self.lines)

    @property
    def empty(self) -> bool:
        return not self.lines and not self.plain.strip()

    def text(self) -> str:
        """The lyrics as plain text (synced lines joined, pauses as blank lines)."""
        if self.lines:
            return "\n".join(line.text for line in self.lines)
        return self.plain
