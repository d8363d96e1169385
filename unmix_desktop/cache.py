"""Separation result cache: reopening a song that was already separated is instant.

An entry is keyed by the song's *content* (SHA-256 of the file bytes, so a renamed or moved file
still hits), the model name and the separation settings (:meth:`SeparationSettings.key`), plus an
optional variant (e.g. ``"4stems"``). It is a folder under ``paths.cache_dir()/stems/<key>/``
holding one ``.npy`` per stem (float32 ``(n, 2)``), the decoded mixture and ``meta.json``.

Writes are atomic: the entry is written to a hidden temporary folder next to it and renamed into
place when complete, so an interrupted write never leaves a half entry under the final name.
Entries are evicted least-recently-used when the cache grows beyond ``max_bytes``.

No Qt here: the window calls this from its worker thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import paths
from .errors import Cancelled

FORMAT_VERSION = 1
META_NAME = "meta.json"
MIXTURE_FILE = "mixture.npy"
#: Default size limit of the stem cache (bytes); override with UNMIX_CACHE_MAX_MB.
DEFAULT_MAX_BYTES = int(float(os.environ.get("UNMIX_CACHE_MAX_MB", 4096)) * 1024 * 1024)
_HASH_CHUNK = 1 << 20


def file_hash(path: str | os.PathLike, cancel: threading.Event | None = None) -> str:
    """SHA-256 (hex) of the file's bytes. Raises :class:`Cancelled` when ``cancel`` is set."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            chunk = f.read(_HASH_CHUNK)
            if not chunk:
                break
            h.update(chunk)
    return h.hexdigest()


def make_key(content_hash: str, model_name: str, settings_key: str, variant: str = "") -> str:
    """The cache key (a hex string, safe as a folder name) of one separation."""
    text = f"v{FORMAT_VERSION}|{content_hash}|{model_name}|{settings_key}|{variant}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


@dataclass
class CacheEntry:
    key: str
    stems: dict[str, np.ndarray]
    mixture: np.ndarray | None
    meta: dict = field(default_factory=dict)


def _dir_size(folder: Path) -> int:
    total = 0
    for p in folder.rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            pass
    return total


class StemCache:
    """Stems on disk, one folder per (song content, model, settings)."""

    def __init__(self, root: str | os.PathLike | None = None, max_bytes: int | None = None):
        self.root = Path(root) if root is not None else paths.cache_dir() / "stems"
        self.max_bytes = DEFAULT_MAX_BYTES if max_bytes is None else int(max_bytes)

    def _folder(self, key: str) -> Path:
        if not key or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"invalid cache key {key!r}")
        return self.root / key

    def has(self, key: str) -> bool:
        return (self._folder(key) / META_NAME).is_file()

    def get(self, key: str) -> CacheEntry | None:
        """The cached entry, or ``None`` when absent or unreadable (a damaged entry is removed)."""
        folder = self._folder(key)
        meta_path = folder / META_NAME
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text("utf-8"))
            if meta.get("format") != FORMAT_VERSION:
                raise ValueError("old format")
            frames = int(meta["frames"])
            stems = {}
            for name, fname in meta["stems"]:
                stems[name] = self._load_array(folder / fname, frames)
            mixture = self._load_array(folder / MIXTURE_FILE, frames) if meta.get("mixture") else None
        except (OSError, ValueError, KeyError, TypeError):
            shutil.rmtree(folder, ignore_errors=True)
            return None
        try:  # least-recently-used bookkeeping (explicit time: finer than the kernel's file clock)
            now = time.time()
            os.utime(meta_path, (now, now))
        except OSError:
            pass
        return CacheEntry(key, stems, mixture, meta)

    @staticmethod
    def _load_array(path: Path, frames: int) -> np.ndarray:
        arr = np.load(path, allow_pickle=False)
        if arr.dtype != np.float32 or arr.ndim != 2 or arr.shape != (frames, 2):
            raise ValueError(f"{path}: unexpected array {arr.dtype} {arr.shape}")
        return arr

    def put(self, key: str, stems: dict[str, np.ndarray], mixture: np.ndarray | None = None,
            meta: dict | None = None) -> Path:
        """Store ``stems`` (and the decoded ``mixture``) under ``key``; returns the entry folder."""
        folder = self._folder(key)
        self.root.mkdir(parents=True, exist_ok=True)
        arrays = {name: np.ascontiguousarray(a, dtype=np.float32) for name, a in stems.items()}
        frames = {a.shape[0] for a in arrays.values()}
        if mixture is not None:
            mixture = np.ascontiguousarray(mixture, dtype=np.float32)
            frames.add(mixture.shape[0])
        if len(frames) != 1 or any(a.ndim != 2 or a.shape[1] != 2 for a in arrays.values()):
            raise ValueError("stems (and mixture) must be (n, 2) arrays of one length")
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".part", dir=self.root))
        try:
            listing = []
            for i, (name, arr) in enumerate(arrays.items()):
                fname = f"stem{i}.npy"
                np.save(tmp / fname, arr, allow_pickle=False)
                listing.append([name, fname])
            if mixture is not None:
                np.save(tmp / MIXTURE_FILE, mixture, allow_pickle=False)
            info = dict(meta or {})
            info.update(format=FORMAT_VERSION, key=key, frames=frames.pop(), stems=listing,
                        mixture=mixture is not None, created=time.time())
            (tmp / META_NAME).write_text(json.dumps(info, indent=1), "utf-8")
            os.utime(tmp / META_NAME, (info["created"], info["created"]))
            if folder.exists():  # an equal entry written meanwhile: replace it
                shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.evict(keep=key)
        return folder

    def entries(self) -> list[tuple[str, float, int]]:
        """``(key, last_used_time, bytes)`` of every complete entry, oldest first."""
        out = []
        if not self.root.is_dir():
            return out
        for folder in self.root.iterdir():
            meta = folder / META_NAME
            if folder.is_dir() and not folder.name.startswith(".") and meta.is_file():
                try:
                    out.append((folder.name, meta.stat().st_mtime, _dir_size(folder)))
                except OSError:
                    pass
        return sorted(out, key=lambda e: e[1])

    def evict(self, keep: str | None = None) -> int:
        """Remove least-recently-used entries until the cache fits ``max_bytes``; bytes freed."""
        entries = self.entries()
        total = sum(e[2] for e in entries)
        freed = 0
        for key, _, size in entries:
            if total <= self.max_bytes:
                break
            if key == keep:
                continue
            shutil.rmtree(self.root / key, ignore_errors=True)
            total -= size
            freed += size
        return freed

    def size_bytes(self) -> int:
        """Bytes on disk, leftovers of interrupted writes included."""
        return _dir_size(self.root) if self.root.is_dir() else 0

    def clear(self) -> int:
        """Delete every entry; returns the bytes freed."""
        size = self.size_bytes()
        if self.root.is_dir():
            for child in self.root.iterdir():
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    try:
                        child.unlink()
                    except OSError:
                        pass
        return size - self.size_bytes()


def format_bytes(n: int) -> str:
    """``1536`` -> ``"1.5 KB"`` (powers of 1024, one decimal)."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover
