"""Align plain lyrics to the separated vocals: a start and end for every line and every word.

Qt-free; no network; any language with vowels (syllable rules for en/es/fr/de/it/pt, see
:mod:`.text`). The method (measured against alternatives in benchmarks/bench_align.py):

1. **Vocal features** on a 20 ms grid from the vocals stem (:func:`vocal_features`): a soft voice
   activity ``p(sung)`` from the stem's loudness (a logistic between the song's own quiet and loud
   levels), averaged with the pitch tracker's voicing when a melody contour is given; and an
   onset strength (positive log-spectral flux, 0..1) raised to 1 where a voiced run begins.
2. **Syllables** per word (:func:`.text.count_syllables`).
3. **A left-to-right HMM** (:func:`align_lines`): a chain of *sung* states per syllable, an
   optional *pause* state between syllables (and before / after everything). Sung states emit ``p(sung)``,
   pauses ``1 - p(sung)``; entering a syllable is weighted by the onset strength at that frame
   relative to its mean; geometric durations whose means come from the song itself (voiced
   frames per syllable; unvoiced frames per line break). Viterbi gives each syllable's frames;
   a word starts at its first syllable and ends with its last.
4. **Re-estimation** (:func:`_hmm_reestimated`): the first pass's mean syllable duration counts held
   notes, "ooh"s and melismas, so it sings every other line too slowly and drifts. One Viterbi-training
   step sets the syllable duration to the *median* of the syllable durations on the first pass's path
   (robust to held notes; re-estimating with the mean instead changes nothing, measured) and aligns
   again. No new constant; twice the alignment time.

Everything the model needs is measured on the song; the only fixed numbers are the frame hop and
the probability floor. ``method="even"`` (words spread evenly over the voiced part, the naive
baseline) and ``method="voiced"`` (syllables laid over the voiced frames in proportion) are kept
for comparison.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import Cancelled
from .model import Line, Lyrics, Word
from .text import TextLine, count_syllables, detect_language, parse_plain

HOP_S = 0.02
#: A syllable is a chain of this many states: its duration is Erlang-distributed (coefficient of
#: variation 1/sqrt(3) ~ 0.6) instead of geometric, which would make every split of a voiced
#: stretch between syllables equally likely.
SUBSTATES = 3
ONSET_WEIGHT = 1.0  # the onset term is a log likelihood ratio, taken at face value
#: A line's first syllable is favoured where singing resumes after a pause (lines are phrases).
PHRASE_STARTS = False
#: Between lines, p(voice that is not in the lyrics): such frames cost less there than silence
#: would inside a line (0 = the gap between lines must be silent).
OTHER_VOICE = 0.0
FLOOR = 0.02  # probability floor: nothing is impossible
METHODS = ("hmm", "hmm-1pass", "voiced", "even")


@dataclass(frozen=True)
class VocalFeatures:
    """Per-frame ``activity`` (p(sung), 0..1) and ``onset`` (0..1) at times ``t0 + i * hop``."""

    activity: np.ndarray
    onset: np.ndarray
    hop: float = HOP_S
    t0: float = 0.0

    @property
    def frames(self) -> int:
        return int(self.activity.size)

    def time(self, frame: int | float) -> float:
        return self.t0 + float(frame) * self.hop

    def frame(self, t: float) -> int:
        return int(np.clip(round((t - self.t0) / self.hop), 0, self.frames))

    def since(self, t: float) -> VocalFeatures:
        """The features from song time ``t`` on (re-aligning from a fixed point)."""
        i = self.frame(t)
        return VocalFeatures(self.activity[i:], self.onset[i:], self.hop, self.time(i))


def _mono(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float32)
    return a.mean(axis=1) if a.ndim == 2 else a


def vocal_features(vocals: np.ndarray, sample_rate: int, contour=None, hop: float = HOP_S) -> VocalFeatures:
    """Voice activity and onset strength of a vocals stem (float32 ``(n, 2)`` or ``(n,)``).

    ``contour``: an optional :class:`~..analysis.melody.Contour` of the same stem; its voicing is
    averaged into the activity and its voiced-run starts count as onsets."""
    x = _mono(vocals)
    step = max(1, int(round(hop * sample_rate)))
    n_fft = 1 << int(math.ceil(math.log2(max(2 * step, int(0.04 * sample_rate)))))
    frames = max(1, int(math.ceil(x.size / step)))
    pad = np.concatenate([np.zeros(n_fft // 2, np.float32), x, np.zeros(n_fft + step, np.float32)])
    window = np.hanning(n_fft).astype(np.float32)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    band = (freqs >= 80) & (freqs <= 8000)
    db = np.empty(frames, np.float64)
    flux = np.zeros(frames, np.float64)
    prev = None
    chunk = 2048
    for c0 in range(0, frames, chunk):
        idx = np.arange(c0, min(frames, c0 + chunk))
        segs = np.lib.stride_tricks.sliding_window_view(pad, n_fft)[idx * step] * window
        mag = np.abs(np.fft.rfft(segs, axis=1))[:, band]
        power = (mag ** 2).mean(axis=1)
        db[idx] = 10 * np.log10(power + 1e-12)
        logmag = np.log1p(mag * 1000.0)
        d = np.diff(logmag, axis=0, prepend=logmag[:1] if prev is None else prev[None])
        flux[idx] = np.maximum(d, 0).mean(axis=1)
        prev = logmag[-1]
    # activity: a logistic between the song's quiet (10th percentile) and loud (90th) levels
    lo, hi = np.percentile(db, 10), np.percentile(db, 90)
    mid, scale = (lo + hi) / 2, max((hi - lo) / 8, 1e-3)
    activity = 1.0 / (1.0 + np.exp(-(db - mid) / scale))
    onset = flux / (np.percentile(flux, 99) + 1e-12)
    if contour is not None and getattr(contour, "times", np.zeros(0)).size:
        t = np.arange(frames) * hop
        voiced = contour.at(t) > 0
        activity = 0.5 * activity + 0.5 * voiced
        starts = np.flatnonzero(np.diff(voiced.astype(np.int8), prepend=0) == 1)
        onset[starts] = 1.0
    onset = np.clip(onset, 0, 1)
    return VocalFeatures(np.clip(activity, 0, 1).astype(np.float64), onset.astype(np.float64), hop, 0.0)


# -- results -------------------------------------------------------------------------------------
@dataclass
class AlignedWord:
    text: str
    start: float
    end: float


@dataclass
class AlignedLine:
    start: float
    end: float
    words: list[AlignedWord]
    confidence: float = 0.0
    verse_start: bool = False

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


@dataclass
class Alignment:
    lines: list[AlignedLine]
    language: str = ""
    method: str = "hmm"
    metadata: dict[str, str] = field(default_factory=dict)

    def words(self) -> list[AlignedWord]:
        return [w for line in self.lines for w in line.words]

    def to_json(self) -> dict:
        return {"language": self.language, "method": self.method,
                "lines": [{"start": round(li.start, 3), "end": round(li.end, 3), "confidence": round(li.confidence, 3),
                           "words": [{"text": w.text, "start": round(w.start, 3), "end": round(w.end, 3)}
                                     for w in li.words]} for li in self.lines]}

    def to_json_text(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, indent=1) + "\n"

    def to_lrc(self) -> str:
        """Enhanced LRC: ``[mm:ss.xx] <mm:ss.xx> word <mm:ss.xx> word ... <end>`` per line; a blank
        line before each verse; ID tags from ``metadata`` first."""
        rows = [f"[{k}:{v}]" for k, v in self.metadata.items()]
        for i, line in enumerate(self.lines):
            if line.verse_start and i > 0:
                rows.append("")
            parts = [f"[{lrc_time(line.start)}]"]
            for w in line.words:
                parts.append(f"<{lrc_time(w.start)}> {w.text}")
            if line.words:
                parts.append(f"<{lrc_time(line.end)}>")
            rows.append(" ".join(parts))
        return "\n".join(rows) + "\n"

    def to_lyrics(self, source: str = "") -> Lyrics:
        """The :class:`~.model.Lyrics` the lyrics pane follows."""
        lines = [Line(li.start, li.end, li.text,
                      tuple(Word(w.start, w.end, w.text + (" " if k + 1 < len(li.words) else ""))
                            for k, w in enumerate(li.words))) for li in self.lines]
        return Lyrics(lines=lines, source=source)


def lrc_time(seconds: float) -> str:
    cs = int(round(max(0.0, seconds) * 100))
    return f"{cs // 6000:02d}:{cs // 100 % 60:02d}.{cs % 100:02d}"


def from_lyrics(lyrics: Lyrics) -> Alignment:
    """An :class:`Alignment` from synced :class:`~.model.Lyrics` (word times where the file has
    them, else the line's words spread over the line)."""
    out: list[AlignedLine] = []
    for line in lyrics.lines:
        if not line.text.strip():
            continue
        if line.words:
            words = [AlignedWord(w.text.strip(), w.start, w.end) for w in line.words if w.text.strip()]
        else:
            texts = line.text.split()
            span = max(line.end - line.start, 0.01 * len(texts))
            words = [AlignedWord(t, line.start + span * k / len(texts), line.start + span * (k + 1) / len(texts))
                     for k, t in enumerate(texts)]
        out.append(AlignedLine(line.start, max(line.end, line.start), words, 1.0))
    return Alignment(out, method="lrc")


# -- methods -----------------------------------------------------------------------------------
def _voiced_span(f: VocalFeatures) -> tuple[int, int]:
    on = np.flatnonzero(f.activity > 0.5)
    if on.size == 0:
        return 0, f.frames
    return int(on[0]), int(on[-1]) + 1


def _words_from_frames(lines: list[TextLine], starts: list[int], ends: list[int], f: VocalFeatures,
                       method: str, language: str) -> Alignment:
    out: list[AlignedLine] = []
    k = 0
    for line in lines:
        words = []
        for text in line.words:
            words.append(AlignedWord(text, f.time(starts[k]), f.time(max(ends[k], starts[k]))))
            k += 1
        a, b = f.frame(words[0].start), max(f.frame(words[-1].end), f.frame(words[0].start) + 1)
        conf = float(np.mean(f.activity[a:b])) if b > a and a < f.frames else 0.0
        out.append(AlignedLine(words[0].start, words[-1].end, words, conf, line.verse_start))
    return Alignment(out, language, method)


def _even(lines: list[TextLine], f: VocalFeatures, language: str) -> Alignment:
    a, b = _voiced_span(f)
    n = sum(len(li.words) for li in lines)
    edges = np.linspace(a, b, n + 1)
    return _words_from_frames(lines, [int(e) for e in edges[:-1]], [int(e) for e in edges[1:]], f, "even", language)


def _voiced(lines: list[TextLine], f: VocalFeatures, language: str) -> Alignment:
    """Syllables laid over the voiced frames in proportion (pauses get no syllables)."""
    sylls = [count_syllables(w, language) for li in lines for w in li.words]
    a, b = _voiced_span(f)
    voiced = np.flatnonzero(f.activity[a:b] > 0.5) + a
    if voiced.size == 0:
        return _even(lines, f, language)
    cum = np.concatenate([[0], np.cumsum(sylls)]) / max(1, sum(sylls))
    pos = np.minimum((cum * voiced.size).astype(int), voiced.size - 1)
    starts = [int(voiced[p]) for p in pos[:-1]]
    ends = [int(voiced[max(p - 1, 0)]) + 1 for p in pos[1:]]
    return _words_from_frames(lines, starts, ends, f, "voiced", language)


def phrase_starts(f: VocalFeatures, pause_s: float = 0.3) -> np.ndarray:
    """1 within +-2 frames of where singing resumes after at least ``pause_s`` of quiet, else 0."""
    active = f.activity > 0.5
    k = max(1, int(round(pause_s / f.hop)))
    quiet = np.concatenate([[0], np.cumsum(~active)])
    idx = np.arange(f.frames)
    before = quiet[idx] - quiet[np.maximum(idx - k, 0)]
    starts = active & np.concatenate([[True], ~active[:-1]]) & (before >= np.minimum(k, idx))
    out = np.zeros(f.frames)
    for d in range(-2, 3):
        out[np.clip(np.flatnonzero(starts) + d, 0, f.frames - 1)] = 1.0
    return out


def _hmm(lines: list[TextLine], f: VocalFeatures, language: str, use_onsets: bool = True,
         cancel=None, progress: Callable[[float], None] | None = None, d_syll: float | None = None) -> Alignment:
    """One Viterbi pass; ``d_syll``: the mean syllable duration in frames (default: the song's
    voiced frames per syllable)."""
    # states: P0, [S(w0,0) .. S(w0,n0-1)], P1, [S(w1,...)], P2, ..., P_W
    kind: list[int] = []       # 0 pause, 1 sung
    word_of: list[int] = []
    first_of_word: list[bool] = []
    line_break_before: list[bool] = []
    syllable_start: list[bool] = []
    w_index = 0
    for li_i, line in enumerate(lines):
        for j, text in enumerate(line.words):
            kind.append(0)
            word_of.append(w_index)
            first_of_word.append(False)
            syllable_start.append(False)
            line_break_before.append(j == 0)
            n = count_syllables(text, language)
            for s in range(n * SUBSTATES):
                if s and s % SUBSTATES == 0:  # a consonant or breath between syllables of a word
                    kind.append(0)
                    word_of.append(w_index)
                    first_of_word.append(False)
                    syllable_start.append(False)
                    line_break_before.append(False)
                kind.append(1)
                word_of.append(w_index)
                first_of_word.append(s == 0)
                syllable_start.append(s % SUBSTATES == 0)
                line_break_before.append(False)
            w_index += 1
    kind.append(0)
    word_of.append(w_index)
    first_of_word.append(False)
    syllable_start.append(False)
    line_break_before.append(True)
    kind_a = np.array(kind)
    sung = kind_a == 1
    n_states = kind_a.size
    n_syll = int(sung.sum()) // SUBSTATES
    a0, b0 = _voiced_span(f)
    act = np.clip(f.activity, FLOOR, 1 - FLOOR)
    voiced_frames = float(np.sum(f.activity[a0:b0]))
    unvoiced_frames = float(np.sum(1 - f.activity[a0:b0]))
    d_syll = max(2.0, voiced_frames / max(1, n_syll) if d_syll is None else d_syll)
    d_line_pause = max(2.0, unvoiced_frames / max(1, len(lines)))
    d_word_pause = d_syll
    mean_pause = np.where(np.array(line_break_before), d_line_pause, d_word_pause)
    mean = np.where(sung, max(1.5, d_syll / SUBSTATES), mean_pause)
    mean[0] = mean[-1] = max(2.0, float(a0), float(f.frames - b0))
    stay = np.log1p(-1.0 / mean)
    leave = np.log(1.0 / mean)
    emit_sung, emit_pause = np.log(act), np.log(1 - act)
    # between lines: silence OR singing that is not in the lyrics (backing vocals, ad-libs, leakage)
    emit_gap = np.log(0.5 * (1 - act) + 0.5 * OTHER_VOICE) if OTHER_VOICE > 0 else emit_pause
    gap_state = (kind_a == 0) & np.array(line_break_before)
    onset = np.clip(f.onset, FLOOR, 1.0)
    onset_gain = ONSET_WEIGHT * np.log(onset / max(float(onset.mean()), FLOOR)) if use_onsets else np.zeros(f.frames)
    line_first = np.zeros(n_states, bool)
    line_first[1] = True
    for n in range(2, n_states):
        line_first[n] = syllable_start[n] and kind_a[n - 1] == 0 and line_break_before[n - 1]
    phrase_gain = np.log(np.maximum(phrase_starts(f), FLOOR) / FLOOR) if PHRASE_STARTS else np.zeros(f.frames)
    T = f.frames
    neg = -1e18
    delta = np.full(n_states, neg)
    delta[0] = emit_gap[0]
    delta[1] = emit_sung[0] + onset_gain[0]
    # predecessors: n-1 always; n-2 for a first syllable whose n-1 is a pause (skip the pause)
    skip_ok = np.zeros(n_states, bool)
    for n in range(2, n_states):
        skip_ok[n] = sung[n] and syllable_start[n] and kind_a[n - 1] == 0 and kind_a[n - 2] == 1
    back = np.zeros((T, n_states), np.int8)
    enter_sung = np.array(syllable_start)
    for t in range(1, T):
        if cancel is not None and t % 500 == 0 and cancel.is_set():
            raise Cancelled()
        if progress is not None and t % 1000 == 0:
            progress(t / T)
        gain = np.where(enter_sung, onset_gain[t], 0.0) + np.where(line_first, phrase_gain[t], 0.0)
        c0 = delta + stay
        c1 = np.full(n_states, neg)
        c1[1:] = delta[:-1] + leave[:-1] + gain[1:]
        c2 = np.full(n_states, neg)
        c2[2:] = np.where(skip_ok[2:], delta[:-2] + leave[:-2] + gain[2:], neg)
        best = np.maximum(np.maximum(c0, c1), c2)
        choice = np.where(best == c0, 0, np.where(best == c1, 1, 2)).astype(np.int8)
        back[t] = choice
        delta = best + np.where(sung, emit_sung[t], np.where(gap_state, emit_gap[t], emit_pause[t]))
    end_state = n_states - 1 if delta[n_states - 1] >= delta[n_states - 2] else n_states - 2
    path = np.empty(T, np.int64)
    s = end_state
    for t in range(T - 1, -1, -1):
        path[t] = s
        s -= int(back[t, s])
    word_arr = np.array(word_of)
    n_words = w_index
    starts = [-1] * n_words
    ends = [-1] * n_words
    sung_path = sung[path]
    for frame in np.flatnonzero(sung_path):
        w = int(word_arr[path[frame]])
        if starts[w] < 0:
            starts[w] = int(frame)
        ends[w] = int(frame) + 1
    # a word the path never entered (not possible left-to-right unless T < states): interpolate
    last = 0
    for w in range(n_words):
        if starts[w] < 0:
            starts[w] = last
            ends[w] = last
        last = ends[w]
    return _words_from_frames(lines, starts, ends, f, "hmm-1pass" if use_onsets else "hmm-no-onsets", language)


def syllable_durations(alignment: Alignment, hop: float) -> np.ndarray:
    """Frames per syllable of every aligned word (its duration over its syllables), one entry per
    syllable."""
    lang = alignment.language or "en"
    out = []
    for w in alignment.words():
        n = count_syllables(w.text, lang)
        out.extend([(w.end - w.start) / hop / n] * n)
    return np.asarray(out, float)


def _hmm_reestimated(lines: list[TextLine], f: VocalFeatures, language: str, cancel=None,
                     progress: Callable[[float], None] | None = None) -> Alignment:
    """Two passes of :func:`_hmm`: the second with the median syllable duration of the first."""
    half = (lambda x: progress(0.5 * x)) if progress is not None else None
    first = _hmm(lines, f, language, True, cancel, half)
    d = syllable_durations(first, f.hop)
    second = (lambda x: progress(0.5 + 0.5 * x)) if progress is not None else None
    out = _hmm(lines, f, language, True, cancel, second, float(np.median(d)) if d.size else None)
    out.method = "hmm"
    return out


def align_lines(lines: list[TextLine], features: VocalFeatures, language: str = "en", method: str = "hmm",
                cancel=None, progress: Callable[[float], None] | None = None) -> Alignment:
    """Time every word of ``lines`` against ``features`` (times are song seconds, ``features.t0``
    on). ``method``: ``hmm`` (default), ``hmm-1pass`` (no re-estimation), ``hmm-no-onsets``
    (one pass without onsets), ``voiced`` or ``even``."""
    if not lines:
        return Alignment([], language, method)
    if features.frames < 2:
        raise ValueError("no audio to align to")
    if method == "even":
        return _even(lines, features, language)
    if method == "voiced":
        return _voiced(lines, features, language)
    if method == "hmm":
        return _hmm_reestimated(lines, features, language, cancel, progress)
    if method in ("hmm-1pass", "hmm-no-onsets"):
        return _hmm(lines, features, language, method == "hmm-1pass", cancel, progress)
    raise ValueError(f"unknown alignment method '{method}' (choose from {', '.join(METHODS)})")


def align_text(text: str, features: VocalFeatures, language: str | None = None, method: str = "hmm",
               cancel=None, progress=None) -> Alignment:
    """Align plain lyrics ``text`` (one sung line per line, blank lines between verses)."""
    lang = language or detect_language(text)
    return align_lines(parse_plain(text), features, lang, method, cancel, progress)


def realign_from(alignment: Alignment, line_index: int, start: float, features: VocalFeatures,
                 cancel=None, progress=None) -> Alignment:
    """Keep lines before ``line_index`` as they are; align the rest again from song time ``start``
    on (the timing editor's "re-run from here")."""
    keep = alignment.lines[:line_index]
    rest = [TextLine(tuple(w.text for w in li.words), li.verse_start) for li in alignment.lines[line_index:]]
    if not rest:
        return alignment
    tail = align_lines(rest, features.since(start), alignment.language or "en", "hmm", cancel, progress)
    return Alignment(keep + tail.lines, alignment.language, alignment.method, dict(alignment.metadata))
