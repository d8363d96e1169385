"""Progress of a cluster run: songs done / running / failed, throughput, ETA, and the JSON report.

Plain Python (no Ray, no Qt), so it is tested and reused on its own. Times are ``time.monotonic()``
seconds; audio durations are seconds of the songs (``None`` when a song's length is unknown).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..progress import format_time


@dataclass
class SongRecord:
    """One song of the run, as the report lists it."""

    song: str
    result: str
    status: str = "pending"  # pending, running, done, failed
    worker: str = ""  # "host:pid" of the worker process that did it (the last try)
    node: str = ""  # Ray node id of that worker
    seconds: float | None = None  # wall time of the successful try, as the worker measured it
    attempts: int = 0
    audio_seconds: float | None = None
    error: str = ""
    model_source: str = ""  # "local": the worker's own copy of the model; "driver": sent by the driver


@dataclass
class RunStats:
    """Counts and throughput of a run; :meth:`line` is the live progress line."""

    total: int
    start: float = field(default_factory=time.monotonic)
    done: int = 0
    failed: int = 0
    running: int = 0
    audio_done: float = 0.0  # seconds of audio of the songs done
    audio_total: float = 0.0  # seconds of audio of all songs to do (where known)

    def elapsed(self, now: float | None = None) -> float:
        return max((now if now is not None else time.monotonic()) - self.start, 1e-9)

    def songs_per_minute(self, now: float | None = None) -> float:
        return self.done / self.elapsed(now) * 60.0

    def audio_hours_per_hour(self, now: float | None = None) -> float:
        """Hours of audio separated per hour of wall time (the real-time factor's inverse)."""
        return self.audio_done / self.elapsed(now)

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left: by audio still to do at the audio rate so far, else by songs; ``None``
        before the first song is done."""
        if self.done == 0:
            return None
        left_songs = self.total - self.done - self.failed
        if self.audio_total > 0 and self.audio_done > 0:
            rate = self.audio_done / self.elapsed(now)
            left_audio = max(self.audio_total - self.audio_done, 0.0)
            # songs that failed never get done: leave their share out
            return left_audio / rate if left_songs > 0 else 0.0
        return left_songs / (self.done / self.elapsed(now))

    def line(self, now: float | None = None) -> str:
        eta = self.eta(now)
        return (f"cluster: {self.done}/{self.total} done, {self.running} running, {self.failed} failed | "
                f"{self.songs_per_minute(now):.1f} songs/min, {self.audio_hours_per_hour(now):.2f} audio h/h | "
                f"{format_time(self.elapsed(now))} elapsed, ETA {format_time(eta) if eta is not None else '--:--'}")


def report_dict(stats: RunStats, records: list[SongRecord], cluster: dict) -> dict:
    """The JSON report: the run's totals, the cluster it ran on, and one entry per song."""
    return {
        "songs": stats.total,
        "done": stats.done,
        "failed": stats.failed,
        "wall_seconds": round(stats.elapsed(), 3),
        "songs_per_minute": round(stats.songs_per_minute(), 3),
        "audio_hours_per_hour": round(stats.audio_hours_per_hour(), 3),
        "cluster": cluster,
        "results": [asdict(r) for r in records],
    }


def write_report(path: Path, data: dict) -> None:
    from ..atomic import atomic_write_json

    atomic_write_json(path, data)
