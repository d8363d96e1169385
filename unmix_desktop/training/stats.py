"""Spectrogram features and the input statistics of the training set.

The network standardises its input with a per-bin mean and scale (open-unmix's ``input_mean``
and ``input_scale``), computed here over the training tracks' mixtures exactly as open-unmix does:
magnitude STFT, averaged over channels, statistics over all frames of all tracks, without
augmentation. Bins the data does not cover (above 8 kHz for 16 kHz data) are cut by ``max_bin``;
bins that are nearly empty even below it (the resampler's transition band just under 8 kHz) have
a tiny std; :func:`floored_std` bounds it so a real song's energy there cannot blow up the input.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..separation import transforms


def magnitude(audio: torch.Tensor, n_fft: int = transforms.N_FFT, n_hop: int = transforms.N_HOP,
              max_bin: int | None = None) -> torch.Tensor:
    """``(..., C, n)`` time signal -> ``(..., C, F, T)`` STFT magnitude, ``F = max_bin`` if given."""
    spec = transforms.stft(audio, n_fft, n_hop)
    if max_bin is not None:
        spec = spec[..., :max_bin, :]
    return spec.abs()


def input_statistics(dataset, n_fft: int = transforms.N_FFT, n_hop: int = transforms.N_HOP,
                     max_bin: int | None = None, progress: Callable[[int, int], None] | None = None,
                     max_items: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-bin mean and std of the channel-averaged mixture magnitude over ``dataset``.

    ``dataset`` yields ``(mixture (C, n), target)``; use whole, un-augmented tracks (the validation
    form of the training set). Returns ``(mean, std, frames)``, float32 arrays of ``max_bin`` (or
    all) bins, accumulated in float64.
    """
    total = None
    total_sq = None
    frames = 0
    n = len(dataset) if max_items is None else min(len(dataset), max_items)
    for i in range(n):
        x, _ = dataset[i]
        mag = magnitude(x, n_fft, n_hop, max_bin).mean(0).double()  # (F, T)
        if total is None:
            total = torch.zeros(mag.shape[0], dtype=torch.float64)
            total_sq = torch.zeros_like(total)
        total += mag.sum(1)
        total_sq += (mag * mag).sum(1)
        frames += mag.shape[1]
        if progress:
            progress(i + 1, n)
    if not frames:
        raise ValueError("input_statistics: the data set is empty")
    mean = total / frames
    var = torch.clamp(total_sq / frames - mean * mean, min=0.0)
    return mean.float().numpy(), var.sqrt().float().numpy(), frames


def floored_std(std: np.ndarray, floor: float = 1e-3, relative_to: str = "max") -> np.ndarray:
    """``std`` with a lower bound: ``floor`` times the largest std (``relative_to="max"``, as
    open-unmix with floor 1e-4) or times the median std (``"median"``), and never below 1e-8."""
    std = np.asarray(std, dtype=np.float32)
    ref = float(np.median(std)) if relative_to == "median" else float(std.max())
    return np.maximum(std, max(floor * ref, 1e-8)).astype(np.float32)
