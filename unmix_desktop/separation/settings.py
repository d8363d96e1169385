"""Separation settings: a plain dataclass (no torch import), shared by the CLI, the window and the cache."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class SeparationSettings:
    niter: int = 1                 # EM iterations of the multichannel Wiener filter (0 = ratio mask only)
    softmask: bool = True          # initial estimate: ratio mask (True) or magnitude + mixture phase
    power: float = 1.0             # exponent of the ratio mask (1 = magnitude; measured best with EM, docs/QUALITY.md)
    logit: float | None = None     # mask sharpening strength (None = off)
    residual: bool = True          # "accompaniment" = mixture - the other stems (exact sum)
    swap_tta: bool = False         # average the model over the mixture and its channel-swapped copy
    window_s: float = 11.5         # processing window (memory bound); 11.5 s + overlap fits one
                                   # 512-frame Spleeter segment: faster, +0.1 dB on the dev song vs 15 s
    overlap_s: float = 1.0         # cross-fade between windows
    targets: list[str] | None = None  # subset to return (None = all)
    rate: int | None = None        # sample rate of the written stems (None = the song's own rate);
                                   # the model always runs at its own rate (44.1 kHz)

    def to_dict(self) -> dict:
        return asdict(self)

    def key(self) -> str:
        """A stable string for cache keys.

        ``rate`` is left out: it only says at which rate stems are written, while the cache holds
        them at the model's rate, so cached stems serve every output rate.
        """
        d = self.to_dict()
        d.pop("rate", None)
        return ",".join(f"{k}={d[k]}" for k in sorted(d))
