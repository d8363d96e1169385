"""The melody: tracking a generated voice, the time,hz file, display notes and key shift, the
sing-along scorer driven by generated voices through the live YIN path, and `unmix melody`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from unmix_desktop.analysis.melody import (
    Contour,
    MelodyError,
    cache_path,
    melody_for_stems,
    midi_to_hz,
    quantise_notes,
    shift_contour,
    track_melody,
)
from unmix_desktop.analysis.singing import SingScorer, cents_off
from unmix_desktop.audio.mic import Microphone
from unmix_desktop.lyrics import Line

SR = 44100
ROOT = Path(__file__).resolve().parents[1]
# A tune: (start s, end s, midi); gaps between phrases are silent.
TUNE = [(0.5, 1.0, 60), (1.0, 1.5, 62), (1.5, 2.0, 64), (2.0, 2.8, 65), (3.3, 3.8, 67), (3.8, 4.6, 64)]


def tune_f0(t: np.ndarray, tune=TUNE, vibrato: float = 0.25) -> np.ndarray:
    """Per-time f0 (Hz, 0 = silent) of ``tune`` with a 5.5 Hz vibrato of ``vibrato`` semitones."""
    midi = np.full(t.shape, np.nan)
    for start, end, note in tune:
        midi[(t >= start) & (t < end)] = note
    midi = midi + vibrato * np.sin(2 * np.pi * 5.5 * t)
    return np.where(np.isfinite(midi), midi_to_hz(np.nan_to_num(midi)), 0.0)


def sing(f0: np.ndarray, sr: int = SR, seed: int = 0) -> np.ndarray:
    """A harmonic voice with a little breath noise following per-sample f0 (0 = silence); (n,)."""
    phase = 2 * np.pi * np.cumsum(f0) / sr
    env = (f0 > 0).astype(np.float64)
    env = np.convolve(env, np.ones(441) / 441, mode="same")  # 10 ms attack/release
    x = sum(np.sin(k * phase) / k ** 1.3 for k in range(1, 8)) * 0.25 * env
    x = x + 0.003 * np.random.default_rng(seed).standard_normal(x.size)
    return x.astype(np.float32)


def truth_contour(seconds: float = 5.0, **kw) -> Contour:
    t = np.arange(0, seconds, 0.01)
    return Contour(t, tune_f0(t, **kw).astype(np.float32))


def test_default_tracker_follows_a_sung_tune():
    n = 5 * SR
    t = np.arange(n) / SR
    audio = np.stack([sing(tune_f0(t))] * 2, 1)
    contour = track_melody(audio, SR)
    assert contour.times.size > 250 and np.all(np.diff(contour.times) > 0)
    truth = tune_f0(contour.times)
    both = (truth > 0) & (contour.hz > 0)
    assert both.sum() > 0.8 * (truth > 0).sum()                      # voiced where the tune is
    assert np.mean(np.abs(cents_off(contour.hz[both], truth[both], False)) < 50) > 0.95
    silent = (tune_f0(contour.times - 0.05) == 0) & (tune_f0(contour.times + 0.05) == 0)
    assert np.mean(contour.hz[silent] == 0) > 0.9                     # unvoiced in the gaps


def test_unknown_tracker_and_empty_audio():
    with pytest.raises(MelodyError, match="unknown pitch tracker"):
        track_melody(np.zeros((100, 2), np.float32), tracker="nope")
    assert track_melody(np.zeros((0, 2), np.float32)).times.size == 0


def test_csv_round_trip_is_atomic(tmp_path):
    c = truth_contour()
    out = c.to_csv(tmp_path / "f0.csv")
    assert out.read_text().splitlines()[0] == "time,hz"
    back = Contour.from_csv(out)
    assert np.allclose(back.times, c.times, atol=1e-4) and np.allclose(back.hz, c.hz, atol=0.01)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f0.csv"]   # no temp file left
    (tmp_path / "bad.csv").write_text("time,hz\n0.0,abc\n")
    with pytest.raises(MelodyError, match="bad.csv"):
        Contour.from_csv(tmp_path / "bad.csv")
    assert c.at(0.75) == pytest.approx(c.hz[75]) and c.at(100.0) == 0


def test_notes_are_quantised_and_follow_the_key_shift():
    notes = quantise_notes(truth_contour())
    assert [n.midi for n in notes] == [n for _, _, n in TUNE]
    for note, (start, end, _) in zip(notes, TUNE):
        assert note.start == pytest.approx(start, abs=0.02) and note.end == pytest.approx(end, abs=0.02)
    down = quantise_notes(shift_contour(truth_contour(), -3))
    assert [n.midi for n in down] == [n - 3 for _, _, n in TUNE]
    assert quantise_notes(truth_contour(), semitones=2) == [n.shifted(2) for n in notes]
    # A 30 ms blip and a short unvoiced dip inside a note do not make extra notes.
    c = truth_contour()
    hz = c.hz.copy()
    hz[62:65] *= 2 ** (3 / 12)
    hz[120:123] = 0
    assert [n.midi for n in quantise_notes(Contour(c.times, hz))] == [n for _, _, n in TUNE]


def _sung_readings(f0_fn, seconds: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """Sing ``f0_fn(t)`` into a Microphone (no stream) and return its (time, hz) readings."""
    n = int(seconds * SR)
    x = sing(f0_fn(np.arange(n) / SR), seed=3)
    mic = Microphone(open_stream=False)
    for start in range(0, n, 512):
        mic.process(x[start:start + 512])
    _, r = mic.readings(0)
    return r["times"], r["hz"]


def test_scorer_with_generated_voices():
    melody = truth_contour(vibrato=0.0)
    lines = [Line(0.5, 2.8, "first line"), Line(3.3, 4.6, "second line")]

    def score(f0_fn):
        scorer = SingScorer(melody)
        scorer.add(*_sung_readings(f0_fn))
        return scorer.score(), scorer.line_scores(lines), scorer

    def near(t):  # a singer gliding around the tune: vibrato and slow drift within ~35 cents
        return tune_f0(t, vibrato=0.0) * 2 ** ((0.2 * np.sin(2 * np.pi * 5 * t)
                                                + 0.1 * np.sin(2 * np.pi * 0.3 * t)) / 12)

    good, good_lines, scorer = score(near)
    assert good > 0.9 and all(s > 0.85 for s in good_lines) and scorer.scored_frames() > 300
    off, off_lines, _ = score(lambda t: tune_f0(t, vibrato=0.0) * 2 ** (1.0 / 12))  # a semitone sharp
    assert off < 0.1 and all(s < 0.15 for s in off_lines)
    octave, _, _ = score(lambda t: tune_f0(t, vibrato=0.0) / 2)  # a man singing a woman's line
    assert octave > 0.9
    strict = SingScorer(melody, octave_tolerant=False)
    strict.add(*_sung_readings(lambda t: tune_f0(t, vibrato=0.0) / 2))
    assert strict.score() < 0.05
    # Right tune in the first line only, a semitone off in the second.
    mixed, mixed_lines, _ = score(lambda t: np.where(t < 3.0, near(t), tune_f0(t, vibrato=0.0) * 2 ** (1 / 12)))
    assert mixed_lines[0] > 0.85 and mixed_lines[1] < 0.15 and 0.3 < mixed < 0.8
    silent = SingScorer(melody)
    silent.add(*_sung_readings(lambda t: np.zeros_like(t)))
    assert silent.score() is None and silent.line_scores(lines) == [None, None]


def test_scorer_resinging_a_loop_replaces_the_attempt():
    melody = truth_contour(vibrato=0.0)
    t = melody.times
    scorer = SingScorer(melody)
    scorer.add(t, melody.hz * 2 ** (1 / 12))   # first pass: wrong
    assert scorer.score(0.5, 2.8) == 0.0
    loop = (t >= 0.5) & (t < 2.8)
    scorer.add(t[loop], melody.hz[loop])       # looped and sung again, right this time
    assert scorer.score(0.5, 2.8) == 1.0 and scorer.score(3.3, 4.6) == 0.0
    assert cents_off(np.array([440.0, 0.0]), np.array([220.0, 220.0])).tolist()[0] == 0.0


# -- stems folders and the command line ---------------------------------------------------------
def _stems_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "song"
    folder.mkdir()
    n = 5 * SR
    voice = sing(tune_f0(np.arange(n) / SR))
    sf.write(folder / "vocals.wav", np.stack([voice] * 2, 1), SR, subtype="PCM_16")
    sf.write(folder / "accompaniment.wav", np.zeros((n, 2), np.float32), SR, subtype="PCM_16")
    return folder


def test_stems_folder_melody_is_cached(tmp_path):
    folder = _stems_folder(tmp_path)
    first = melody_for_stems(folder)
    cached = cache_path(folder)
    assert cached.is_file()
    stamp = cached.stat().st_mtime_ns
    again = melody_for_stems(folder)
    assert cached.stat().st_mtime_ns == stamp and np.allclose(again.hz, first.hz, atol=0.01)
    os.utime(folder / "vocals.wav", ns=(stamp + 10**9, stamp + 10**9))  # new vocals: recomputed
    melody_for_stems(folder)
    assert cached.stat().st_mtime_ns > stamp
    with pytest.raises(MelodyError, match="no vocals stem"):
        melody_for_stems(tmp_path)


def unmix(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "unmix_desktop.cli", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


def test_cli_melody_from_stems_folder_and_errors(tmp_path):
    folder = _stems_folder(tmp_path)
    out = tmp_path / "out" / "f0.csv"
    r = unmix("melody", str(folder), "--out", str(out))
    assert r.returncode == 0, r.stderr
    contour = Contour.from_csv(out)
    notes = quantise_notes(contour)
    assert [n.midi for n in notes] == [n for _, _, n in TUNE]
    assert cache_path(folder).is_file()

    r = unmix("melody", str(tmp_path / "missing.wav"), "--out", str(out))
    assert (r.returncode == 2 and r.stderr.strip().startswith("unmix: error: ")
            and "missing.wav: file not found" in r.stderr)
    assert "Traceback" not in r.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    r = unmix("melody", str(empty), "--out", str(out))
    assert r.returncode == 2 and "no vocals stem" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = unmix("melody", str(folder), "--out", str(tmp_path))
    assert r.returncode == 2 and "is a folder" in r.stderr


def test_cli_melody_separates_a_song(tmp_path):
    n = 4 * SR
    t = np.arange(n) / SR
    voice = sing(tune_f0(t))
    bass = 0.2 * np.sin(2 * np.pi * 55 * t)
    song = tmp_path / "song.flac"
    sf.write(song, np.stack([voice + bass] * 2, 1), SR)
    out = tmp_path / "f0.csv"
    r = unmix("melody", str(song), "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    contour = Contour.from_csv(out)
    truth = tune_f0(contour.times)
    both = (truth > 0) & (contour.hz > 0)
    assert both.sum() > 0.6 * (truth > 0).sum()
    assert np.mean(np.abs(cents_off(contour.hz[both], truth[both], False)) < 50) > 0.9


def test_readings_map_to_song_time_at_any_tempo():
    from unmix_desktop.analysis.singing import song_times_of_readings

    wall = np.array([100.0, 100.5, 101.0])
    # At 1.25x tempo the song advanced 1.25 s per wall second; 50 ms of input latency.
    t = song_times_of_readings(wall, now=101.0, song_now=30.0, tempo=1.25, input_latency=0.05)
    assert t == pytest.approx([30 - 1.05 * 1.25, 30 - 0.55 * 1.25, 30 - 0.05 * 1.25])


def test_a_missing_tracker_package_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "librosa", None)  # makes `import librosa` fail
    with pytest.raises(MelodyError, match="'pyin' needs the librosa package"):
        track_melody(np.zeros(SR, np.float32), tracker="pyin")
