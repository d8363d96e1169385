"""What the window's worker threads run. Plain Python (no Qt), so it is testable on its own.

Each job is a function ``job(report, cancel) -> result`` where ``report(stage, fraction)`` tells the
UI how far it is and ``cancel`` is a ``threading.Event``. The window runs them through
:mod:`unmix_desktop.ui.worker`; widgets only draw the results.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from .. import cache as cache_mod
from ..audio import io as audio_io
from ..audio.spectrogram import DisplaySpectrogram, display_spectrogram
from ..errors import AudioError, Cancelled
from ..separation.settings import SeparationSettings

if TYPE_CHECKING:  # torch is imported by the worker when it first separates, not at start-up
    from ..separation.base import SpectrogramModel

Report = Callable[[str, float], None]

def worker_threads() -> int:
    """Torch threads for the separation worker: one core is left to the UI and the audio callback.

    (On a busy 2-core machine, two OpenMP threads made a separation ~10x slower than one.)
    Override with ``UNMIX_TORCH_THREADS``.
    """
    try:
        return max(1, int(os.environ["UNMIX_TORCH_THREADS"]))
    except (KeyError, ValueError):
        return max(1, (os.cpu_count() or 1) - 1)

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


def check_song_path(path: str | Path) -> Path:
    """Validate a path the user dropped or picked; raises :class:`AudioError` with the reason."""
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "file not found")
    if path.is_dir():
        raise AudioError(path, "is a folder: drop a single audio file")
    if path.suffix.lower() not in audio_io.AUDIO_EXTENSIONS:
        kinds = ", ".join(sorted(e.lstrip(".") for e in audio_io.AUDIO_EXTENSIONS))
        raise AudioError(path, f"not a supported audio file (supported: {kinds})")
    return path


# ---------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------

class ModelProvider:
    """Loads models by name once (in a worker thread) and keeps them for the next songs."""

    def __init__(self, loader: Callable[[str], "SpectrogramModel"] | None = None):
        if loader is None:
            from ..separation.registry import load_model

            loader = load_model
        self._loader = loader
        self._models: dict[str, "SpectrogramModel"] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> "SpectrogramModel":
        with self._lock:
            model = self._models.get(name)
            if model is None:
                model = self._loader(name)
                self._models = {name: model}  # keep one model in memory
            return model

    def loaded(self, name: str) -> "SpectrogramModel | None":
        return self._models.get(name)


def four_stems_available() -> bool:
    try:
        from ..separation import fourstems  # noqa: F401
    except ImportError:
        return False
    return hasattr(fourstems, "four_stems")


# ---------------------------------------------------------------------------------------------
# separation
# ---------------------------------------------------------------------------------------------

@dataclass
class SeparationRequest:
    path: Path
    model_name: str
    settings: SeparationSettings = field(default_factory=SeparationSettings)
    four_stems: bool = False
    use_cache: bool = True

    @property
    def variant(self) -> str:
        return "4stems" if self.four_stems else ""


@dataclass
class SongResult:
    path: Path
    mixture: np.ndarray                 # float32 (n, 2)
    stems: dict[str, np.ndarray]        # ordered: vocals first
    model_name: str
    model_card: dict
    from_cache: bool
    seconds: float                      # wall time of the whole job
    separation_seconds: float           # time spent in the separator (0 from the cache)
    settings_key: str
    four_stems: bool = False
    sample_rate: int = audio_io.SAMPLE_RATE

    @property
    def duration(self) -> float:
        return self.mixture.shape[0] / self.sample_rate

    @property
    def title(self) -> str:
        return self.path.stem


STEM_ORDER = ("vocals", "drums", "bass", "other", "accompaniment", "residual")


def order_stems(stems: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    rank = {name: i for i, name in enumerate(STEM_ORDER)}
    return dict(sorted(stems.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


def run_separation(request: SeparationRequest, models: ModelProvider, cache: cache_mod.StemCache | None,
                   report: Report, cancel: threading.Event) -> SongResult:
    """Hash -> cache lookup -> decode -> separate -> (4 stems) -> cache. Runs in a worker thread."""
    t0 = time.perf_counter()
    path = check_song_path(request.path)
    settings_key = request.settings.key()

    def check() -> None:
        if cancel.is_set():
            raise Cancelled()

    report("read", 0.0)
    key = None
    if cache is not None and request.use_cache:
        try:
            digest = cache_mod.file_hash(path, cancel)
        except OSError as exc:
            raise AudioError(path, f"cannot read ({exc.strerror or exc})") from exc
        key = cache_mod.make_key(digest, request.model_name, settings_key, request.variant)
        if cache.has(key):
            report("cache", 0.0)
            entry = cache.get(key)
            if entry is not None and entry.mixture is not None:
                report("cache", 1.0)
                return SongResult(path, entry.mixture, order_stems(entry.stems), request.model_name,
                                  entry.meta.get("card", {}), True, time.perf_counter() - t0, 0.0,
                                  settings_key, request.four_stems)
    check()
    report("decode", 0.0)
    mixture = audio_io.load_audio(path)
    report("duration", mixture.shape[0] / audio_io.SAMPLE_RATE)
    check()
    report("model", 0.0)
    model = models.get(request.model_name)
    check()
    from ..separation.separator import Separator

    separator = Separator(model, request.settings, threads=worker_threads())
    t_sep = time.perf_counter()
    report("separate", 0.0)
    stems = separator.separate(mixture, progress=lambda f: report("separate", f), cancel=cancel)
    if request.four_stems:
        check()
        report("fourstems", 0.0)
        from ..separation.fourstems import four_stems

        stems = four_stems(stems, progress=lambda f: report("fourstems", f), cancel=cancel)
    sep_seconds = time.perf_counter() - t_sep
    check()
    stems = order_stems({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in stems.items()})
    card = dict(getattr(model, "card", {}) or {})
    if cache is not None and key is not None:
        report("save", 0.0)
        meta = {"source": str(path), "model": request.model_name, "settings": settings_key,
                "variant": request.variant, "card": _jsonable(card)}
        try:
            cache.put(key, stems, mixture, meta)
        except OSError:
            pass  # a full or read-only cache must not lose the separation
    report("save", 1.0)
    return SongResult(path, mixture, stems, request.model_name, card, False, time.perf_counter() - t0,
                      sep_seconds, settings_key, request.four_stems)


def _jsonable(card: dict) -> dict:
    out = {}
    for k, v in card.items():
        if isinstance(v, (str, int, float, bool)) or v is None:
            out[k] = v
        elif isinstance(v, (list, tuple)):
            out[k] = [x if isinstance(x, (str, int, float, bool)) else str(x) for x in v]
        else:
            out[k] = str(v)
    return out


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


def format_time(seconds: float, tenths: bool = False) -> str:
    seconds = max(seconds, 0.0)
    m, s = divmod(seconds, 60)
    return f"{int(m)}:{s:04.1f}" if tenths else f"{int(m)}:{int(s):02d}"


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
    for i, (what, path) in enumerate(plan):
        if cancel.is_set():
            raise Cancelled()
        report("export", i / len(plan))
        if what.startswith("stem:"):
            name = what[5:]
            path.parent.mkdir(parents=True, exist_ok=True)
            written.append(export_mod.export_mix(path, {name: req.stems[name]}, MixState.from_names([name]),
                                                 source_path=req.source_path))
        elif what == "karaoke":
            written.append(export_mod.export_karaoke(path, req.stems, source_path=req.source_path))
        else:
            written.append(export_mod.export_mix(path, req.stems, req.mix_state, source_path=req.source_path))
    report("export", 1.0)
    return written
