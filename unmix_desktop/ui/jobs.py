"""What the window's worker threads run. Plain Python (no Qt), so it is testable on its own.

Each job is a function ``job(report, cancel) -> result`` where ``report(stage, fraction)`` tells the
UI how far it is and ``cancel`` is a ``threading.Event``. The window runs them through
:mod:`unmix_desktop.ui.worker`; widgets only draw the results. Separation itself is the song
pipeline (:mod:`unmix_desktop.separation.pipeline`); this module adds the window's view of it
(stage labels, the ETA), the display spectrograms and the export job.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .. import cache as cache_mod
from ..audio.spectrogram import DisplaySpectrogram, display_spectrogram
from ..errors import AudioError, Cancelled
from ..progress import format_time
from ..separation.pipeline import (
    STEM_ORDER,
    ModelProvider,
    Pipeline,
    SongRequest,
    SongResult,
    check_song_path,
    four_stems_available,
    order_stems,
    worker_threads,
)

__all__ = ["STAGES", "STEM_ORDER", "EtaEstimator", "ExportRequest", "ModelProvider", "SeparationRequest",
           "SongResult", "check_song_path", "export_plan", "format_eta", "format_time",
           "four_stems_available", "order_stems", "run_export", "run_separation", "run_spectrograms",
           "stage_fraction", "stage_label", "worker_threads"]

Report = Callable[[str, float], None]
#: The window's name for a pipeline request (kept for callers of the earlier API).
SeparationRequest = SongRequest

#: Stage labels shown under the progress bar, and the share of the bar each stage takes.
STAGES = {
    "read": ("Reading file…", 0.00, 0.02),
    "cache": ("Loading separated stems from the cache…", 0.02, 1.00),
    "decode": ("Decoding audio…", 0.02, 0.07),
    "model": ("Loading model…", 0.07, 0.10),
    "separate": ("Separating…", 0.10, 0.95),
    "fourstems": ("Estimating drums, bass and other…", 0.95, 0.98),
    "save": ("Saving stems to the cache…", 0.98, 1.00),
}


def stage_fraction(stage: str, fraction: float) -> float:
    """Overall progress in [0, 1] of ``fraction`` of ``stage``."""
    _, lo, hi = STAGES.get(stage, ("", 0.0, 1.0))
    return lo + (hi - lo) * min(max(fraction, 0.0), 1.0)


def stage_label(stage: str) -> str:
    return STAGES.get(stage, (stage,))[0]


def run_separation(request: SongRequest, models: ModelProvider, cache: cache_mod.StemCache | None,
                   report: Report, cancel: threading.Event, live=None) -> SongResult:
    """The window's separation job: the song pipeline with the window's thread policy
    (``live``: play while separating, see :meth:`Pipeline.run`)."""
    return Pipeline(models, cache, threads=worker_threads()).run(request, report, cancel, live=live)


class EtaEstimator:
    """Turns coarse progress reports into a smooth bar and a time-left estimate.

    ``prior``: seconds of work expected in total (from the speed measured on earlier songs), used
    until the first real progress report arrives.
    """

    def __init__(self, prior: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.start = clock()
        self.prior = prior
        self.fraction = 0.0
        self._t_last = self.start

    def update(self, fraction: float) -> None:
        if fraction > self.fraction:
            self.fraction = min(fraction, 1.0)
            self._t_last = self.clock()

    def estimate(self) -> tuple[float, float | None]:
        """(fraction to display, seconds left or ``None`` when unknown yet)."""
        now = self.clock()
        elapsed = now - self.start
        total = None
        if self.fraction > 0.02:
            total = (self._t_last - self.start) / self.fraction
        elif self.prior:
            total = self.prior
        if not total:
            return self.fraction, None
        shown = max(self.fraction, min(elapsed / total, 0.99))
        return shown, max(total - elapsed, 0.0)


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "estimating time left…"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"about {max(seconds, 1)} s left"
    return f"about {seconds // 60} min {seconds % 60:02d} s left"


# ---------------------------------------------------------------------------------------------
# memory
# ---------------------------------------------------------------------------------------------

def release_freed_memory(*, wait: bool = False) -> bool:
    """Hand the heap memory freed by a separation back to the system (glibc's ``malloc_trim``; the
    separation's STFTs and Wiener temporaries, and the analyses', are freed but glibc keeps them).
    Called after a separation, the spectrograms, the beats and the melody: with a 2:46 song and
    Spleeter the window's RSS once everything is shown went 1204 -> 978 MiB (2 stems) and 1404 ->
    1165 MiB (4 stems). False where there is no glibc.

    Never on the calling (UI) thread: a trim can take a second, which was a frozen window (a 524-ms
    event-loop stall in ``test_ui_stays_responsive_during_separation``); see
    :func:`~unmix_desktop.separation.allocator.release_memory_in_background`."""
    from ..separation.allocator import release_memory_in_background

    return release_memory_in_background(wait=wait)


# ---------------------------------------------------------------------------------------------
# spectrograms
# ---------------------------------------------------------------------------------------------

def run_spectrograms(mixture: np.ndarray, stems: dict[str, np.ndarray], report: Report,
                     cancel: threading.Event, columns: int = 1400, bands: int = 160) -> dict[str, DisplaySpectrogram]:
    """Display spectrograms of the mixture (key ``"mixture"``) and each stem, on one colour scale."""
    out: dict[str, DisplaySpectrogram] = {}
    mix = display_spectrogram(mixture, columns=columns, bands=bands, cancel=cancel)
    out["mixture"] = mix
    for i, (name, audio) in enumerate(stems.items()):
        report("spectrogram", (i + 1) / (len(stems) + 1))
        out[name] = display_spectrogram(audio, columns=columns, bands=bands, ref_db=mix.ref_db, cancel=cancel)
    return out


# ---------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------

@dataclass
class ExportRequest:
    folder: Path
    stems: dict[str, np.ndarray]
    source_path: Path | None
    title: str
    fmt: str = "wav"
    write_stems: bool = True
    write_karaoke: bool = True
    write_mix: bool = False
    mix_state: object = None  # audio.mixer.MixState of the current faders
    stretch: dict | None = None  # tempo / semitones / cents (export.stretch_offline); None: original
    rate: int | None = None      # sample rate of the files (None: the stems' 44.1 kHz)


def export_plan(req: ExportRequest) -> list[tuple[str, Path]]:
    """``(what, path)`` of every file the request writes."""
    ext = "." + req.fmt.lower().lstrip(".")
    plan: list[tuple[str, Path]] = []
    stem_dir = req.folder / f"{req.title} - stems"
    if req.write_stems:
        plan += [(f"stem:{name}", stem_dir / f"{name}{ext}") for name in req.stems]
    if req.write_karaoke and "vocals" in req.stems and len(req.stems) > 1:
        plan.append(("karaoke", req.folder / f"{req.title} (karaoke){ext}"))
    if req.write_mix and req.mix_state is not None:
        plan.append(("mix", req.folder / f"{req.title} (custom mix){ext}"))
    return plan


def run_export(req: ExportRequest, report: Report, cancel: threading.Event) -> list[Path]:
    from ..audio import export as export_mod
    from ..audio.mixer import MixState

    plan = export_plan(req)
    if not plan:
        raise AudioError(req.folder, "nothing to export: choose stems, the karaoke track or the current mix")
    written: list[Path] = []
    stretch = dict(req.stretch or {})
    if req.rate:
        stretch["rate"] = int(req.rate)
    for i, (what, path) in enumerate(plan):
        if cancel.is_set():
            raise Cancelled()
        report("export", i / len(plan))
        if what.startswith("stem:"):
            name = what[5:]
            path.parent.mkdir(parents=True, exist_ok=True)
            written.append(export_mod.export_mix(path, {name: req.stems[name]}, MixState.from_names([name]),
                                                 source_path=req.source_path, **stretch))
        elif what == "karaoke":
            written.append(export_mod.export_karaoke(path, req.stems, source_path=req.source_path, **stretch))
        else:
            written.append(export_mod.export_mix(path, req.stems, req.mix_state, source_path=req.source_path,
                                                 **stretch))
    report("export", 1.0)
    return written
