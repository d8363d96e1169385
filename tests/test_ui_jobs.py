"""The window's non-Qt parts: display spectrograms, ETA, presets, path checks, export plan, mix export."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from unmix_desktop.audio.io import save_audio
from unmix_desktop.audio.mixer import MixState
from unmix_desktop.audio.spectrogram import band_matrix, display_spectrogram
from unmix_desktop.errors import AudioError, Cancelled
from unmix_desktop.ui import jobs
from unmix_desktop.ui.presets import matching_preset, presets_for

SR = 44100


def _tone(freq: float, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x, x], 1)


def test_spectrogram_puts_a_tone_in_its_band_and_in_its_time_span():
    # 1 kHz for the first half, 4 kHz for the second half
    audio = np.concatenate([_tone(1000, 2.0), _tone(4000, 2.0)])
    spec = display_spectrogram(audio, columns=200, bands=120, tilt_db_per_octave=0)
    assert spec.image.shape == (200, 120) and spec.image.dtype == np.float32
    assert spec.duration == pytest.approx(4.0)
    assert spec.image.max() == 0.0 and spec.image.min() >= spec.floor_db
    first, second = spec.image[20:80], spec.image[120:180]
    b1, b4 = int(spec.band_of(1000)), int(spec.band_of(4000))
    assert abs(int(np.argmax(first.mean(0))) - b1) <= 1
    assert abs(int(np.argmax(second.mean(0))) - b4) <= 1
    assert first[:, b4].mean() < first[:, b1].mean() - 40  # the other tone is far below
    # a stem drawn on the mixture's scale: 20 dB quieter -> 20 dB darker
    ref = spec.ref_db + 30  # high enough that nothing is clipped at 0 dB
    loud = display_spectrogram(audio, columns=200, bands=120, ref_db=ref, tilt_db_per_octave=0)
    quiet = display_spectrogram(audio * 0.1, columns=200, bands=120, ref_db=ref, tilt_db_per_octave=0)
    assert quiet.ref_db == loud.ref_db == ref
    assert quiet.image[20:80, b1].mean() == pytest.approx(loud.image[20:80, b1].mean() - 20, abs=0.1)
    # silence sits at the floor
    silent = display_spectrogram(np.zeros((SR, 2), np.float32), ref_db=spec.ref_db)
    assert np.all(silent.image == silent.floor_db)


def test_spectrogram_width_is_bounded_and_it_can_be_cancelled():
    long = np.random.default_rng(0).standard_normal((SR * 60, 2)).astype(np.float32) * 0.1
    spec = display_spectrogram(long, columns=300, bands=64)
    assert spec.image.shape == (300, 64) and np.isfinite(spec.image).all()
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        display_spectrogram(long, cancel=cancel)
    w, edges = band_matrix(4096, SR, 160, 40.0, 16000.0)
    assert np.allclose(w.sum(1), 1.0)  # every band is an average of bins
    assert edges[0] == pytest.approx(40.0) and edges[-1] == pytest.approx(16000.0)


def test_eta_estimator_uses_the_prior_then_the_measured_rate():
    now = [0.0]
    eta = jobs.EtaEstimator(prior=10.0, clock=lambda: now[0])
    shown, left = eta.estimate()
    assert shown == 0.0 and left == pytest.approx(10.0)
    now[0] = 4.0  # no report yet: the bar moves with the prior
    shown, left = eta.estimate()
    assert shown == pytest.approx(0.4) and left == pytest.approx(6.0)
    eta.update(0.25)  # real progress: 25 % in 4 s -> 16 s in total
    shown, left = eta.estimate()
    assert shown == pytest.approx(0.25) and left == pytest.approx(12.0)
    now[0] = 8.0
    shown, left = eta.estimate()
    assert shown == pytest.approx(0.5) and left == pytest.approx(8.0)
    unknown = jobs.EtaEstimator(clock=lambda: now[0])
    assert unknown.estimate() == (0.0, None)
    assert jobs.format_eta(None).startswith("estimating")
    assert jobs.format_eta(75) == "about 1 min 15 s left"
    assert jobs.format_time(83.4, tenths=True) == "1:23.4"
    # the overall bar never goes backwards through the stages
    points = [jobs.stage_fraction(s, f) for s in ("read", "decode", "model", "separate", "save")
              for f in (0.0, 0.5, 1.0)]
    assert points == sorted(points) and points[-1] == 1.0


def test_presets():
    two = presets_for(["vocals", "accompaniment"])
    assert [p.key for p in two] == ["full", "karaoke", "acappella"]
    assert next(p for p in two if p.key == "karaoke").muted == {"vocals"}
    four = presets_for(["vocals", "drums", "bass", "other"])
    keys = [p.key for p in four]
    assert "practice-bass" in keys and "practice-drums" in keys
    assert next(p for p in four if p.key == "acappella").muted == {"drums", "bass", "other"}
    assert matching_preset(four, {"bass"}, set()).key == "practice-bass"
    assert matching_preset(four, {"bass"}, {"vocals"}) is None
    assert matching_preset(four, set(), set()).key == "full"


def test_check_song_path(tmp_path):
    song = tmp_path / "a.flac"
    save_audio(song, np.zeros((100, 2), np.float32))
    assert jobs.check_song_path(song) == song
    with pytest.raises(AudioError, match="file not found"):
        jobs.check_song_path(tmp_path / "missing.wav")
    with pytest.raises(AudioError, match="is a folder"):
        jobs.check_song_path(tmp_path)
    (tmp_path / "cover.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(AudioError, match="cover.jpg: not a supported audio file"):
        jobs.check_song_path(tmp_path / "cover.jpg")


def test_export_writes_what_the_plan_says(tmp_path):
    rng = np.random.default_rng(1)
    stems = {"vocals": (rng.standard_normal((SR, 2)) * 0.1).astype(np.float32),
             "accompaniment": (rng.standard_normal((SR, 2)) * 0.1).astype(np.float32)}
    state = MixState.from_names(stems)
    state.set_gain_db("vocals", -6.0)
    req = jobs.ExportRequest(tmp_path / "out", stems, None, "Song", "wav", True, True, True, state)
    plan = jobs.export_plan(req)
    assert [what for what, _ in plan] == ["stem:vocals", "stem:accompaniment", "karaoke", "mix"]
    fractions = []
    written = jobs.run_export(req, lambda s, f: fractions.append(f), threading.Event())
    assert written == [p for _, p in plan] and all(p.is_file() for p in written)
    assert fractions[-1] == 1.0
    mix, sr = sf.read(tmp_path / "out" / "Song (custom mix).wav", dtype="float32")
    expected = stems["vocals"] * 10 ** (-6 / 20) + stems["accompaniment"]
    np.testing.assert_allclose(mix, expected, atol=1e-4)
    vocals, _ = sf.read(tmp_path / "out" / "Song - stems" / "vocals.wav", dtype="float32")
    np.testing.assert_allclose(vocals, stems["vocals"], atol=1e-4)
    nothing = jobs.ExportRequest(tmp_path / "o2", stems, None, "Song", "wav", False, False, False, state)
    with pytest.raises(AudioError, match="nothing to export"):
        jobs.run_export(nothing, lambda s, f: None, threading.Event())
    # the source song is never overwritten
    src = tmp_path / "out" / "Song (karaoke).wav"
    req2 = jobs.ExportRequest(tmp_path / "out", stems, src, "Song", "wav", False, True, False, state)
    with pytest.raises(AudioError, match="source song"):
        jobs.run_export(req2, lambda s, f: None, threading.Event())
    assert Path(src).is_file()
