"""The seam between model families and the separator.

A *spectrogram model* maps the mixture's STFT magnitude to one magnitude estimate per target.
The separator (STFT, windows, Wiener filter, inverse STFT) only relies on this contract, so the
open-unmix BLSTM and Spleeter's U-Net plug in the same way.
"""

from __future__ import annotations

import torch

from ..audio.io import SAMPLE_RATE


class SpectrogramModel(torch.nn.Module):
    """Base class. Subclasses set ``targets`` and implement ``forward``.

    ``forward(mag)``: ``mag`` is ``(B, C, F, T)`` float32 with ``F = n_fft // 2 + 1``; the result is
    ``(B, S, C, F, T)`` non-negative magnitude estimates, ``S = len(targets)``.
    """

    sample_rate: int = SAMPLE_RATE
    n_fft: int = 4096
    n_hop: int = 1024

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.card: dict = {}

    @property
    def nb_bins(self) -> int:
        return self.n_fft // 2 + 1

    def forward(self, mag: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError
