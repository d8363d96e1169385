"""The songs guests can ask for (no Qt): the library's separated songs and the files the host adds.

Every song has a short **library id** (``song_id_for``: a hash of its resolved path); the phones and
the rotation only ever name songs by that id, the path stays on this computer. ``separated`` says
whether its stems are in the cache already (a library entry) or it still has to go through the batch
queue before its turn.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SEARCH_LIMIT = 40
QUERY_MAX = 80


def song_id_for(path: str | os.PathLike) -> str:
    try:
        resolved = Path(path).resolve()
    except OSError:
        resolved = Path(path).absolute()
    return hashlib.sha256(str(resolved).encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass(frozen=True)
class Song:
    id: str
    title: str
    artist: str
    duration: float
    path: Path = Path()          # never sent to a phone
    separated: bool = False

    def public(self) -> dict:
        return {"id": self.id, "title": self.title, "artist": self.artist, "duration": round(self.duration, 1),
                "separated": self.separated}

    def matches(self, words: list[str]) -> bool:
        hay = f"{self.title} {self.artist}".casefold()
        return all(w in hay for w in words)


def songs_from_library(entries: Iterable) -> list[Song]:
    """One song per source file from :class:`~unmix_desktop.library.index.LibraryEntry` s (the first
    entry of a file wins: the index lists the newest first when sorted by date)."""
    out: dict[str, Song] = {}
    for e in entries:
        sid = song_id_for(e.source)
        if sid not in out:
            out[sid] = Song(sid, e.title or Path(e.source).stem, e.artist or "", float(e.duration or 0.0),
                            Path(e.source), True)
    return list(out.values())


def songs_from_files(paths: Iterable[str | os.PathLike]) -> list[Song]:
    """Songs not separated yet (files the host added): titles and artists from their tags."""
    from ..library.index import read_tags

    out = []
    for p in paths:
        p = Path(p)
        title, artist, length = read_tags(p)
        out.append(Song(song_id_for(p), title or p.stem, artist, float(length or 0.0), p, False))
    return out


class Catalog:
    """A thread-safe id → :class:`Song` map with a title/artist search."""

    def __init__(self, songs: Iterable[Song] = ()):
        self._lock = threading.Lock()
        self._songs: dict[str, Song] = {}
        self.add(songs)

    def add(self, songs: Iterable[Song]) -> None:
        """Add or update songs; a separated entry of a song is never replaced by an unseparated one."""
        with self._lock:
            for s in songs:
                old = self._songs.get(s.id)
                if old is None or s.separated or not old.separated:
                    self._songs[s.id] = s

    def mark_separated(self, song_id: str) -> None:
        with self._lock:
            s = self._songs.get(song_id)
            if s is not None and not s.separated:
                self._songs[song_id] = Song(s.id, s.title, s.artist, s.duration, s.path, True)

    def get(self, song_id: str) -> Song | None:
        with self._lock:
            return self._songs.get(song_id)

    def __len__(self) -> int:
        return len(self._songs)

    def search(self, text: str, limit: int = SEARCH_LIMIT) -> list[Song]:
        words = text.casefold().split()
        with self._lock:
            songs = list(self._songs.values())
        found = [s for s in songs if s.matches(words)] if words else songs
        found.sort(key=lambda s: (s.artist.casefold() or "\uffff", s.title.casefold()))
        return found[:limit]
