"""Atomic file writes: a temporary file in the same folder, then a rename (no Qt, no numpy).

Readers see the old file or the whole new one, never a part; a failure or a signal leaves no
temporary file behind. Every module that writes a file of its own (JSON, CSV, checkpoints, model
weights) goes through :func:`atomic_path` or one of the ``atomic_write_*`` helpers built on it.
Stem folders and audio files use :mod:`unmix_desktop.outputs`, whose temporary names carry the
writing process's id so that a later run can clean up after a kill.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


def umask() -> int:
    """The process umask (read without changing it for long)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, mode: int | None = None, mkdir: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on a clean exit it replaces ``path``.

    The temporary name keeps the suffix (``.name.XXXX.part.json``) so writers that pick a format
    from it still work. ``mode`` defaults to an ordinary file's permissions (0o666 less the umask).
    """
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, (0o666 & ~umask()) if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, mode: int | None = None, mkdir: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``. ``mkdir=False``: a missing folder is an
    error (``FileNotFoundError``) instead of being created, for files inside a folder that someone else
    may delete meanwhile (a stem-cache entry)."""
    with atomic_path(path, mode, mkdir) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, mode: int | None = None, mkdir: bool = True) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"), mode, mkdir)


def atomic_write_json(path: str | os.PathLike, data: Any, indent: int | None = 1, mode: int | None = None,
                      mkdir: bool = True) -> Path:
    """Write ``data`` as strict JSON (no NaN) with a final newline, atomically; returns ``path``."""
    return atomic_write_text(path, json.dumps(data, indent=indent, allow_nan=False) + "\n", mode, mkdir)
