"""The library index (no Qt): every song separated before, from the stem cache and saved sessions.

One :class:`LibraryEntry` per (source file, model, settings): the cache keeps a two-stem and a
four-stem entry of the same separation side by side; they are one song in the library (the entry
with the most stems is the one opened). Title, artist and duration come from the file's tags
(mutagen), falling back to the file name and the cached length. A source file that is gone is
shown as ``missing`` (the stems are still in the cache and still open), never as an error.

:meth:`LibraryIndex.delete` removes the entry's cache folders and, when no other cached
separation of the same song remains, its saved session: never the song file itself.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import persist
from ..cache import StemCache, file_hash, make_key
from ..errors import Cancelled
from ..persist import Invalid, notice

SORT_KEYS = ("date", "title", "artist", "duration", "model")
MODEL_RATE = 44100


def validate_entry_meta(meta: dict) -> dict:
    """The fields of a cache entry's ``meta.json`` the library reads, checked one by one (:mod:`..persist`)."""
    p = persist
    p.expect_str(meta.get("source"), "'source'")
    for i, item in enumerate(p.expect_list(meta.get("stems"), "'stems'")):
        if not (isinstance(item, list) and item and all(isinstance(x, str) for x in item)):
            raise Invalid(f"'stems[{i}]' must be a [name, file] pair, not {p.kind(item)}")
    for key in ("model", "settings", "variant"):
        if meta.get(key) is not None:
            p.expect_str(meta[key], f"'{key}'")
    p.expect_number(meta.get("created", 0), "'created'", 0.0)
    if meta.get("sample_rate") is not None:
        p.expect_int(meta["sample_rate"], "'sample_rate'", 1, 1_000_000)
    p.expect_int(meta.get("frames", 0), "'frames'", 0)
    if meta.get("content_hash") is not None:
        p.expect_str(meta["content_hash"], "'content_hash'")
    return meta


@dataclass
class LibraryEntry:
    source: Path
    model: str
    settings: str
    keys: list[str]                 # cache keys of this separation (2-stem, 4-stem ...), best first
    stems: list[str]                # stem names of the best variant
    date: float                     # when it was separated (newest variant)
    frames: int
    sample_rate: int = MODEL_RATE
    title: str = ""
    artist: str = ""
    duration: float = 0.0
    missing: bool = False
    content_hash: str | None = None
    has_session: bool = False
    meta: dict = field(default_factory=dict, repr=False)

    @property
    def key(self) -> str:
        return self.keys[0]

    @property
    def four_stems(self) -> bool:
        return len(self.stems) >= 4

    def matches(self, text: str) -> bool:
        """Every word of ``text`` appears in the title, artist, file name or model (any case)."""
        hay = f"{self.title} {self.artist} {self.source.name} {self.model}".casefold()
        return all(word in hay for word in text.casefold().split())


def read_tags(path: Path) -> tuple[str, str, float | None]:
    """``(title, artist, duration_s)`` from the file's tags; empty strings / None when unknown."""
    try:
        import mutagen

        tagged = mutagen.File(str(path), easy=True)
    except Exception:  # noqa: BLE001 - any unreadable file is simply untagged
        return "", "", None
    if tagged is None:
        return "", "", None

    def first(name: str) -> str:
        try:
            values = tagged.get(name) or []
        except Exception:  # noqa: BLE001
            return ""
        return str(values[0]).strip() if values else ""

    length = getattr(getattr(tagged, "info", None), "length", None)
    return first("title"), first("artist"), float(length) if length else None


class LibraryIndex:
    """Lists, searches, sorts and deletes the separated songs of ``cache`` and ``sessions_root``."""

    def __init__(self, cache: StemCache, sessions_root: str | os.PathLike | None = None):
        self.cache = cache
        self.sessions_root = Path(sessions_root) if sessions_root is not None else cache.root.parent / "sessions"
        self.entries: list[LibraryEntry] = []
        self._hashes: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> content hash

    # scanning ------------------------------------------------------------------------------------
    def _content_hash(self, path: Path, cancel: threading.Event | None) -> str | None:
        try:
            st = path.stat()
            memo = (str(path), st.st_size, st.st_mtime_ns)
            if memo not in self._hashes:
                self._hashes[memo] = file_hash(path, cancel)
            return self._hashes[memo]
        except OSError:
            return None

    def scan(self, cancel: threading.Event | None = None,
             progress: Callable[[float], None] | None = None) -> list[LibraryEntry]:
        """Read every cache entry's ``meta.json`` (not the arrays), group and tag them."""
        groups: dict[tuple[str, str, str], list[tuple[str, dict]]] = {}
        for key, _, _ in self.cache.entries():
            meta = self.cache.read_meta(key)
            if not meta:
                continue
            try:
                validate_entry_meta(meta)
            except Invalid as exc:  # left out of the library (the cache itself never serves it either)
                notice(f"{self.cache.root / key}: {exc}; left out of the library",
                       key=f"library-meta-{self.cache.root / key}")
                continue
            group = (meta["source"], str(meta.get("model", "")), str(meta.get("settings", "")))
            groups.setdefault(group, []).append((key, meta))
        sessions = {p.stem for p in self.sessions_root.glob("*.json")} if self.sessions_root.is_dir() else set()
        entries = []
        for n, ((source, model, settings), members) in enumerate(sorted(groups.items())):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            members.sort(key=lambda km: (-len(km[1]["stems"]), -float(km[1].get("created", 0))))
            key, meta = members[0]
            path = Path(source)
            rate = int(meta.get("sample_rate") or MODEL_RATE)
            frames = int(meta.get("frames") or 0)
            entry = LibraryEntry(path, model, settings, [k for k, _ in members],
                                 [str(s[0]) for s in meta["stems"] if isinstance(s, list) and s],
                                 max(float(m.get("created", 0)) for _, m in members), frames, rate, meta=meta)
            entry.missing = not path.is_file()
            title, artist, length = ("", "", None) if entry.missing else read_tags(path)
            entry.title = title or path.stem
            entry.artist = artist
            entry.duration = length if length else frames / rate
            digest = meta.get("content_hash")
            if not digest and not entry.missing:
                digest = self._content_hash(path, cancel)
                # only trust the hash when it is the one this entry was made from
                if digest and make_key(digest, model, settings, str(meta.get("variant", ""))) != key:
                    digest = None
            entry.content_hash = digest
            entry.has_session = bool(digest) and digest in sessions
            entries.append(entry)
            if progress is not None:
                progress((n + 1) / max(len(groups), 1))
        self.entries = entries
        return entries

    # what the view shows -------------------------------------------------------------------------
    def query(self, text: str = "", sort: str = "date", descending: bool | None = None) -> list[LibraryEntry]:
        """Entries matching ``text``, sorted by ``sort`` (one of :data:`SORT_KEYS`). Dates sort newest
        first by default, the rest A→Z / shortest first."""
        if sort not in SORT_KEYS:
            raise ValueError(f"unknown sort key {sort!r} (one of {', '.join(SORT_KEYS)})")
        found = [e for e in self.entries if e.matches(text)] if text.strip() else list(self.entries)
        keyf = {"date": lambda e: e.date, "title": lambda e: e.title.casefold(),
                "artist": lambda e: (e.artist.casefold() or "\uffff", e.title.casefold()),
                "duration": lambda e: e.duration, "model": lambda e: (e.model, e.title.casefold())}[sort]
        if descending is None:
            descending = sort == "date"
        return sorted(found, key=keyf, reverse=descending)

    # deleting ------------------------------------------------------------------------------------
    def delete(self, entry: LibraryEntry) -> list[Path]:
        """Remove the entry's cache folders and (when no other separation of the song is cached)
        its saved session. The song file is never touched. Returns what was removed."""
        removed = []
        for key in entry.keys:
            folder = self.cache.root / key
            if self.cache.remove(key):
                removed.append(folder)
        if entry in self.entries:
            self.entries.remove(entry)
        digest = entry.content_hash
        if digest and not any(e.content_hash == digest for e in self.entries):
            session = self.sessions_root / f"{digest}.json"
            if session.parent == self.sessions_root and session.is_file():
                session.unlink()
                removed.append(session)
        return removed
