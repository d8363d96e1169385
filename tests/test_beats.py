"""Beat tracking on generated grooves of known tempo, the dev song, ``unmix beats``; practice helpers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from unmix_desktop.analysis.beats import BeatGrid, analyse, estimate_beats, song_beats
from unmix_desktop.analysis.practice import LoopTrainer, Markers, PracticeError, click_track, count_in

SR = 44100
DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev" / "waveform-playlist-demo"
FIRST = 0.3


def groove(bpm: float, seconds: float = 20.0, seed: int = 0, swing: float = 0.0) -> dict[str, np.ndarray]:
    """A drum groove (kick on 1 and 3, snare on 2 and 4, eighth-note hi-hats), a bass note on every
    bar and a noisy pad, starting at FIRST seconds. Returns the stems and their sum as "mix"."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    drums = np.zeros(n)
    bass = np.zeros(n)
    beat = 60.0 / bpm

    def add(dest, t, sig):
        i = int(round(t * SR))
        if i < n:
            m = min(len(sig), n - i)
            dest[i:i + m] += sig[:m]

    tk = np.arange(int(0.25 * SR)) / SR
    kick = 0.9 * np.sin(2 * np.pi * (50 + 80 * np.exp(-tk * 30)) * tk) * np.exp(-tk * 12)
    ts = np.arange(int(0.2 * SR)) / SR
    snare = (0.5 * rng.standard_normal(len(ts)) * np.exp(-ts * 25)
             + 0.3 * np.sin(2 * np.pi * 190 * ts) * np.exp(-ts * 20))
    th = np.arange(int(0.05 * SR)) / SR
    hat = np.diff(rng.standard_normal(len(th) + 3), 3) / 8  # noise through a 3rd-order high-pass
    hat = 0.15 * hat * np.exp(-th * 90)
    tb = np.arange(int(4 * beat * SR)) / SR
    note = 0.35 * np.sin(2 * np.pi * 55 * tb) * np.exp(-tb * 1.5)
    k, t = 0, FIRST
    while t < seconds:
        add(drums, t, kick if k % 2 == 0 else snare)
        add(drums, t, hat)
        add(drums, t + beat / 2 + swing * beat / 2, 0.7 * hat)
        if k % 4 == 0:
            add(bass, t, note)
        k += 1
        t += beat
    pad = 0.05 * np.convolve(rng.standard_normal(n), np.ones(200) / 200, mode="same")

    def st(x):
        return np.stack([x, x], 1).astype(np.float32)

    stems = {"drums": st(0.4 * drums), "bass": st(0.4 * bass), "other": st(pad)}
    stems["mix"] = stems["drums"] + stems["bass"] + stems["other"]
    return stems


@pytest.mark.parametrize("bpm", [60, 72, 85, 97.5, 110, 120, 128, 140, 155, 168, 180])
def test_generated_grooves_tempo_within_one_percent(bpm):
    g = analyse(groove(bpm, seed=int(bpm * 10))["mix"], SR)
    assert abs(g.bpm / bpm - 1) < 0.01, g.bpm
    # the beats sit on the grid (within 25 ms) and the downbeats on the bar starts
    beats = np.array(g.beats)
    grid = FIRST + np.round((beats - FIRST) / (60 / bpm)) * (60 / bpm)
    assert np.abs(beats - grid).max() < 0.025
    assert len(beats) >= int((20 - FIRST) * bpm / 60) - 2
    bars = (np.array(g.downbeats) - FIRST) / (4 * 60 / bpm)
    assert np.abs(bars - np.round(bars)).max() < 0.03


def test_swung_groove():
    g = analyse(groove(100, seed=3, swing=0.33)["mix"], SR)
    assert abs(g.bpm / 100 - 1) < 0.01


def test_estimate_beats_prefers_the_clearest_stem():
    stems = groove(132, seed=5)
    mix = stems.pop("mix")
    noise = np.random.default_rng(1).standard_normal(mix.shape).astype(np.float32)
    stems["other"] = 0.3 * noise  # a loud noisy stem blurs the mix, not the drums
    g = estimate_beats(stems, SR)
    assert g.source == "drums" and abs(g.bpm / 132 - 1) < 0.01
    assert g.confidence > analyse(sum(stems.values()), SR).confidence


def test_grid_json_round_trip_snap_and_nudge(tmp_path):
    g = analyse(groove(120, seconds=10)["mix"], SR)
    path = g.save(tmp_path / "beats.json")
    h = BeatGrid.load(path)
    assert h.bpm == pytest.approx(g.bpm, abs=1e-3) and len(h.beats) == len(g.beats) and h.source == "mix"
    assert h.nearest_beat(2.05) == pytest.approx(2.3, abs=0.03)
    assert h.nudge(2.3, 2) == pytest.approx(3.3, abs=0.03)
    assert h.nudge(h.beats[-1], 1) == pytest.approx(h.beats[-1] + 0.5, abs=0.01)


@pytest.mark.skipif(not DEV.is_dir(), reason="dev song not available")
def test_dev_song_stems_and_mix_agree():
    from unmix_desktop.audio.io import load_audio

    stems = {name: load_audio(DEV / f"{name}.flac", SR) for name in ("bass_drums", "guitar", "piano_synth", "vocals")}
    g = estimate_beats(stems, SR)
    mix = analyse(load_audio(DEV / "mixture.flac", SR), SR)
    assert g.source == "bass_drums"
    assert 60 <= g.bpm <= 180 and abs(g.bpm / mix.bpm - 1) < 0.01
    assert np.std(np.diff(g.beats)) < 0.01  # a steady pulse: beats within 10 ms of even spacing


def test_cli_beats(tmp_path):
    path = tmp_path / "groove.wav"
    sf.write(path, groove(96, seconds=12)["mix"], SR)
    out = tmp_path / "beats.json"
    r = subprocess.run([sys.executable, "-m", "unmix_desktop.cli", "beats", str(path), "--json", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "96.0 BPM"
    data = json.loads(out.read_text())
    assert abs(data["bpm"] - 96) < 0.5 and len(data["beats"]) > 15 and data["downbeats"]
    # refuses to write over the song, one line, exit 2
    r = subprocess.run([sys.executable, "-m", "unmix_desktop.cli", "beats", str(path), "--json", str(path)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip() == f"unmix: error: {path}: refusing to overwrite an input file"
    r = subprocess.run([sys.executable, "-m", "unmix_desktop.cli", "beats", str(tmp_path / "none.wav")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "file not found" in r.stderr and "Traceback" not in r.stderr


LYRICS_DEV = DEV.parents[1] / "lyrics-dev"


@pytest.mark.skipif(not LYRICS_DEV.is_dir(), reason="lyrics-dev songs not available")
def test_real_songs_keep_their_tempo_octave():
    """Issue 21: Fantasma's beats are only mostly (81 %) carried by kick/snare/bass at its 110 BPM; the
    old rule then halved it: `unmix beats` said 55.0 BPM where the window (which analysed the first
    seconds) said 110. Mes Larmes (autocorrelation 185 BPM, same support) must stay at 94."""
    from unmix_desktop.audio.io import load_audio

    for name, bpm in (("Fantasma_-_Los_Rombos", 110.1), ("Mes_Larmes_-_kobzx2z", 93.9)):
        g = song_beats(load_audio(LYRICS_DEV / name / "song.mp3", SR), SR)
        assert g.found and abs(g.bpm / bpm - 1) < 0.01, (name, g.bpm)


@pytest.mark.parametrize("seconds", [10.0, 0.01, 0.0001])
def test_silence_and_a_tiny_file_have_no_beat(tmp_path, seconds):
    """Issue 21: `unmix beats` on silence printed "240.4 BPM", on a 10-ms file "120.0 BPM, 0 beats"."""
    g = song_beats(np.zeros((max(int(seconds * SR), 1), 2), np.float32), SR)
    assert not g.found and g.bpm == 0 and g.beats == [] and g.downbeats == []
    tiny = song_beats(groove(120, seconds=0.01)["mix"], SR)  # 10 ms of a groove: no pulse to speak of
    assert not tiny.found
    path = tmp_path / "quiet.wav"
    sf.write(path, np.zeros((max(int(seconds * SR), 1), 2), np.float32), SR)
    out = tmp_path / "beats.json"
    r = subprocess.run([sys.executable, "-m", "unmix_desktop.cli", "beats", str(path), "--json", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == f"no beat found in {path}" and "BPM" not in r.stdout
    data = json.loads(out.read_text())
    assert data["bpm"] == 0 and data["beats"] == []


# practice helpers -------------------------------------------------------------------------------------
def test_click_track_and_count_in():
    strip = click_track([0.5, 1.0, 1.5, 2.0], [0.5, 2.0], 3 * SR)
    env = np.abs(strip[:, 0])
    starts = [i / SR for i in range(1, len(env)) if env[i] > 0.05 and env[i - 200:i].max() <= 0.05]
    assert starts == pytest.approx([0.5, 1.0, 1.5, 2.0], abs=0.002)
    bar = count_in(100.0, 3, tempo=0.8)
    assert bar.shape == (int(round(3 * 60 / 80 * SR)), 2)  # three beats at 100 BPM played at 80 %
    with pytest.raises(PracticeError):
        count_in(float("nan"))


def test_loop_trainer_steps_to_the_target():
    t = LoopTrainer(0.7, 0.05, 1.0)
    tempos = [t.tempo] + [t.on_pass() for _ in range(8)]
    assert tempos == [0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0, 1.0, 1.0] and t.done
    u = LoopTrainer.from_dict(t.to_dict())
    assert u.update(5) is None and u.update(5) is None  # first call only notes the counter
    assert u.update(6) == 0.75 and u.update(8) == 0.85
    assert u.reset() == 0.7
    with pytest.raises(Exception):
        LoopTrainer(0.1, 0.05, 1.0)


def test_markers():
    m = Markers()
    assert m.add(30.0) == 0 and m.add(10.0, "Intro") == 0 and m.add(50.0) == 2
    assert [x.name for x in m] == ["Intro", "Marker 1", "Marker 3"]
    m.rename(1, "Chorus")
    assert m.next_after(10.0).name == "Chorus" and m.previous_before(30.2).name == "Intro"
    assert m.next_after(50.0) is None and m.find("Chorus").time == 30.0
    again = Markers.from_list(json.loads(json.dumps(m.to_list())))
    assert again.to_list() == m.to_list()
    with pytest.raises(PracticeError):
        m.rename(5, "x")
    with pytest.raises(PracticeError):
        m.add(-1)
