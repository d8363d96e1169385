"""The synthetic corpus: generators (grid, key), rendering (stems sum to the mix, determinism),
production, the make-corpus command and sharded training batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from unmix_desktop.training.synth import bass, grooves, parts
from unmix_desktop.training.synth.corpus import STEMS, make_excerpt, split_of, write_corpus
from unmix_desktop.training.synth.pop909 import read_song
from unmix_desktop.training.synth.production import master
from unmix_desktop.training.synth.render import NumpyRenderer, Part, fluidsynth_available, make_renderer
from unmix_desktop.training.synth.theory import MAJOR_SCALE, Note, parse_chord, scale_for

BEATS = np.arange(0, 17) * 0.5  # 120 BPM, 4 bars
CHORDS = [parse_chord("C:maj", 0, 2), parse_chord("A:min7", 2, 4), parse_chord("F:maj/3", 4, 6),
          parse_chord("G:7", 6, 8.5)]


def test_chord_labels():
    c = parse_chord("A:min7/b3")
    assert c.root == 9 and c.pitch_classes == {9, 0, 4, 7} and c.bass == 0
    assert parse_chord("N").root == -1
    assert parse_chord("Bb:7(9)").pitch_classes == {10, 2, 5, 8}
    assert scale_for(CHORDS) == (0, MAJOR_SCALE)


@pytest.mark.parametrize("style", sorted(grooves.STYLES))
def test_groove_lands_on_the_grid(style):
    rng = np.random.default_rng(1)
    s = grooves.GrooveSettings(style=style, swing=0.0, humanize_ms=0.0, fill_every=4)
    notes, grid = grooves.generate(BEATS, 0, rng, s)
    steps = grooves.step_times(BEATS)
    assert len(notes) > 16 and len(grid) == len(notes)
    starts = np.array([n.start for n in notes])
    assert np.allclose(starts, grid)
    assert np.all(np.min(np.abs(starts[:, None] - steps[None]), axis=1) < 1e-9)
    assert all(1 <= n.velocity <= 127 and n.end > n.start for n in notes)
    kicks = [n for n in notes if n.pitch == grooves.KICK]
    assert kicks and min(abs(k.start - b) for k in kicks for b in BEATS[:1]) < 1e-9  # a kick on the 1
    # the 4th bar ends in a fill (toms or snare on its second half)
    fill = [n for n in notes if 7.0 <= n.start < 8.0]
    assert any(n.pitch in grooves.FILL_DRUMS for n in fill)


def test_groove_swing_and_humanise():
    rng = np.random.default_rng(2)
    straight, _ = grooves.generate(BEATS, 0, rng, grooves.GrooveSettings("rock", swing=0.0, humanize_ms=0.0))
    rng = np.random.default_rng(2)
    swung, grid = grooves.generate(BEATS, 0, rng, grooves.GrooveSettings("shuffle", swing=0.33, humanize_ms=0.0))
    off = grooves.step_times(BEATS, 0.33)[3::4]  # 4th sixteenth of each beat, delayed
    assert np.allclose(off - grooves.step_times(BEATS)[3::4], 0.33 * 0.125)
    assert any(np.isclose(n.start, off).any() for n in swung)
    rng = np.random.default_rng(3)
    human, grid = grooves.generate(BEATS, 0, rng, grooves.GrooveSettings("pop", humanize_ms=8.0))
    dev = np.array([n.start for n in human]) - grid
    assert 0.002 < np.std(dev) < 0.02 and np.max(np.abs(dev)) < 0.05


@pytest.mark.parametrize("pattern", bass.PATTERNS)
def test_bass_on_grid_in_key_in_register(pattern):
    rng = np.random.default_rng(4)
    scale = scale_for(CHORDS)
    notes, grid = bass.generate(CHORDS, BEATS, 0, rng, scale, pattern, humanize_ms=0.0)
    assert len(notes) >= 4
    steps = grooves.step_times(BEATS)
    scale_pcs = {(scale[0] + i) % 12 for i in scale[1]}
    for n, g in zip(notes, grid):
        assert abs(n.start - g) < 1e-9 and np.min(np.abs(steps - g)) < 1e-9
        assert bass.LOW <= n.pitch <= bass.HIGH
        chord = next(c for c in CHORDS if c.start <= g < c.end)
        assert n.pitch % 12 in chord.pitch_classes | scale_pcs | {chord.bass}
    # every chord change gets a note of the chord's bass/root on its first step
    for c in CHORDS:
        first = [n for n, g in zip(notes, grid) if abs(g - c.start) < 1e-9]
        assert first and first[0].pitch % 12 == c.bass


@pytest.mark.parametrize("kind", parts.KINDS)
def test_parts_are_chord_tones(kind):
    notes = parts.generate(kind, CHORDS, BEATS, 0, np.random.default_rng(5))
    assert notes
    for n in notes:  # strummed strings start up to ~0.1 s after the step
        chords = [c for c in CHORDS if c.start - 1e-6 <= n.start < c.end + 0.12]
        assert any(n.pitch % 12 in c.pitch_classes for c in chords) and 48 <= n.pitch <= 84


def _tiny_song(folder, bars=12):
    """A POP909-style song folder: NNN/NNN.mid (MELODY, BRIDGE, PIANO), chords, beats."""
    import mido

    folder.mkdir(parents=True)
    mid = mido.MidiFile(ticks_per_beat=480)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
    mid.tracks.append(meta)
    prog = [("C", 60, [0, 4, 7]), ("A", 57, [0, 3, 7]), ("F", 53, [0, 4, 7]), ("G", 55, [0, 4, 7])]
    for name, octave in (("MELODY", 12), ("BRIDGE", 7), ("PIANO", 0)):
        tr = mido.MidiTrack()
        tr.append(mido.MetaMessage("track_name", name=name, time=0))
        for bar in range(bars):
            _, root, ivs = prog[bar % 4]
            for beat in range(4):
                p = root + octave + ivs[beat % 3]
                tr.append(mido.Message("note_on", note=p, velocity=80, time=0))
                tr.append(mido.Message("note_off", note=p, velocity=0, time=480))
        mid.tracks.append(tr)
    mid.save(str(folder / f"{folder.name}.mid"))
    lines = [f"{b * 2.0:.3f}\t{b * 2.0 + 2.0:.3f}\t{prog[b % 4][0]}:{'min' if b % 4 == 1 else 'maj'}"
             for b in range(bars)]
    (folder / "chord_midi.txt").write_text("\n".join(lines) + "\n")
    (folder / "beat_midi.txt").write_text("".join(f"{k * 0.5:.3f} {float(k % 2 == 0)} {float(k % 4 == 0)}\n"
                                                  for k in range(bars * 4)))
    return folder


def test_pop909_reader(tmp_path):
    song = read_song(_tiny_song(tmp_path / "007"))
    assert set(song.tracks) == {"MELODY", "BRIDGE", "PIANO"}
    assert len(song.tracks["PIANO"]) == 48 and abs(song.tracks["PIANO"][1].start - 0.5) < 1e-9
    assert len(song.chords) == 12 and song.chords[1].root == 9 and abs(song.beat_period - 0.5) < 1e-9
    assert len(song.downbeats) == 12


@pytest.mark.parametrize("produce", [True, False])
def test_numpy_render_stems_sum_and_determinism(tmp_path, produce):
    song = read_song(_tiny_song(tmp_path / "007"))
    stems, desc = make_excerpt(song, 3, 4.0, NumpyRenderer(seed=0), produce=produce)
    assert set(stems) == set(STEMS)
    n = int(4.0 * 44100)
    for name, audio in stems.items():
        assert audio.shape == (n, 2) and audio.dtype == np.float32 and np.isfinite(audio).all()
        assert np.sqrt(np.mean(audio ** 2)) > 1e-3, name
    mix = sum(stems.values())
    assert np.max(np.abs(mix)) <= 0.95
    again, _ = make_excerpt(song, 3, 4.0, NumpyRenderer(seed=0), produce=produce)
    assert all(np.array_equal(stems[k], again[k]) for k in STEMS)
    other, _ = make_excerpt(song, 4, 4.0, NumpyRenderer(seed=0), produce=produce)
    assert not np.array_equal(stems["drums"], other["drums"])
    assert 70 <= desc["bpm"] <= 180


def test_master_is_a_common_gain():
    rng = np.random.default_rng(0)
    stems = {k: (rng.standard_normal((44100, 2)) * s).astype(np.float32) for k, s in
             (("a", 0.5), ("b", 0.2), ("c", 0.05))}
    out = master(stems, np.random.default_rng(1))
    mix = sum(out.values())
    assert np.max(np.abs(mix)) <= 0.9 + 1e-6
    # the same gain curve on every stem: out/in ratios agree sample by sample
    r_a, r_b = out["a"][:, 0] / stems["a"][:, 0], out["b"][:, 0] / stems["b"][:, 0]
    ok = (np.abs(stems["a"][:, 0]) > 1e-3) & (np.abs(stems["b"][:, 0]) > 1e-3)
    if not np.allclose(r_a[ok], r_b[ok], rtol=1e-3):  # the lo-fi low-pass is linear: compare sums instead
        pytest.fail("bus processing is not common to all stems")


@pytest.mark.skipif(not fluidsynth_available(),
                    reason="FluidSynth rendering needs pyfluidsynth + libfluidsynth3 + fluid-soundfont-gm "
                           "(make training-deps); the numpy renderer is tested above")
def test_fluidsynth_render(tmp_path):
    r = make_renderer("fluidsynth")
    try:
        part = Part([Note(0.1, 0.6, 60, 100), Note(0.5, 0.9, 64, 90)], program=0, pan=-0.5)
        audio = r.render([part], 44100)
        assert audio.shape == (44100, 2) and np.abs(audio).max() > 0.01
        assert np.abs(audio[: 4000]).max() < 1e-3  # nothing before the first note
        right = r.render([Part(part.notes, program=0, pan=0.5)], 44100)
        lr = np.sqrt(np.mean(audio ** 2, axis=0))
        lr_right = np.sqrt(np.mean(right ** 2, axis=0))
        assert lr[0] / lr[1] > 1.2 * lr_right[0] / lr_right[1]  # pan moves the image
        drums = r.render([Part([Note(0.0, 0.2, 36, 120)], program=0, drums=True)], 22050)
        assert np.abs(drums).max() > 0.01
        song = read_song(_tiny_song(tmp_path / "007"))
        stems, _ = make_excerpt(song, 1, 3.0, r)
        assert all(np.sqrt(np.mean(v ** 2)) > 1e-3 for v in stems.values())
    finally:
        r.close()


def test_write_corpus_splits_and_resumes(tmp_path):
    import soundfile as sf

    for name in ("020", "021", "022"):
        _tiny_song(tmp_path / "pop" / name)
    out = tmp_path / "corpus"
    summary = write_corpus(tmp_path / "pop", out, 3, duration=2.0, renderer="numpy")
    assert summary["excerpts"] == {"train": 1, "valid": 1, "test": 1}
    assert split_of("020") == "valid" and split_of("021") == "test" and split_of("022") == "train"
    stems = {k: sf.read(out / "train" / "022_0" / f"{k}.flac")[0] for k in STEMS}
    assert all(v.shape == (88200, 2) for v in stems.values())
    assert summary["audio_s_per_cpu_s"] > 0
    again = write_corpus(tmp_path / "pop", out, 3, duration=2.0, renderer="numpy")
    assert again["rendered_now"] == 0


def test_make_corpus_command(tmp_path):
    _tiny_song(tmp_path / "pop" / "022")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "unmix_desktop.cli", "make-corpus", "--pop909", str(tmp_path / "pop"),
           "--out", str(tmp_path / "c"), "--excerpts", "1", "--duration", "1.5", "--renderer", "numpy", "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "c" / "corpus.json").read_text())["excerpts"]["train"] == 1
    bad = subprocess.run(cmd[:5] + [str(tmp_path / "missing")] + cmd[6:], capture_output=True, text=True,
                         env=env, timeout=60)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("unmix: error:") and "missing" in bad.stderr
    assert "Traceback" not in bad.stderr
