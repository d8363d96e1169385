"""The optimised separation path gives today's output (same weights, same math) within 1e-4.

Each fast piece is compared with the reference kept beside it: the U-Net's ``fast_forward``
(oneDNN, channels-last, sub-pixel transposed convs) and ``nnpack_forward`` (every layer a 3x3
conv, NNPACK's Winograd) against ``reference_forward``; the torch Wiener EM against norbert's;
and the whole separator on real audio with both swapped in against both swapped out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unmix_desktop.separation import postprocess as pp
from unmix_desktop.separation import spleeter as sp
from unmix_desktop.separation.separator import Separator
from unmix_desktop.separation.settings import SeparationSettings

DEV_SONG = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev" / "waveform-playlist-demo" / "mixture.flac"
BACKENDS = ["onednn"] + (["nnpack"] if sp.nnpack_available() else [])


def _random_unet(seed: int = 0) -> sp.SpleeterUNet:
    """A U-Net with random weights and non-trivial BatchNorm statistics."""
    torch.manual_seed(seed)
    net = sp.SpleeterUNet()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()


@pytest.mark.parametrize("n", [2, 8, 16, 32])
def test_subpixel_conv_equals_cropped_transposed_conv(n):
    torch.manual_seed(n)
    w, b = torch.randn(6, 3, 5, 5), torch.randn(3)
    x = torch.randn(2, 6, n, n + 2)
    size = (2 * n, 2 * n + 4)
    ref = sp._crop_transposed_same(F.conv_transpose2d(x, w, b, stride=2), size, 5, 2)
    fast = F.pixel_shuffle(F.conv2d(x, sp.subpixel_weight(w), b.repeat_interleave(4), padding=1), 2)
    assert fast.shape == ref.shape
    assert torch.allclose(fast, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("n", [4, 8, 32])
def test_polyphase_conv_equals_same_strided_conv(n):
    torch.manual_seed(n)
    w, b = torch.randn(5, 3, 5, 5), torch.randn(5)
    x = torch.randn(2, 3, n, 2 * n)
    ref = F.conv2d(sp._pad_same_2d(x, 5, 2), w, b, stride=2)
    fast = F.conv2d(F.pixel_unshuffle(x, 2), sp.polyphase_weight(w), b, padding=1)
    assert fast.shape == ref.shape
    assert torch.allclose(fast, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fast_unet_equals_reference_random_weights(backend):
    net = _random_unet()
    x = torch.rand(2, 2, 128, 192) * 20
    with torch.no_grad():
        ref = net.reference_forward(x)
        net.backend = backend
        fast = net(x)
    assert fast.shape == ref.shape
    assert (fast - ref).abs().max().item() < 1e-4  # masks in [0, 1]; Winograd rounds a little more
    assert ref.std().item() > 1e-3  # the masks are not saturated: the comparison means something


def test_fast_path_falls_back_to_reference_where_it_does_not_apply():
    net = _random_unet(1)
    x = torch.rand(1, 2, 100, 96)  # 100 is not a multiple of 64: reference path
    with torch.no_grad():
        assert torch.equal(net(x), net.reference_forward(x))
    net.train()
    y = net(torch.rand(1, 2, 64, 64, requires_grad=True))  # training: reference path, with gradients
    y.sum().backward()
    assert net.decoders[0].deconv.weight.grad is not None


def test_prepared_weights_follow_the_parameters():
    net = _random_unet(2)
    x = torch.rand(1, 2, 64, 128)
    with torch.no_grad():
        net(x)
        net.decoders[2].deconv.weight.mul_(0.5)  # e.g. load_state_dict after a first call
        net.backend = "onednn"
        assert (net(x) - net.reference_forward(x)).abs().max().item() < 1e-5


def test_torch_em_equals_norbert():
    rng = np.random.default_rng(0)
    t, f = 40, 257
    x = ((rng.standard_normal((t, f, 2)) + 1j * rng.standard_normal((t, f, 2))) * 40).astype(np.complex64)
    x[:3] = 0  # silent frames
    x[:, 200:] *= 1e-4  # a nearly silent band
    v = np.abs(rng.standard_normal((t, f, 2, 2))).astype(np.float32) * np.abs(x)[..., None]
    y = pp.add_residual(pp.initial_estimates(v, x), x)  # 3 sources
    y_in, x_in = y.copy(), x.copy()
    for niter in (1, 2):
        ref = pp.expectation_maximization_norbert(y, x, niter)
        fast = pp.expectation_maximization(y, x, niter)
        assert fast.shape == ref.shape and fast.dtype == np.complex64
        assert np.abs(fast - ref).max() < 1e-5 * np.abs(ref).max()
    np.testing.assert_array_equal(y, y_in)  # inputs untouched (norbert would scale them in place)
    np.testing.assert_array_equal(x, x_in)


def _song() -> np.ndarray:
    if DEV_SONG.is_file():
        from unmix_desktop.audio.io import load_audio

        return load_audio(DEV_SONG)[: 44100 * 14]
    rng = np.random.default_rng(3)  # a generated stand-in: tones + noise
    t = np.arange(44100 * 14) / 44100
    tone = 0.3 * np.sin(2 * np.pi * 330 * t) * (1 + np.sin(2 * np.pi * 0.5 * t))
    return (np.stack([tone, 0.7 * tone], 1) + 0.05 * rng.standard_normal((t.size, 2))).astype(np.float32)


def test_separator_output_unchanged_within_1e4(monkeypatch):
    """Whole separator (two windows, EM, residual): optimised vs reference implementations."""
    if sp.spleeter_weights_available():
        model = sp.load_spleeter_2stems()
    else:
        model = sp.SpleeterModel()
        model.unets = torch.nn.ModuleDict({t: _random_unet(i) for i, t in enumerate(model.targets)})
    audio = _song()
    settings = SeparationSettings()  # the defaults: niter 1, power 1, residual, 11.5-s windows
    fast = Separator(model, settings, device="cpu", threads=1).separate(audio)
    for unet in model.unets.values():
        unet.backend = "reference"
    monkeypatch.setattr(pp, "expectation_maximization", pp.expectation_maximization_norbert)
    ref = Separator(model, settings, device="cpu", threads=1).separate(audio)
    assert set(fast) == set(ref) == {"vocals", "accompaniment"}
    for name in ref:
        assert np.abs(ref[name]).max() > 0.01
        assert np.abs(fast[name] - ref[name]).max() < 1e-4, name


@pytest.mark.parametrize("given, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_package_import_makes_openmp_threads_wait_passively(given, expected):
    """Set before torch loads (in a fresh process); a user's own OMP_WAIT_POLICY wins."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    code = "import os, unmix_desktop, torch; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected


def test_em_split_over_threads_is_bit_identical():
    """The EM's frequency bins split over threads give exactly the single-call result (all its sums are
    per bin), with the thread count taken from torch's (the pipeline's policy)."""
    import numpy as np
    import torch

    from unmix_desktop.separation import postprocess as pp

    rng = np.random.default_rng(3)
    yr, yi = (rng.standard_normal((2, 2, 300, 40)).astype(np.float32) for _ in range(2))
    xr, xi = (rng.standard_normal((2, 300, 40)).astype(np.float32) for _ in range(2))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        assert pp._em_threads() == 3
        split = pp._em_iteration_parallel(yr, yi, xr, xi)
    finally:
        torch.set_num_threads(before)
    whole = pp._em_iteration(yr, yi, xr, xi)
    assert np.array_equal(split[0], whole[0]) and np.array_equal(split[1], whole[1])
