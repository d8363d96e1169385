"""Files the app reads back, trusted only after a check (no Qt, no numpy).

Every persisted file the app reads (sessions, the queue, the library's links, settings, the
melody/beats caches, lyrics links, and any new cache such as chords) goes through
:func:`load_json_validated` (JSON) or :func:`load_validated` (any text format):

* a missing file is the default, silently;
* a file that cannot be parsed, or whose fields do not validate (``validator`` raises
  :class:`Invalid`), is **set aside** -- renamed to ``NAME.bad-<UTC timestamp>`` next to it, never
  deleted -- with one :func:`notice` naming the file and the reason, and the default is used;
* a file that cannot be read (permissions, I/O error) is left where it is, with one notice.

``validator(data)`` returns the value to use (it may clean or convert fields); the small ``expect_*``
helpers below build field-by-field validators with reasons that name the field.

Notices go to one sink (:func:`set_notice_sink`): the command line prints ``unmix: note: ...`` on
stderr (the default), the window shows them in its status bar. A notice with a ``key`` is given
once per process (e.g. "the cache folder cannot be written": said once, however many writes fail).
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

T = TypeVar("T")
Sink = Callable[[str], None]

_lock = threading.Lock()
_sink: Sink | None = None
_said: set[str] = set()


class Invalid(ValueError):
    """A persisted value that does not validate; the message says which field and why."""


# -- notices ---------------------------------------------------------------------------------------
def set_notice_sink(sink: Sink | None) -> Sink | None:
    """Route notices to ``sink`` (any thread may call it); ``None``: stderr. Returns the previous sink."""
    global _sink
    with _lock:
        previous, _sink = _sink, sink
    return previous


def notice(message: str, key: str | None = None) -> bool:
    """Tell the user ``message`` (one line); with ``key``, only the first time in this process.
    Returns whether it was given."""
    message = one_line(message)
    with _lock:
        if key is not None:
            if key in _said:
                return False
            _said.add(key)
        sink = _sink
    if sink is not None:
        try:
            sink(message)
            return True
        except Exception:  # noqa: BLE001 - a closed window must not take the caller down
            pass
    try:
        print(f"unmix: note: {message}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
    return True


def forget_notices() -> None:
    """Forget which keyed notices were given (a test, or a new window session, hears them again)."""
    with _lock:
        _said.clear()


def one_line(text: str) -> str:
    """``text`` with control characters (a newline in a file name...) escaped, so a message stays one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


# -- set aside -------------------------------------------------------------------------------------
def set_aside(path: str | os.PathLike) -> Path | None:
    """Rename ``path`` to ``NAME.bad-<UTC timestamp>`` (``-2``, ``-3``... if taken); returns the new
    path, or ``None`` when it cannot be renamed (then it is left as it is)."""
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for n in range(1, 100):
        target = path.with_name(f"{path.name}.bad-{stamp}" + (f"-{n}" if n > 1 else ""))
        if target.exists() or target.is_symlink():
            continue
        try:
            os.rename(path, target)
        except OSError:
            return None
        return target
    return None


def _rejected(path: Path, reason: str, default: T, problems: list[str] | None) -> T:
    moved = set_aside(path)
    where = f"set aside as {moved.name}" if moved else "left in place (it cannot be renamed)"
    _tell(f"{path}: {reason}; {where}, using defaults", problems)
    return default


def _tell(message: str, problems: list[str] | None) -> None:
    notice(message)
    if problems is not None:
        problems.append(one_line(message))


def load_validated(path: str | os.PathLike, parse: Callable[[bytes], T], default: T,
                   problems: list[str] | None = None) -> T:
    """``parse(file bytes)`` -> value; a missing file -> ``default``; a file ``parse`` rejects
    (:class:`Invalid`, ``ValueError``, ``TypeError``...) is set aside with one notice -> ``default``.
    ``problems``: a list that also gets the notice (for a caller that shows it itself later)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return default
    except IsADirectoryError:
        return _rejected(path, "is a folder, not a file", default, problems)
    except OSError as exc:
        _tell(f"{path}: cannot read ({exc.strerror or exc}); using defaults", problems)
        return default
    try:
        return parse(data)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError, OverflowError) as exc:
        reason = str(exc) if isinstance(exc, Invalid) else f"damaged ({type(exc).__name__}: {str(exc)[:120]})"
        return _rejected(path, reason, default, problems)


def _no_constant(name: str):
    raise Invalid(f"not valid JSON ({name} is not a number JSON allows)")


def parse_json(data: bytes) -> Any:
    """Strict JSON from bytes (UTF-8; NaN/Infinity refused); raises :class:`Invalid`."""
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except Invalid:
        raise
    except (ValueError, RecursionError) as exc:
        raise Invalid(f"not valid JSON ({str(exc)[:120]})") from None


def load_json_validated(path: str | os.PathLike, validator: Callable[[Any], T], default: T,
                        problems: list[str] | None = None) -> T:
    """A JSON file checked by ``validator`` (see the module docstring) -> its value, or ``default``."""
    return load_validated(path, lambda data: validator(parse_json(data)), default, problems)


# -- field-by-field helpers ------------------------------------------------------------------------
_KINDS = {dict: "an object", list: "a list", str: "a string", bool: "true/false", int: "an integer",
          float: "a number", type(None): "null"}


def kind(value: Any) -> str:
    """``value``'s JSON kind in words ("a string", "a list"...)."""
    return _KINDS.get(type(value), type(value).__name__)


def expect_dict(value: Any, what: str = "the file") -> dict:
    if not isinstance(value, dict):
        raise Invalid(f"{what} must be an object, not {kind(value)}")
    return value


def expect_list(value: Any, what: str) -> list:
    if not isinstance(value, list):
        raise Invalid(f"{what} must be a list, not {kind(value)}")
    return value


def expect_str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{what} must be a string, not {kind(value)}")
    return value


def expect_bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"{what} must be true or false, not {kind(value)}")
    return value


def expect_number(value: Any, what: str, lo: float = -math.inf, hi: float = math.inf,
                  allow_none: bool = False) -> float | None:
    """A finite int/float within ``[lo, hi]`` (``None`` allowed when ``allow_none``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid(f"{what} must be a number, not {kind(value)}")
    if not math.isfinite(value) or not lo <= value <= hi:
        raise Invalid(f"{what} must be a finite number in [{lo:g}, {hi:g}], not {value!r}")
    return value


def expect_float(value: Any, what: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    """:func:`expect_number` without ``None``: a finite number within ``[lo, hi]``, as a float."""
    number = expect_number(value, what, lo, hi)
    assert number is not None
    return float(number)


def expect_int(value: Any, what: str, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{what} must be an integer, not {kind(value)}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise Invalid(f"{what} must be an integer in [{lo}, {hi}], not {value}")
    return value
