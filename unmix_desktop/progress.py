"""A small text progress bar for the command line (stderr, one line, ETA)."""

from __future__ import annotations

import sys
import time


def format_time(seconds: float, tenths: bool = False) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour on), or ``m:ss.s`` with ``tenths``: the one time format of the
    command line, the window and training logs."""
    seconds = max(float(seconds), 0.0)
    if tenths:
        m, s = divmod(seconds, 60)
        return f"{int(m)}:{s:04.1f}"
    h, rem = divmod(int(seconds), 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressBar:
    def __init__(self, label: str, stream=None, width: int = 30) -> None:
        from .persist import one_line

        self.label = one_line(label)  # a newline in a file name must not split the progress line
        self.stream = stream or sys.stderr
        self.width = width
        self.start = time.monotonic()
        self.fraction = 0.0

    def __call__(self, fraction: float) -> None:
        self.update(fraction)

    def update(self, fraction: float, extra: str = "") -> None:
        self.fraction = min(max(fraction, 0.0), 1.0)
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.fraction * (1 - self.fraction) if self.fraction > 0 else 0.0
        filled = int(self.width * self.fraction)
        bar = "#" * filled + "-" * (self.width - filled)
        line = (f"\r{self.label} [{bar}] {self.fraction * 100:5.1f}%  "
                f"{format_time(elapsed)} elapsed, ETA {format_time(eta)} {extra}")
        if self.stream.isatty() or self.fraction >= 1.0 or self.fraction == 0.0:
            self.stream.write(line)
            self.stream.flush()

    def close(self, message: str = "") -> None:
        from .persist import one_line

        self.stream.write(("\r" + one_line(message) if message else "") + "\n")
        self.stream.flush()
