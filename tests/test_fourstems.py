"""Four stems from the accompaniment by HPSS + low band: exact sums, right content in each stem."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import scipy.ndimage

from unmix_desktop.errors import Cancelled
from unmix_desktop.separation import transforms
from unmix_desktop.separation.fourstems import (
    CARD,
    DESCRIPTION,
    four_stems,
    median_filter,
    split_accompaniment,
    stem_masks,
)

SR = 44100


def components(seconds=4.0, seed=0):
    """clicks (percussive), a 55 Hz bass note and a sustained 1 kHz tone (other), stereo."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    rng = np.random.default_rng(seed)
    clicks = np.zeros(n)
    for start in range(int(0.1 * SR), n - 2000, int(0.25 * SR)):  # 4 hits per second
        burst = rng.standard_normal(1500) * np.exp(-np.arange(1500) / 200.0)
        clicks[start:start + 1500] += burst
    bass = np.sin(2 * np.pi * 55 * t) + 0.3 * np.sin(2 * np.pi * 110 * t)
    tone = np.sin(2 * np.pi * 1000 * t) + 0.5 * np.sin(2 * np.pi * 1500 * t)
    fade = np.minimum(1, np.minimum(t, t[::-1]) / 0.05)  # 50 ms fades, no edge clicks
    out = {}
    for name, sig, pan in (("drums", clicks, (0.9, 0.7)), ("bass", bass * fade, (0.5, 0.5)),
                           ("other", tone * fade, (0.3, 0.4))):
        sig = 0.2 * sig / np.sqrt(np.mean(sig**2))
        out[name] = np.stack([pan[0] * sig, pan[1] * sig], axis=1).astype(np.float32)
    return out


def test_median_filter_equals_scipy():
    S = np.abs(np.random.default_rng(1).standard_normal((200, 300))).astype(np.float32)
    for k in (3, 17, 31):
        np.testing.assert_array_equal(median_filter(S, k, axis=1),
                                      scipy.ndimage.median_filter(S, size=(1, k), mode="reflect"))
        np.testing.assert_array_equal(median_filter(S, k, axis=0),
                                      scipy.ndimage.median_filter(S, size=(k, 1), mode="reflect"))


def test_split_sums_to_accompaniment_and_four_stems_to_mixture():
    rng = np.random.default_rng(2)
    parts = components(5.0)
    acc = sum(parts.values()) + 0.01 * rng.standard_normal((5 * SR, 2)).astype(np.float32)
    vocals = 0.1 * rng.standard_normal((5 * SR, 2)).astype(np.float32)
    # small windows so that the windowed path (cross-fades) is exercised
    split = split_accompaniment(acc, window_s=2.0, overlap_s=0.5)
    assert set(split) == {"drums", "bass", "other"}
    for v in split.values():
        assert v.shape == acc.shape and v.dtype == np.float32
    np.testing.assert_allclose(split["drums"] + split["bass"] + split["other"], acc, atol=1e-4)
    stems = four_stems({"vocals": vocals, "accompaniment": acc})
    assert list(stems) == ["vocals", "drums", "bass", "other"]
    np.testing.assert_allclose(sum(stems.values()), vocals + acc, atol=1e-4)
    # windowing barely changes the result (the median filters see enough context)
    whole = split_accompaniment(acc, window_s=60.0)
    err = np.sum((whole["drums"] - split["drums"]) ** 2) / np.sum(whole["drums"] ** 2)
    assert err < 1e-2


def test_masks_send_each_component_to_its_stem():
    parts = components()
    mix = sum(parts.values())
    X = transforms.stft_np(mix)  # (T, F, C)
    masks = stem_masks(np.abs(X).transpose(2, 1, 0))  # (C, F, T) -> masks (F, T)
    total = sum(masks.values())
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    assert all(m.min() >= 0 for m in masks.values())
    for comp, sig in parts.items():
        Xc = transforms.stft_np(sig)
        energy = {s: float(np.sum(np.abs(m.T[:, :, None] * Xc) ** 2)) for s, m in masks.items()}
        share = energy[comp] / sum(energy.values())
        assert share > 0.95, (comp, energy)  # measured: >= 0.996


def test_split_output_matches_the_components():
    parts = components()
    split = split_accompaniment(sum(parts.values()))

    def snr(ref, est):
        return 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum((est - ref).astype(np.float64) ** 2))

    # energy ratios against the true components (signal-to-error, dB)
    # measured: drums 24.5, bass 23.1, other 20.5 dB
    assert snr(parts["bass"], split["bass"]) > 15
    assert snr(parts["other"], split["other"]) > 15
    assert snr(parts["drums"], split["drums"]) > 15
    # and each stem holds mostly its own component: the other two leak little energy into it
    e = {k: float(np.sum(v.astype(np.float64) ** 2)) for k, v in split.items()}
    ref = {k: float(np.sum(v.astype(np.float64) ** 2)) for k, v in parts.items()}
    for k in e:
        assert 0.9 < e[k] / ref[k] < 1.1


def test_progress_cancel_and_label():
    acc = components(3.0)["drums"]
    seen = []
    split_accompaniment(acc, progress=seen.append, window_s=1.0, overlap_s=0.25)
    assert seen[-1] == 1.0 and len(seen) >= 3
    ev = threading.Event()
    ev.set()
    with pytest.raises(Cancelled):
        split_accompaniment(acc, cancel=ev)
    with pytest.raises(ValueError, match="accompaniment"):
        four_stems({"vocals": acc})
    with pytest.raises(TypeError):
        split_accompaniment(acc, kernel=3)
    assert "not a neural 4-stem model" in DESCRIPTION and CARD["description"] == DESCRIPTION
    silent = split_accompaniment(np.zeros((SR, 2), np.float32))
    assert all(np.all(v == 0) for v in silent.values())


@pytest.mark.parametrize("seconds", [4.0, 6.7])
def test_streamed_four_stems_equal_the_in_memory_split(tiny_umx, seconds):
    """Window by window from the separator's stream (file source, windows of both stages cut at
    different places) == four_stems(separate(whole array)), and the four stems sum to the song."""
    from conftest import make_song

    from unmix_desktop.audio.stream import ArraySource
    from unmix_desktop.separation.fourstems import stream_four_stems
    from unmix_desktop.separation.separator import Separator
    from unmix_desktop.separation.settings import SeparationSettings

    mix = make_song(seconds, seed=5)["mixture"]
    sep = Separator(tiny_umx, SeparationSettings(window_s=1.5, overlap_s=0.3, niter=1), device="cpu", threads=1)
    params = {"window_s": 2.0, "overlap_s": 0.5}
    whole = four_stems(sep.separate(mix), **params)
    got = {name: [] for name in ("vocals", "drums", "bass", "other")}
    offset, fractions = 0, []
    for off, blocks in stream_four_stems(sep.stream(ArraySource(mix)), progress=fractions.append,
                                         frames=mix.shape[0], **params):
        assert off == offset and set(blocks) == set(got)
        lengths = {b.shape[0] for b in blocks.values()}
        assert len(lengths) == 1
        offset += lengths.pop()
        for name, block in blocks.items():
            got[name].append(block.copy())
    assert offset == mix.shape[0]
    assert fractions[-1] == 1.0
    for name in got:
        streamed = np.concatenate(got[name])
        assert np.max(np.abs(streamed - whole[name])) <= 1e-4, name
    np.testing.assert_allclose(sum(np.concatenate(v) for v in got.values()), mix, atol=1e-4)
