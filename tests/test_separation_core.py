"""STFT, the open-unmix network layout, bundles, the separator and its post-processing."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from unmix_desktop.errors import Cancelled, ModelError
from unmix_desktop.separation import transforms
from unmix_desktop.separation.bundle import load_bundle, save_bundle
from unmix_desktop.separation.model import OpenUnmix, official_umxhq_shapes
from unmix_desktop.separation.postprocess import logit_sharpen, postprocess, ratio_mask
from unmix_desktop.separation.separator import SeparationSettings, Separator

SR = 44100


def test_stft_perfect_reconstruction():
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((2, SR * 2 + 123)).astype(np.float32))
    spec = transforms.stft(x)
    assert spec.shape == (2, 2049, (x.shape[-1]) // 1024 + 1)
    y = transforms.istft(spec, x.shape[-1])
    err_db = 20 * np.log10(float((y - x).abs().max() / x.abs().max()))
    assert err_db < -80


def test_official_umxhq_keys_and_shapes():
    net = OpenUnmix(nb_bins=2049, nb_channels=2, hidden_size=512, nb_layers=3, max_bin=1487)
    ours = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    table = official_umxhq_shapes()
    # The table of the official checkpoint's keys (vocals-b62c91ce.pth), spelled out for the key names.
    assert "lstm.weight_ih_l2_reverse" in table and table["fc1.weight"] == (512, 2974)
    assert table["lstm.weight_hh_l0"] == (1024, 256) and table["bn3.running_var"] == (4098,)
    assert ours == table


def test_openunmix_output_is_nonnegative_and_shaped():
    torch.manual_seed(0)
    net = OpenUnmix(hidden_size=32, nb_layers=2, max_bin=300).eval()
    mag = torch.rand(1, 2, 2049, 20)
    out = net(mag)
    assert out.shape == mag.shape and float(out.detach().min()) >= 0.0


def test_bundle_roundtrip(tmp_path, tiny_umx):
    folder = save_bundle(tmp_path / "m", tiny_umx, card={"name": "m", "description": "test"})
    loaded = load_bundle(folder)
    assert loaded.targets == ["vocals"] and loaded.card["description"] == "test"
    mag = torch.rand(1, 2, 2049, 7)
    with torch.no_grad():
        assert torch.allclose(loaded(mag), tiny_umx(mag))
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.safetensors"]


def test_bundle_errors(tmp_path, tiny_umx):
    with pytest.raises(ModelError, match="not a model bundle"):
        load_bundle(tmp_path)
    folder = save_bundle(tmp_path / "m", tiny_umx)
    (folder / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelError, match="cannot read weights"):
        load_bundle(folder)


def test_ratio_mask_and_logit():
    v = np.random.default_rng(0).uniform(0, 1, (5, 7, 2, 3)).astype(np.float32)
    m = ratio_mask(v, power=2)
    assert np.allclose(m.sum(-1), 1, atol=1e-5)
    sharp = logit_sharpen(m, 3.0)
    assert np.allclose(sharp.sum(-1), 1, atol=1e-5)
    # Sharpening moves the dominant source's mask up and the others down.
    top = m.argmax(-1)[..., None]
    assert np.all(np.take_along_axis(sharp, top, -1) >= np.take_along_axis(m, top, -1) - 1e-6)
    two = ratio_mask(v[..., :2])
    assert np.allclose(logit_sharpen(two, 1.0), two)


@pytest.mark.parametrize("niter", [0, 1, 2])
def test_postprocess_sources_sum_to_mixture(niter):
    rng = np.random.default_rng(niter)
    x = (rng.standard_normal((30, 40, 2)) + 1j * rng.standard_normal((30, 40, 2))).astype(np.complex64)
    v = rng.uniform(0, 1, (30, 40, 2, 2)).astype(np.float32)
    y = postprocess(v, x, niter=niter, softmask=True, power=2)
    assert y.shape == (30, 40, 2, 2)
    # Wiener gains of one model sum to identity (up to norbert's regularisation).
    assert np.linalg.norm(y.sum(-1) - x) < 1e-2 * np.linalg.norm(x)


@pytest.mark.parametrize("settings", [
    SeparationSettings(niter=0), SeparationSettings(niter=1), SeparationSettings(niter=2, logit=2.0),
    SeparationSettings(niter=1, softmask=False, swap_tta=True),
])
def test_residual_stems_sum_to_mixture(tiny_umx, song, settings):
    stems = Separator(tiny_umx, settings).separate(song["mixture"])
    assert set(stems) == {"vocals", "accompaniment"}
    total = stems["vocals"] + stems["accompaniment"]
    assert np.abs(total - song["mixture"]).max() < 1e-4
    assert all(s.shape == song["mixture"].shape and s.dtype == np.float32 for s in stems.values())


def test_windows_crossfade_and_sum(tiny_umx):
    # 9 s in 4-s windows with 1-s overlap: three windows, stems still sum to the mix.
    x = np.random.default_rng(3).standard_normal((SR * 9, 2)).astype(np.float32) * 0.1
    sep = Separator(tiny_umx, SeparationSettings(niter=1, window_s=4.0, overlap_s=1.0))
    spans = sep.windows(x.shape[0])
    assert len(spans) >= 3 and spans[0][0] == 0 and spans[-1][1] == x.shape[0]
    fractions = []
    stems = sep.separate(x, progress=fractions.append)
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert np.abs(stems["vocals"] + stems["accompaniment"] - x).max() < 1e-4
    # Windowed result is close to the one-window result away from the window edges.
    whole = Separator(tiny_umx, SeparationSettings(niter=0, window_s=20)).separate(x)
    part = Separator(tiny_umx, SeparationSettings(niter=0, window_s=4.0, overlap_s=1.0)).separate(x)
    d = part["vocals"] - whole["vocals"]
    assert 10 * np.log10(np.sum(whole["vocals"] ** 2) / np.sum(d ** 2)) > 10


def test_targets_subset_and_unknown(tiny_umx, song):
    stems = Separator(tiny_umx, SeparationSettings(targets=["accompaniment"])).separate(song["mixture"])
    assert list(stems) == ["accompaniment"]
    with pytest.raises(ModelError, match="drums"):
        Separator(tiny_umx, SeparationSettings(targets=["drums"])).separate(song["mixture"])


def test_cancel_between_windows(tiny_umx):
    x = np.zeros((SR * 12, 2), dtype=np.float32)
    cancel = threading.Event()
    seen = []

    def progress(f):
        seen.append(f)
        if f > 0:
            cancel.set()

    with pytest.raises(Cancelled):
        Separator(tiny_umx, SeparationSettings(window_s=3.0, overlap_s=0.5)).separate(x, progress, cancel)
    assert len(seen) == 2  # 0.0, then the first window; nothing after the cancel


def test_memory_does_not_grow_with_length(tiny_umx):
    """Peak extra memory of a 60-s song is far below 4x that of a 15-s song (window-bounded)."""
    import tracemalloc

    sep = Separator(tiny_umx, SeparationSettings(niter=1, window_s=10.0, overlap_s=1.0))

    def peak(seconds):
        x = np.random.default_rng(0).standard_normal((int(SR * seconds), 2)).astype(np.float32) * 0.1
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        sep.separate(x)
        peak_bytes = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        out_bytes = x.nbytes * 2  # the two output stems themselves must scale with length
        return peak_bytes - out_bytes

    short, long = peak(15), peak(60)
    assert long < 1.6 * short, (short, long)


def test_file_to_four_stems_stream_holds_no_song_sized_buffer(tiny_umx, tmp_path):
    """`unmix separate --stems 4`'s path (file decoded in blocks -> Separator.stream -> stream_four_stems
    -> blocks written and dropped): a 5x longer song adds less than half of one stem's extra size to
    the peak of traced allocations (holding the decoded song or any whole stem would add all of it)."""
    import tracemalloc

    import soundfile as sf

    from unmix_desktop.audio.stream import open_audio
    from unmix_desktop.separation.fourstems import stream_four_stems

    sep = Separator(tiny_umx, SeparationSettings(niter=1, window_s=2.0, overlap_s=0.5), device="cpu", threads=1)

    def peak(seconds: int) -> tuple[int, int]:
        path = tmp_path / f"song{seconds}.flac"
        rng = np.random.default_rng(seconds)
        with sf.SoundFile(path, "w", SR, 2, "PCM_16") as fh:
            for _ in range(seconds):
                fh.write((0.1 * rng.standard_normal((SR, 2))).astype(np.float32))
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        written = 0
        with open_audio(path) as source:
            for _, blocks in stream_four_stems(sep.stream(source), window_s=3.0, overlap_s=0.5):
                written += blocks["vocals"].shape[0]
        peak_bytes = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        return peak_bytes, written

    peak(4)  # warm-up: one-time allocations (imports, FFT plans) are not the song's
    (short, n_short), (long, n_long) = peak(8), peak(40)
    assert (n_short, n_long) == (8 * SR, 40 * SR)
    extra_stem_bytes = (40 - 8) * SR * 2 * 4
    assert long - short < 0.5 * extra_stem_bytes, (short, long, extra_stem_bytes)
