"""A small ctypes binding of the Rubber Band Library's C API (``rubberband-c.h``), no Qt.

Rubber Band (GPL-2.0-or-later) is loaded from the system's shared library (Debian ``librubberband2``,
3.0 or later for the R3 "finer" engine) or from the PyInstaller bundle; ``UNMIX_RUBBERBAND_LIB`` names
another file. ctypes needs no compiler at install and releases the GIL during every call, so the
audio callback runs while a stretcher works in the producer thread.

Only what :mod:`unmix_desktop.audio.stretch` uses is bound. Audio is float32 ``(channels, n)``; each
channel row must be contiguous (a column slice ``x[:, a:b]`` of a C-contiguous array is fine).

:func:`unavailable_reason` says in one line why the library cannot be used (``None`` when it can);
building a :class:`RubberBandStretcher` then raises :class:`RubberBandUnavailable` with that line.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading

import numpy as np

# enum RubberBandOption (rubberband-c.h)
OPTION_PROCESS_REALTIME = 0x00000001
OPTION_WINDOW_SHORT = 0x00100000
OPTION_PITCH_HIGH_CONSISTENCY = 0x04000000
OPTION_CHANNELS_TOGETHER = 0x10000000
OPTION_ENGINE_FINER = 0x20000000

#: The shared library's file name (SONAME of Rubber Band's C API, ABI 2).
LIBRARY_SONAME = "librubberband.so.2"
#: The Debian package that provides it.
DEBIAN_PACKAGE = "librubberband2"
ENV_LIBRARY = "UNMIX_RUBBERBAND_LIB"

_c_float_p = ctypes.POINTER(ctypes.c_float)
_state = ctypes.c_void_p


class RubberBandUnavailable(RuntimeError):
    """The Rubber Band library is missing, cannot be loaded, or has no R3 engine."""


_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_reason: str | None = None
_loaded = False


def _candidates() -> list[str]:
    env = os.environ.get(ENV_LIBRARY)
    if env:
        return [env]
    names = []
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:  # PyInstaller one-folder bundle: the spec puts the library at the top of _internal/
        names.append(os.path.join(bundle, LIBRARY_SONAME))
    names.append(LIBRARY_SONAME)
    found = ctypes.util.find_library("rubberband")
    if found and found not in names:
        names.append(found)
    return names


def _declare(lib: ctypes.CDLL) -> None:
    f = lib.rubberband_new
    f.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_int, ctypes.c_double, ctypes.c_double]
    f.restype = _state
    for name in ("rubberband_delete", "rubberband_reset"):
        getattr(lib, name).argtypes = [_state]
        getattr(lib, name).restype = None
    lib.rubberband_get_engine_version.argtypes = [_state]
    lib.rubberband_get_engine_version.restype = ctypes.c_int
    for name in ("rubberband_set_time_ratio", "rubberband_set_pitch_scale"):
        getattr(lib, name).argtypes = [_state, ctypes.c_double]
        getattr(lib, name).restype = None
    for name in ("rubberband_get_time_ratio", "rubberband_get_pitch_scale"):
        getattr(lib, name).argtypes = [_state]
        getattr(lib, name).restype = ctypes.c_double
    for name in ("rubberband_get_preferred_start_pad", "rubberband_get_start_delay",
                 "rubberband_get_samples_required", "rubberband_get_channel_count"):
        getattr(lib, name).argtypes = [_state]
        getattr(lib, name).restype = ctypes.c_uint
    for name in ("rubberband_set_expected_input_duration", "rubberband_set_max_process_size"):
        getattr(lib, name).argtypes = [_state, ctypes.c_uint]
        getattr(lib, name).restype = None
    for name in ("rubberband_study", "rubberband_process"):
        getattr(lib, name).argtypes = [_state, ctypes.POINTER(_c_float_p), ctypes.c_uint, ctypes.c_int]
        getattr(lib, name).restype = None
    lib.rubberband_available.argtypes = [_state]
    lib.rubberband_available.restype = ctypes.c_int
    lib.rubberband_retrieve.argtypes = [_state, ctypes.POINTER(_c_float_p), ctypes.c_uint]
    lib.rubberband_retrieve.restype = ctypes.c_uint
    lib.rubberband_set_default_debug_level.argtypes = [ctypes.c_int]
    lib.rubberband_set_default_debug_level.restype = None


def _load() -> tuple[ctypes.CDLL | None, str | None]:
    global _lib, _reason, _loaded
    with _lock:
        if _loaded:
            return _lib, _reason
        lib = None
        for name in _candidates():
            try:
                lib = ctypes.CDLL(name)
                break
            except OSError:
                continue
        if lib is None:
            _reason = (f"the Rubber Band library ({LIBRARY_SONAME}, Debian package {DEBIAN_PACKAGE}) "
                       "is not installed")
            if os.environ.get(ENV_LIBRARY):
                _reason = f"{os.environ[ENV_LIBRARY]}: not a loadable Rubber Band library ({ENV_LIBRARY})"
        else:
            try:
                _declare(lib)  # rubberband_get_engine_version and the start pad came with 3.0 (R3)
                lib.rubberband_set_default_debug_level(0)
            except AttributeError as exc:
                lib = None
                _reason = ("the Rubber Band library is older than 3.0 and has no R3 engine "
                           f"({str(exc).split(':')[-1].strip()})")
        _lib, _loaded = lib, True
        return _lib, _reason


def unavailable_reason() -> str | None:
    """One line saying why Rubber Band cannot be used here, or ``None`` when it can."""
    return _load()[1]


def library() -> ctypes.CDLL:
    lib, reason = _load()
    if lib is None:
        raise RubberBandUnavailable(reason)
    return lib


def _pointers(x: np.ndarray, channels: int):
    """``float **`` to the rows of ``x`` (channels, n) float32, each row contiguous."""
    if x.dtype != np.float32 or x.ndim != 2 or x.shape[0] != channels or (x.shape[1] > 1 and x.strides[1] != 4):
        raise ValueError(f"audio must be float32 ({channels}, n) with contiguous rows, got {x.dtype} {x.shape}")
    base = x.ctypes.data
    rows = (_c_float_p * channels)()
    for c in range(channels):
        rows[c] = ctypes.cast(base + c * x.strides[0], _c_float_p)
    return rows


class RubberBandStretcher:
    """One ``RubberBandState``: a time-stretcher and pitch-shifter for ``channels`` channels."""

    def __init__(self, sample_rate: int, channels: int, options: int = 0,
                 initial_time_ratio: float = 1.0, initial_pitch_scale: float = 1.0):
        lib = library()
        self._lib = lib
        self.channels = int(channels)
        self._state = lib.rubberband_new(int(sample_rate), self.channels, int(options),
                                         float(initial_time_ratio), float(initial_pitch_scale))
        if not self._state:
            raise RubberBandUnavailable("the Rubber Band library could not create a stretcher")

    def close(self) -> None:
        state, self._state = getattr(self, "_state", None), None
        if state:
            self._lib.rubberband_delete(state)

    def __del__(self) -> None:
        self.close()

    @property
    def engine_version(self) -> int:
        return self._lib.rubberband_get_engine_version(self._state)

    @property
    def time_ratio(self) -> float:
        return self._lib.rubberband_get_time_ratio(self._state)

    @time_ratio.setter
    def time_ratio(self, ratio: float) -> None:
        self._lib.rubberband_set_time_ratio(self._state, float(ratio))

    @property
    def pitch_scale(self) -> float:
        return self._lib.rubberband_get_pitch_scale(self._state)

    @pitch_scale.setter
    def pitch_scale(self, scale: float) -> None:
        self._lib.rubberband_set_pitch_scale(self._state, float(scale))

    def reset(self) -> None:
        self._lib.rubberband_reset(self._state)

    def get_preferred_start_pad(self) -> int:
        return self._lib.rubberband_get_preferred_start_pad(self._state)

    def get_start_delay(self) -> int:
        return self._lib.rubberband_get_start_delay(self._state)

    def get_samples_required(self) -> int:
        return self._lib.rubberband_get_samples_required(self._state)

    def set_expected_input_duration(self, samples: int) -> None:
        self._lib.rubberband_set_expected_input_duration(self._state, int(samples))

    def set_max_process_size(self, samples: int) -> None:
        self._lib.rubberband_set_max_process_size(self._state, int(samples))

    def study(self, x: np.ndarray, final: bool = False) -> None:
        self._lib.rubberband_study(self._state, _pointers(x, self.channels), x.shape[1], int(bool(final)))

    def process(self, x: np.ndarray, final: bool = False) -> None:
        self._lib.rubberband_process(self._state, _pointers(x, self.channels), x.shape[1], int(bool(final)))

    def available(self) -> int:
        """Output frames ready to retrieve; -1 once the last (``final``) input has all come out."""
        return self._lib.rubberband_available(self._state)

    def is_done(self) -> bool:
        return self.available() == -1

    def retrieve(self, count: int) -> np.ndarray:
        """Up to ``count`` output frames as float32 ``(channels, k)``."""
        out = np.empty((self.channels, max(int(count), 0)), np.float32)
        if count <= 0:
            return out
        got = self._lib.rubberband_retrieve(self._state, _pointers(out, self.channels), out.shape[1])
        return out[:, :got]
