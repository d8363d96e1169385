"""UltraStar files written by hand to the published spec (github.com/UltraStar-Deluxe/format):
v1.1 with every note type, a duet, a legacy CP1252 file, relative beats, broken files; writing
and the round trip; a chart built from a melody + aligned lyrics; `unmix ultrastar` end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from unmix_desktop.analysis.melody import Contour, midi_to_hz
from unmix_desktop.lyrics.align import AlignedLine, AlignedWord, Alignment
from unmix_desktop.lyrics.chart import build_chart, fix_octaves
from unmix_desktop.lyrics.ultrastar import UltraStarError, parse, read, to_text, write

ROOT = Path(__file__).resolve().parents[1]

V11 = """#VERSION:1.1.0
#TITLE:Test Song
#ARTIST:Somebody
#AUDIO:song.ogg
#VOCALS:song [VOC].ogg
#INSTRUMENTAL:song [INSTR].ogg
#BPM:150,5
#GAP:1200
: 0 4 5 Hel
: 4 4 7 lo
* 10 6 9  world
- 18
F 20 4 0 (shout)
R 26 2 0  rap
G 30 2 0  gold
: 34 8 -3  low~
E
this text after E is ignored
"""

DUET = """#TITLE:Duet
#ARTIST:Two
#MP3:duet.mp3
#BPM:200
#GAP:500
P1
: 0 4 0 Me
: 4 4 2  first
- 10
: 12 4 4 Line
P2
: 20 4 -5 You
: 24 4 -3  next
E
"""

CP1252 = ("#ENCODING:CP1252\n#TITLE:Gr\xfc\xdfe\n#ARTIST:M\xfcller\n#MP3:lied.mp3\n#BPM:300\n#GAP:0\n"
          ": 0 2 0 Sch\xf6\n: 2 2 0 ne\n- 5\n: 6 2 2 F\xfc\xdfe\nE\n").encode("cp1252")

RELATIVE = """#TITLE:Old
#ARTIST:Old
#MP3:old.mp3
#BPM:100
#GAP:0
#RELATIVE:yes
: 0 2 0 one
: 2 2 0  two
- 4 6
: 0 2 0 three
E
"""

BROKEN = """#TITLE:Broken
#ARTIST:X
#BPM:120
#GAP:abc
: 0 4 0 ok
: x y z bad
: 4 -2 0 negative
Q 8 2 0 unknown
: 8 2 1  fine
- notabeat
: 12 2 1  last
"""


def test_read_v11_every_note_type(tmp_path):
    path = tmp_path / "song.txt"
    path.write_bytes(b"\xef\xbb\xbf" + V11.encode("utf-8"))
    song = read(path)
    assert song.problems == []
    assert song.bpm == pytest.approx(150.5) and song.gap_ms == 1200
    assert song.beat_seconds == pytest.approx(60 / (150.5 * 4))
    assert song.audio_path == tmp_path / "song.ogg"
    assert song.vocals_path == tmp_path / "song [VOC].ogg"
    assert song.instrumental_path == tmp_path / "song [INSTR].ogg"
    notes = song.notes()
    assert [n.kind for n in notes] == ["normal", "normal", "golden", "freestyle", "rap", "golden-rap", "normal"]
    assert [n.weight for n in notes] == [1, 1, 2, 0, 1, 2, 1]
    assert notes[0].midi == 65 and notes[-1].midi == 57
    assert notes[2].start == pytest.approx(1.2 + 10 * 60 / (150.5 * 4))
    assert notes[2].end == pytest.approx(1.2 + 16 * 60 / (150.5 * 4))
    assert notes[2].text == " world"
    assert len(song.lines) == 2
    lyr = song.lyrics()
    assert [li.text for li in lyr.lines] == ["Hello world", "(shout) rap gold low"]
    assert [w.text.strip() for w in lyr.lines[0].words] == ["Hello", "world"]


def test_duet_and_legacy_encoding_and_relative(tmp_path):
    song = parse(DUET, tmp_path / "duet.txt")
    assert song.singers == [1, 2]
    assert [n.text for n in song.notes(1)] == ["Me", " first", "Line"]
    assert [n.text for n in song.notes(2)] == ["You", " next"]
    assert song.audio_path == tmp_path / "duet.mp3"
    assert [li.singer for li in song.lines] == [1, 1, 2]
    assert song.lyrics(2).lines[0].text == "You next"
    path = tmp_path / "lied.txt"
    path.write_bytes(CP1252)
    legacy = read(path)
    assert legacy.encoding == "cp1252"
    assert legacy.headers["TITLE"] == "Grüße" and legacy.headers["ARTIST"] == "Müller"
    assert legacy.lyrics().lines[1].text == "Füße"
    old = parse(RELATIVE)
    assert [n.beat for n in old.notes()] == [0, 2, 6]


def test_broken_files_keep_what_parses_and_say_so_once(tmp_path):
    song = parse(BROKEN)
    assert [n.text for n in song.notes()] == ["ok", " fine", " last"]
    assert len(song.problems) == 2
    assert "#GAP" in song.problems[0]
    assert song.problems[1].startswith("4 unreadable lines skipped (")
    bad = tmp_path / "nobpm.txt"
    bad.write_text("#TITLE:x\n: 0 1 0 a\nE\n", encoding="utf-8")
    with pytest.raises(UltraStarError, match="nobpm.txt: not an UltraStar song"):
        read(bad)
    (tmp_path / "d").mkdir()
    with pytest.raises(UltraStarError, match="no UltraStar .txt"):
        read(tmp_path / "d")


def test_write_round_trip(tmp_path):
    for text in (V11, DUET):
        song = parse(text)
        out = write(song, tmp_path / "out.txt")
        again = read(out)
        assert again.headers["VERSION"] == "1.1.0"
        assert again.bpm == pytest.approx(song.bpm) and again.gap_ms == song.gap_ms
        key = [(n.kind, n.beat, n.length, n.pitch, n.text, n.singer) for n in song.notes()]
        assert [(n.kind, n.beat, n.length, n.pitch, n.text, n.singer) for n in again.notes()] == key
        assert len(again.lines) == len(song.lines)
    written = to_text(parse(DUET))
    assert written.splitlines()[0] == "#VERSION:1.1.0" and "#AUDIO:duet.mp3" not in written
    assert "P1" in written and "P2" in written and written.rstrip().endswith("E")


def _contour(plan, hop=0.01, seconds=6.0):
    times = np.arange(0, seconds, hop)
    hz = np.zeros(times.size, np.float32)
    for start, end, midi in plan:
        hz[(times >= start) & (times < end)] = midi_to_hz(midi)
    return Contour(times, hz)


def test_chart_from_melody_and_lyrics_round_trip(tmp_path):
    bpm, first = 120.0, 0.5  # sixteenths of 0.125 s
    plan = [(1.0, 1.5, 64), (1.5, 2.0, 67), (2.0, 2.75, 69 + 12), (3.5, 4.0, 65), (4.0, 4.5, 64)]
    al = Alignment([AlignedLine(1.0, 2.75, [AlignedWord("hello", 1.0, 2.0), AlignedWord("you", 2.0, 2.75)]),
                    AlignedLine(3.5, 4.5, [AlignedWord("bye", 3.5, 4.0), AlignedWord("now", 4.0, 4.5)])], "en")
    chart = build_chart(_contour(plan), al, bpm, first, {"TITLE": "t", "ARTIST": "a", "AUDIO": "t.wav"})
    notes = chart.notes()
    assert chart.bpm == 120 and chart.gap_ms == 500
    assert [n.midi for n in notes] == [64, 67, 69, 65, 64]   # the octave slip folded back
    assert [n.text for n in notes] == ["hel", "lo", " you", "bye", " now"]
    assert [round(n.start, 3) for n in notes] == [1.0, 1.5, 2.0, 3.5, 4.0]
    assert len(chart.lines) == 2
    again = read(write(chart, tmp_path / "t.txt"))
    assert [(n.beat, n.length, n.pitch, n.text) for n in again.notes()] == \
        [(n.beat, n.length, n.pitch, n.text) for n in notes]
    assert [n.start for n in again.notes()] == pytest.approx([n.start for n in notes])
    assert [li.text for li in again.lyrics().lines] == ["hello you", "bye now"]
    # without lyrics: held notes ('~'), lines at pauses
    bare = build_chart(_contour(plan), None, bpm, first)
    assert len(bare.lines) == 2 and all("~" in n.text for n in bare.notes())
    assert [n.midi for n in fix_octaves(_notes([60, 62, 74, 64, 48]))] == [60, 62, 62, 64, 60]


def _notes(midis):
    from unmix_desktop.analysis.melody import Note

    return [Note(i, i + 1, m) for i, m in enumerate(midis)]


def _unmix(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "unmix_desktop.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=600)


def test_cli_ultrastar_export_and_errors(tmp_path):
    from conftest import make_song

    song = tmp_path / "tune.wav"
    sf.write(song, make_song(4.0)["mixture"], 44100)
    lrc = tmp_path / "tune.lrc"
    lrc.write_text("[00:00.50] <00:00.50> la <00:01.50> la <00:02.50> lu <00:03.50>\n", encoding="utf-8")
    out = tmp_path / "chart"
    r = _unmix("ultrastar", song, "--lyrics", lrc, "--out", out, "-q")
    assert r.returncode == 0, r.stderr
    chart = read(out / "tune.txt")
    assert chart.audio_path == out / "tune.wav" and chart.audio_path.is_file()
    assert sf.info(chart.vocals_path).frames > 0 and sf.info(chart.instrumental_path).frames > 0
    assert chart.notes() and chart.lyrics().lines[0].text.replace(" ", "").startswith("la")
    assert chart.headers["VERSION"] == "1.1.0"
    r = _unmix("ultrastar", song, "--lyrics", lrc, "--out", out, "-q")
    assert r.returncode == 2 and "tune.txt: already exists" in r.stderr and r.stderr.count("\n") == 1
    r = _unmix("ultrastar", tmp_path / "nope.wav", "--out", out)
    assert r.returncode == 2 and "nope.wav: no such file" in r.stderr
