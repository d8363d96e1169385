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
    def windows(self, n: int) -> list[tuple[int, int]]:
        sr = self.model.sample_rate
        win = max(int(self.settings.window_s * sr), 4 * self.model.n_fft)
        overlap = min(int(self.settings.overlap_s * sr), win // 2)
        return spans(n, win, overlap)

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

    def separate_window(self, audio: np.ndarray, should_stop: Callable[[], None] | None = None) -> dict[str, np.ndarray]:
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
    def stream(self, audio: np.ndarray, progress: ProgressFn | None = None,
               cancel: threading.Event | None = None) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Separate ``audio`` window by window, yielding ``(offset, {target: block})``.

        The blocks are final (cross-fades done), contiguous and cover the whole song in order, so
        a caller can write them to disk as they come and never hold the whole set of stems.
        """
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 2 or audio.shape[1] != 2:
            raise ValueError(f"expected (n, 2) audio, got {audio.shape}")
        n = audio.shape[0]

        def should_stop() -> None:
            if cancel is not None and cancel.is_set():
                raise Cancelled()

        names = self.output_targets
        windows = self.windows(n)
        if progress:
            progress(0.0)
        pending: dict[str, np.ndarray] = {}
        pending_start = 0
        for i, (start, end) in enumerate(windows):
            should_stop()
            fade_in = windows[i - 1][1] - start if i > 0 else 0
            fade_out = end - windows[i + 1][0] if i + 1 < len(windows) else 0
            stems = self.separate_window(audio[start:end], should_stop)
            w = fade_weights(end - start, fade_in, fade_out)[:, None]
            for name in names:
                block = stems[name] * w
                if name in pending:  # the overlap with the previous window
                    overlap = pending[name].shape[0] - (start - pending_start)
                    block[:overlap] += pending[name][start - pending_start:]
                    block = np.concatenate([pending[name][: start - pending_start], block])
                pending[name] = block
            done = windows[i + 1][0] if i + 1 < len(windows) else n
            cut = done - pending_start
            yield pending_start, {name: pending[name][:cut] for name in names}
            pending = {name: pending[name][cut:] for name in names}
            pending_start = done
            if progress:
                progress((i + 1) / len(windows))

    def separate(self, audio: np.ndarray, progress: ProgressFn | None = None,
                 cancel: threading.Event | None = None) -> dict[str, np.ndarray]:
        """Separate ``audio`` (n, 2) float32 at the model's rate into ``{target: (n, 2)}``."""
        n = np.asarray(audio).shape[0]
        out = {name: np.zeros((n, 2), dtype=np.float32) for name in self.output_targets}
        for offset, blocks in self.stream(audio, progress, cancel):
            for name, block in blocks.items():
                out[name][offset:offset + block.shape[0]] = block
        return out


def separate(model: SpectrogramModel, audio: np.ndarray, settings: SeparationSettings | None = None,
             progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> dict[str, np.ndarray]:
    """Functional shortcut: ``Separator(model, settings).separate(audio, ...)``."""
    return Separator(model, settings or SeparationSettings()).separate(audio, progress, cancel)
