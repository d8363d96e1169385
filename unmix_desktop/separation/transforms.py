"""STFT / inverse STFT with torch (no torchaudio). Hann window, centred frames.

Shapes: time signals are ``(..., n_samples)``; spectra are complex ``(..., n_bins, n_frames)``
with ``n_bins = n_fft // 2 + 1``. With hop = n_fft / 4 the Hann window satisfies the
overlap-add condition, so ``istft(stft(x), length=n) == x`` to float precision.
"""

from __future__ import annotations

import numpy as np
import torch

N_FFT = 4096
N_HOP = 1024

_windows: dict[tuple[int, str], torch.Tensor] = {}


def _window(n_fft: int, device: torch.device | str = "cpu") -> torch.Tensor:
    key = (n_fft, str(device))
    if key not in _windows:
        _windows[key] = torch.hann_window(n_fft, periodic=True, device=device)
    return _windows[key]


def stft(x: torch.Tensor, n_fft: int = N_FFT, n_hop: int = N_HOP) -> torch.Tensor:
    """(..., n) real -> (..., n_fft//2+1, frames) complex."""
    shape = x.shape
    flat = x.reshape(-1, shape[-1])
    spec = torch.stft(
        flat,
        n_fft=n_fft,
        hop_length=n_hop,
        window=_window(n_fft, x.device),
        center=True,
        pad_mode="reflect" if shape[-1] > n_fft // 2 else "constant",
        normalized=False,
        onesided=True,
        return_complex=True,
    )
    return spec.reshape(*shape[:-1], *spec.shape[-2:])


def istft(spec: torch.Tensor, length: int, n_fft: int = N_FFT, n_hop: int = N_HOP) -> torch.Tensor:
    """(..., bins, frames) complex -> (..., length) real."""
    shape = spec.shape
    flat = spec.reshape(-1, *shape[-2:])
    out = torch.istft(
        flat,
        n_fft=n_fft,
        hop_length=n_hop,
        window=_window(n_fft, spec.device),
        center=True,
        normalized=False,
        onesided=True,
        length=length,
    )
    return out.reshape(*shape[:-2], length)


def stft_np(audio: np.ndarray, n_fft: int = N_FFT, n_hop: int = N_HOP) -> np.ndarray:
    """numpy convenience: (n, channels) float -> (frames, bins, channels) complex64 (norbert's layout)."""
    spec = stft(torch.from_numpy(np.ascontiguousarray(audio.T, dtype=np.float32)), n_fft, n_hop)
    return spec.permute(2, 1, 0).contiguous().numpy()


def istft_np(spec: np.ndarray, length: int, n_fft: int = N_FFT, n_hop: int = N_HOP) -> np.ndarray:
    """numpy convenience: (frames, bins, channels) complex -> (length, channels) float32."""
    t = torch.from_numpy(np.ascontiguousarray(spec.transpose(2, 1, 0))).to(torch.complex64)
    return istft(t, length, n_fft, n_hop).numpy().T.astype(np.float32)
