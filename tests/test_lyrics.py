"""Lyrics: LRC parsing (offset, several tags per line, word times, ID tags), malformed files,
lyrics in tags written with mutagen onto generated audio files, and the follower at any time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from unmix_desktop.lyrics import (
    LyricsFollower,
    LyricsSettings,
    find_lyrics,
    load_lyrics_file,
    lyrics_for_song,
    parse_lrc,
    read_tag_lyrics,
)

LRC = """\ufeff[ar:The Band]
[ti:A Song]
[al:Album]
[by:someone]
[length: 03:10]
[00:12.00]First line
[00:17.20][01:05.50]Chorus line, sung twice
[00:21.50]<00:21.50>Word <00:22.00>by <00:22.75>word<00:23.50>
[00:24.00]
[00:40.00]After the solo
"""


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_lrc_lines_tags_and_metadata():
    lyrics = parse_lrc(LRC)
    assert lyrics.problems == []
    assert lyrics.synced and lyrics.has_word_times
    assert lyrics.metadata == {"ar": "The Band", "ti": "A Song", "al": "Album", "by": "someone", "length": "03:10"}
    texts = [(round(line.start, 2), line.text) for line in lyrics.lines]
    assert texts == [(12.0, "First line"), (17.2, "Chorus line, sung twice"), (21.5, "Word by word"),
                     (24.0, ""), (40.0, "After the solo"), (65.5, "Chorus line, sung twice")]
    words = lyrics.lines[2].words
    assert [w.text.strip() for w in words] == ["Word", "by", "word"]
    assert [(w.start, w.end) for w in words] == [(21.5, 22.0), (22.0, 22.75), (22.75, 23.5)]
    assert lyrics.lines[2].end == 23.5
    assert lyrics.lines[0].end <= 17.2


@pytest.mark.parametrize("offset, shift", [("+500", -0.5), ("-250", 0.25), ("0", 0.0)])
def test_offset_tag_moves_every_time(offset, shift):
    lyrics = parse_lrc(f"[offset:{offset}]\n[00:10.00]<00:10.00>a <00:11.00>b\n[00:20.00]c\n")
    assert lyrics.lines[0].start == pytest.approx(10 + shift)
    assert lyrics.lines[0].words[1].start == pytest.approx(11 + shift)
    assert lyrics.lines[1].start == pytest.approx(20 + shift)


def test_time_tag_variants():
    lyrics = parse_lrc("[1:02]a\n[01:02.5]b\n[01:02.123]c\n[01:02:50]d\n[1:01:02.00]e\n")
    assert [round(line.start, 3) for line in lyrics.lines] == [62.0, 62.123, 62.5, 62.5, 3662.0]
    assert [line.text for line in lyrics.lines] == ["a", "c", "b", "d", "e"]


def test_malformed_lines_are_kept_where_possible_and_reported_once(tmp_path):
    text = ("[ti:Broken]\n[00:01.00]good one\nno tag here\n[00:9x.00]bad tag\n[00:75.00]sixty-five seconds?\n"
            "[offset:soon]\n[00:03.00]<00:03.00>fine <00:0z.00>broken word\n[00:05.00]good two\n")
    lyrics = load_lyrics_file(write(tmp_path / "broken.lrc", text))
    assert [line.text for line in lyrics.lines] == ["good one", "fine <00:0z.00>broken word", "good two"] or \
        [line.text for line in lyrics.lines][0::2] == ["good one", "good two"]
    assert len(lyrics.problems) == 4
    assert any("line 3" in p for p in lyrics.problems)
    assert any("line 4" in p for p in lyrics.problems)
    assert any("line 5" in p for p in lyrics.problems)
    assert any("offset" in p for p in lyrics.problems)


def test_bad_word_times_drop_only_word_timing():
    lyrics = parse_lrc("[00:01.00]<00:01.00>one <00:99.00>two <00:02.00>three\n")
    assert lyrics.lines[0].text == "one two three"
    assert lyrics.lines[0].words == ()
    assert len(lyrics.problems) == 1


def test_garbage_files_never_raise(tmp_path):
    binary = tmp_path / "noise.lrc"
    binary.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)))
    lyrics = load_lyrics_file(binary)
    assert not lyrics.synced and lyrics.problems
    missing = load_lyrics_file(tmp_path / "missing.lrc")
    assert missing.empty and "missing.lrc" in missing.problems[0]
    latin = load_lyrics_file(write(tmp_path / "latin.lrc", "[00:01.00]Caf\u00e9 cr\u00e8me\n", "cp1252"))
    assert latin.lines[0].text == "Caf\u00e9 cr\u00e8me" and "Windows-1252" in latin.problems[0]
    utf16 = load_lyrics_file(write(tmp_path / "u16.lrc", "[00:01.00]\u6b4c\u8a5e\n", "utf-16"))
    assert utf16.lines[0].text == "\u6b4c\u8a5e" and utf16.problems == []
    assert parse_lrc("").empty
    cut = parse_lrc("[00:01.00]ok\n[00:02.0")
    assert [line.text for line in cut.lines] == ["ok"] and "line 2" in cut.problems[0]


def test_plain_text_is_unsynced():
    lyrics = parse_lrc("[ti:Plain]\nVerse one\nstill verse one\n\n[Chorus]\nLa la\n")
    assert not lyrics.synced and lyrics.problems == []
    assert lyrics.plain == "Verse one\nstill verse one\n\n[Chorus]\nLa la"
    assert lyrics.metadata["ti"] == "Plain"
    state = LyricsFollower(lyrics).state(10.0)
    assert state.line is None and state.next_line is None


def test_lrc_beside_the_song_is_found(tmp_path):
    song = tmp_path / "My Song.flac"
    sf.write(song, np.zeros((4410, 2), np.float32), 44100)
    assert find_lyrics(song) is None
    write(tmp_path / "My Song.lrc", LRC)
    lyrics = find_lyrics(song)
    assert lyrics.synced and lyrics.source.endswith("My Song.lrc")
    stem_song = tmp_path / "Other.stem.mp4"
    stem_song.write_bytes(b"")
    write(tmp_path / "Other.txt", "just words\n")
    assert find_lyrics(stem_song).plain == "just words"


# -- tags --------------------------------------------------------------------------------------
def _silence(path: Path, fmt: str | None = None) -> Path:
    sf.write(path, np.zeros((44100, 2), np.float32), 44100, format=fmt)
    return path


def test_id3_sylt_linewise_and_wordwise_and_uslt(tmp_path):
    from mutagen.id3 import ID3, SYLT, USLT, Encoding

    song = _silence(tmp_path / "song.mp3", "MP3")
    tags = ID3()
    tags.add(USLT(encoding=Encoding.UTF8, lang="eng", desc="", text="plain words\nsecond line"))
    tags.save(song)
    lyrics = read_tag_lyrics(song)
    assert not lyrics.synced and lyrics.plain == "plain words\nsecond line" and "USLT" in lyrics.source

    tags.add(SYLT(encoding=Encoding.UTF8, lang="eng", format=2, type=1, desc="lines",
                  text=[("Line one", 1000), ("Line two", 3500)]))
    tags.save(song)
    lyrics = read_tag_lyrics(song)  # synced wins over unsynced
    assert [(line.start, line.text) for line in lyrics.lines] == [(1.0, "Line one"), (3.5, "Line two")]

    tags.delall("SYLT")
    tags.add(SYLT(encoding=Encoding.UTF8, lang="eng", format=2, type=1, desc="words",
                  text=[("Hel", 1000), ("lo ", 1300), ("you", 1600), ("\nNext ", 4000), ("one", 4500)]))
    tags.save(song)
    lyrics = read_tag_lyrics(song)
    assert [line.text for line in lyrics.lines] == ["Hello you", "Next one"]
    assert [(w.start, w.text) for w in lyrics.lines[0].words] == [(1.0, "Hel"), (1.3, "lo "), (1.6, "you")]
    assert lyrics.lines[0].words[-1].end == 4.0


def test_uslt_holding_lrc_text_is_synced(tmp_path):
    from mutagen.id3 import USLT, Encoding
    from mutagen.wave import WAVE

    song = _silence(tmp_path / "song.wav")

    wave = WAVE(song)
    wave.add_tags()
    wave.tags.add(USLT(encoding=Encoding.UTF8, lang="eng", desc="", text=LRC))
    wave.save()
    lyrics = find_lyrics(song)
    assert lyrics.synced and lyrics.lines[0].text == "First line"


@pytest.mark.parametrize("key", ["LYRICS", "UNSYNCEDLYRICS", "lyrics"])
def test_flac_vorbis_comment(tmp_path, key):
    from mutagen.flac import FLAC

    song = _silence(tmp_path / "song.flac")
    audio = FLAC(song)
    audio[key] = "[00:02.00]From the FLAC tag\n[00:04.00]second"
    audio.save()
    lyrics = find_lyrics(song)
    assert [line.text for line in lyrics.lines] == ["From the FLAC tag", "second"]


def test_ogg_and_mp4_tags(tmp_path):
    import av
    from mutagen.mp4 import MP4
    from mutagen.oggvorbis import OggVorbis

    ogg = _silence(tmp_path / "song.ogg")
    audio = OggVorbis(ogg)
    audio["UNSYNCEDLYRICS"] = "some plain words"
    audio.save()
    assert read_tag_lyrics(ogg).plain == "some plain words"

    m4a = tmp_path / "song.m4a"
    with av.open(str(m4a), "w") as container:
        stream = container.add_stream("aac", rate=44100, layout="stereo")
        frame = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
        frame.sample_rate = 44100
        for i in range(10):
            frame.pts = i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    audio = MP4(m4a)
    audio["\xa9lyr"] = ["[00:01.00]<00:01.00>mp4 <00:01.50>words"]
    audio.save()
    lyrics = find_lyrics(m4a)
    assert lyrics.lines[0].text == "mp4 words" and len(lyrics.lines[0].words) == 2


def test_untagged_and_corrupt_songs_have_no_lyrics(tmp_path):
    assert read_tag_lyrics(_silence(tmp_path / "plain.flac")) is None
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + b"\xff" * 100)
    assert read_tag_lyrics(bad) is None
    assert find_lyrics(tmp_path / "nothing.flac") is None


# -- follower ----------------------------------------------------------------------------------
def test_follower_lines_words_and_countdown():
    f = LyricsFollower(parse_lrc(LRC))
    before = f.state(5.0)
    assert before.line is None and before.next_line == 0 and before.countdown == 0  # 12 s away
    assert [f.state(t).countdown for t in (9.1, 10.1, 11.1, 11.99)] == [3, 2, 1, 1]
    s = f.state(13.0)
    assert s.line == 0 and s.next_line == 1 and 0 < s.line_progress < 1 and s.word is None
    s = f.state(22.4)
    assert s.line == 2 and s.word == 1 and s.word_progress == pytest.approx(0.4 / 0.75)
    s = f.state(25.0)  # the blank line: a pause, nothing sung; the solo is 16 s long
    assert s.line is None and s.next_line == 4 and s.countdown == 0
    assert f.state(37.5).countdown == 3 and f.state(39.5).countdown == 1
    assert f.state(40.0).line == 4
    assert f.state(200.0).line is None and f.state(200.0).next_line is None


def test_follower_is_a_function_of_song_time_seeks_loops_tempo():
    f = LyricsFollower(parse_lrc(LRC))
    times = np.linspace(0, 80, 801)
    forward = [f.state(t) for t in times]
    # A seek backwards, a loop replayed, and a half-speed pass read the same song times.
    assert [f.state(t) for t in times[::-1]][::-1] == forward
    loop = [t for t in times if 17 <= t < 24] * 3
    assert [f.state(t) for t in loop] == [s for t, s in zip(times, forward) if 17 <= t < 24] * 3
    slow = np.repeat(times, 2)  # tempo 0.5: each song time is reached twice as late in wall time
    assert [f.state(t) for t in slow][::2] == forward


def test_offset_nudge_round_trips_json():
    settings = LyricsSettings()
    f = LyricsFollower(parse_lrc(LRC), settings)
    assert f.state(12.1).line == 0
    assert f.nudge(+500) == 500
    assert f.state(12.1).line is None and f.state(12.6).line == 0
    saved = json.loads(json.dumps(settings.to_dict()))
    assert saved == {"offset_ms": 500, "path": None}
    again = LyricsSettings.from_dict(saved)
    assert LyricsFollower(parse_lrc(LRC), again).state(12.6) == f.state(12.6)
    assert LyricsSettings.from_dict({"offset_ms": "x", "path": 3}) == LyricsSettings()


def test_a_file_opened_by_hand_wins(tmp_path):
    song = _silence(tmp_path / "song.flac")
    write(tmp_path / "song.lrc", "[00:01.00]beside the song\n")
    other = write(tmp_path / "elsewhere.lrc", "[00:02.00]opened by hand\n")
    assert lyrics_for_song(song).lines[0].text == "beside the song"
    settings = LyricsSettings(path=str(other))
    assert lyrics_for_song(song, settings.path).lines[0].text == "opened by hand"
