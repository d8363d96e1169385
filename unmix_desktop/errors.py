"""Typed errors. Every error a user can hit is one line: what failed and why."""

from __future__ import annotations

import os


class UnmixError(Exception):
    """Base class of all errors this package raises on purpose."""


class AudioError(UnmixError):
    """A song could not be read or written. ``str()`` is ``"PATH: reason"``."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ModelError(UnmixError):
    """A model could not be found, loaded or is incompatible."""


class UsageError(UnmixError):
    """A command-line value that cannot be used (bad number, unknown device or target)."""


class Cancelled(UnmixError):
    """Raised when a long operation notices that it was asked to stop."""

    def __init__(self, message: str = "cancelled"):
        super().__init__(message)


class Stopped(KeyboardInterrupt):
    """Raised by the command line's signal handler (SIGINT, SIGTERM, SIGHUP).

    A subclass of :class:`KeyboardInterrupt`, so every ``finally``/``except BaseException`` that
    removes temporary files runs exactly as for Ctrl-C. ``signum`` is the signal's number.
    """

    def __init__(self, signum: int):
        import signal

        self.signum = int(signum)
        super().__init__(signal.Signals(self.signum).name)
