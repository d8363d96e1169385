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


class Cancelled(UnmixError):
    """Raised when a long operation notices that it was asked to stop."""

    def __init__(self, message: str = "cancelled"):
        super().__init__(message)
