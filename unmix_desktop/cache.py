"""Separation result cache: reopening a song that was already separated is instant.

An entry is keyed by the song's *content* (SHA-256 of the file bytes, so a renamed or moved file
still hits), the model name and the separation settings (:meth:`SeparationSettings.key`), plus an
optional variant (e.g. ``"4stems"``). It is a folder under ``paths.cache_dir()/stems/<key>/``
holding one ``.npy`` per stem (float32 ``(n, 2)``), the decoded mixture and ``meta.json``.

Writes are atomic: the entry is written to a hidden temporary folder next to it and renamed into
place when complete, so an interrupted write never leaves a half entry under the final name.
``meta.json`` is written last and records each array file's size and CRC-32; :meth:`StemCache.get`
checks both (and the ``.npy`` header, dtype and shape) before serving anything, so a bit-flipped,
zeroed, truncated or replaced file, or a ``meta.json`` that is not ours, is a miss: the entry is
deleted and the caller separates again. (CRC-32, not a cryptographic hash: it guards against
accidental damage, and anyone who can write the cache folder could rewrite the checksum too. It
is the fastest check zlib offers, ~2 GB/s; benchmarks/bench_cache.py measures it.)
Entries are evicted least-recently-used when the cache grows beyond ``max_bytes``.

No Qt here: the window calls this from its worker thread.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import paths
from .errors import Cancelled

FORMAT_VERSION = 2  # 2: meta.json records each file's size and CRC-32
META_NAME = "meta.json"
MIXTURE_FILE = "mixture.npy"
_STEM_FILE_RE = re.compile(r"stem[0-9]{1,3}\.npy")
#: Unfinished writes (``.<key>.*.part``) older than this are leftovers of a killed process.
STALE_PART_SECONDS = 3600.0
#: Default size limit of the stem cache (bytes); override with UNMIX_CACHE_MAX_MB.
DEFAULT_MAX_BYTES = int(float(os.environ.get("UNMIX_CACHE_MAX_MB", 4096)) * 1024 * 1024)
_HASH_CHUNK = 1 << 20
_KEY_RE = re.compile(r"[0-9a-f]+")
_PART_RE = re.compile(r"\.[0-9a-f]+\..*\.part")


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


class _ChecksumWriter:
    """A write-only file object that counts bytes and updates a CRC-32 as ``np.save`` writes."""

    def __init__(self, fh):
        self._fh = fh
        self.size = 0
        self.crc = 0

    def write(self, data) -> int:
        view = memoryview(data)
        self._fh.write(view)
        self.size += view.nbytes
        self.crc = zlib.crc32(view, self.crc)
        return view.nbytes


def _save_checked(path: Path, arr: np.ndarray) -> dict:
    """``np.save`` ``arr`` to ``path``; returns ``{"size": bytes, "crc32": int}`` of what was written."""
    with open(path, "wb") as fh:
        writer = _ChecksumWriter(fh)
        np.save(writer, arr, allow_pickle=False)
    return {"size": writer.size, "crc32": writer.crc}


class DamagedEntry(ValueError):
    """A cache entry failed verification (only ever a miss for the caller)."""


def _load_checked(path: Path, frames: int, check: object) -> np.ndarray:
    """Read a float32 ``(frames, 2)`` ``.npy`` written by :func:`_save_checked` and verify it against
    ``check`` (``{"size", "crc32"}`` from meta.json). Reads the file once; no pickle, no copies."""
    if not isinstance(check, dict) or not isinstance(check.get("size"), int) or not isinstance(check.get("crc32"), int):
        raise DamagedEntry(f"{path.name}: no checksum")
    if path.is_symlink() or not path.is_file():
        raise DamagedEntry(f"{path.name}: missing")
    size = path.stat().st_size
    if size != check["size"]:
        raise DamagedEntry(f"{path.name}: {size} bytes, expected {check['size']}")
    buf = np.empty(size, np.uint8)  # not bytearray(size): zero-filling 85 MB costs more than the CRC
    with open(path, "rb") as fh:
        if fh.readinto(buf.data) != size:
            raise DamagedEntry(f"{path.name}: short read")
    if zlib.crc32(buf.data) != check["crc32"]:
        raise DamagedEntry(f"{path.name}: checksum mismatch")
    head = io.BytesIO(buf[:min(size, 65536)].tobytes())
    try:
        version = np.lib.format.read_magic(head)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(head)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(head)
        else:
            raise DamagedEntry(f"{path.name}: .npy version {version}")
    except DamagedEntry:
        raise
    except Exception as exc:  # numpy raises ValueError/EOFError/SyntaxError... on a bad header
        raise DamagedEntry(f"{path.name}: not a .npy array ({exc})") from exc
    offset = head.tell()
    if dtype != np.dtype("<f4") or fortran or shape != (frames, 2) or offset + frames * 8 != size:
        raise DamagedEntry(f"{path.name}: unexpected array {dtype} {shape}")
    return buf[offset:].view(np.float32).reshape(frames, 2)


def _check_meta(meta: object, key: str) -> tuple[int, list[tuple[str, str]], dict]:
    """Validate a parsed meta.json; returns ``(frames, [(stem, file)], checks)``."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        raise DamagedEntry("not a current meta.json")
    if meta.get("key") != key:
        raise DamagedEntry("meta.json belongs to another entry")
    frames = meta.get("frames")
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 0:
        raise DamagedEntry("bad frame count")
    listing, checks = meta.get("stems"), meta.get("checks")
    if not isinstance(listing, list) or not listing or not isinstance(checks, dict):
        raise DamagedEntry("bad stem listing")
    out = []
    for item in listing:
        if (not isinstance(item, list) or len(item) != 2 or not all(isinstance(x, str) for x in item)
                or not item[0] or not _STEM_FILE_RE.fullmatch(item[1])):
            raise DamagedEntry(f"bad stem listing item {item!r}")
        out.append((item[0], item[1]))
    if len({n for n, _ in out}) != len(out) or len({f for _, f in out}) != len(out):
        raise DamagedEntry("duplicate stems")
    return frames, out, checks


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
        """The cached entry, or ``None`` when absent or damaged (a damaged entry is deleted).

        Every array file is checked against the size and CRC-32 in ``meta.json`` before use."""
        folder = self._folder(key)
        meta_path = folder / META_NAME
        if not meta_path.is_file():
            return None
        try:
            if folder.is_symlink():
                raise DamagedEntry("entry is a symbolic link")
            meta = json.loads(meta_path.read_bytes().decode("utf-8"))
            frames, listing, checks = _check_meta(meta, key)
            stems = {name: _load_checked(folder / fname, frames, checks.get(fname)) for name, fname in listing}
            mixture = None
            if meta.get("mixture"):
                mixture = _load_checked(folder / MIXTURE_FILE, frames, checks.get(MIXTURE_FILE))
        except (OSError, ValueError, UnicodeDecodeError, RecursionError):  # DamagedEntry, JSONDecodeError included
            self._discard(folder)
            return None
        try:  # least-recently-used bookkeeping (explicit time: finer than the kernel's file clock)
            now = time.time()
            os.utime(meta_path, (now, now))
        except OSError:
            pass
        return CacheEntry(key, stems, mixture, meta)

    def _discard(self, folder: Path) -> None:
        """Delete one entry folder of this cache (a link is unlinked, never followed).

        The folder is first renamed to an unfinished-write name (``.<key>.discard-*.part``): an analysis
        still writing its file into the entry then fails (its folder is gone) instead of creating a file
        while the folder is being deleted, which left the folder behind; a leftover is still ours
        (:meth:`clearable`, :meth:`_remove_stale_parts`)."""
        try:
            if folder.is_symlink() or not folder.is_dir():
                folder.unlink(missing_ok=True)
                return
            if _KEY_RE.fullmatch(folder.name):
                trash = folder.with_name(f".{folder.name}.discard-{os.getpid()}-{threading.get_ident()}.part")
                try:
                    folder.rename(trash)
                    folder = trash
                except OSError:
                    pass
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass

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
        if not arrays or len(frames) != 1 or any(a.ndim != 2 or a.shape[1] != 2 for a in arrays.values()):
            raise ValueError("stems (and mixture) must be (n, 2) arrays of one length")
        if not all(isinstance(name, str) and name for name in arrays):
            raise ValueError("stem names must be non-empty strings")
        self._remove_stale_parts()
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".part", dir=self.root))
        try:
            listing, checks = [], {}
            for i, (name, arr) in enumerate(arrays.items()):
                fname = f"stem{i}.npy"
                checks[fname] = _save_checked(tmp / fname, arr)
                listing.append([name, fname])
            if mixture is not None:
                checks[MIXTURE_FILE] = _save_checked(tmp / MIXTURE_FILE, mixture)
            info = dict(meta or {})
            info.update(format=FORMAT_VERSION, key=key, frames=frames.pop(), stems=listing,
                        mixture=mixture is not None, checks=checks, created=time.time())
            # meta.json last: an entry without it (or with a checksum that does not match) is never served
            (tmp / META_NAME).write_text(json.dumps(info, indent=1), "utf-8")
            os.utime(tmp / META_NAME, (info["created"], info["created"]))
            if folder.exists() or folder.is_symlink():  # an equal (or damaged) entry: replace it
                self._discard(folder)
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.evict(keep=key)
        return folder

    def _remove_stale_parts(self) -> None:
        """Remove unfinished writes (``.<key>.*.part``) left by a killed process, after an hour."""
        try:
            children = list(self.root.iterdir())
        except OSError:
            return
        now = time.time()
        for child in children:
            if child.name.startswith(".") and child.name.endswith(".part") and not child.is_symlink():
                try:
                    if child.is_dir() and now - child.stat().st_mtime > STALE_PART_SECONDS:
                        shutil.rmtree(child, ignore_errors=True)
                except OSError:
                    pass

    def entries(self) -> list[tuple[str, float, int]]:
        """``(key, last_used_time, bytes)`` of every complete entry, oldest first."""
        out: list[tuple[str, float, int]] = []
        if not self.root.is_dir():
            return out
        for folder in self.root.iterdir():
            meta = folder / META_NAME
            if (folder.is_dir() and not folder.is_symlink() and not folder.name.startswith(".")
                    and meta.is_file()):
                try:
                    out.append((folder.name, meta.stat().st_mtime, paths.folder_size(folder)))
                except OSError:
                    pass
        return sorted(out, key=lambda e: e[1])

    def read_meta(self, key: str) -> dict | None:
        """The parsed ``meta.json`` of an entry (arrays are not read nor verified), or ``None``."""
        try:
            data = json.loads((self._folder(key) / META_NAME).read_bytes().decode("utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) and data.get("key") == key else None

    def remove(self, key: str) -> bool:
        """Delete one entry (its folder in this cache, nothing else); False when there was none."""
        folder = self._folder(key)
        if not (folder.exists() or folder.is_symlink()):
            return False
        self._discard(folder)
        return True

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
            self._discard(self.root / key)
            total -= size
            freed += size
        return freed

    def size_bytes(self) -> int:
        """Bytes on disk, leftovers of interrupted writes included."""
        return paths.folder_size(self.root) if self.root.is_dir() else 0

    def _own_children(self) -> list[Path]:
        """What this cache wrote in its folder: entry folders (named by their hex key) and unfinished
        writes (``.<key>.*.part``). Anything else there (a user's file, a link) is not ours."""
        if not self.root.is_dir():
            return []
        out = []
        for child in self.root.iterdir():
            name = child.name
            if child.is_symlink() or not child.is_dir():
                continue
            if _KEY_RE.fullmatch(name) or (_PART_RE.fullmatch(name)):
                out.append(child)
        return out

    def clearable(self) -> tuple[int, int]:
        """``(songs, bytes)`` that :meth:`clear` would delete: complete entries, and the bytes of
        everything this cache wrote (unfinished writes included)."""
        children = self._own_children()
        songs = sum(1 for c in children if _KEY_RE.fullmatch(c.name) and (c / META_NAME).is_file())
        size = 0
        for child in children:
            try:
                size += paths.folder_size(child)
            except OSError:
                pass
        return songs, size

    def clear(self) -> int:
        """Delete every entry this cache wrote (never anything else in its folder); the bytes freed."""
        _, size = self.clearable()
        for child in self._own_children():
            self._discard(child)
        return size - self.clearable()[1]


def format_bytes(n: int) -> str:
    """``1536`` -> ``"1.5 KB"`` (powers of 1024, one decimal)."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover
