"""glibc malloc settings for the large-tensor inference of Demucs, and giving the memory back afterwards.

PyTorch's CPU tensors come straight from ``malloc``. A Hybrid Transformer Demucs segment allocates and frees
hundreds of tensors of 1-130 MB; with glibc's defaults each of those above the (dynamic, at most 32 MB)
mmap threshold is a fresh ``mmap`` whose pages the kernel faults in and zeroes on first touch, and freed
heap tops are trimmed back to the kernel at once (``M_TRIM_THRESHOLD``), so the next segment faults the
same pages in again. :func:`tuned_allocator` (used by the Demucs engine, so by ``unmix separate --model
htdemucs``, the queue and the window's background "best quality" pass, which runs in the app's process on a
worker thread) sets, once per process:

* ``M_MMAP_MAX = 0``: no allocation is served by its own ``mmap``; big tensors come from the heap and their
  pages are reused from one segment to the next;
* ``M_TRIM_THRESHOLD`` = 1 GiB: free memory is not handed back after every free;
* ``M_ARENA_MAX``: left alone (threads keep their arenas; a thread arena's heap cannot hold a block over
  64 MB, for which glibc still falls back to ``mmap``).

and calls ``malloc_trim(0)`` when the outermost run ends, so the resident memory a song used comes back
to the system (measured in tests/test_demucs_allocator.py). These are process-wide glibc settings (no other
allocator is affected; with musl/macOS/Windows nothing is done): after the first Demucs run the process
keeps them, with memory returned after each run. ``UNMIX_MALLOC_TUNE=0`` turns it off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
#: what :func:`tuned_allocator` sets (mallopt parameter, value)
SETTINGS = ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 1 << 30))

_lock = threading.Lock()
_depth = 0
_applied: bool | None = None  # None: not tried yet
_libc = None


def _glibc():
    global _libc
    if _libc is None:
        if not sys.platform.startswith("linux"):
            _libc = False
        else:
            try:
                lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                _libc = lib if hasattr(lib, "mallopt") and hasattr(lib, "malloc_trim") else False
            except OSError:
                _libc = False
    return _libc or None


def enabled() -> bool:
    return os.environ.get("UNMIX_MALLOC_TUNE", "1").strip().lower() not in ("0", "no", "off", "false")


def apply_settings() -> bool:
    """Set :data:`SETTINGS` once per process; True when they are in effect."""
    global _applied
    with _lock:
        if _applied is None:
            lib = _glibc() if enabled() else None
            _applied = lib is not None and all(lib.mallopt(key, value) == 1 for key, value in SETTINGS)
        return _applied


def applied() -> bool:
    """Whether this process runs with :data:`SETTINGS`."""
    return bool(_applied)


def release_memory() -> bool:
    """``malloc_trim(0)``: give free heap memory back to the system (True when some was)."""
    lib = _glibc()
    return bool(lib.malloc_trim(0)) if lib else False


_trim_lock = threading.Lock()
_trim_thread: threading.Thread | None = None
_trim_again = False


def release_memory_in_background(wait: bool = False) -> bool:
    """:func:`release_memory` on a thread of its own; returns at once (``wait=True``: when it is done).
    False where there is no glibc.

    ``malloc_trim`` walks every arena and took 0.1-1.7 s with a large fragmented heap on a loaded 2-core
    machine: on a UI thread, a frozen window. Memory freed by a worker thread sits in that thread's arena,
    whose lock the caller does not take: with the trim on another thread the calling thread's longest stall
    went 194-1160 -> 17-189 ms (2 GB freed by a worker thread). A call while a trim runs makes it trim once
    more when it ends."""
    global _trim_thread, _trim_again
    if _glibc() is None:
        return False

    def run() -> None:
        global _trim_thread, _trim_again
        while True:
            release_memory()  # ctypes releases the GIL for the call
            with _trim_lock:
                if not _trim_again:
                    _trim_thread = None
                    return
                _trim_again = False

    with _trim_lock:
        thread = _trim_thread
        if thread is not None:
            _trim_again = True
        else:
            thread = _trim_thread = threading.Thread(target=run, name="unmix-malloc-trim", daemon=True)
            thread.start()
    if wait:
        thread.join()
    return True


@contextmanager
def tuned_allocator() -> Iterator[bool]:
    """The settings for the body (see the module's doc); memory trimmed when the outermost one ends.
    Yields whether the settings are in effect."""
    global _depth
    ok = apply_settings()
    with _lock:
        _depth += 1
    stopped = False
    try:
        yield ok
    except BaseException:
        stopped = True
        raise
    finally:
        with _lock:
            _depth -= 1
            last = _depth == 0
        if last and ok:
            if stopped:
                # tensors held by the reference cycles of a run that stopped (a cancelled generator's frames).
                # Only then: a full collection holds the GIL ~0.4 s with torch and Qt loaded, which would stall
                # the audio callback of the window playing the song whose best-quality pass just finished.
                import gc

                gc.collect()
            release_memory()
