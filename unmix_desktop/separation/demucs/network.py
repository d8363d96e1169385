"""Hybrid Transformer Demucs (HTDemucs) network, inference only.

A port of ``demucs/htdemucs.py``, ``demucs/hdemucs.py`` (encoder/decoder layers), ``demucs/demucs.py``
(DConv) and ``demucs/transformer.py`` from the reference package ``demucs`` 4.1.0
(Copyright (c) Meta Platforms, Inc. and affiliates; MIT licence, see the package's LICENSE; first
author of the transformer part Simon Rouard). Module and parameter names are the reference's, so an
official checkpoint's ``state`` loads with ``load_state_dict(strict=True)``.

What differs from the reference, all numerically equivalent (parity within 1e-4, see
tests/test_demucs_parity.py); benchmarks/bench_demucs.py measures the whole against the reference:

* attention by :func:`torch.nn.functional.scaled_dot_product_attention` (one fused CPU kernel,
  no (T, T) matrix kept), with the query/key/value projections as one matmul for self-attention;
* the transformer's GroupNorm(1) over (T, C) computed without two transposes and a copy;
* the positional embeddings cached per shape; ``torch.std_mean`` in place of two reductions;
* the network accepts a batch of segments (every normalisation is per batch item; the engine runs two
  at a time, see ``apply.DEFAULT_BATCH``);
* the frequency decoders' 3x3 ``rewrite`` convolutions by NNPACK's Winograd algorithm
  (:meth:`HDecLayer._rewrite`, as the Spleeter U-Net does);
* an optional channels-last frequency branch (:attr:`HTDemucs.channels_last`, off: oneDNN's NHWC
  convolutions were 1.3-2x faster in isolation but the whole network was not measurably faster).

Training-only parts (dropout, layer dropout, sparse attention via xformers, Wiener filtering for
non-CaC models, ``MultiWrap`` band splitting) are not ported; a checkpoint asking for them is
refused with :class:`~unmix_desktop.errors.ModelError` when it is built.
"""

from __future__ import annotations

import math
import random

import torch
from torch import nn
from torch.nn import functional as F

from ..spleeter import NNPACK_MIN_PIXELS, nnpack_available

# ----------------------------------------------------------------------------------------------
# Building blocks (demucs/hdemucs.py, demucs/demucs.py)
# ----------------------------------------------------------------------------------------------


def pad1d(x: torch.Tensor, paddings: tuple[int, int], mode: str = "constant", value: float = 0.0):
    """F.pad that allows reflect padding of an input shorter than the padding (reference pad1d)."""
    length = x.shape[-1]
    padding_left, padding_right = paddings
    if mode == "reflect":
        max_pad = max(padding_left, padding_right)
        if length <= max_pad:
            extra_pad = max_pad - length + 1
            extra_pad_right = min(padding_right, extra_pad)
            extra_pad_left = extra_pad - extra_pad_right
            paddings = (padding_left - extra_pad_left, padding_right - extra_pad_right)
            x = F.pad(x, (extra_pad_left, extra_pad_right))
    return F.pad(x, paddings, mode, value)


class ScaledEmbedding(nn.Module):
    """Frequency embedding (hdemucs.ScaledEmbedding; the smooth init only matters for training)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, scale: float = 10.0, smooth=False):
        super().__init__()
        self.embedding = nn.Embedding(num_embeddings, embedding_dim)
        self.scale = scale

    def forward(self, x):
        return self.embedding(x) * self.scale


class LayerScale(nn.Module):
    """Per-channel residual scale (transformer.LayerScale)."""

    def __init__(self, channels: int, init: float = 0, channel_last=False):
        super().__init__()
        self.channel_last = channel_last
        self.scale = nn.Parameter(torch.full((channels,), float(init)))

    def forward(self, x):
        if self.channel_last:
            return self.scale * x
        return self.scale[:, None] * x


class DConv(nn.Module):
    """Residual branch of dilated convolutions (demucs.DConv, without the LSTM/attention options)."""

    def __init__(self, channels: int, compress: float = 4, depth: int = 2, init: float = 1e-4,
                 norm=True, attn=False, heads=4, ndecay=4, lstm=False, gelu=True, kernel=3, dilate=True):
        super().__init__()
        if attn or lstm:
            raise ValueError("DConv with LSTM or local attention (HDemucs bottom layers) is not supported")
        self.channels = channels
        self.depth = abs(depth)
        dilate = depth > 0
        hidden = int(channels / compress)
        act = nn.GELU if gelu else nn.ReLU
        self.layers = nn.ModuleList([])
        for d in range(self.depth):
            dilation = 2 ** d if dilate else 1
            padding = dilation * (kernel // 2)
            mods = [
                nn.Conv1d(channels, hidden, kernel, dilation=dilation, padding=padding),
                nn.GroupNorm(1, hidden) if norm else nn.Identity(), act(),
                nn.Conv1d(hidden, 2 * channels, 1),
                nn.GroupNorm(1, 2 * channels) if norm else nn.Identity(), nn.GLU(1),
                LayerScale(channels, init),
            ]
            self.layers.append(nn.Sequential(*mods))

    def forward(self, x):
        for layer in self.layers:
            x = x + layer(x)
        return x


class HEncLayer(nn.Module):
    """Encoder layer of the time or the frequency branch (hdemucs.HEncLayer)."""

    def __init__(self, chin, chout, kernel_size=8, stride=4, norm_groups=1, empty=False,
                 freq=True, dconv=True, norm=True, context=0, dconv_kw=None, pad=True, rewrite=True):
        super().__init__()
        dconv_kw = dconv_kw or {}

        def norm_fn(d):
            return nn.GroupNorm(norm_groups, d) if norm else nn.Identity()

        pad = kernel_size // 4 if pad else 0
        klass: type[nn.Module] = nn.Conv1d
        self.freq = freq
        self.kernel_size = kernel_size
        self.stride = stride
        self.empty = empty
        self.norm = norm
        self.pad = pad
        if freq:
            kernel_size = [kernel_size, 1]
            stride = [stride, 1]
            pad = [pad, 0]
            klass = nn.Conv2d
        self.conv = klass(chin, chout, kernel_size, stride, pad)
        if self.empty:
            return
        self.norm1 = norm_fn(chout)
        self.rewrite = None
        if rewrite:
            self.rewrite = klass(chout, 2 * chout, 1 + 2 * context, 1, context)
            self.norm2 = norm_fn(2 * chout)
        self.dconv = None
        if dconv:
            self.dconv = DConv(chout, **dconv_kw)

    def forward(self, x, inject=None):
        if not self.freq and x.dim() == 4:
            B, C, Fr, T = x.shape
            x = x.view(B, -1, T)
        if not self.freq:
            le = x.shape[-1]
            if le % self.stride:
                x = F.pad(x, (0, self.stride - (le % self.stride)))
        y = self.conv(x)
        if self.empty:
            return y
        if inject is not None:
            if inject.dim() == 3 and y.dim() == 4:
                inject = inject[:, :, None]
            y = y + inject
        y = F.gelu(self.norm1(y))
        if self.dconv:
            if self.freq:
                B, C, Fr, T = y.shape
                y = y.permute(0, 2, 1, 3).reshape(-1, C, T)
            y = self.dconv(y)
            if self.freq:
                y = y.view(B, Fr, C, T).permute(0, 2, 1, 3)
        if self.rewrite:
            z = F.glu(self.norm2(self.rewrite(y)), dim=1)
        else:
            z = y
        return z


class HDecLayer(nn.Module):
    """Decoder layer of the time or the frequency branch (hdemucs.HDecLayer)."""

    #: run the frequency branch's 3x3 ``rewrite`` convolution by NNPACK (Winograd) where it works
    winograd = True

    def __init__(self, chin, chout, last=False, kernel_size=8, stride=4, norm_groups=1, empty=False,
                 freq=True, dconv=True, norm=True, context=1, dconv_kw=None, pad=True,
                 context_freq=True, rewrite=True):
        super().__init__()
        dconv_kw = dconv_kw or {}

        def norm_fn(d):
            return nn.GroupNorm(norm_groups, d) if norm else nn.Identity()

        pad = kernel_size // 4 if pad else 0
        self.pad = pad
        self.last = last
        self.freq = freq
        self.chin = chin
        self.empty = empty
        self.stride = stride
        self.kernel_size = kernel_size
        self.norm = norm
        self.context_freq = context_freq
        klass: type[nn.Module] = nn.Conv1d
        klass_tr: type[nn.Module] = nn.ConvTranspose1d
        if freq:
            kernel_size = [kernel_size, 1]
            stride = [stride, 1]
            klass = nn.Conv2d
            klass_tr = nn.ConvTranspose2d
        self.conv_tr = klass_tr(chin, chout, kernel_size, stride)
        self.norm2 = norm_fn(chout)
        if self.empty:
            return
        self.rewrite = None
        if rewrite:
            if context_freq:
                self.rewrite = klass(chin, 2 * chin, 1 + 2 * context, 1, context)
            else:
                self.rewrite = klass(chin, 2 * chin, [1, 1 + 2 * context], 1, [0, context])
            self.norm1 = norm_fn(2 * chin)
        self.dconv = None
        if dconv:
            self.dconv = DConv(chin, **dconv_kw)

    def _rewrite(self, x):
        """``self.rewrite(x)``; a 3x3 one (the frequency branch's) on a large enough contiguous float32
        CPU map, with no gradient wanted, by NNPACK's Winograd convolution, one batch item at a time
        (its batched path is slower): oneDNN takes 1.4-2.2x its time on these layers; the whole network
        is about 7 % faster, its output within 2e-7 of the reference's."""
        conv = self.rewrite
        assert conv is not None
        if (self.winograd and isinstance(conv, nn.Conv2d) and x.dim() == 4 and x.device.type == "cpu"
                and x.dtype == torch.float32 and x.is_contiguous() and x.shape[-2] * x.shape[-1] >= NNPACK_MIN_PIXELS
                and conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.padding == (1, 1)
                and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding_mode == "zeros"
                and not torch.is_grad_enabled() and nnpack_available()):
            try:
                items = [torch._nnpack_spatial_convolution(x[i: i + 1], conv.weight, conv.bias, [1, 1])
                         for i in range(x.shape[0])]
                return items[0] if len(items) == 1 else torch.cat(items)
            except RuntimeError:  # NNPACK refused (unsupported CPU, out of memory...)
                pass
        return conv(x)

    def forward(self, x, skip, length):
        if self.freq and x.dim() == 3:
            B, C, T = x.shape
            x = x.view(B, self.chin, -1, T)
        if not self.empty:
            x = x + skip
            y = F.glu(self.norm1(self._rewrite(x)), dim=1) if self.rewrite else x
            if self.dconv:
                if self.freq:
                    B, C, Fr, T = y.shape
                    y = y.permute(0, 2, 1, 3).reshape(-1, C, T)
                y = self.dconv(y)
                if self.freq:
                    y = y.view(B, Fr, C, T).permute(0, 2, 1, 3)
        else:
            y = x
        z = self.norm2(self.conv_tr(y))
        if self.freq:
            if self.pad:
                z = z[..., self.pad:-self.pad, :]
        else:
            z = z[..., self.pad:self.pad + length]
        if not self.last:
            z = F.gelu(z)
        return z, y


# ----------------------------------------------------------------------------------------------
# Cross-domain transformer (demucs/transformer.py)
# ----------------------------------------------------------------------------------------------

def create_sin_embedding(length: int, dim: int, shift: int = 0, device="cpu", max_period=10000.0):
    pos = shift + torch.arange(length, device=device).view(-1, 1, 1)
    half_dim = dim // 2
    adim = torch.arange(dim // 2, device=device).view(1, 1, -1)
    phase = pos / (max_period ** (adim / (half_dim - 1)))
    return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)


def create_2d_sin_embedding(d_model, height, width, device="cpu", max_period=10000.0):
    if d_model % 4:
        raise ValueError(f"Cannot use sin/cos positional encoding with odd dimension (got dim={d_model})")
    pe = torch.zeros(d_model, height, width)
    d_model = int(d_model / 2)
    div_term = torch.exp(torch.arange(0.0, d_model, 2) * -(math.log(max_period) / d_model))
    pos_w = torch.arange(0.0, width).unsqueeze(1)
    pos_h = torch.arange(0.0, height).unsqueeze(1)
    pe[0:d_model:2, :, :] = torch.sin(pos_w * div_term).transpose(0, 1).unsqueeze(1).repeat(1, height, 1)
    pe[1:d_model:2, :, :] = torch.cos(pos_w * div_term).transpose(0, 1).unsqueeze(1).repeat(1, height, 1)
    pe[d_model::2, :, :] = torch.sin(pos_h * div_term).transpose(0, 1).unsqueeze(2).repeat(1, 1, width)
    pe[d_model + 1::2, :, :] = torch.cos(pos_h * div_term).transpose(0, 1).unsqueeze(2).repeat(1, 1, width)
    return pe[None, :].to(device)


def create_sin_embedding_cape(length: int, dim: int, batch_size: int, mean_normalize: bool,
                              device="cpu", max_period: float = 10000.0):
    """CAPE positional embedding at inference (no augmentation)."""
    pos = 1.0 * torch.arange(length).view(-1, 1, 1)
    pos = pos.repeat(1, batch_size, 1)
    if mean_normalize:
        pos -= torch.nanmean(pos, dim=0, keepdim=True)
    pos = pos.to(device)
    half_dim = dim // 2
    adim = torch.arange(dim // 2, device=device).view(1, 1, -1)
    phase = pos / (max_period ** (adim / (half_dim - 1)))
    return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1).float()


class GroupNormBTC(nn.GroupNorm):
    """transformer.MyGroupNorm: GroupNorm over a (B, T, C) tensor, without transposing it."""

    def forward(self, x):
        if self.num_groups != 1:
            return super().forward(x.transpose(1, 2)).transpose(1, 2)
        var, mean = torch.var_mean(x, dim=(1, 2), unbiased=False, keepdim=True)
        y = (x - mean) * torch.rsqrt(var + self.eps)
        if self.affine:
            y = torch.addcmul(self.bias, y, self.weight)
        return y


class Attention(nn.Module):
    """Holds nn.MultiheadAttention's parameters (same names) and runs fused SDPA, batch first."""

    def __init__(self, embed_dim: int, num_heads: int):
        super().__init__()
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim))
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x, mem=None):
        B, T, C = x.shape
        H = self.num_heads
        if mem is None:
            qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias).view(B, T, 3, H, C // H)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        else:
            S = mem.shape[1]
            q = F.linear(x, self.in_proj_weight[:C], self.in_proj_bias[:C]).view(B, T, H, C // H).transpose(1, 2)
            kv = F.linear(mem, self.in_proj_weight[C:], self.in_proj_bias[C:]).view(B, S, 2, H, C // H)
            k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(y.transpose(1, 2).reshape(B, T, C))


def _norm(group_norm, d_model, eps):
    return GroupNormBTC(int(group_norm), d_model, eps=eps) if group_norm else nn.LayerNorm(d_model, eps=eps)


class TransformerEncoderLayer(nn.Module):
    """transformer.MyTransformerEncoderLayer (self-attention), batch first."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, activation=F.relu, group_norm=0,
                 norm_first=False, norm_out=False, layer_norm_eps=1e-5, layer_scale=False, init_values=1e-4):
        super().__init__()
        self.self_attn = Attention(d_model, nhead)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm_first = norm_first
        self.norm1 = _norm(group_norm, d_model, layer_norm_eps)
        self.norm2 = _norm(group_norm, d_model, layer_norm_eps)
        self.activation = activation
        self.norm_out = None
        if norm_first and norm_out:
            self.norm_out = GroupNormBTC(num_groups=int(norm_out), num_channels=d_model)
        self.gamma_1 = LayerScale(d_model, init_values, True) if layer_scale else nn.Identity()
        self.gamma_2 = LayerScale(d_model, init_values, True) if layer_scale else nn.Identity()

    def _ff(self, x):
        return self.linear2(self.activation(self.linear1(x)))

    def forward(self, x):
        if self.norm_first:
            x = x + self.gamma_1(self.self_attn(self.norm1(x)))
            x = x + self.gamma_2(self._ff(self.norm2(x)))
            if self.norm_out is not None:
                x = self.norm_out(x)
        else:
            x = self.norm1(x + self.gamma_1(self.self_attn(x)))
            x = self.norm2(x + self.gamma_2(self._ff(x)))
        return x


class CrossTransformerEncoderLayer(nn.Module):
    """transformer.CrossTransformerEncoderLayer, batch first."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, activation=F.relu, layer_norm_eps=1e-5,
                 layer_scale=False, init_values=1e-4, norm_first=False, group_norm=False, norm_out=False):
        super().__init__()
        self.cross_attn = Attention(d_model, nhead)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm_first = norm_first
        self.norm1 = _norm(group_norm, d_model, layer_norm_eps)
        self.norm2 = _norm(group_norm, d_model, layer_norm_eps)
        self.norm3 = _norm(group_norm, d_model, layer_norm_eps)
        self.norm_out = None
        if norm_first and norm_out:
            self.norm_out = GroupNormBTC(num_groups=int(norm_out), num_channels=d_model)
        self.gamma_1 = LayerScale(d_model, init_values, True) if layer_scale else nn.Identity()
        self.gamma_2 = LayerScale(d_model, init_values, True) if layer_scale else nn.Identity()
        self.activation = activation

    def _ff(self, x):
        return self.linear2(self.activation(self.linear1(x)))

    def forward(self, q, k):
        if self.norm_first:
            x = q + self.gamma_1(self.cross_attn(self.norm1(q), self.norm2(k)))
            x = x + self.gamma_2(self._ff(self.norm3(x)))
            if self.norm_out is not None:
                x = self.norm_out(x)
        else:
            x = self.norm1(q + self.gamma_1(self.cross_attn(q, k)))
            x = self.norm2(x + self.gamma_2(self._ff(x)))
        return x


class CrossTransformerEncoder(nn.Module):
    """transformer.CrossTransformerEncoder: alternating self / cross attention over both branches."""

    def __init__(self, dim, emb="sin", hidden_scale=4.0, num_heads=8, num_layers=6, cross_first=False,
                 max_positions=1000, norm_in=True, norm_in_group=False, group_norm=False, norm_first=False,
                 norm_out=False, max_period=10000.0, layer_scale=False, gelu=True, sin_random_shift=0,
                 weight_pos_embed=1.0, cape_mean_normalize=True):
        super().__init__()
        if dim % num_heads:
            raise ValueError("transformer dimension is not a multiple of the heads")
        hidden_dim = int(dim * hidden_scale)
        self.num_layers = num_layers
        self.classic_parity = 1 if cross_first else 0
        self.emb = emb
        self.max_period = max_period
        self.weight_pos_embed = weight_pos_embed
        self.sin_random_shift = sin_random_shift
        self.cape_mean_normalize = cape_mean_normalize
        if emb not in ("sin", "cape", "scaled"):
            raise ValueError(f"unknown positional embedding {emb!r}")
        if emb == "scaled":
            self.position_embeddings = ScaledEmbedding(max_positions, dim, scale=0.2)
            self.position_embeddings.scale = 3.0  # transformer.ScaledEmbedding's boost
        activation = F.gelu if gelu else F.relu
        self.norm_in: nn.Module
        self.norm_in_t: nn.Module
        if norm_in:
            self.norm_in = nn.LayerNorm(dim)
            self.norm_in_t = nn.LayerNorm(dim)
        elif norm_in_group:
            self.norm_in = GroupNormBTC(int(norm_in_group), dim)
            self.norm_in_t = GroupNormBTC(int(norm_in_group), dim)
        else:
            self.norm_in = nn.Identity()
            self.norm_in_t = nn.Identity()
        common = dict(d_model=dim, nhead=num_heads, dim_feedforward=hidden_dim, activation=activation,
                      group_norm=group_norm, norm_first=norm_first, norm_out=norm_out, layer_scale=layer_scale)
        self.layers = nn.ModuleList()
        self.layers_t = nn.ModuleList()
        for idx in range(num_layers):
            klass = TransformerEncoderLayer if idx % 2 == self.classic_parity else CrossTransformerEncoderLayer
            self.layers.append(klass(**common))
            self.layers_t.append(klass(**common))
        self._emb_cache: dict = {}

    def _pos_2d(self, C, Fr, T1, device):
        key = ("2d", C, Fr, T1, str(device))
        if key not in self._emb_cache:
            pe = create_2d_sin_embedding(C, Fr, T1, device, self.max_period)  # (1, C, Fr, T1)
            self._emb_cache[key] = (self.weight_pos_embed * pe.permute(0, 3, 2, 1).reshape(1, T1 * Fr, C))
        return self._emb_cache[key]

    def _pos_1d(self, T, B, C, device, shift=None):
        if self.emb == "sin":
            # the reference draws this shift from the global `random` module at every forward (it is 0
            # unless t_sin_random_shift > 0); the separation engine draws it in advance in the same
            # order, so the global random state moves exactly as in the reference
            if shift is None:
                shift = random.randrange(self.sin_random_shift + 1)
            key = ("sin", T, C, shift, str(device))
            if key not in self._emb_cache:
                pe = create_sin_embedding(T, C, shift=shift, device=device, max_period=self.max_period)
                self._emb_cache[key] = self.weight_pos_embed * pe.permute(1, 0, 2)  # (1, T, C)
            return self._emb_cache[key]
        if self.emb == "cape":
            pe = create_sin_embedding_cape(T, C, B, self.cape_mean_normalize, device, self.max_period)
            return self.weight_pos_embed * pe.permute(1, 0, 2)
        pos = torch.arange(T, device=device)
        return self.weight_pos_embed * self.position_embeddings(pos)[None]

    def forward(self, x, xt, pos_shift=None):
        B, C, Fr, T1 = x.shape
        x = x.permute(0, 3, 2, 1).reshape(B, T1 * Fr, C)
        x = self.norm_in(x) + self._pos_2d(C, Fr, T1, x.device)
        B, C, T2 = xt.shape
        xt = xt.transpose(1, 2)
        xt = self.norm_in_t(xt) + self._pos_1d(T2, B, C, x.device, pos_shift)
        for idx in range(self.num_layers):
            if idx % 2 == self.classic_parity:
                x = self.layers[idx](x)
                xt = self.layers_t[idx](xt)
            else:
                old_x = x
                x = self.layers[idx](x, xt)
                xt = self.layers_t[idx](xt, old_x)
        x = x.view(B, T1, Fr, C).permute(0, 3, 2, 1)
        xt = xt.transpose(1, 2)
        return x, xt


# ----------------------------------------------------------------------------------------------
# HTDemucs (demucs/htdemucs.py)
# ----------------------------------------------------------------------------------------------

#: HTDemucs keyword arguments that only matter for training (accepted and ignored)
_TRAINING_ONLY = {"t_dropout", "t_weight_decay", "t_lr", "t_cape_augment", "t_cape_glob_loc_scale",
                  "t_mask_type", "t_mask_random_seed", "t_sparse_attn_window", "t_global_window",
                  "t_sparsity", "rescale", "emb_smooth", "end_iters", "t_max_positions_unused"}


class HTDemucs(nn.Module):
    """Hybrid Transformer Demucs; the constructor takes the reference's arguments (checkpoint kwargs)."""

    def __init__(self, sources, audio_channels=2, channels=48, channels_time=None, growth=2, nfft=4096,
                 wiener_iters=0, end_iters=0, wiener_residual=False, cac=True, depth=4, rewrite=True,
                 multi_freqs=None, multi_freqs_depth=3, freq_emb=0.2, emb_scale=10, emb_smooth=True,
                 kernel_size=8, time_stride=2, stride=4, context=1, context_enc=0, norm_starts=4,
                 norm_groups=4, dconv_mode=1, dconv_depth=2, dconv_comp=8, dconv_init=1e-3,
                 bottom_channels=0, t_layers=5, t_emb="sin", t_hidden_scale=4.0, t_heads=8, t_dropout=0.0,
                 t_max_positions=10000, t_norm_in=True, t_norm_in_group=False, t_group_norm=False,
                 t_norm_first=True, t_norm_out=True, t_max_period=10000.0, t_weight_decay=0.0, t_lr=None,
                 t_layer_scale=True, t_gelu=True, t_weight_pos_embed=1.0, t_sin_random_shift=0,
                 t_cape_mean_normalize=True, t_cape_augment=True, t_cape_glob_loc_scale=(5000.0, 1.0, 1.4),
                 t_sparse_self_attn=False, t_sparse_cross_attn=False, t_mask_type="diag",
                 t_mask_random_seed=42, t_sparse_attn_window=500, t_global_window=100, t_sparsity=0.95,
                 t_auto_sparsity=False, t_cross_first=False, rescale=0.1, samplerate=44100, segment=10,
                 use_train_segment=True):
        super().__init__()
        if not cac:
            raise ValueError("only complex-as-channels (cac=True) models are supported")
        if multi_freqs:
            raise ValueError("multi_freqs (MultiWrap) models are not supported")
        if t_sparse_self_attn or t_sparse_cross_attn or t_auto_sparsity:
            raise ValueError("sparse attention (xformers) models are not supported")
        self.cac = cac
        self.audio_channels = audio_channels
        self.sources = list(sources)
        self.kernel_size = kernel_size
        self.context = context
        self.stride = stride
        self.depth = depth
        self.bottom_channels = bottom_channels
        self.channels = channels
        self.samplerate = samplerate
        self.segment = segment
        self.use_train_segment = use_train_segment
        self.nfft = nfft
        self.hop_length = nfft // 4
        self.freq_emb = None

        self.encoder = nn.ModuleList()
        self.decoder = nn.ModuleList()
        self.tencoder = nn.ModuleList()
        self.tdecoder = nn.ModuleList()

        chin = audio_channels
        chin_z = chin * 2
        chout = channels_time or channels
        chout_z = channels
        freqs = nfft // 2
        for index in range(depth):
            norm = index >= norm_starts
            freq = freqs > 1
            stri = stride
            ker = kernel_size
            if not freq:
                ker = time_stride * 2
                stri = time_stride
            pad = True
            last_freq = False
            if freq and freqs <= kernel_size:
                ker = freqs
                pad = False
                last_freq = True
            kw = {"kernel_size": ker, "stride": stri, "freq": freq, "pad": pad, "norm": norm,
                  "rewrite": rewrite, "norm_groups": norm_groups,
                  "dconv_kw": {"depth": dconv_depth, "compress": dconv_comp, "init": dconv_init, "gelu": True}}
            kwt = dict(kw)
            kwt["freq"] = 0
            kwt["kernel_size"] = kernel_size
            kwt["stride"] = stride
            kwt["pad"] = True
            if last_freq:
                chout_z = max(chout, chout_z)
                chout = chout_z
            enc = HEncLayer(chin_z, chout_z, dconv=dconv_mode & 1, context=context_enc, **kw)
            if freq:
                self.tencoder.append(HEncLayer(chin, chout, dconv=dconv_mode & 1, context=context_enc,
                                               empty=last_freq, **kwt))
            self.encoder.append(enc)
            if index == 0:
                chin = self.audio_channels * len(self.sources)
                chin_z = chin * 2
            dec = HDecLayer(chout_z, chin_z, dconv=dconv_mode & 2, last=index == 0, context=context, **kw)
            if freq:
                self.tdecoder.insert(0, HDecLayer(chout, chin, dconv=dconv_mode & 2, empty=last_freq,
                                                  last=index == 0, context=context, **kwt))
            self.decoder.insert(0, dec)
            chin = chout
            chin_z = chout_z
            chout = int(growth * chout)
            chout_z = int(growth * chout_z)
            if freq:
                freqs = 1 if freqs <= kernel_size else freqs // stride
            if index == 0 and freq_emb:
                self.freq_emb = ScaledEmbedding(freqs, chin_z, smooth=emb_smooth, scale=emb_scale)
                self.freq_emb_scale = freq_emb

        transformer_channels = channels * growth ** (depth - 1)
        if bottom_channels:
            self.channel_upsampler = nn.Conv1d(transformer_channels, bottom_channels, 1)
            self.channel_downsampler = nn.Conv1d(bottom_channels, transformer_channels, 1)
            self.channel_upsampler_t = nn.Conv1d(transformer_channels, bottom_channels, 1)
            self.channel_downsampler_t = nn.Conv1d(bottom_channels, transformer_channels, 1)
            transformer_channels = bottom_channels
        self.crosstransformer: CrossTransformerEncoder | None
        if t_layers > 0:
            self.crosstransformer = CrossTransformerEncoder(
                dim=transformer_channels, emb=t_emb, hidden_scale=t_hidden_scale, num_heads=t_heads,
                num_layers=t_layers, cross_first=t_cross_first, max_positions=t_max_positions,
                norm_in=t_norm_in, norm_in_group=t_norm_in_group, group_norm=t_group_norm,
                norm_first=t_norm_first, norm_out=t_norm_out, max_period=t_max_period,
                layer_scale=t_layer_scale, gelu=t_gelu, sin_random_shift=t_sin_random_shift,
                weight_pos_embed=t_weight_pos_embed, cape_mean_normalize=t_cape_mean_normalize)
        else:
            self.crosstransformer = None

    # -- STFT (demucs/spec.py and HTDemucs._spec/_ispec) --

    def _spec(self, x):
        hl = self.hop_length
        nfft = self.nfft
        le = int(math.ceil(x.shape[-1] / hl))
        pad = hl // 2 * 3
        x = pad1d(x, (pad, pad + le * hl - x.shape[-1]), mode="reflect")
        *other, length = x.shape
        z = torch.stft(x.reshape(-1, length), nfft, hl, window=torch.hann_window(nfft).to(x),
                       win_length=nfft, normalized=True, center=True, return_complex=True, pad_mode="reflect")
        z = z.view(*other, *z.shape[-2:])[..., :-1, 2:2 + le]
        return z

    def _ispec(self, z, length):
        hl = self.hop_length
        z = F.pad(z, (2, 2, 0, 1))
        pad = hl // 2 * 3
        le = hl * int(math.ceil(length / hl)) + 2 * pad
        *other, freqs, frames = z.shape
        n_fft = 2 * freqs - 2
        x = torch.istft(z.reshape(-1, freqs, frames), n_fft, hl, window=torch.hann_window(n_fft).to(z.real),
                        win_length=n_fft, normalized=True, length=le, center=True)
        return x.view(*other, le)[..., pad:pad + length]

    def valid_length(self, length: int) -> int:
        if not self.use_train_segment:
            return length
        training_length = int(self.segment * self.samplerate)
        if training_length < length:
            raise ValueError(f"Given length {length} is longer than training length {training_length}")
        return training_length

    @property
    def segment_length(self) -> int | None:
        """Samples per segment the network is run on (the reference's ``int(segment * samplerate)``)."""
        return int(self.segment * self.samplerate) if self.use_train_segment else None

    accepts_pos_shift = True
    #: run the frequency branch in channels-last (NHWC) layout: oneDNN's fast convolution path
    channels_last = False

    def forward(self, mix, pos_shift=None):
        """(B, 2, L) -> (B, S, 2, L). ``pos_shift``: the transformer's positional shift, drawn from
        the global random state when None (as the reference does)."""
        length = mix.shape[-1]
        length_pre_pad = None
        training_length = length
        if self.use_train_segment:
            training_length = int(self.segment * self.samplerate)
            if length < training_length:
                length_pre_pad = length
                mix = F.pad(mix, (0, training_length - length))
        z = self._spec(mix)
        B, C0, Fq, T = z.shape
        x = torch.view_as_real(z).permute(0, 1, 4, 2, 3).reshape(B, C0 * 2, Fq, T)

        std, mean = torch.std_mean(x, dim=(1, 2, 3), keepdim=True)
        x = (x - mean) / (1e-5 + std)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        xt = mix
        stdt, meant = torch.std_mean(xt, dim=(1, 2), keepdim=True)
        xt = (xt - meant) / (1e-5 + stdt)

        saved = []
        saved_t = []
        lengths = []
        lengths_t = []
        for idx, encode in enumerate(self.encoder):
            lengths.append(x.shape[-1])
            inject = None
            if idx < len(self.tencoder):
                lengths_t.append(xt.shape[-1])
                tenc = self.tencoder[idx]
                xt = tenc(xt)
                if not tenc.empty:
                    saved_t.append(xt)
                else:
                    inject = xt
            x = encode(x, inject)
            if idx == 0 and self.freq_emb is not None:
                frs = torch.arange(x.shape[-2], device=x.device)
                emb = self.freq_emb(frs).t()[None, :, :, None]
                x = x + self.freq_emb_scale * emb
            saved.append(x)
        if self.crosstransformer is not None:
            if self.bottom_channels:
                b, c, f, t = x.shape
                x = self.channel_upsampler(x.reshape(b, c, f * t)).view(b, -1, f, t)
                xt = self.channel_upsampler_t(xt)
            x, xt = self.crosstransformer(x, xt, pos_shift)
            if self.bottom_channels:
                b, c, f, t = x.shape
                x = self.channel_downsampler(x.reshape(b, c, f * t)).view(b, -1, f, t)
                xt = self.channel_downsampler_t(xt)

        for idx, decode in enumerate(self.decoder):
            skip = saved.pop(-1)
            x, pre = decode(x, skip, lengths.pop(-1))
            offset = self.depth - len(self.tdecoder)
            if idx >= offset:
                tdec = self.tdecoder[idx - offset]
                length_t = lengths_t.pop(-1)
                if tdec.empty:
                    xt, _ = tdec(pre[:, :, 0], None, length_t)
                else:
                    xt, _ = tdec(xt, saved_t.pop(-1), length_t)

        S = len(self.sources)
        x = x.view(B, S, -1, Fq, T)
        x = x * std[:, None] + mean[:, None]
        Bm, Sm, Cm, Fr, Tm = x.shape
        zout = torch.view_as_complex(x.view(Bm, Sm, -1, 2, Fr, Tm).permute(0, 1, 2, 4, 5, 3).contiguous())
        x = self._ispec(zout, training_length)
        xt = xt.view(B, S, -1, training_length)
        xt = xt * stdt[:, None] + meant[:, None]
        x = xt + x
        if length_pre_pad:
            x = x[..., :length_pre_pad]
        return x


def build_network(klass: str, args, kwargs) -> nn.Module:
    """Instantiate ``klass`` ("HTDemucs") from a checkpoint's ``args``/``kwargs`` like
    ``demucs.states.load_model(strict=False)``: unknown keyword arguments are dropped."""
    import inspect

    classes = {"HTDemucs": HTDemucs}
    if klass not in classes:
        raise ValueError(f"unsupported model class {klass}")
    cls = classes[klass]
    params = inspect.signature(cls).parameters
    kwargs = {k: v for k, v in kwargs.items() if k in params}
    return cls(*args, **kwargs)
