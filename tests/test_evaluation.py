"""Evaluation: BSSEval v4 on generated signals with known answers, oracles, track folders, files, CLI."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

from unmix_desktop import cli
from unmix_desktop.errors import AudioError, UnmixError
from unmix_desktop.evaluation import (
    EvaluationResults,
    bsseval,
    evaluate_method,
    evaluate_methods,
    iter_tracks,
    load_track_folder,
    model_separate_fn,
    oracle,
    oracle_method,
)
from unmix_desktop.evaluation.bsseval import museval_metrics
from unmix_desktop.separation import transforms
from unmix_desktop.separation.base import SpectrogramModel
from unmix_desktop.separation.separator import SeparationSettings

SR = 44100
warnings.filterwarnings("ignore", category=DeprecationWarning)


def band_noise(n, lo, hi, seed, stereo=(1.0, 0.6)):
    """Stereo noise band-limited to [lo, hi] Hz (FFT brick wall), independent channels."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, 2), dtype=np.float64)
    f = np.fft.rfftfreq(n, 1 / SR)
    for c in range(2):
        spec = np.fft.rfft(rng.standard_normal(n))
        spec[(f < lo) | (f > hi)] = 0
        sig = np.fft.irfft(spec, n)
        out[:, c] = stereo[c] * sig / sig.std()
    return (0.1 * out).astype(np.float32)


def db(num, den):
    return 10 * np.log10(np.sum(np.asarray(num, np.float64) ** 2) / np.sum(np.asarray(den, np.float64) ** 2))


@pytest.fixture(scope="module")
def pair():
    n = 2 * SR
    return {"vocals": band_noise(n, 50, 7000, 1), "accompaniment": band_noise(n, 50, 7000, 2, (0.7, 1.0))}


# --- BSSEval -------------------------------------------------------------------------------
def test_perfect_estimate_scores_huge_sdr(pair):
    med = bsseval(pair, {k: v.copy() for k, v in pair.items()}).medians
    for t in pair:
        assert med[t]["SDR"] > 100


def test_swapped_estimates_score_low(pair):
    swapped = {"vocals": pair["accompaniment"], "accompaniment": pair["vocals"]}
    med = bsseval(pair, swapped).medians
    for t in pair:
        assert med[t]["SDR"] < 0 and med[t]["SIR"] < 0


def test_noisy_estimate_matches_analytic_values(pair):
    """est_v = v + 0.1 a + noise: SDR, SIR and SAR are known in closed form (frame by frame)."""
    v, a = pair["vocals"].astype(np.float64), pair["accompaniment"].astype(np.float64)
    noise = 0.3 * np.std(v) * np.random.default_rng(7).standard_normal(v.shape)
    est = {"vocals": v + 0.1 * a + noise, "accompaniment": a + 0.2 * v}
    scores = bsseval(pair, est)
    frames = [slice(i * SR, (i + 1) * SR) for i in range(2)]
    sdr = np.median([db(v[w], 0.1 * a[w] + noise[w]) for w in frames])
    sir = np.median([db(v[w], 0.1 * a[w]) for w in frames])
    sar = np.median([db(v[w] + 0.1 * a[w], noise[w]) for w in frames])
    med = scores.medians["vocals"]
    assert med["SDR"] == pytest.approx(sdr, abs=0.05)
    assert med["SIR"] == pytest.approx(sir, abs=0.5)
    assert med["SAR"] == pytest.approx(sar, abs=0.5)
    assert med["ISR"] > 30  # no spatial distortion was added
    assert scores.medians["accompaniment"]["SIR"] == pytest.approx(
        np.median([db(a[w], 0.2 * v[w]) for w in frames]), abs=0.5)


def test_half_mixture_estimate_scores_3db(pair):
    """est = (v + a) / 2 with independent equal-energy sources: SDR = 10 log10(2) per source."""
    mono = {k: np.repeat(v[:, :1] / v[:, 0].std() * 0.1, 2, axis=1) for k, v in pair.items()}  # dual mono, equal energy
    mix = mono["vocals"] + mono["accompaniment"]
    med = bsseval(mono, {"vocals": mix / 2, "accompaniment": mix / 2}).medians
    expected = 10 * np.log10(np.sum(mono["vocals"] ** 2)
                             / np.sum((mono["accompaniment"] / 2 - mono["vocals"] / 2) ** 2))
    assert med["vocals"]["SDR"] == pytest.approx(expected, abs=0.3)
    assert med["vocals"]["SDR"] == pytest.approx(3.0, abs=0.5)
    # (dual-mono references, the MIR-1K case) the estimate is 0.5 v (a gain: ISR = 20 log10 2)
    # + 0.5 a (interference) and nothing else (no artefacts)
    v, a = mono["vocals"].astype(np.float64), mono["accompaniment"].astype(np.float64)
    frames = [slice(i * SR, (i + 1) * SR) for i in range(2)]
    assert med["vocals"]["ISR"] == pytest.approx(6.02, abs=0.2)
    assert med["vocals"]["SIR"] == pytest.approx(np.median([db(v[w], a[w]) for w in frames]), abs=0.3)
    assert med["vocals"]["SAR"] > 30


def test_frame_projection_reproduces_museval_exactly(pair):
    # mono signals (1-D arrays are accepted) keep museval's 512-tap least squares small
    pair = {k: v[: int(1.5 * SR), 0] for k, v in pair.items()}
    est = {"vocals": pair["vocals"] + 0.2 * pair["accompaniment"], "accompaniment": 0.9 * pair["accompaniment"]}
    ours = bsseval(pair, est, projection="frame")
    refs = np.stack([pair["vocals"], pair["accompaniment"]]).astype(np.float64)[..., None]
    ests = np.stack([est["vocals"], est["accompaniment"]]).astype(np.float64)[..., None]
    sdr, isr, sir, sar, _ = museval_metrics().bss_eval(refs, ests, window=SR, hop=SR)
    np.testing.assert_array_equal(ours.frames["vocals"]["SDR"], sdr[0])
    np.testing.assert_array_equal(ours.frames["accompaniment"]["SIR"], sir[1])
    np.testing.assert_array_equal(ours.frames["vocals"]["SAR"], sar[0])
    np.testing.assert_array_equal(ours.frames["vocals"]["ISR"], isr[0])
    # SDR does not depend on the projection
    np.testing.assert_allclose(bsseval(pair, est).frames["vocals"]["SDR"], sdr[0], atol=1e-9)


def test_silent_estimate_and_length_mismatch_are_handled(pair):
    est = {"vocals": np.zeros_like(pair["vocals"]), "accompaniment": pair["accompaniment"][:-1000]}
    med = bsseval(pair, est).medians
    assert med["vocals"]["SDR"] < 0.1  # silence recovers nothing of the source
    assert np.isfinite(med["accompaniment"]["SDR"])


# --- oracles -------------------------------------------------------------------------------
def test_ibm_on_disjoint_sources_is_nearly_perfect():
    n = 2 * SR
    low, high = band_noise(n, 60, 900, 3), band_noise(n, 3000, 9000, 4)
    sources = {"bass": low, "hihat": high}
    est = oracle("ibm", sources)
    med = bsseval(sources, est).medians
    assert med["bass"]["SDR"] > 30 and med["hihat"]["SDR"] > 30
    # overlapping sources: the ideal masks are far from perfect but still good, IRM2 >= IRM1
    pair = {"a": band_noise(SR + SR // 4, 60, 6000, 5), "b": band_noise(SR + SR // 4, 60, 6000, 6)}
    sdr = {m: np.mean([v["SDR"] for v in bsseval(pair, oracle(m, pair)).medians.values()]) for m in ("irm1", "irm2")}
    assert 0 < sdr["irm1"] < sdr["irm2"] < 30


def test_ratio_masks_sum_to_the_mixture(pair):
    mix = pair["vocals"] + pair["accompaniment"]
    for m in ("irm1", "irm2", "mwf"):
        est = oracle(m, pair, mix)
        np.testing.assert_allclose(est["vocals"] + est["accompaniment"], mix, atol=1e-4)


def test_oracle_mwf_equals_one_norbert_em_iteration_from_true_sources(pair):
    import norbert

    mix = pair["vocals"] + pair["accompaniment"]
    est = oracle("mwf", pair, mix)
    X = transforms.stft_np(mix).astype(np.complex128)
    Y = np.stack([transforms.stft_np(pair[k]) for k in ("vocals", "accompaniment")], -1).astype(np.complex128)
    scale = max(1.0, np.abs(X).max() / 10)
    y = norbert.expectation_maximization(Y / scale, X / scale, iterations=1)[0] * scale
    ref = transforms.istft_np(y[..., 0].astype(np.complex64), mix.shape[0])
    np.testing.assert_allclose(est["vocals"], ref, atol=1e-5)


def test_oracle_with_a_subset_of_sources_models_the_remainder(pair):
    drums = band_noise(pair["vocals"].shape[0], 50, 7000, 9)
    mix = pair["vocals"] + pair["accompaniment"] + drums
    only = oracle("irm2", {"vocals": pair["vocals"]}, mix)
    assert set(only) == {"vocals"}
    # without the remainder the single mask would be 1 and the estimate the whole mixture
    assert db(pair["vocals"], only["vocals"] - pair["vocals"]) > db(pair["vocals"], mix - pair["vocals"]) + 3
    with pytest.raises(ValueError):
        oracle("nope", pair)


# --- track folders, runner, files, CLI ------------------------------------------------------
def write_dataset(root, pair, n_tracks=2, seconds=1.25):
    pair = {k: v[: int(seconds * SR)] for k, v in pair.items()}
    for i in range(n_tracks):
        d = root / f"track{i}"
        d.mkdir(parents=True)
        v, a = (np.roll(pair[k], i * 5000, axis=0) for k in ("vocals", "accompaniment"))
        sf.write(d / "vocals.flac", v, SR)
        sf.write(d / "accompaniment.wav", a, SR, subtype="FLOAT")
        if i == 0:
            sf.write(d / "mixture.wav", v + a, SR, subtype="FLOAT")
    return root


def test_load_track_folder_and_mixture_as_sum(tmp_path, pair):
    root = write_dataset(tmp_path / "data", pair)
    t0 = load_track_folder(root / "track0", ["vocals", "accompaniment"])
    t1 = load_track_folder(root / "track1")
    assert not t0.mixture_is_sum and t1.mixture_is_sum
    assert set(t1.sources) == {"vocals", "accompaniment"}
    np.testing.assert_allclose(t1.mixture, t1.sources["vocals"] + t1.sources["accompaniment"], atol=1e-6)
    assert t0.mixture.shape == (int(1.25 * SR), 2) and t0.mixture.dtype == np.float32
    # mono 16 kHz files (MIR-1K layout) come out stereo at 44.1 kHz
    d = tmp_path / "mir" / "clip"
    d.mkdir(parents=True)
    sf.write(d / "vocals.ogg", pair["vocals"][: SR, 0][::3], 14700)
    sf.write(d / "accompaniment.ogg", pair["accompaniment"][: SR, 0][::3], 14700)
    t = load_track_folder(d)
    assert t.mixture.shape[1] == 2 and abs(t.mixture.shape[0] - SR) < 10
    with pytest.raises(AudioError, match="drums"):
        load_track_folder(root / "track0", ["vocals", "drums"])
    with pytest.raises(AudioError):
        list(iter_tracks(tmp_path / "missing"))


def test_evaluate_method_with_known_answer_and_files(tmp_path, pair):
    root = write_dataset(tmp_path / "data", pair)
    tracks = list(iter_tracks(root, ["vocals", "accompaniment"]))
    lines = []
    res = evaluate_method(tracks, lambda mix: {"vocals": mix / 2, "accompaniment": mix / 2},
                          ["vocals", "accompaniment"], name="half", log=lines.append)
    res.merge(evaluate_methods(tracks, {"IRM2": oracle_method("irm2")}, ["vocals", "accompaniment"]))
    assert len(lines) == 2 and "half" in lines[0]
    summ = res.summary()
    assert set(summ) == {"half", "IRM2"}
    assert summ["IRM2"]["vocals"]["SDR"] > summ["half"]["vocals"]["SDR"] + 3
    v, a = (t.sources[k].astype(np.float64) for k in ("vocals", "accompaniment") for t in tracks[:1])
    assert summ["half"]["vocals"]["SDR"] == pytest.approx(db(v[:SR], (a[:SR] - v[:SR]) / 2), abs=0.5)
    assert "half" in res.table() and "IRM2" in res.table()

    out = tmp_path / "out"
    csv_path, json_path = res.to_csv(out / "scores.csv"), res.to_json(out / "scores.json")
    rows = csv_path.read_text().strip().splitlines()
    assert rows[0].startswith("method,track,target,SDR,SIR,ISR,SAR") and len(rows) == 1 + 2 * 2 * 2
    data = json.loads(json_path.read_text())
    assert data["summary"]["half"]["vocals"]["SDR"] == pytest.approx(summ["half"]["vocals"]["SDR"])
    back = EvaluationResults.from_json(json_path)
    assert back.summary()["IRM2"]["accompaniment"]["SAR"] == pytest.approx(summ["IRM2"]["accompaniment"]["SAR"])
    pngs = res.plot(out)
    assert [p.name for p in pngs] == ["boxplot_vocals.png", "boxplot_accompaniment.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert not list(out.glob(".*part*"))  # temp files were renamed

    with pytest.raises(UnmixError, match="no estimate for accompaniment"):
        evaluate_method(tracks, lambda mix: {"vocals": mix}, ["vocals", "accompaniment"])


class HalfVocals(SpectrogramModel):
    """A real (tiny) spectrogram model: vocals = half the mixture magnitude."""

    def __init__(self):
        super().__init__()
        self.targets = ["vocals"]
        self.gain = torch.nn.Parameter(torch.tensor(0.5))

    def forward(self, mag):
        return (mag * self.gain).unsqueeze(1)


def test_model_separate_fn_runs_the_separator(pair):
    mix = pair["vocals"] + pair["accompaniment"]
    fn = model_separate_fn(HalfVocals(), SeparationSettings(niter=0), ["vocals", "accompaniment"])
    stems = fn(mix)
    np.testing.assert_allclose(stems["vocals"], mix / 2, atol=1e-4)
    np.testing.assert_allclose(stems["vocals"] + stems["accompaniment"], mix, atol=1e-5)


def test_cli_evaluate_writes_files_and_reports_errors(tmp_path, pair, capsys):
    root = write_dataset(tmp_path / "data", pair)
    out = tmp_path / "res"
    rc = cli.main(["evaluate", str(root), "--oracles", "irm1", "--max-tracks", "1", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0
    assert "IRM1" in captured.out and "track0" in captured.err
    assert {p.name for p in out.iterdir()} == {"scores.csv", "scores.json", "boxplot_vocals.png",
                                               "boxplot_accompaniment.png"}
    assert cli.main(["evaluate", str(root), "--oracles", "xyz", "--out", str(out)]) == 2
    assert "unknown method" in capsys.readouterr().err
    assert cli.main(["evaluate", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere" in err[0]


def test_json_is_strict_with_infinite_and_undefined_scores(tmp_path):
    from unmix_desktop.evaluation import TrackScores

    res = EvaluationResults()
    inf_nan = {"SDR": np.array([np.inf, np.inf]), "SIR": np.array([np.nan, np.nan]),
               "ISR": np.array([np.inf, 20.0]), "SAR": np.array([np.nan, 5.0])}
    res.add("perfect", "t", TrackScores({"vocals": inf_nan}))
    path = res.to_json(tmp_path / "s.json", include_frames=True)

    def reject(token):
        raise ValueError(token)

    data = json.loads(path.read_text(), parse_constant=reject)  # no NaN / Infinity tokens
    row = data["tracks"][0]
    assert row["SDR"] is None and row["SIR"] is None and row["SAR"] == 5.0
    assert data["frames"][0]["ISR"] == [None, 20.0]
