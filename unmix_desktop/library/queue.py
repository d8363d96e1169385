"""The batch queue (no Qt): songs waiting to be separated one after another, saved as JSON.

* :func:`collect_audio_files` expands dropped paths: folders recursively, audio files only
  (:data:`~unmix_desktop.audio.io.AUDIO_EXTENSIONS`), in a stable order (case-folded path order),
  no duplicates.
* :class:`BatchQueue` holds :class:`QueueItem` s (``pending`` → ``running`` → ``done`` | ``failed``),
  a ``paused`` flag, and saves itself after every change with an atomic write
  (:func:`~unmix_desktop.atomic.atomic_write_json`). Loading turns an item that was ``running``
  when the app stopped back into ``pending``, so pending work resumes on the next start.
* A failure is recorded on its item (one line, ``error``) and never stops the queue:
  :meth:`BatchQueue.next_pending` simply skips it. :meth:`BatchQueue.retry` makes it pending again.

The runner (``ui/queue_view.QueueRunner``) does the separating; this module only keeps the list.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..atomic import atomic_write_json
from ..audio.io import AUDIO_EXTENSIONS

QUEUE_VERSION = 1
STATES = ("pending", "running", "done", "failed")


def collect_audio_files(paths: Iterable[str | os.PathLike]) -> tuple[list[Path], list[str]]:
    """Expand files and folders (recursively) into audio files, in a stable order.

    Returns ``(files, problems)``: ``problems`` are one-line reasons for the given paths that gave
    nothing (missing, not audio, a folder without audio files). Hidden files and folders are skipped.
    """
    files: list[Path] = []
    problems: list[str] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            files.append(p)

    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted((f for f in p.rglob("*")
                            if f.suffix.lower() in AUDIO_EXTENSIONS and f.is_file()
                            and not any(part.startswith(".") for part in f.relative_to(p).parts)),
                           key=lambda f: (str(f.relative_to(p).parent).casefold(), f.name.casefold(), f.name))
            if not found:
                problems.append(f"{p}: is a folder with no audio files")
            for f in found:
                add(f)
        elif not p.exists():
            problems.append(f"{p}: file not found")
        elif p.suffix.lower() not in AUDIO_EXTENSIONS:
            problems.append(f"{p}: not a supported audio file")
        else:
            add(p)
    return files, problems


@dataclass
class QueueItem:
    id: int
    path: str
    state: str = "pending"          # one of STATES
    progress: float = 0.0           # 0..1 of this item's separation
    error: str | None = None        # the one-line reason of a failure
    added: float = field(default_factory=time.time)
    finished: float | None = None

    @property
    def name(self) -> str:
        return Path(self.path).name


class BatchQueue:
    """An ordered list of songs to separate; saved to ``path`` (JSON) after every change.

    ``path=None`` keeps it in memory only. ``on_change()`` is called after every change.
    """

    def __init__(self, path: str | os.PathLike | None = None, on_change: Callable[[], None] | None = None):
        self.path = Path(path) if path is not None else None
        self.items: list[QueueItem] = []
        self.paused = False
        self.on_change = on_change
        self._ids = itertools.count(1)
        self.load_error: str | None = None
        if self.path is not None:
            self._load()

    # persistence ---------------------------------------------------------------------------------
    def _load(self) -> None:
        if self.path is None:
            return
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            self.load_error = f"{self.path}: cannot read the queue ({exc})"
            return
        if not isinstance(data, dict) or data.get("version") != QUEUE_VERSION:
            self.load_error = f"{self.path}: not a queue file of this version"
            return
        self.paused = bool(data.get("paused", False))
        for raw in data.get("items") or []:
            try:
                item = QueueItem(int(raw["id"]), str(raw["path"]), str(raw.get("state", "pending")),
                                 float(raw.get("progress", 0.0)), raw.get("error"),
                                 float(raw.get("added", time.time())), raw.get("finished"))
            except (KeyError, TypeError, ValueError):
                continue
            if item.state not in STATES:
                continue
            if item.state == "running":  # the app stopped during it: do it again
                item.state, item.progress = "pending", 0.0
            if item.state == "pending":
                item.progress = 0.0
            self.items.append(item)
        self._ids = itertools.count(max((i.id for i in self.items), default=0) + 1)

    def save(self) -> None:
        if self.path is None:
            return
        atomic_write_json(self.path, {"version": QUEUE_VERSION, "paused": self.paused,
                                      "items": [asdict(i) for i in self.items]})

    def _changed(self, persist: bool = True) -> None:
        if persist:
            try:
                self.save()
            except OSError:
                pass  # a read-only data folder: the queue still works for this run
        if self.on_change is not None:
            self.on_change()

    # editing -------------------------------------------------------------------------------------
    def add(self, paths: Iterable[str | os.PathLike]) -> list[QueueItem]:
        """Append songs (already expanded, see :func:`collect_audio_files`); a song already waiting
        or running is not added twice. Returns the new items."""
        waiting = {i.path for i in self.items if i.state in ("pending", "running")}
        new = []
        for p in paths:
            text = str(Path(p).absolute())
            if text in waiting:
                continue
            waiting.add(text)
            new.append(QueueItem(next(self._ids), text))
        self.items.extend(new)
        if new:
            self._changed()
        return new

    def get(self, item_id: int) -> QueueItem | None:
        return next((i for i in self.items if i.id == item_id), None)

    def index(self, item_id: int) -> int:
        return next((k for k, i in enumerate(self.items) if i.id == item_id), -1)

    def move(self, item_id: int, to: int) -> bool:
        """Move an item to position ``to`` (clamped)."""
        k = self.index(item_id)
        if k < 0:
            return False
        to = max(0, min(int(to), len(self.items) - 1))
        if to == k:
            return False
        self.items.insert(to, self.items.pop(k))
        self._changed()
        return True

    def reorder(self, ids: list[int]) -> bool:
        """Put the items in the order of ``ids`` (what a drag in the view left); unknown ids are
        ignored and items not named keep their place at the end."""
        by_id = {i.id: i for i in self.items}
        order = [by_id[i] for i in dict.fromkeys(ids) if i in by_id]
        order += [i for i in self.items if i not in order]
        if order == self.items:
            return False
        self.items = order
        self._changed()
        return True

    def move_by(self, item_id: int, delta: int) -> bool:
        k = self.index(item_id)
        return k >= 0 and self.move(item_id, k + delta)

    def remove(self, item_id: int) -> QueueItem | None:
        """Remove an item (the song file is never touched). A running item must be cancelled first
        by the runner; removing it here only forgets it."""
        k = self.index(item_id)
        if k < 0:
            return None
        item = self.items.pop(k)
        self._changed()
        return item

    def clear_finished(self) -> int:
        before = len(self.items)
        self.items = [i for i in self.items if i.state != "done"]
        if len(self.items) != before:
            self._changed()
        return before - len(self.items)

    def set_paused(self, paused: bool) -> None:
        if self.paused != bool(paused):
            self.paused = bool(paused)
            self._changed()

    def retry(self, item_id: int) -> bool:
        item = self.get(item_id)
        if item is None or item.state != "failed":
            return False
        item.state, item.error, item.progress, item.finished = "pending", None, 0.0, None
        self._changed()
        return True

    # the runner's side ---------------------------------------------------------------------------
    def next_pending(self) -> QueueItem | None:
        """The first pending item (failed and done ones are skipped), or ``None`` when paused/empty."""
        if self.paused:
            return None
        return next((i for i in self.items if i.state == "pending"), None)

    def running(self) -> QueueItem | None:
        return next((i for i in self.items if i.state == "running"), None)

    def mark_running(self, item: QueueItem) -> None:
        item.state, item.progress, item.error = "running", 0.0, None
        self._changed()

    def set_progress(self, item: QueueItem, fraction: float) -> None:
        """Progress is not saved (it changes many times a second); only the views hear about it."""
        item.progress = max(item.progress, min(max(float(fraction), 0.0), 1.0))
        self._changed(persist=False)

    def mark_done(self, item: QueueItem) -> None:
        item.state, item.progress, item.error, item.finished = "done", 1.0, None, time.time()
        self._changed()

    def mark_failed(self, item: QueueItem, reason: str) -> None:
        lines = str(reason).strip().splitlines()
        item.state, item.error, item.finished = "failed", lines[0] if lines else "failed", time.time()
        self._changed()

    def mark_pending(self, item: QueueItem) -> None:
        """Back to waiting (a cancelled run, e.g. when the queue was paused during it)."""
        item.state, item.progress = "pending", 0.0
        self._changed()

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATES, 0)
        for i in self.items:
            out[i.state] += 1
        return out

    def summary(self) -> str:
        c = self.counts()
        parts = [f"{c['done']} done", f"{c['pending'] + c['running']} to do"]
        if c["failed"]:
            parts.append(f"{c['failed']} failed")
        return ", ".join(parts) + (" · paused" if self.paused else "")
