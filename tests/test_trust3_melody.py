"""Issue 21 section 1: `unmix melody` never hands the user a damaged cached melody, refuses a song too
short for a melody and bad --max-duration values in one line (exit 2)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from test_melody import _stems_folder, unmix

from unmix_desktop.analysis.melody import Contour, cache_path, melody_for_stems

SR = 44100
DAMAGED = {
    "nan": "time,hz\n0.010000,nan\n0.020000,220.00\n",
    "inf": "time,hz\n0.010000,220.00\ninf,220.00\n",
    "1e308": "time,hz\n0.010000,220.00\n1e308,220.00\n",
    "negative time": "time,hz\n-5.000000,220.00\n0.020000,220.00\n",
    "negative hz": "time,hz\n0.010000,-220.00\n",
    "not increasing": "time,hz\n0.020000,220.00\n0.010000,220.00\n",
}


@pytest.mark.parametrize("damage", ["nan", "negative time"])
def test_a_damaged_cached_melody_is_recomputed_not_copied(tmp_path, damage):
    folder = _stems_folder(tmp_path)
    good = melody_for_stems(folder)
    cached = cache_path(folder)
    cached.write_text(DAMAGED[damage])  # newer than the vocals: would be served as it is
    out = tmp_path / "f0.csv"
    r = unmix("melody", str(folder), "--out", str(out), "-q")
    assert r.returncode == 0, r.stderr
    got = Contour.from_csv(out)  # validates: raises on nan/inf/negative rows
    assert got.times.size == good.times.size and np.allclose(got.hz, good.hz, atol=0.01)
    notes = [line for line in r.stderr.splitlines() if line.startswith("unmix: note:")]
    assert len(notes) == 1 and str(cached) in notes[0] and "set aside" in notes[0], r.stderr
    assert len(list(folder.glob(cached.name + ".bad-*"))) == 1
    assert Contour.from_csv(cached).times.size == good.times.size  # the cache was written again


def test_a_one_sample_file_is_one_line(tmp_path):
    folder = tmp_path / "stems"
    folder.mkdir()
    sf.write(folder / "vocals.wav", np.zeros((1, 2), np.float32), SR)
    r = unmix("melody", str(folder), "--out", str(tmp_path / "f0.csv"), "-q")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines() == [f"unmix: error: {folder / 'vocals.wav'}: too short to find a melody in "
                                             "(1 samples; at least 10 ms are needed)"]


def test_a_one_sample_song_is_one_line(tmp_path):
    song = tmp_path / "one.wav"
    sf.write(song, np.zeros((1, 2), np.float32), SR)
    r = unmix("melody", str(song), "--out", str(tmp_path / "f0.csv"), "-q", "--model", "umx-mir1k")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(f"unmix: error: {song}: too short to find a melody")


@pytest.mark.parametrize("value", ["nan", "-3", "0", "abc"])
def test_bad_max_duration_is_one_line(tmp_path, value):
    r = unmix("melody", str(tmp_path / "x.wav"), "--out", str(tmp_path / "f0.csv"), f"--max-duration={value}")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("unmix: error: argument --max-duration: "), line


@pytest.mark.parametrize("damage", list(DAMAGED))
def test_every_kind_of_damage_is_a_cache_miss(tmp_path, damage):
    from unmix_desktop import persist

    said: list[str] = []
    previous = persist.set_notice_sink(said.append)
    try:
        folder = _stems_folder(tmp_path)
        good = melody_for_stems(folder)
        cache_path(folder).write_text(DAMAGED[damage])
        again = melody_for_stems(folder)
    finally:
        persist.set_notice_sink(previous)
    assert np.array_equal(again.times, good.times) and np.allclose(again.hz, good.hz, atol=0.01)
    assert len(said) == 1 and "set aside" in said[0]
