"""What a band-limited model does above its training band.

A model trained on 16 kHz data knows bins 0..743 of the 44.1 kHz / 4096 grid (0–8 kHz). We train
it with ``nb_bins = max_bin`` (the network outputs only the band: no compute or parameters spent
on bins whose target is always silent) and, for export, widen the output layer to all 2049 bins
with a fixed, explicit rule for the bins above the band. In the official layout the mask of
output bin ``f`` (channel ``c``) is::

    m_f = relu(s_f * (a_f * (W_f . h) + c_f) + o_f),   a_f = bn3.w / sqrt(bn3.var + eps),
                                                       c_f = bn3.b - bn3.mean * a_f

with ``W_f`` the fc3 row, ``s_f``/``o_f`` ``output_scale``/``output_mean``. Modes:

``extend`` (default) every bin above the band gets the average *effective* row and offset
           (``s a W``, ``s c + o``) of a reference band (5–7.5 kHz by default, below the
           resampler's roll-off): a per-frame extrapolation of the upper-band mask.
``zero``   mask 0 above the band: all of it goes to the residual (accompaniment).
``one``    mask 1: the vocal estimate keeps the whole mixture there.
``<c>``    a constant mask (e.g. ``"0.5"``).
"""

from __future__ import annotations

import torch

from ..audio.io import SAMPLE_RATE
from ..separation.model import OpenUnmix

HIGH_BAND_MODES = ("extend", "zero", "one")


def _bin_of(hz: float, n_fft: int, sample_rate: int) -> int:
    return int(round(hz * n_fft / sample_rate))


def expand_output_bins(net: OpenUnmix, nb_bins: int = 2049, mode: str = "extend",
                       reference_hz: tuple[float, float] = (5000.0, 7500.0), n_fft: int = 4096,
                       sample_rate: int = SAMPLE_RATE) -> OpenUnmix:
    """A copy of ``net`` (trained with ``nb_output_bins = max_bin``) that outputs ``nb_bins``.

    Bins below the old output size are unchanged (bit-exact); the others follow ``mode``.
    """
    old = net.nb_output_bins
    if nb_bins < old:
        raise ValueError(f"cannot shrink the output from {old} to {nb_bins} bins")
    C = net.nb_channels
    new = OpenUnmix(nb_bins=nb_bins, nb_channels=C, hidden_size=net.hidden_size, nb_layers=net.nb_layers,
                    unidirectional=net.unidirectional, max_bin=net.nb_bins)
    src = net.state_dict()
    dst = new.state_dict()
    for key, value in src.items():
        if dst[key].shape == value.shape:
            dst[key] = value.clone()
    H = net.hidden_size
    W = src["fc3.weight"].reshape(C, old, H)
    bw, bb = src["bn3.weight"].reshape(C, old), src["bn3.bias"].reshape(C, old)
    rm, rv = src["bn3.running_mean"].reshape(C, old), src["bn3.running_var"].reshape(C, old)
    s, o = src["output_scale"], src["output_mean"]
    eps = new.bn3.eps

    new_W = torch.zeros(C, nb_bins, H)
    new_bw, new_bb = torch.ones(C, nb_bins), torch.zeros(C, nb_bins)
    new_rm, new_rv = torch.zeros(C, nb_bins), torch.full((C, nb_bins), 1.0 - eps)
    new_s, new_o = torch.ones(nb_bins), torch.zeros(nb_bins)
    new_W[:, :old], new_bw[:, :old], new_bb[:, :old] = W, bw, bb
    new_rm[:, :old], new_rv[:, :old] = rm, rv
    new_s[:old], new_o[:old] = s, o

    key = mode.strip().lower()
    if key == "extend":
        lo = min(_bin_of(reference_hz[0], n_fft, sample_rate), old - 1)
        hi = min(max(_bin_of(reference_hz[1], n_fft, sample_rate), lo + 1), old)
        a = bw / torch.sqrt(rv + eps)                       # (C, old)
        c = bb - rm * a
        eff_W = (s[None, :, None] * a[..., None] * W)[:, lo:hi].mean(1)   # (C, H)
        eff_b = (s[None, :] * c + o[None, :])[:, lo:hi].mean(1)            # (C,)
        new_W[:, old:] = eff_W[:, None, :]
        # bn3 is the identity for the new bins (weight 1, bias 0, mean 0, var 1 - eps), scale 1;
        # the per-channel offset goes into bn3.bias (output_mean is shared by the channels).
        new_bb[:, old:] = eff_b[:, None]
    elif key in ("zero", "one") or _is_number(key):
        value = {"zero": 0.0, "one": 1.0}.get(key)
        value = float(key) if value is None else value
        new_bw[:, old:] = 0.0
        new_s[old:] = 0.0
        new_o[old:] = value
    else:
        raise ValueError(f"unknown high-band mode '{mode}' (extend, zero, one or a number)")

    dst["fc3.weight"] = new_W.reshape(C * nb_bins, H)
    dst["bn3.weight"], dst["bn3.bias"] = new_bw.reshape(-1), new_bb.reshape(-1)
    dst["bn3.running_mean"], dst["bn3.running_var"] = new_rm.reshape(-1), new_rv.reshape(-1)
    dst["output_scale"], dst["output_mean"] = new_s, new_o
    new.load_state_dict(dst, strict=True)
    return new.eval()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
