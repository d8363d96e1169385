"""Chords and key on generated songs of known chords (minor key, sevenths, no-chord gaps, a key change);
labels, capo hints, the chart, the chord sheet, the JSON/.lab files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from chord_audio import overlap_accuracy, song

from unmix_desktop.analysis.chords import (
    ChordChart,
    ChordError,
    Segment,
    analyse_chords,
    capo_hint,
    chart_text,
    chord_sheet,
    display_label,
    key_name,
    split_label,
    transpose_label,
)

MINOR_SEVENTHS = ["A:min", "D:min7", "G:7", "C:maj7", "F:maj", "D:min7", "E:7", "A:min", "N", "N",
                  "A:min7", "D:min", "E:7", "A:min"]


@pytest.fixture(scope="module")
def minor_song():
    return song(MINOR_SEVENTHS)


def test_sevenths_minor_key_and_no_chord_gap(minor_song):
    stems, ref = minor_song
    chart = analyse_chords({k: stems[k] for k in ("accompaniment", "bass", "drums")}, vocabulary="sevenths")
    assert overlap_accuracy(ref, chart.chords) >= 0.9, [(round(s.start, 1), s.label) for s in chart.chords]
    assert chart.key == "A:min"
    gaps = [s for s in chart.chords if s.label == "N"]
    assert len(gaps) == 1 and abs(gaps[0].start - 16.0) < 0.6 and abs(gaps[0].end - 20.0) < 0.6
    # boundaries snapped to the beat grid (0.5 s beats)
    assert chart.snapped
    beats = np.asarray(chart.beats)
    for s in chart.chords[1:]:
        assert np.min(np.abs(beats - s.start)) < 0.02


def test_majmin_vocabulary_reads_sevenths_as_triads(minor_song):
    stems, ref = minor_song
    chart = analyse_chords({k: stems[k] for k in ("accompaniment", "bass", "drums")}, vocabulary="majmin")
    labels = {s.label for s in chart.chords}
    assert labels <= {"N"} | {f"{n}:{q}" for n in ("A", "D", "G", "C", "F", "E") for q in ("maj", "min")}
    triads = [(a, b, lab.replace("min7", "min").replace("maj7", "maj").replace(":7", ":maj")) for a, b, lab in ref]
    assert overlap_accuracy(triads, chart.chords) >= 0.9


def test_key_change_is_found():
    first = ["C:maj", "F:maj", "G:maj", "C:maj", "A:min", "D:min", "G:maj", "C:maj"]
    second = [transpose_label(x, 3) for x in first]  # Eb major
    stems, ref = song(first + second, seed=1)
    chart = analyse_chords({"accompaniment": stems["accompaniment"], "bass": stems["bass"]})
    assert [k.label for k in chart.keys] == ["C:maj", "Eb:maj"]
    assert abs(chart.keys[1].start - 16.0) < 2.5
    assert overlap_accuracy(ref, chart.chords) >= 0.9
    assert chart.key_at(3.0) == "C:maj" and chart.key_at(25.0) == "Eb:maj"


def test_mix_alone_without_a_bass_stem():
    stems, ref = song(["E:min", "C:maj", "G:maj", "D:maj"] * 2, seed=2)
    chart = analyse_chords({"mix": stems["accompaniment"]})
    assert overlap_accuracy(ref, chart.chords) >= 0.85
    assert chart.key in ("G:maj", "E:min")


def test_unknown_vocabulary_and_empty_input():
    with pytest.raises(ChordError, match="vocabulary"):
        analyse_chords({"mix": np.zeros((44100, 2), np.float32)}, vocabulary="jazz")
    with pytest.raises(ChordError):
        analyse_chords({})


def test_labels_transpose_and_display():
    assert split_label("A:min7/b3") == (9, "min7", "/b3")
    assert split_label("N") == (-1, "", "")
    assert split_label("C") == (0, "maj", "")
    assert transpose_label("A:min7", 3) == "C:min7"
    assert transpose_label("Bb:maj", 2) == "C:maj"
    assert transpose_label("N", 5) == "N"
    assert display_label("A:min7") == "Am7"
    assert display_label("G:7", 2) == "A7"
    assert display_label("C:maj", 1, flats=True) == "Db"
    assert display_label("N") == "N.C."
    assert key_name("A:min") == "A minor"
    assert key_name("C:maj", 3) == "Eb major"
    assert key_name("E:maj", 2) == "F# major"
    with pytest.raises(ChordError):
        split_label("H:maj")


def test_capo_hint():
    assert capo_hint("Bb:maj") == "capo 3, play G shapes"
    assert capo_hint("G:maj") == ""
    assert capo_hint("G:maj", 3) == "capo 3, play G shapes"   # Bb as heard
    assert capo_hint("C:min") == "capo 3, play Am shapes"
    assert capo_hint("N") == ""


def _chart() -> ChordChart:
    beats = [i * 0.5 for i in range(17)]
    return ChordChart("A:min", [Segment(0.0, 2.0, "A:min"), Segment(2.0, 4.0, "F:maj"), Segment(4.0, 6.0, "G:7"),
                                Segment(6.0, 8.0, "N")],
                      [Segment(0.0, 8.0, "A:min")], "sevenths", beats, 4, beats[::4], True)


def test_chart_json_round_trip_and_damage(tmp_path):
    chart = _chart()
    path = chart.save_json(tmp_path / "c.json")
    back = ChordChart.load_json(path)
    assert back.key == "A:min" and [s.label for s in back.chords] == ["A:min", "F:maj", "G:7", "N"]
    assert back.beats == chart.beats
    public = json.loads(chart.save_json(tmp_path / "p.json", full=False).read_text())
    assert set(public) == {"key", "chords"} and public["chords"][1] == {"start": 2.0, "end": 4.0, "label": "F:maj"}
    d = chart.to_dict()
    for broken in ({**d, "key": "H:maj"}, {**d, "chords": [{"start": 1.0, "end": 0.5, "label": "C:maj"}]},
                   {**d, "chords": [{"start": "x", "end": 1, "label": "C"}]}, {**d, "vocabulary": "jazz"},
                   {k: v for k, v in d.items() if k != "chords"}, [1, 2]):
        with pytest.raises(ChordError):
            ChordChart.from_dict(broken)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ChordError):
        ChordChart.load_json(tmp_path / "bad.json")
    lab = chart.save_lab(tmp_path / "c.lab").read_text().splitlines()
    assert lab[0].split("\t") == ["0.000", "2.000", "A:min"] and len(lab) == 4


def test_chart_text_and_position():
    chart = _chart()
    text = chart_text(chart)
    assert "| Am" in text and "F" in text and "G7" in text and "N.C." in text
    assert text.count("|") >= 5
    shifted = chart_text(chart, 2)
    assert "Bm" in shifted and "A7" in shifted
    assert chart.at(2.5) == 1 and chart.at(-1.0) == -1 and chart.at(9.0) == -1


def test_chord_sheet_places_chords_over_words():
    chart = _chart()
    sheet = chord_sheet(chart, [(0.0, 4.0, "hello there my old friend"), (4.0, 8.0, "silence now")])
    lines = sheet.splitlines()
    assert lines[0].startswith("Key: A minor")
    i = lines.index("hello there my old friend")
    above = lines[i - 1]
    assert above.startswith("Am") and "F" in above
    assert above.index("F") >= len("hello there m") - 2  # F comes half way through the line
    assert lines[lines.index("silence now") - 1].startswith("G7")


# ------------------------------------------------------------------------------------------------
# unmix chords / unmix key
# ------------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def unmix(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "unmix_desktop.cli", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


def test_cli_chords_and_key_from_a_stems_folder(tmp_path, minor_song):
    stems, ref = minor_song
    folder = tmp_path / "stems"
    folder.mkdir()
    for name in ("accompaniment", "bass", "drums"):
        sf.write(folder / f"{name}.wav", stems[name], 44100, subtype="FLOAT")
    out = tmp_path / "c.json"
    r = unmix("chords", str(folder), "--json", str(out), "--lab", str(tmp_path / "c.lab"), "--vocabulary", "sevenths")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "Key: A minor [A:min]"
    assert "| Am" in r.stdout and "G7" in r.stdout and "N.C." in r.stdout
    d = json.loads(out.read_text())
    assert d["key"] == "A:min" and set(d) == {"key", "chords"}
    est = [Segment(c["start"], c["end"], c["label"]) for c in d["chords"]]
    assert overlap_accuracy(ref, est) >= 0.9
    assert (tmp_path / "c.lab").read_text().startswith("0.000\t")
    cached = folder / "chords-sevenths.json"
    assert cached.is_file()
    # the cache answers next time; a damaged one is a miss and is rewritten
    cached.write_text('{"key": "A:min", "chords": [{"start": 0, "end": "x"}], "method": 1}')
    r = unmix("key", str(folder))
    assert r.returncode == 0 and r.stdout.strip() == "A minor [A:min]", r.stderr
    r = unmix("chords", str(folder), "--vocabulary", "sevenths", "--transpose", "2")
    assert r.returncode == 0 and "as played +2: B minor" in r.stdout and "A7" in r.stdout  # G7 up a tone
    assert json.loads(cached.read_text())["chords"][0]["end"] > 0


def test_cli_chords_errors(tmp_path):
    r = unmix("chords", str(tmp_path / "missing.wav"))
    assert r.returncode == 2 and r.stderr.startswith("unmix: error: ") and "missing.wav" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = unmix("key", str(tmp_path / "missing.wav"))
    assert r.returncode == 2 and "missing.wav" in r.stderr and "Traceback" not in r.stderr
    song = tmp_path / "song.wav"
    sf.write(song, np.zeros((44100, 2), np.float32), 44100)
    r = unmix("chords", str(song), "--json", str(tmp_path))
    assert r.returncode == 2 and "is a folder" in r.stderr
    r = unmix("chords", str(song), "--json", str(song))
    assert r.returncode == 2 and "refusing to overwrite" in r.stderr
    r = unmix("chords", str(song), "--vocabulary", "jazz")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_cli_chords_separates_a_song(tmp_path):
    stems, ref = song(["C:maj", "A:min", "F:maj", "G:maj"] * 2, seed=3)
    path = tmp_path / "song.flac"
    sf.write(path, stems["accompaniment"], 44100)
    out = tmp_path / "c.json"
    r = unmix("chords", str(path), "--json", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    est = [Segment(c["start"], c["end"], c["label"]) for c in d["chords"]]
    assert overlap_accuracy(ref, est) >= 0.85
    assert d["key"] in ("C:maj", "A:min")
    caches = list(Path(os.environ["UNMIX_CACHE_DIR"]).rglob("chords-majmin.json"))
    assert caches, "the chart is cached beside the stems"
    r = unmix("key", str(path), "--quiet")
    assert r.returncode == 0 and r.stdout.strip().endswith(f"[{d['key']}]")


def test_analysis_grid_snaps_to_confident_beats_and_splits_slow_ones():
    from unmix_desktop.analysis.chords import grid_for

    beats = [1.0 + 0.505 * i for i in range(30)]
    cells, snapped = grid_for(17.0, beats, confidence=3.0)
    assert snapped and cells[0] == 0.0 and cells[-1] == 17.0
    assert all(np.min(np.abs(cells - b)) < 1e-6 for b in beats)       # every beat is a boundary
    assert np.median(np.diff(cells)) == pytest.approx(0.505, abs=1e-3)   # ~120 BPM: one cell a beat
    slow = [0.2 + 1.0 * i for i in range(15)]                           # a half-time grid: two cells a beat
    cells, _ = grid_for(15.0, slow, confidence=3.0)
    assert np.median(np.diff(cells)) == pytest.approx(0.5, abs=1e-3)
    cells, snapped = grid_for(10.0, beats, confidence=0.5)              # no clear pulse: a fixed grid
    assert not snapped and np.allclose(np.diff(cells), 0.5)
