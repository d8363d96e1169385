"""The open-unmix network (Stöter et al. 2019), written here with the official ``state_dict`` layout.

One :class:`OpenUnmix` estimates one target. Its parameter names and shapes match the official
checkpoints (``vocals-b62c91ce.pth`` …: hidden 512, 3 BLSTM layers, 2049 bins, max_bin 1487 for
umxhq), so those files load with ``load_state_dict(strict=True)``. :class:`MultiTargetUMX` groups
one network per target behind the :class:`~.base.SpectrogramModel` contract.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..audio.io import SAMPLE_RATE
from .base import SpectrogramModel


class OpenUnmix(nn.Module):
    """Magnitude in, magnitude out: ``(B, C, F, T) -> (B, C, F, T)``.

    input crop to ``max_bin`` -> standardise -> fc1+bn1+tanh -> BLSTM (skip concatenated) ->
    fc2+bn2+relu -> fc3+bn3 -> output scale/offset -> relu mask times the mixture magnitude.
    """

    def __init__(
        self,
        nb_bins: int = 2049,
        nb_channels: int = 2,
        hidden_size: int = 512,
        nb_layers: int = 3,
        unidirectional: bool = False,
        max_bin: int | None = None,
        dropout: float = 0.4,
    ) -> None:
        super().__init__()
        self.nb_output_bins = nb_bins
        self.nb_bins = max_bin if max_bin else nb_bins
        self.nb_channels = nb_channels
        self.hidden_size = hidden_size
        self.nb_layers = nb_layers
        self.unidirectional = unidirectional

        self.fc1 = nn.Linear(self.nb_bins * nb_channels, hidden_size, bias=False)
        self.bn1 = nn.BatchNorm1d(hidden_size)
        lstm_hidden = hidden_size if unidirectional else hidden_size // 2
        self.lstm = nn.LSTM(
            input_size=hidden_size,
            hidden_size=lstm_hidden,
            num_layers=nb_layers,
            bidirectional=not unidirectional,
            batch_first=False,
            dropout=dropout if nb_layers > 1 else 0.0,
        )
        self.fc2 = nn.Linear(hidden_size * 2, hidden_size, bias=False)
        self.bn2 = nn.BatchNorm1d(hidden_size)
        self.fc3 = nn.Linear(hidden_size, self.nb_output_bins * nb_channels, bias=False)
        self.bn3 = nn.BatchNorm1d(self.nb_output_bins * nb_channels)

        # As in the official model these are Parameters (they appear in the state_dict).
        self.input_mean = nn.Parameter(torch.zeros(self.nb_bins))
        self.input_scale = nn.Parameter(torch.ones(self.nb_bins))
        self.output_scale = nn.Parameter(torch.ones(self.nb_output_bins))
        self.output_mean = nn.Parameter(torch.ones(self.nb_output_bins))

    def config(self) -> dict:
        return {
            "nb_bins": self.nb_output_bins,
            "nb_channels": self.nb_channels,
            "hidden_size": self.hidden_size,
            "nb_layers": self.nb_layers,
            "unidirectional": self.unidirectional,
            "max_bin": self.nb_bins,
        }

    def set_input_statistics(self, mean: torch.Tensor, std: torch.Tensor, floor: float = 1e-3) -> None:
        """Standardise the input with the training set's per-bin mean and std.

        ``floor`` bounds the scale of near-empty bins (e.g. above 8 kHz in 16 kHz data), whose
        tiny std would otherwise blow up anything a real song puts there.
        """
        mean = torch.as_tensor(mean, dtype=torch.float32)[: self.nb_bins]
        std = torch.as_tensor(std, dtype=torch.float32)[: self.nb_bins]
        std = torch.clamp(std, min=max(floor, float(std.max()) * floor))
        with torch.no_grad():
            self.input_mean.copy_(-mean)
            self.input_scale.copy_(1.0 / std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C, F, T) -> (T, B, C, F)
        x = x.permute(3, 0, 1, 2)
        nb_frames, nb_samples, nb_channels, _ = x.shape
        mix = x.detach().clone()
        x = x[..., : self.nb_bins]
        x = (x + self.input_mean) * self.input_scale
        x = self.fc1(x.reshape(-1, nb_channels * self.nb_bins))
        x = self.bn1(x)
        x = torch.tanh(x.reshape(nb_frames, nb_samples, self.hidden_size))
        lstm_out, _ = self.lstm(x)
        x = torch.cat([x, lstm_out], -1)
        x = self.fc2(x.reshape(-1, x.shape[-1]))
        x = F.relu(self.bn2(x))
        x = self.bn3(self.fc3(x))
        x = x.reshape(nb_frames, nb_samples, nb_channels, self.nb_output_bins)
        x = x * self.output_scale + self.output_mean
        x = F.relu(x) * mix
        return x.permute(1, 2, 3, 0)


class MultiTargetUMX(SpectrogramModel):
    """One :class:`OpenUnmix` per target, as one spectrogram model."""

    def __init__(self, networks: dict[str, OpenUnmix], sample_rate: int = SAMPLE_RATE, n_fft: int = 4096,
                 n_hop: int = 1024, card: dict | None = None) -> None:
        super().__init__()
        self.networks = nn.ModuleDict(networks)
        self.targets = list(networks)
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.n_hop = n_hop
        self.card = dict(card or {})

    def forward(self, mag: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.networks[t](mag) for t in self.targets], dim=1)


#: The official open-unmix ``umxhq`` per-target checkpoint layout (key -> shape), hidden 512,
#: 3 BLSTM layers, 2049 bins, max_bin 1487, stereo. Used to check compatibility.
def official_umxhq_shapes(hidden: int = 512, nb_bins: int = 2049, max_bin: int = 1487,
                          channels: int = 2, layers: int = 3) -> dict[str, tuple[int, ...]]:
    h2 = hidden // 2
    shapes: dict[str, tuple[int, ...]] = {
        "input_mean": (max_bin,),
        "input_scale": (max_bin,),
        "output_scale": (nb_bins,),
        "output_mean": (nb_bins,),
        "fc1.weight": (hidden, max_bin * channels),
        "fc2.weight": (hidden, hidden * 2),
        "fc3.weight": (nb_bins * channels, hidden),
    }
    for name, size in (("bn1", hidden), ("bn2", hidden), ("bn3", nb_bins * channels)):
        shapes[f"{name}.weight"] = (size,)
        shapes[f"{name}.bias"] = (size,)
        shapes[f"{name}.running_mean"] = (size,)
        shapes[f"{name}.running_var"] = (size,)
        shapes[f"{name}.num_batches_tracked"] = ()
    for layer in range(layers):
        in_size = hidden
        for suffix in ("", "_reverse"):
            shapes[f"lstm.weight_ih_l{layer}{suffix}"] = (4 * h2, in_size)
            shapes[f"lstm.weight_hh_l{layer}{suffix}"] = (4 * h2, h2)
            shapes[f"lstm.bias_ih_l{layer}{suffix}"] = (4 * h2,)
            shapes[f"lstm.bias_hh_l{layer}{suffix}"] = (4 * h2,)
    return shapes
