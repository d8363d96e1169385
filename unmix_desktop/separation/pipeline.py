"""The one song pipeline: load -> separate -> optional four-stem split -> cache (like demucs' ``api.py``).

Used by the window (through :mod:`unmix_desktop.ui.jobs`), ``unmix evaluate``
(:mod:`unmix_desktop.evaluation.runner`) and training's quick evaluation
(:mod:`unmix_desktop.training.quickeval`); a CLI can consume its per-window block stream
(:meth:`Pipeline.stream`). No Qt here.

Contracts
---------
* Audio is float32 ``(n, 2)`` at the model's rate (44.1 kHz); stems are ``{name: (n, 2)}``,
  ordered vocals, drums, bass, other, accompaniment, then the rest.
* Progress: ``report(stage, fraction)`` with ``stage`` one of :data:`STAGES` and ``fraction`` in
  [0, 1] within that stage; once, ``report("duration", seconds)`` tells the song's length.
* Cancel: a ``threading.Event``; :class:`~unmix_desktop.errors.Cancelled` is raised at the next
  check (between hash chunks, windows, EM iterations and stages). Nothing half done is cached.
* Threads and device: the pipeline's ``threads`` / ``device``. torch's process-wide thread count
  is changed only *while* the pipeline computes (:func:`torch_threads`) and restored afterwards.
* Model options follow the settings (:func:`configure_model`): Spleeter's mask ``exponent`` is the
  separator's ratio-mask ``power`` (2 without a soft mask), as its model docstring requires.
* Play while separating: ``run(..., live=callback)`` separates into preallocated
  :class:`~unmix_desktop.audio.growing.GrowingStems` (the song's decoded length) and calls
  ``live(partial_result, growing)`` once, in the worker thread, after the first window, when the
  song has more than one window (a one-window song is done as soon as it could start); the buffers'
  published ``ready`` frames grow window by window and a player reading them plays at once. The
  finished :class:`SongResult`'s (two) stems are those very buffers (no copy); the cache as usual.
* Errors a user can cause are :class:`~unmix_desktop.errors.AudioError` ("PATH: reason");
  a file that cannot be decoded raises :class:`DecodeError`.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Mapping

import numpy as np

from .. import cache as cache_mod
from ..audio import io as audio_io
from ..audio.growing import GrowingStems
from ..audio.io import check_song_path  # re-exported: it lives with the file code (no torch)
from ..errors import AudioError, Cancelled
from .settings import SeparationSettings

if TYPE_CHECKING:  # torch is imported when the first separation starts, not at start-up
    from .base import SpectrogramModel

Report = Callable[[str, float], None]
#: ``live(partial, growing)``: a :class:`SongResult` whose stems are the buffers being filled
#: (``seconds`` 0) and the :class:`GrowingStems` (see the module docstring).
Live = Callable[["SongResult", GrowingStems], None]

#: The stages of :meth:`Pipeline.run`, in order ("cache" replaces decode..fourstems on a hit).
STAGES = ("read", "cache", "decode", "model", "separate", "fourstems", "save")
STEM_ORDER = ("vocals", "drums", "bass", "other", "guitar", "piano", "accompaniment", "residual")
FOUR_STEMS_VARIANT = "4stems"


class DecodeError(AudioError):
    """The file exists and has an audio extension, but its contents cannot be decoded."""


def _no_report(stage: str, fraction: float) -> None:
    pass


def order_stems(stems: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    rank = {name: i for i, name in enumerate(STEM_ORDER)}
    return dict(sorted(stems.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


#: Decoder messages that describe the wrong thing (FFmpeg/libsndfile say "does not exist ...
#: possibly a pipe?" for a regular file whose bytes are not audio).
_MISLEADING = ("possibly a pipe", "does not exist", "not a regular file")


def decode(path: Path, max_duration: float | None = None) -> np.ndarray:
    """:func:`~unmix_desktop.audio.io.load_audio`, with decode failures as :class:`DecodeError`."""
    try:
        return audio_io.load_audio(path, max_duration=max_duration)
    except AudioError as exc:
        reason = exc.reason
        not_decoding = reason in ("file is empty", "permission denied") or reason.startswith("too long")
        if not Path(path).is_file() or not_decoding:
            raise
        if any(m in reason.lower() for m in _MISLEADING):
            kind = Path(path).suffix.lstrip(".").upper() or "audio"
            reason = f"cannot decode: not a valid {kind} file (corrupt or another format)"
        elif not reason.startswith("cannot decode"):
            reason = f"cannot decode: {reason}"
        raise DecodeError(path, reason) from exc


# ------------------------------------------------------------------------------------------------
# threads, device, model options
# ------------------------------------------------------------------------------------------------

def worker_threads() -> int:
    """Torch threads for a separation beside a UI: one core is left to the UI and the audio callback.

    (On a busy 2-core machine, two OpenMP threads made a separation ~10x slower than one.)
    Override with ``UNMIX_TORCH_THREADS``.
    """
    try:
        return max(1, int(os.environ["UNMIX_TORCH_THREADS"]))
    except (KeyError, ValueError):
        return max(1, (os.cpu_count() or 1) - 1)


_threads_lock = threading.RLock()


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the body with torch's CPU thread count at ``n`` (``None``: leave it) and restore it after."""
    import torch

    with _threads_lock:
        before = torch.get_num_threads()
        if n:
            torch.set_num_threads(int(n))
    try:
        yield
    finally:
        with _threads_lock:
            torch.set_num_threads(before)


def configure_model(model, settings: SeparationSettings) -> None:
    """Make the model's own options agree with the separator settings.

    Spleeter extends its masks above 11 kHz so that a ratio mask with ``power == exponent`` gives
    them back exactly; its EM reads squared estimates without a soft mask (exponent 2).
    """
    if hasattr(model, "exponent") and hasattr(model, "extension"):
        model.exponent = float(settings.power) if settings.softmask else 2.0


def make_separator(model, settings: SeparationSettings, device=None, threads: int | None = None):
    """A :class:`~.separator.Separator` for ``model`` with its options set from ``settings``.

    Call inside :func:`torch_threads` (the separator sets torch's thread count when created)."""
    from .demucs_run import DemucsSeparator, is_demucs_model
    from .separator import Separator

    if is_demucs_model(model):  # a waveform model: same interface, its own stems (no four-stem split)
        return DemucsSeparator(model, settings, device=device, threads=threads)
    configure_model(model, settings)
    return Separator(model, settings, device=device, threads=threads)


def separate_audio(model, mixture: np.ndarray, settings: SeparationSettings | None = None, *,
                   four_stems: bool = False, threads: int | None = 1, device=None,
                   progress: Callable[[float], None] | None = None,
                   cancel: threading.Event | None = None) -> dict[str, np.ndarray]:
    """Separate an array (no file, no cache): ``mixture`` (n, 2) -> ordered ``{stem: (n, 2)}``.

    What evaluation and training's quick scores call, so they hear what the app plays."""
    settings = settings or SeparationSettings()
    with torch_threads(threads):
        separator = make_separator(model, settings, device, threads)
        stems = separator.separate(mixture, progress=progress, cancel=cancel)
        if four_stems:
            stems = split_four(stems, cancel=cancel)
    return order_stems(stems)


def split_four(stems: Mapping[str, np.ndarray], progress=None, cancel=None,
               model: str | None = None) -> dict[str, np.ndarray]:
    """vocals + accompaniment -> vocals, drums, bass, other (:func:`~.fourstems.four_stems`);
    ``model``: ``None``/``"dsp"`` for the signal-processing split, or a drums/bass/other model name."""
    from .fourstems import four_stems

    return order_stems(four_stems(stems, progress=progress, cancel=cancel, model=model))


def four_stem_variant(model: str | None) -> str:
    """The cache variant of a four-stem result: the DSP split keeps the plain name."""
    from . import learned4

    return FOUR_STEMS_VARIANT if learned4.is_dsp(model) else f"{FOUR_STEMS_VARIANT}-{learned4.resolve(model)}"


def four_stems_available() -> bool:
    try:
        from . import fourstems
    except ImportError:
        return False
    return hasattr(fourstems, "four_stems")


# ------------------------------------------------------------------------------------------------
# models
# ------------------------------------------------------------------------------------------------

class ModelProvider:
    """Loads models by name once (in a worker thread) and keeps the last one for the next songs."""

    def __init__(self, loader: Callable[[str], "SpectrogramModel"] | None = None):
        if loader is None:
            from .registry import load_model

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


# ------------------------------------------------------------------------------------------------
# the song pipeline
# ------------------------------------------------------------------------------------------------

@dataclass
class SongRequest:
    path: Path
    model_name: str
    settings: SeparationSettings = field(default_factory=SeparationSettings)
    four_stems: bool = False
    use_cache: bool = True               # False: neither read nor write the stem cache
    max_duration: float | None = None
    four_stem_model: str | None = None   # None/"dsp": signal processing; else a drums/bass/other model
    refresh: bool = False                # True: separate afresh and replace what the cache holds

    @property
    def variant(self) -> str:
        return four_stem_variant(self.four_stem_model) if self.four_stems else ""


@dataclass
class SongResult:
    path: Path
    mixture: np.ndarray                 # float32 (n, 2)
    stems: dict[str, np.ndarray]        # ordered: vocals first
    model_name: str
    model_card: dict
    from_cache: bool
    seconds: float                      # wall time of the whole job
    separation_seconds: float           # time spent separating (0 from the cache)
    settings_key: str
    four_stems: bool = False
    sample_rate: int = audio_io.SAMPLE_RATE
    content_hash: str | None = None     # SHA-256 of the file (names its saved session)
    reused_two_stems: bool = False      # a four-stem result split from the cached two-stem one

    @property
    def duration(self) -> float:
        return self.mixture.shape[0] / self.sample_rate

    @property
    def title(self) -> str:
        return self.path.stem


def _jsonable(card: dict) -> dict:
    out: dict = {}
    for k, v in card.items():
        if isinstance(v, (str, int, float, bool)) or v is None:
            out[k] = v
        elif isinstance(v, (list, tuple)):
            out[k] = [x if isinstance(x, (str, int, float, bool)) else str(x) for x in v]
        else:
            out[k] = str(v)
    return out


class Pipeline:
    """Load -> separate -> (four stems) -> cache, with one thread/device policy.

    ``models``: a :class:`ModelProvider` (or a ``loader(name) -> model``); ``cache``: a
    :class:`~unmix_desktop.cache.StemCache` or ``None``; ``threads``: torch CPU threads while it
    computes (``None``: every core); ``device``: torch device (``None``: CUDA when present).
    """

    def __init__(self, models: ModelProvider | Callable[[str], "SpectrogramModel"] | None = None,
                 cache: cache_mod.StemCache | None = None, threads: int | None = None, device=None):
        self.models = models if isinstance(models, ModelProvider) else ModelProvider(models)
        self.cache = cache
        self.threads = threads
        self.device = device

    # -- the per-window block stream (for a CLI writing stems as they come) ---------------------
    def stream(self, mixture: np.ndarray, model_name: str, settings: SeparationSettings | None = None,
               progress: Callable[[float], None] | None = None,
               cancel: threading.Event | None = None) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Yield ``(offset, {stem: block})`` window by window (blocks final, contiguous, in order).

        Memory is bounded by the window length. torch's thread count is this pipeline's while
        the generator runs and restored when it is exhausted or closed."""
        settings = settings or SeparationSettings()
        model = self.models.get(model_name)
        with torch_threads(self.threads):
            separator = make_separator(model, settings, self.device, self.threads)
            yield from separator.stream(mixture, progress=progress, cancel=cancel)

    def separate(self, mixture: np.ndarray, model_name: str, settings: SeparationSettings | None = None,
                 four_stems: bool = False, progress: Callable[[float], None] | None = None,
                 cancel: threading.Event | None = None) -> dict[str, np.ndarray]:
        """An array in, ordered stems out (no file, no cache)."""
        return separate_audio(self.models.get(model_name), mixture, settings, four_stems=four_stems,
                              threads=self.threads, device=self.device, progress=progress, cancel=cancel)

    # -- a song file -------------------------------------------------------------------------
    def stream_into(self, growing: GrowingStems, separator, mixture, progress=None, cancel=None,
                    on_first: Callable[[], None] | None = None) -> GrowingStems:
        """Fill ``growing`` from ``separator``'s block stream (call inside :func:`torch_threads`);
        ``on_first()`` runs once the first window is in."""
        for offset, blocks in separator.stream(mixture, progress=progress, cancel=cancel):
            growing.write(offset, blocks)
            if on_first is not None:
                on_first()
                on_first = None
        growing.finish()
        return growing

    def run(self, request: SongRequest, report: Report | None = None,
            cancel: threading.Event | None = None, live: Live | None = None) -> SongResult:
        """Hash -> cache lookup -> decode -> separate -> (4 stems) -> cache. See the module docstring.

        ``live``: play while separating (module docstring); not called on a cache hit."""
        report = report or _no_report
        cancel = cancel or threading.Event()
        t0 = time.perf_counter()
        path = check_song_path(request.path)
        settings_key = request.settings.key()

        def check() -> None:
            if cancel.is_set():
                raise Cancelled()

        def result(mixture, stems, card, from_cache, sep_s, **kw) -> SongResult:
            return SongResult(path, mixture, order_stems(stems), request.model_name, card, from_cache,
                              time.perf_counter() - t0, sep_s, settings_key, request.four_stems,
                              content_hash=digest, **kw)

        report("read", 0.0)
        digest = key = None
        cache = self.cache if request.use_cache else None  # where the result is stored
        reuse = None if request.refresh else cache  # where a stored result may come from
        if self.cache is not None:
            try:
                digest = cache_mod.file_hash(path, cancel)
            except OSError as exc:
                raise AudioError(path, f"cannot read ({exc.strerror or exc})") from exc
            key = cache_mod.make_key(digest, request.model_name, settings_key, request.variant)
        if reuse is not None:
            assert key is not None and digest is not None  # cache implies self.cache: both were made above
            entry = reuse.get(key) if reuse.has(key) else None
            if entry is not None and entry.mixture is not None:
                report("cache", 1.0)
                return result(entry.mixture, entry.stems, entry.meta.get("card", {}), True, 0.0)
            if request.four_stems:  # the two-stem result of the same song, model and settings
                two_key = cache_mod.make_key(digest, request.model_name, settings_key, "")
                two = reuse.get(two_key) if reuse.has(two_key) else None
                if two is not None and two.mixture is not None and {"vocals", "accompaniment"} <= set(two.stems):
                    report("cache", 1.0)
                    t_sep = time.perf_counter()
                    with torch_threads(self.threads):
                        report("fourstems", 0.0)
                        stems = split_four(two.stems, lambda f: report("fourstems", f), cancel, request.four_stem_model)
                    check()
                    card = two.meta.get("card", {})
                    self._save(key, stems, two.mixture, path, request, settings_key, card, report)
                    return result(two.mixture, stems, card, True, time.perf_counter() - t_sep,
                                  reused_two_stems=True)
        check()
        report("decode", 0.0)
        mixture = decode(path, request.max_duration)
        report("duration", mixture.shape[0] / audio_io.SAMPLE_RATE)
        check()
        report("model", 0.0)
        model = self.models.get(request.model_name)
        check()
        t_sep = time.perf_counter()
        with torch_threads(self.threads):
            separator = make_separator(model, request.settings, self.device, self.threads)
            report("separate", 0.0)
            card = _jsonable(dict(getattr(model, "card", {}) or {}))
            if live is not None and len(separator.windows(mixture.shape[0])) > 1:
                growing = GrowingStems(separator.output_targets, mixture.shape[0], slack=0)
                partial = result(mixture, growing.stems, card, False, 0.0)
                self.stream_into(growing, separator, mixture, lambda f: report("separate", f), cancel,
                                 on_first=lambda: live(partial, growing))
                stems = growing.result()
            else:
                stems = separator.separate(mixture, progress=lambda f: report("separate", f), cancel=cancel)
            pair = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in stems.items()}
            if request.four_stems and not getattr(separator, "native_stems", False):
                check()
                if cache is not None and digest is not None:  # keep the two-stem result: switching back is instant
                    two_key = cache_mod.make_key(digest, request.model_name, settings_key, "")
                    self._save(two_key, pair, mixture, path, SongRequest(path, request.model_name, request.settings),
                               settings_key, card, None)
                report("fourstems", 0.0)
                stems = split_four(pair, lambda f: report("fourstems", f), cancel, request.four_stem_model)
        sep_seconds = time.perf_counter() - t_sep
        check()
        stems = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in stems.items()}
        if cache is not None:
            self._save(key, stems, mixture, path, request, settings_key, card, report)
        report("save", 1.0)
        return result(mixture, stems, card, False, sep_seconds)

    def _save(self, key, stems, mixture, path, request: SongRequest, settings_key, card, report) -> None:
        if self.cache is None or key is None:
            return
        if report:
            report("save", 0.0)
        meta = {"source": str(path), "model": request.model_name, "settings": settings_key,
                "variant": request.variant, "card": _jsonable(card)}
        try:
            self.cache.put(key, dict(stems), mixture, meta)
        except OSError as exc:  # a full or read-only cache must not lose the separation: said once
            from ..persist import notice

            notice(f"{self.cache.root}: cannot write the cache ({exc.strerror or exc}); "
                   "the stems are not kept for next time", key="cache-unwritable")
