"""Lyrics alignment: syllables and language, the aligner on a sung-like signal with known onsets,
the LRC/JSON output, `unmix align` end to end on a stems folder and its one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from unmix_desktop.lyrics import parse_lrc
from unmix_desktop.lyrics.align import (
    AlignedLine,
    AlignedWord,
    Alignment,
    align_text,
    from_lyrics,
    lrc_time,
    realign_from,
    syllable_durations,
    vocal_features,
)
from unmix_desktop.lyrics.text import count_syllables, detect_language, parse_plain, syllables

SR = 44100
ROOT = Path(__file__).resolve().parents[1]
LYRICS = "la lala la\nlalala la\n\nla la lala\n"


def sung(plan: list[tuple[float, float, float]], seconds: float, seed: int = 0) -> np.ndarray:
    """Harmonic tones (onset, duration, Hz) with soft edges and a little noise: a sung-like signal."""
    rng = np.random.default_rng(seed)
    y = rng.normal(0, 0.002, int(seconds * SR)).astype(np.float32)
    for onset, dur, hz in plan:
        n = int(dur * SR)
        t = np.arange(n) / SR
        tone = sum(np.sin(2 * np.pi * hz * k * t) / k for k in range(1, 6))
        env = np.minimum(1, np.minimum(t / 0.02, (dur - t) / 0.05)).clip(0, 1)
        a = int(onset * SR)
        y[a:a + n] += (0.2 * env * tone).astype(np.float32)
    return np.stack([y, y], axis=1)


def syllable_plan():
    """Onsets of the 11 syllables of LYRICS: syllables 0.3-0.45 s, 0.15 s gaps, line pauses 1.2 s."""
    lines = [[1, 2, 1], [3, 1], [1, 1, 2]]
    plan, word_starts, line_starts = [], [], []
    t = 1.0
    k = 0
    for li, words in enumerate(lines):
        line_starts.append(t)
        for n in words:
            word_starts.append(t)
            for _ in range(n):
                dur = 0.3 + 0.05 * (k % 4)
                plan.append((t, dur, 220.0 * 2 ** ((k % 5) / 12)))
                t += dur + 0.15
                k += 1
        t += 1.2
    return plan, word_starts, line_starts, t + 1.0


def test_syllables_and_languages():
    assert count_syllables("fantasma", "es") == 3
    assert count_syllables("belleza", "es") == 3
    assert count_syllables("larmes", "fr") == 1       # silent final -es
    assert count_syllables("humeur", "fr") == 2
    assert count_syllables("time", "en") == 1        # silent final e
    assert count_syllables("little", "en") == 2
    assert count_syllables("Freunde", "de") == 2
    assert count_syllables("j'vois", "fr") == 1
    assert count_syllables("qu'on", "fr") == 1 and count_syllables("quiero", "es") == 2
    assert count_syllables("123", "en") == 3
    for word, lang in [("fantasma", "es"), ("Entschuldigung", "de"), ("beautiful", "en"), ("tristeza", "es")]:
        parts = syllables(word, lang)
        assert "".join(parts) == word and len(parts) == count_syllables(word, lang)
    assert detect_language("I love you and you know it is the one") == "en"
    assert detect_language("soy un fantasma que se asusta de si mismo, la tristeza es muy extraña") == "es"
    assert detect_language("j'vois pas l'intérêt qu'on s'capte dans la rue si t'es déjà dans ma tête") == "fr"
    assert detect_language("ich liebe dich und du bist nicht allein mit mir") == "de"
    assert detect_language("") == "en"
    lines = parse_plain("a b\n\n\nc\r\nd e f\n")
    assert [li.words for li in lines] == [("a", "b"), ("c",), ("d", "e", "f")]
    assert [li.verse_start for li in lines] == [True, True, False]


def test_aligner_recovers_known_syllable_onsets():
    plan, word_starts, line_starts, seconds = syllable_plan()
    features = vocal_features(sung(plan, seconds), SR)
    alignment = align_text(LYRICS, features, "es")
    words = alignment.words()
    assert [w.text for w in words] == LYRICS.split()
    got = np.array([w.start for w in words])
    err = np.abs(got - np.array(word_starts))
    assert err.max() < 0.12, (got, word_starts)
    assert np.abs(np.array([li.start for li in alignment.lines]) - line_starts).max() < 0.12
    assert all(w.end >= w.start for w in words)
    assert all(b.start >= a.start for a, b in zip(words, words[1:]))
    assert alignment.lines[2].verse_start and not alignment.lines[1].verse_start
    # the baseline is clearly worse on the same signal
    even = np.array([w.start for w in align_text(LYRICS, features, "es", "even").words()])
    assert np.abs(even - word_starts).mean() > 2 * err.mean()
    # re-running from a fixed point keeps earlier lines and times the rest from there on
    again = realign_from(alignment, 2, line_starts[2] - 0.5, features)
    assert again.lines[:2] == alignment.lines[:2]
    assert abs(again.lines[2].start - line_starts[2]) < 0.12


def test_held_notes_do_not_slow_down_the_other_lines():
    """Legato syllables of 0.35 s (a new note each) and one line of two 4-second "ooh"s: the song's
    mean syllable duration is inflated by the held notes, so one pass drifts; the re-estimated
    (median) syllable duration times every word."""
    text = "la la la la\nla la la la\nooh ooh\nla la la la\nla la la la\nla la la la\n"
    plan, word_starts = [], []
    t, k = 1.0, 0
    for line in text.splitlines():
        for w in line.split():
            dur = 4.0 if w == "ooh" else 0.35
            word_starts.append(t)
            plan.append((t, dur, 220.0 * 2 ** ((k % 5) / 12)))
            t += dur
            k += 1
        t += 0.8
    features = vocal_features(sung(plan, t + 1.0), SR)
    one = align_text(text, features, "es", "hmm-1pass")
    two = align_text(text, features, "es")
    assert two.method == "hmm" and one.method == "hmm-1pass"
    err_one = np.abs(np.array([w.start for w in one.words()]) - word_starts)
    err_two = np.abs(np.array([w.start for w in two.words()]) - word_starts)
    assert err_two.max() < 0.12, err_two
    assert err_one.mean() > 3 * err_two.mean() + 0.05, (err_one, err_two)
    assert abs(np.median(syllable_durations(two, features.hop)) * features.hop - 0.35) < 0.05


def test_lrc_and_json_output_round_trip():
    al = Alignment([AlignedLine(1.0, 2.5, [AlignedWord("Hola", 1.0, 1.5), AlignedWord("mundo", 1.6, 2.5)], 0.9),
                    AlignedLine(63.25, 65.0, [AlignedWord("adiós", 63.25, 65.0)], 0.5, verse_start=True)],
                   "es", metadata={"ar": "X"})
    lrc = al.to_lrc()
    assert lrc.splitlines() == ["[ar:X]", "[00:01.00] <00:01.00> Hola <00:01.60> mundo <00:02.50>", "",
                                "[01:03.25] <01:03.25> adiós <01:05.00>"]
    parsed = parse_lrc(lrc)
    assert [li.text for li in parsed.lines] == ["Hola mundo", "adiós"]
    assert [round(w.start, 2) for w in parsed.lines[0].words] == [1.0, 1.6]
    assert round(parsed.lines[1].words[0].end, 2) == 65.0
    back = from_lyrics(parsed)
    assert [[w.text for w in li.words] for li in back.lines] == [["Hola", "mundo"], ["adiós"]]
    data = json.loads(al.to_json_text())
    assert data["lines"][0] == {"start": 1.0, "end": 2.5, "confidence": 0.9,
                                "words": [{"text": "Hola", "start": 1.0, "end": 1.5},
                                          {"text": "mundo", "start": 1.6, "end": 2.5}]}
    assert lrc_time(3599.999) == "60:00.00" and lrc_time(-1) == "00:00.00"
    assert al.to_lyrics().lines[0].words[0].text == "Hola "


def _unmix(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "unmix_desktop.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


def test_cli_align_a_stems_folder_and_errors(tmp_path):
    plan, word_starts, _, seconds = syllable_plan()
    stems = tmp_path / "song"
    stems.mkdir()
    sf.write(stems / "vocals.wav", sung(plan, seconds), SR)
    lyr = tmp_path / "lyrics.txt"
    lyr.write_text("\ufeff" + LYRICS, encoding="utf-8")
    out, js = tmp_path / "song.lrc", tmp_path / "song.json"
    r = _unmix("align", stems, lyr, "--out", out, "--json", js, "--language", "es")
    assert r.returncode == 0, r.stderr
    data = json.loads(js.read_text(encoding="utf-8"))
    starts = [w["start"] for li in data["lines"] for w in li["words"]]
    assert [w["text"] for li in data["lines"] for w in li["words"]] == LYRICS.split()
    assert np.abs(np.array(starts) - word_starts).max() < 0.15
    assert len(parse_lrc(out.read_text(encoding="utf-8")).lines) == 3
    # errors: one line each, exit 2, naming the file
    r = _unmix("align", stems, tmp_path / "missing.txt", "--out", out)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "missing.txt: no such file" in r.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n", encoding="utf-8")
    r = _unmix("align", stems, empty, "--out", out)
    assert r.returncode == 2 and "empty.txt: no words to align" in r.stderr
    r = _unmix("align", tmp_path / "nope.mp3", lyr, "--out", out)
    assert r.returncode == 2 and "nope.mp3: no such file" in r.stderr
    r = _unmix("align", stems, lyr, "--out", tmp_path)
    assert r.returncode == 2 and "is a folder" in r.stderr
    r = _unmix("align", stems, lyr)
    assert r.returncode == 2 and r.stderr.startswith("unmix: error:") and "--out" in r.stderr


def test_align_cancels_and_reports_progress():
    import threading

    import pytest

    from unmix_desktop.errors import Cancelled

    plan, _, _, seconds = syllable_plan()
    features = vocal_features(sung(plan, seconds * 4), SR)  # long enough for progress reports
    seen: list[float] = []
    align_text(LYRICS, features, "es", progress=seen.append)
    assert seen and all(0 < f < 1 for f in seen) and seen == sorted(seen)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        align_text(LYRICS, features, "es", cancel=cancel)
