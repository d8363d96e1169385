"""Training pipeline: data sets, augmentation, statistics, STFT-domain fast path, high-band export,
a short training run, resumable checkpoints and `unmix train`. All data is generated here."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from unmix_desktop.audio.io import resample
from unmix_desktop.errors import UnmixError
from unmix_desktop.separation import transforms
from unmix_desktop.separation.model import OpenUnmix
from unmix_desktop.training import augment as A
from unmix_desktop.training.augment import Augmentation
from unmix_desktop.training.datasets import (
    AlignedDataset,
    AudioCache,
    FixedSourcesTrackFolderDataset,
    SourceFolderDataset,
    VariableSourcesTrackFolderDataset,
    band_bins,
    make_datasets,
)
from unmix_desktop.training.highband import expand_output_bins
from unmix_desktop.training.stats import floored_std, input_statistics, magnitude

SR = 16000


def _voice(n: int, rng, f0: float) -> np.ndarray:
    t = np.arange(n) / SR
    f = f0 * (1 + 0.02 * np.sin(2 * np.pi * 4 * t))
    ph = 2 * np.pi * np.cumsum(f) / SR
    env = (np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)) > -0.3).astype(float)  # sung phrases + pauses
    return (0.3 * env * sum(np.sin(k * ph) / k for k in range(1, 5))).astype(np.float32)


def _accomp(n: int, rng) -> np.ndarray:
    t = np.arange(n) / SR
    bass = 0.2 * np.sin(2 * np.pi * rng.uniform(50, 90) * t)
    hits = np.zeros(n)
    for s in range(0, n, SR // 4):
        m = min(800, n - s)
        hits[s:s + m] += 0.3 * rng.standard_normal(m) * np.exp(-np.arange(m) / 150)
    return (bass + hits).astype(np.float32)


def make_mir_like(root: Path, n_train: int = 4, n_valid: int = 2, seconds: float = 3.0, ext: str = "wav") -> Path:
    """root/{train,valid}/<track>/{vocals,accompaniment}.<ext>, 16 kHz mono (MIR-1K layout)."""
    rng = np.random.default_rng(123)
    for split, count in (("train", n_train), ("valid", n_valid)):
        for i in range(count):
            d = root / split / f"{split}_{i:02d}"
            d.mkdir(parents=True)
            n = int(seconds * SR) + i * 800
            sf.write(d / f"vocals.{ext}", _voice(n, rng, rng.uniform(180, 400)), SR)
            sf.write(d / f"accompaniment.{ext}", _accomp(n, rng), SR)
    return root


@pytest.fixture(scope="module")
def mir(tmp_path_factory) -> Path:
    return make_mir_like(tmp_path_factory.mktemp("mir"))


# -- data sets ------------------------------------------------------------------------------

def test_band_bins_of_16k_data_on_the_44k_grid():
    assert band_bins(16000) == 744          # bin 743 = 7999 Hz, bin 744 = 8010 Hz
    assert band_bins(44100) == 2049
    assert band_bins(22050) == 1025


def test_audio_cache_decodes_once_as_int16_and_resamples(tmp_path):
    x = (0.5 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)).astype(np.float32)
    sf.write(tmp_path / "a.wav", x, 8000)
    sf.write(tmp_path / "b.wav", np.zeros(16000, np.float32) + 0.25, 16000)
    cache = AudioCache()
    b = cache.get(tmp_path / "b.wav")
    assert cache.sample_rate == 16000 and b.dtype == np.int16 and b.shape == (16000, 1)
    a = cache.excerpt(tmp_path / "a.wav", 0, None)  # 8 kHz file resampled to the cache's 16 kHz
    assert a.shape[0] == 16000 and a.dtype == np.float32
    assert np.abs(a[2000:-2000, 0]).max() == pytest.approx(0.5, abs=0.01)
    pad = cache.excerpt(tmp_path / "b.wav", 15000, 3000)
    assert np.allclose(pad[:1000], 0.25, atol=1e-4) and np.all(pad[1000:] == 0)
    assert len(cache) == 2 and cache.get(tmp_path / "b.wav") is b


def test_fixed_sources_dataset_items_are_mixtures_at_44k_and_reproducible(mir):
    ds = FixedSourcesTrackFolderDataset(mir, "train", "vocals", ["accompaniment"], seq_duration=1.0,
                                        augmentation=Augmentation.none(), samples_per_track=2, seed=1)
    assert len(ds) == 8 and ds.sample_rate == SR
    x, y = ds[3]
    assert x.shape == y.shape == (2, 44100) and x.dtype == torch.float32
    # without augmentation the mixture is vocals + accompaniment of the same excerpt, dual mono
    assert torch.equal(x[0], x[1])
    ds.set_epoch(0)
    x2, _ = ds[3]
    assert torch.equal(x, x2)
    ds.set_epoch(1)
    x3, _ = ds[3]
    assert not torch.equal(x, x3)


def test_fixed_sources_mixture_equals_target_plus_interferer_excerpt(mir):
    ds = FixedSourcesTrackFolderDataset(mir, "valid", "vocals", seq_duration=None, augmentation=Augmentation.none())
    x, y = ds[0]
    track = ds.tracks[0]
    voc, _ = sf.read(track["vocals"], dtype="float32")
    acc, _ = sf.read(track["accompaniment"], dtype="float32")
    ref = resample((voc + acc)[:, None], SR, 44100)[:, 0]
    assert x.shape[1] == ref.shape[0]
    assert np.max(np.abs(x[0].numpy() - ref)) < 2e-4  # int16 cache + resampling of the sum vs sum
    assert ds.interferers == ["accompaniment"]


def test_silence_aware_excerpts_avoid_silence():
    audio = np.zeros((10000, 1), np.float32)
    audio[7000:8000] = 0.5
    rng = np.random.default_rng(0)
    starts = [A.choose_start(audio, 1000, rng, silence_db=-30, tries=200) for _ in range(20)]
    assert all(6000 < s <= 8000 for s in starts)
    assert A.choose_start(audio[:500], 1000, rng) == 0


def test_cross_track_mixing_draws_other_tracks(mir):
    aug = replace(Augmentation.none(), mix_prob=1.0)
    ds = FixedSourcesTrackFolderDataset(mir, "train", "vocals", seq_duration=1.0, augmentation=aug, seed=3)
    same = FixedSourcesTrackFolderDataset(mir, "train", "vocals", seq_duration=1.0,
                                          augmentation=Augmentation.none(), seed=3)
    rng = np.random.default_rng(5)
    target, inter = ds._excerpts(0, rng)
    # the interferer is not the accompaniment of track 0 at the same position
    acc0 = ds.cache.get(ds.tracks[0]["accompaniment"]).astype(np.float32) / 32767
    hits = [np.allclose(inter[0][:, 0], acc0[s:s + 16000, 0], atol=1e-6) for s in range(0, acc0.shape[0] - 16000, 160)]
    assert not any(hits)
    assert len(same) == len(ds)


def test_variable_sources_and_source_folder_and_aligned(tmp_path):
    rng = np.random.default_rng(0)
    n = 2 * SR
    for split in ("train", "valid"):
        for i in range(2):
            d = tmp_path / "var" / split / f"t{i}"
            d.mkdir(parents=True)
            sf.write(d / "vocals.wav", _voice(n, rng, 220), SR)
            for k in range(i + 1):  # 1 or 2 interferers: a variable number of sources
                sf.write(d / f"other{k}.wav", _accomp(n, rng), SR)
            e = tmp_path / "src" / split
            (e / "vocals").mkdir(parents=True, exist_ok=True)
            (e / "accompaniment").mkdir(parents=True, exist_ok=True)
            sf.write(e / "vocals" / f"v{i}.wav", _voice(n, rng, 300), SR)
            sf.write(e / "accompaniment" / f"a{i}.wav", _accomp(n, rng), SR)
            f = tmp_path / "al" / split / f"t{i}"
            f.mkdir(parents=True)
            v = _voice(n, rng, 250)
            sf.write(f / "vocals.wav", v, SR)
            sf.write(f / "mixture.wav", v + _accomp(n, rng), SR)
    none = Augmentation.none()
    var = VariableSourcesTrackFolderDataset(tmp_path / "var", "train", "vocals", seq_duration=None, augmentation=none)
    assert [len(t) for t in var.tracks] == [2, 3]
    x, y = var[1]
    voc = sf.read(var.tracks[1]["vocals"], dtype="float32")[0]
    total = voc + sum(sf.read(var.tracks[1][k], dtype="float32")[0] for k in ("other0", "other1"))
    assert np.allclose(x[0].numpy(), resample(total[:, None], SR, 44100)[:, 0], atol=3e-4)

    src = SourceFolderDataset(tmp_path / "src", "train", "vocals", ("accompaniment",), nb_samples=5,
                              seq_duration=0.5, augmentation=none)
    assert len(src) == 5 and src[4][0].shape == (2, 22050)

    al = AlignedDataset(tmp_path / "al", "train", "mixture", "vocals", seq_duration=0.5, augmentation=none)
    x, y = al[0]
    assert x.shape == y.shape == (2, 22050) and not torch.equal(x, y)

    for kind, root in (("trackfolder_var", "var"), ("sourcefolder", "src"), ("aligned", "al")):
        train, valid = make_datasets(kind, tmp_path / root, seq_duration=0.5, nb_samples=3, nb_valid_samples=2)
        assert len(train) > 0 and len(valid) > 0 and train.cache is valid.cache


def test_missing_data_raise_typed_errors(tmp_path):
    from unmix_desktop.errors import AudioError

    with pytest.raises(AudioError, match="not found"):
        FixedSourcesTrackFolderDataset(tmp_path / "nope", "train")
    (tmp_path / "d" / "train" / "t").mkdir(parents=True)
    sf.write(tmp_path / "d" / "train" / "t" / "vocals.wav", np.zeros(100, np.float32), SR)
    with pytest.raises(UnmixError):
        FixedSourcesTrackFolderDataset(tmp_path / "d", "train", "vocals")
    with pytest.raises(UnmixError, match="unknown dataset"):
        make_datasets("musdb", tmp_path / "d")


# -- augmentation ---------------------------------------------------------------------------

def test_gain_swap_and_none():
    rng = np.random.default_rng(0)
    x = np.stack([np.ones(100), 2 * np.ones(100)], 1).astype(np.float32)
    gains = [A.random_gain(x, rng)[0, 0] for _ in range(200)]
    assert 0.25 <= min(gains) < 0.35 and 1.15 < max(gains) <= 1.25
    swapped = [A.channel_swap(x, rng)[0, 0] for _ in range(200)]
    assert 60 < sum(s == 2 for s in swapped) < 140
    assert np.array_equal(Augmentation.none().source(x, SR, rng), x)
    mono = np.ones((50, 1), np.float32)
    assert np.array_equal(Augmentation.none().source(mono, SR, rng), np.ones((50, 2), np.float32))


def test_stereo_synthesis_image():
    rng = np.random.default_rng(1)
    s = _voice(SR, rng, 200)[:, None]
    # centre, no width, no channel gain: dual mono
    c = A.synth_stereo(s, SR, rng, pan=0, width=0, channel_gain_db=0)
    assert np.allclose(c[:, 0], s[:, 0]) and np.allclose(c[:, 1], s[:, 0])
    # width only: L + R is still twice the source, L - R is the delayed side
    w = A.synth_stereo(s, SR, rng, pan=0, width=0.5, channel_gain_db=0)
    assert np.allclose(w[:, 0] + w[:, 1], 2 * s[:, 0], atol=1e-6)
    assert np.abs(w[:, 0] - w[:, 1]).max() > 0.01
    # panning moves energy between channels with constant power (centre = (1, 1))
    for _ in range(20):
        p = A.synth_stereo(s, SR, rng, pan=1.0, width=0, channel_gain_db=0)
        el, er = np.sum(p[:, 0] ** 2), np.sum(p[:, 1] ** 2)
        assert el + er == pytest.approx(2 * np.sum(s**2), rel=1e-4)
    aug = Augmentation(gain=None, channel_swap=False)
    out = aug.source(s, SR, rng)
    assert out.shape == (SR, 2) and not np.allclose(out[:, 0], out[:, 1])


def test_random_eq_is_smooth_and_bounded():
    rng = np.random.default_rng(2)
    freqs = np.linspace(0, 8000, 500)
    curve = A.eq_curve(freqs, SR, rng, db=3.0)
    assert curve.shape == (500,) and np.all(curve > 10 ** (-20 / 20)) and np.all(curve < 10 ** (20 / 20))
    assert np.max(np.abs(np.diff(20 * np.log10(curve)))) < 0.5  # smooth
    x = rng.standard_normal((4000, 2)).astype(np.float32)
    y = A.random_eq(x, SR, rng, db=3.0)
    assert y.shape == x.shape and not np.allclose(x, y)
    assert np.array_equal(A.random_eq(x, SR, rng, db=0.0), x)


def test_augmented_items_differ_and_keep_target_inside_mixture(mir):
    aug = Augmentation(eq_db=2.0, level_db=(-6.0, 6.0))
    ds = FixedSourcesTrackFolderDataset(mir, "train", "vocals", seq_duration=1.0, augmentation=aug, seed=0)
    x, y = ds[0]
    assert not torch.equal(x[0], x[1])  # stereo image synthesised from mono sources
    X, Y = magnitude(x, max_bin=744), magnitude(y, max_bin=744)
    assert float(Y.sum()) < float(X.sum()) * 1.5 and float(Y.sum()) > 0


# -- statistics -----------------------------------------------------------------------------

def test_input_statistics_match_a_direct_computation(mir):
    ds = FixedSourcesTrackFolderDataset(mir, "train", "vocals", seq_duration=None, augmentation=Augmentation.none())
    mean, std, frames = input_statistics(ds, max_bin=744)
    mags = torch.cat([magnitude(ds[i][0], max_bin=744).mean(0) for i in range(len(ds))], dim=1).double()
    assert frames == mags.shape[1] and mean.shape == (744,)
    assert np.allclose(mean, mags.mean(1).numpy(), rtol=1e-4)
    assert np.allclose(std, mags.std(1, unbiased=False).numpy(), rtol=1e-3, atol=1e-6)
    # nothing above 8 kHz in 16 kHz data: the last bins are near-empty and get floored
    assert std[740:].max() < 0.05 * np.median(std)
    f = floored_std(std, 0.1, "median")
    assert np.all(f >= std) and f[743] == pytest.approx(0.1 * np.median(std))
    assert np.array_equal(f[100:600], std[100:600])


# -- STFT-domain fast path -------------------------------------------------------------------

def test_spectral_cache_equals_the_time_domain_stft(mir):
    from unmix_desktop.training.spectral import CachedValidation, SpectralBatches, SpectralTrackCache

    ds = FixedSourcesTrackFolderDataset(mir, "train", "vocals", seq_duration=1.0, augmentation=Augmentation.none())
    cache = SpectralTrackCache(ds, 744)
    track = ds.tracks[1]
    voc = resample(ds.cache.excerpt(track["vocals"], 0, None), SR, 44100)
    ref = transforms.stft(torch.from_numpy(voc.T.copy()))[:, :744].transpose(1, 2)
    got = cache.excerpt(1, "vocals", 0, ref.shape[1])
    assert torch.allclose(got, ref, atol=2e-3 * float(ref.abs().max()))

    # an un-augmented batch: |X| = |STFT(vocals + accompaniment)| of the frame-aligned excerpt
    batches = SpectralBatches(cache, replace(Augmentation.none(), mix_prob=0.0), 1.0, 2, seed=0)
    X, Y = batches.batch([1, 1], np.random.default_rng(0))
    assert X.shape == (2, 2, 744, 44) and torch.equal(X[:, 0], X[:, 1])
    rng = np.random.default_rng(0)
    start = batches._start(1, rng)
    mix = voc + resample(ds.cache.excerpt(track["accompaniment"], 0, None), SR, 44100)
    full = magnitude(torch.from_numpy(mix.T.copy()), max_bin=744)[0]
    assert torch.allclose(X[0, 0], full[:, start:start + 44], atol=3e-3 * float(full.max()))

    # input statistics from the cache agree with the time-domain computation
    mean, std, _ = cache.mixture_statistics()
    mean_t, std_t, _ = input_statistics(replace_ds(ds), max_bin=744)
    assert np.allclose(mean[:700], mean_t[:700], rtol=1e-2, atol=1e-3)

    valid = CachedValidation(FixedSourcesTrackFolderDataset(mir, "valid", "vocals", seq_duration=None), 744)
    assert len(valid) == 2


def replace_ds(ds):
    import copy

    twin = copy.copy(ds)
    twin.seq_duration = None
    return twin


def test_spectral_width_matches_a_time_domain_delay():
    """The STFT-domain side signal S·exp(-2πifd) approximates the STFT of the delayed waveform."""
    rng = np.random.default_rng(0)
    s = _voice(3 * 44100 // 3, rng, 200)  # any stationary-ish signal; rate does not matter here
    d = 441  # 10 ms at 44.1 kHz
    delayed = np.concatenate([np.zeros(d, np.float32), s[:-d]])
    S = transforms.stft(torch.from_numpy(s))[:744]
    D = transforms.stft(torch.from_numpy(delayed))[:744]
    freqs = torch.arange(744) * 44100 / 4096
    approx = S * torch.exp(-2j * np.pi * freqs * d / 44100)[:, None]
    inner = slice(4, S.shape[1] - 4)
    err = (approx[:, inner] - D[:, inner]).abs().pow(2).sum() / D[:, inner].abs().pow(2).sum()
    # about -8 dB for a 10 ms delay of a vibrato voice with pauses: an approximation, documented as such
    assert float(err) < 0.2


# -- high band ------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["extend", "zero", "one", "0.5"])
def test_expand_output_bins(mode):
    torch.manual_seed(0)
    net = OpenUnmix(nb_bins=96, max_bin=96, hidden_size=8, nb_layers=1)
    # non-trivial batch-norm statistics and output affine
    with torch.no_grad():
        for p in (net.bn3.weight, net.bn3.bias, net.bn3.running_mean, net.output_mean):
            p.uniform_(0.2, 1.0)
        net.bn3.running_var.uniform_(0.5, 2.0)
        net.output_scale.uniform_(0.5, 1.5)
    net.eval()
    full = expand_output_bins(net, 200, mode, reference_hz=(0, 96 * 44100 / 4096), n_fft=4096)
    assert full.nb_output_bins == 200 and full.nb_bins == 96
    x = torch.rand(1, 2, 200, 7)
    with torch.no_grad():
        y_band = net(x[:, :, :96])
        y_full = full(x)
    assert torch.allclose(y_full[:, :, :96], y_band, atol=1e-5)
    mask_high = y_full[:, :, 96:] / x[:, :, 96:]
    if mode == "zero":
        assert torch.all(y_full[:, :, 96:] == 0)
    elif mode == "one":
        assert torch.allclose(mask_high, torch.ones_like(mask_high), atol=1e-5)
    elif mode == "0.5":
        assert torch.allclose(mask_high, torch.full_like(mask_high, 0.5), atol=1e-5)
    else:
        # relu of the mean pre-activation over the reference band (here: the whole band)
        with torch.no_grad():
            captured = {}
            h = net.bn3.register_forward_hook(lambda m, i, o: captured.setdefault("bn3", o))
            net(x[:, :, :96])
            h.remove()
            pre = captured["bn3"].reshape(7, 1, 2, 96) * net.output_scale + net.output_mean
            expect = torch.relu(pre.mean(-1)).permute(1, 2, 0)  # (1, 2, T)
        assert torch.allclose(mask_high[:, :, 0], expect, atol=1e-4)
        assert torch.allclose(mask_high[:, :, -1], expect, atol=1e-4)


# -- training -------------------------------------------------------------------------------

def _config(mir: Path, out: Path, **kw):
    from unmix_desktop.training.trainer import TrainConfig

    base = dict(root=str(mir), out=str(out), epochs=4, hidden=16, layers=1, seq_dur=1.0, batch_size=4,
                samples_per_track=4, lr=3e-3, threads=1, patience=10, lr_decay_patience=10)
    base.update(kw)
    return TrainConfig(**base)


def test_short_training_lowers_the_loss_and_writes_a_loadable_bundle(mir, tmp_path):
    from unmix_desktop.separation.registry import load_model
    from unmix_desktop.separation.separator import SeparationSettings, Separator
    from unmix_desktop.training.trainer import train

    out = tmp_path / "run"
    res = train(_config(mir, out, epochs=5), quiet=True, log=lambda m: None)
    losses = [h["train_loss"] for h in res.history]
    valid = [h["valid_loss"] for h in res.history]
    assert len(losses) == 5 and all(np.isfinite(losses))
    assert losses[-1] < 0.7 * losses[0]
    assert min(valid[1:]) < valid[0]
    log = json.loads((out / "train_log.json").read_text())
    assert [h["epoch"] for h in log["history"]] == [1, 2, 3, 4, 5]
    assert log["data"]["max_bin"] == 744 and "floored_bins" in log["stats"]
    model = load_model(str(out))
    assert model.targets == ["vocals"] and model.card["training"]["best_epoch"] == res.best_epoch
    net = model.networks["vocals"]
    assert net.nb_output_bins == 2049 and net.nb_bins == 744
    audio = np.random.default_rng(0).standard_normal((44100, 2)).astype(np.float32) * 0.1
    stems = Separator(model, SeparationSettings(), device="cpu").separate(audio)
    assert set(stems) == {"vocals", "accompaniment"}
    assert np.allclose(stems["vocals"] + stems["accompaniment"], audio, atol=1e-4)


def test_resume_continues_exactly_like_an_uninterrupted_run(mir, tmp_path):
    from safetensors.torch import load_file

    from unmix_desktop.training.trainer import train

    quiet = dict(quiet=True, log=lambda m: None)
    train(_config(mir, tmp_path / "a", epochs=3), **quiet)
    train(_config(mir, tmp_path / "b", epochs=2), **quiet)
    res = train(_config(mir, tmp_path / "b", epochs=3), resume=True, **quiet)
    assert [h["epoch"] for h in res.history] == [1, 2, 3]
    a = load_file(str(tmp_path / "a" / "checkpoint" / "last.safetensors"))
    b = load_file(str(tmp_path / "b" / "checkpoint" / "last.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), k


def test_time_domain_path_trains_too(mir, tmp_path):
    from unmix_desktop.training.trainer import train

    cfg = _config(mir, tmp_path / "td", epochs=2, stft_cache=False, samples_per_track=2,
                  augmentation=Augmentation(eq_db=2.0))
    res = train(cfg, quiet=True, log=lambda m: None)
    assert len(res.history) == 2 and np.isfinite(res.history[-1]["valid_loss"])
    assert json.loads((tmp_path / "td" / "train_log.json").read_text())["data"]["stft_cache"] is False


def test_unmix_train_cli_and_resume_errors(mir, tmp_path, capsys):
    from unmix_desktop.cli import main

    out = tmp_path / "cli"
    args = ["train", "--root", str(mir), "--out", str(out), "--epochs", "1", "--hidden", "8", "--layers", "1",
            "--seq-dur", "1", "--batch-size", "4", "--threads", "1", "--quiet"]
    assert main(args) == 0
    assert (out / "model.json").is_file() and (out / "checkpoint" / "last.json").is_file()
    assert main(args[:6] + ["2"] + args[7:] + ["--resume"]) == 0
    assert len(json.loads((out / "train_log.json").read_text())["history"]) == 2
    capsys.readouterr()
    assert main(["train", "--root", str(mir), "--out", str(tmp_path / "none"), "--resume", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no checkpoint to resume from" in err and len(err.splitlines()) == 1
    assert main(["train", "--root", str(tmp_path / "missing"), "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "not found" in capsys.readouterr().err
