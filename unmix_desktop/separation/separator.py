"""Separate a whole song with any :class:`~.base.SpectrogramModel`, in bounded memory.

The song is cut into overlapping windows (default 11.5 s with 1 s overlap). Each window goes
STFT -> model -> post-processing (Wiener/EM, residual, logit) -> inverse STFT, and the windows
are cross-faded with complementary linear ramps. Because every window's stems sum to that
window's mixture and the ramps sum to one, the stems still sum to the song when a residual is
used. Memory depends on the window length, not on the song length. Progress is reported after
each window; a cancel token (``threading.Event``) is checked between windows and EM iterations.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch

from ..audio.stream import as_source, iter_windows
from ..errors import Cancelled, ModelError
from . import transforms
from .base import SpectrogramModel
from .postprocess import postprocess
from .settings import SeparationSettings
from .windows import fade_weights, spans

ProgressFn = Callable[[float], None]


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class Separator:
    model: SpectrogramModel
    settings: SeparationSettings = field(default_factory=SeparationSettings)
    device: torch.device | str | None = None
    threads: int | None = None     # torch CPU threads (None = every core)

    def __post_init__(self) -> None:
        self.device = torch.device(self.device) if self.device is not None else default_device()
        self.model = self.model.to(self.device).eval()
        if self.device.type == "cpu":
            torch.set_num_threads(self.threads or max(1, os.cpu_count() or 1))

    @property
    def output_targets(self) -> list[str]:
        names = list(self.model.targets)
        if self.settings.residual and "accompaniment" not in names:
            names.append("accompaniment")
        if self.settings.targets:
            unknown = [t for t in self.settings.targets if t not in names]
            if unknown:
                raise ModelError(f"model gives {', '.join(names)}; cannot produce {', '.join(unknown)}")
            names = [t for t in names if t in self.settings.targets]
        return names

    # -- windows -----------------------------------------------------------------------------
    def window_sizes(self) -> tuple[int, int]:
        """(window, overlap) in frames."""
        sr = self.model.sample_rate
        win = max(int(self.settings.window_s * sr), 4 * self.model.n_fft)
        return win, min(int(self.settings.overlap_s * sr), win // 2)

    def windows(self, n: int) -> list[tuple[int, int]]:
        """The ``(start, end)`` windows of an ``n``-frame song (:meth:`stream` cuts the same)."""
        return spans(n, *self.window_sizes())

    # -- one window ------------------------------------------------------------------------
    @torch.no_grad()
    def _magnitudes(self, spec: torch.Tensor) -> torch.Tensor:
        """spec (C, F, T) complex -> (S, C, F, T) magnitude estimates (TTA-averaged if asked)."""
        mag = spec.abs().unsqueeze(0)
        est = self.model(mag)[0]
        if self.settings.swap_tta and mag.shape[1] == 2:
            swapped = self.model(mag.flip(1))[0].flip(1)
            est = 0.5 * (est + swapped)
        return est

    def separate_window(self, audio: np.ndarray,
                        should_stop: Callable[[], None] | None = None) -> dict[str, np.ndarray]:
        """Separate a short excerpt (n, 2) in one go. Returns all targets (model + residual)."""
        s = self.settings
        n = audio.shape[0]
        x_t = torch.from_numpy(np.ascontiguousarray(audio.T, dtype=np.float32)).to(self.device)
        spec = transforms.stft(x_t, self.model.n_fft, self.model.n_hop)  # (C, F, T)
        est = self._magnitudes(spec)
        if should_stop:
            should_stop()
        v = est.permute(3, 2, 1, 0).cpu().numpy()            # (T, F, C, S)
        x = spec.permute(2, 1, 0).cpu().numpy()              # (T, F, C)
        names = list(self.model.targets)
        add_res = s.residual and "accompaniment" not in names
        y = postprocess(v, x, niter=s.niter, softmask=s.softmask, power=s.power, logit=s.logit,
                        residual=add_res, should_stop=should_stop)
        if add_res:
            names.append("accompaniment")
        del v, x, est
        stems = {}
        for i, name in enumerate(names):  # one source at a time keeps the inverse STFT's buffers small
            y_i = torch.from_numpy(np.ascontiguousarray(y[..., i].transpose(2, 1, 0))).to(torch.complex64)
            stems[name] = transforms.istft(y_i, n, self.model.n_fft, self.model.n_hop).numpy().T
        del y
        if s.residual:
            others = [k for k in names if k != "accompaniment"]
            stems["accompaniment"] = audio - sum(stems[k] for k in others)
        return stems

    # -- whole song --------------------------------------------------------------------------
    def stream(self, audio, progress: ProgressFn | None = None,
               cancel: threading.Event | None = None) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Separate ``audio`` window by window, yielding ``(offset, {target: block})``.

        ``audio`` is an ``(n, 2)`` float32 array at the model's rate, or a source that reads it in
        pieces (:mod:`unmix_desktop.audio.stream`, e.g. :func:`~unmix_desktop.audio.stream.open_audio`
        for a file): then the song is never in memory as a whole, only one window and its overlap.
        The blocks are final (cross-fades done), contiguous and cover the whole song in order, so
        a caller can write them to disk as they come and never hold the whole set of stems.
        Progress is the fraction of the (stated) length done, 1.0 at the end.
        """
        source = as_source(audio)
        total = source.frames

        def should_stop() -> None:
            if cancel is not None and cancel.is_set():
                raise Cancelled()

        names = self.output_targets
        win, overlap = self.window_sizes()
        if progress:
            progress(0.0)
        pending: dict[str, np.ndarray] = {}
        for w in iter_windows(source, win, overlap):
            should_stop()
            stems = self.separate_window(w.audio, should_stop)
            weight = fade_weights(w.end - w.start, w.fade_in, w.fade_out)[:, None]
            for name in names:
                block = stems[name] * weight
                if name in pending:  # the previous window's fade-out, over this one's fade-in
                    block[:pending[name].shape[0]] += pending[name]
                pending[name] = block
            cut = w.done - w.start
            yield w.start, {name: pending[name][:cut] for name in names}
            pending = {name: pending[name][cut:] for name in names}
            if progress:
                progress(1.0 if w.last else min(w.done / total, 0.99) if total else 0.5)

    def separate(self, audio: np.ndarray, progress: ProgressFn | None = None,
                 cancel: threading.Event | None = None) -> dict[str, np.ndarray]:
        """Separate ``audio`` (n, 2) float32 at the model's rate into ``{target: (n, 2)}``."""
        return collect_stream(self, audio, progress, cancel)


def collect_stream(separator, audio: np.ndarray, progress: ProgressFn | None = None,
                   cancel: threading.Event | None = None) -> dict[str, np.ndarray]:
    """``separator.stream(audio)`` gathered into ``{target: (n, 2)}``: ``separate()`` of every
    separator front end (this one, :class:`~.demucs_run.DemucsSeparator`)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 2 or audio.shape[1] != 2:
        raise ValueError(f"expected (n, 2) audio, got {audio.shape}")
    n = audio.shape[0]
    out = {name: np.zeros((n, 2), dtype=np.float32) for name in separator.output_targets}
    for offset, blocks in separator.stream(audio, progress, cancel):
        for name, block in blocks.items():
            out[name][offset:offset + block.shape[0]] = block
    return out
