"""Variants of the lyrics aligner tried for issue 22 and NOT shipped (each worse than the shipped
HMM of unmix_desktop/lyrics/align.py on at least two of the three lyrics-dev songs; numbers in
benchmarks/results/bench_align_variants.txt). Kept so the measurement can be repeated:

* ``hold``: every syllable may be followed by an optional *hold* state (a long note), i.e.
  heavy-tailed syllable durations (HOLD_P, HOLD_FACTOR; ``line_end_only`` = only a line's last
  syllable may be held; ``hold_words`` = only vocables such as "ooh", "ah");
* ``two-level``: sung phrases (voiced runs merged across gaps < ``gap_s``) matched to blocks of
  lyric lines by dynamic programming on syllable count vs voiced duration (log-ratio cost,
  phrases outside the lyrics skipped at a cost), then the shipped HMM inside each block.

    python benchmarks/align_variants.py [--data ../shared/data/lyrics-dev]
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_align import score  # noqa: E402
from unmix_desktop.errors import Cancelled  # noqa: E402
from unmix_desktop.lyrics.align import (  # noqa: E402
    FLOOR,
    ONSET_WEIGHT,
    SUBSTATES,
    AlignedLine,
    Alignment,
    VocalFeatures,
    _hmm,
    _voiced_span,
    _words_from_frames,
    align_text,
    vocal_features,
)
from unmix_desktop.lyrics.text import TextLine, count_syllables, detect_language, parse_plain  # noqa: E402
from unmix_desktop.lyrics.vocals import song_vocals  # noqa: E402

#: A sung syllable may be held (a long note, a melisma, an "ooh"): after its Erlang chain an
#: optional *hold* state with this chance, whose mean duration is HOLD_FACTOR plain syllables.
#: Without it a 4-second "ooh" costs as much as skipping whole lines, and the alignment drifts.
HOLD_P = 0.2
HOLD_FACTOR = 4.0


def _hmm_hold(lines: list[TextLine], f: VocalFeatures, language: str, cancel=None,
              progress: Callable[[float], None] | None = None, hold_p: float | None = None,
              hold_factor: float | None = None, line_end_only: bool = False, hold_words=None,
              d_syll_override: float | None = None) -> Alignment:
    """The syllable HMM with heavy-tailed syllable durations (see :data:`HOLD_P`).

    States per syllable: SUBSTATES sung states, then an optional hold (sung); an optional pause
    before each syllable (a line gap before a line's first one). Transitions go one, two (skip a
    pause / the hold) or three states (skip hold and pause) ahead; Viterbi as in :func:`_hmm`."""
    hold_p = HOLD_P if hold_p is None else hold_p
    hold_factor = HOLD_FACTOR if hold_factor is None else hold_factor
    kind: list[int] = []   # 0 pause, 1 sung, 2 line gap, 3 hold
    word_of: list[int] = []
    syll_start: list[bool] = []
    line_last: list[bool] = []
    w_index = 0
    for li, line in enumerate(lines):
        for j, text in enumerate(line.words):
            ns = count_syllables(text, language)
            for s in range(ns):
                line_last.extend([False] * (SUBSTATES + 1))
                if hold_words is not None:
                    line_last.append(text.lower().strip(",.!?'\"") in hold_words)
                else:
                    line_last.append(j == len(line.words) - 1 and s == ns - 1)
                kind.append(2 if (j == 0 and s == 0) else 0)
                word_of.append(w_index)
                syll_start.append(False)
                for k in range(SUBSTATES):
                    kind.append(1)
                    word_of.append(w_index)
                    syll_start.append(k == 0)
                kind.append(3)
                word_of.append(w_index)
                syll_start.append(False)
            w_index += 1
    kind.append(2)
    word_of.append(w_index)
    syll_start.append(False)
    line_last.append(False)
    kind_a = np.array(kind)
    hold_at = np.array(line_last) if (line_end_only or hold_words is not None) else kind_a == 3
    start_a = np.array(syll_start)
    n_states = kind_a.size
    sung = (kind_a == 1) | (kind_a == 3)
    n_syll = int(start_a.sum())
    a0, b0 = _voiced_span(f)
    voiced_frames = float(np.sum(f.activity[a0:b0]))
    unvoiced_frames = float(np.sum(1 - f.activity[a0:b0]))
    n_hold = len(lines) if line_end_only else (int(hold_at.sum()) if hold_words is not None else n_syll)
    d_syll = max(2.0, voiced_frames / (max(1, n_syll) + n_hold * hold_p * hold_factor))
    if d_syll_override is not None:
        d_syll = d_syll_override
    d_line = max(2.0, unvoiced_frames / max(1, len(lines)))
    mean = np.select([kind_a == 1, kind_a == 3, kind_a == 2],
                     [max(1.5, d_syll / SUBSTATES), max(2.0, hold_factor * d_syll), d_line], d_syll)
    mean[0] = mean[-1] = max(2.0, float(a0), float(f.frames - b0))
    stay = np.log1p(-1.0 / mean)
    leave = np.log(1.0 / mean)
    act = np.clip(f.activity, FLOOR, 1 - FLOOR)
    emit_sung, emit_pause = np.log(act), np.log(1 - act)
    onset = np.clip(f.onset, FLOOR, 1.0)
    onset_gain = ONSET_WEIGHT * np.log(onset / max(float(onset.mean()), FLOOR))
    # tr[k][n]: log p(n-k -> n)
    neg = -1e18
    K = 3
    tr = np.full((K + 1, n_states), neg)
    last_sub = np.zeros(n_states, bool)
    last_sub[:-1] = (kind_a[:-1] == 1) & (kind_a[1:] == 3)
    lh, lnh = math.log(hold_p), math.log1p(-hold_p)
    for n in range(1, n_states):
        p = n - 1
        if kind_a[n] == 3:                       # into the hold
            tr[1, n] = leave[p] + (lh if hold_at[n] else -1e9)
        elif kind_a[p] == 3:                     # hold -> pause / next
            tr[1, n] = leave[p]
            if last_sub[n - 2]:
                tr[2, n] = leave[n - 2] + (lnh if hold_at[n - 1] else 0.0)    # skip the hold
        else:
            tr[1, n] = leave[p]
        if start_a[n] and n >= 3 and kind_a[n - 1] in (0, 2) and kind_a[n - 2] == 3:
            tr[2, n] = leave[n - 2]              # hold -> syllable, no pause
            tr[3, n] = leave[n - 3] + (lnh if hold_at[n - 2] else 0.0)  # no hold, no pause
    emit_kind = np.where(sung, 0, 1)
    T = f.frames
    delta = np.full(n_states, neg)
    delta[0] = emit_pause[0]
    delta[1] = emit_sung[0] + onset_gain[0]
    back = np.zeros((T, n_states), np.int8)
    for t in range(1, T):
        if cancel is not None and t % 500 == 0 and cancel.is_set():
            raise Cancelled()
        if progress is not None and t % 1000 == 0:
            progress(t / T)
        gain = np.where(start_a, onset_gain[t], 0.0)
        cands = np.full((K + 1, n_states), neg)
        cands[0] = delta + stay
        for k in range(1, K + 1):
            cands[k, k:] = delta[:-k] + tr[k, k:] + gain[k:]
        choice = np.argmax(cands, axis=0)
        back[t] = choice
        delta = cands[choice, np.arange(n_states)] + np.where(emit_kind == 0, emit_sung[t], emit_pause[t])
    ends = [n_states - 1, n_states - 2, n_states - 3]
    s = max(ends, key=lambda e: delta[e])
    path = np.empty(T, np.int64)
    for t in range(T - 1, -1, -1):
        path[t] = s
        s -= int(back[t, s])
    word_arr = np.array(word_of)
    starts = [-1] * w_index
    stops = [-1] * w_index
    for t in np.flatnonzero(sung[path]):
        w = word_arr[path[t]]
        if starts[w] < 0:
            starts[w] = int(t)
        stops[w] = int(t) + 1
    last = 0
    for w in range(w_index):
        if starts[w] < 0:
            starts[w] = stops[w] = last
        last = stops[w]
    return _words_from_frames(lines, starts, stops, f, "hmm-hold", language)


#: Non-lexical vocables, often held for seconds ("ooh", "ah"): only these may take a hold state.
VOCABLES = frozenset("oh ooh oooh ah aah ahh uh uhh mm mmm hmm eh ay oh-oh yeah na woah whoa wo".split())


def _vocable_holds(lines, f, language, hold_p=0.5, hold_factor=4.0, cancel=None, progress=None):
    """Hold states on vocables only, then the median re-estimation of the shipped method (vocables
    left out of the median)."""
    first = _hmm_hold(lines, f, language, hold_p=hold_p, hold_factor=hold_factor, hold_words=VOCABLES)
    d = []
    for aw in first.words():
        if aw.text.lower().strip(",.!?'\"") in VOCABLES:
            continue
        n = count_syllables(aw.text, language)
        d.extend([(aw.end - aw.start) / f.hop / n] * n)
    return _hmm_hold(lines, f, language, hold_p=hold_p, hold_factor=hold_factor, hold_words=VOCABLES,
                     d_syll_override=float(np.median(d)) if d else None)


def vocal_phrases(f: VocalFeatures, gap_s: float = 0.5) -> list[tuple[int, int, float]]:
    """Sung phrases: runs of ``p(sung) > 0.5`` merged across gaps shorter than ``gap_s``, as
    ``(first frame, end frame, voiced frames)``."""
    active = f.activity > 0.5
    edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])) != 0).reshape(-1, 2)
    gap = max(1, int(round(gap_s / f.hop)))
    out: list[list[int]] = []
    for a, b in edges:
        if out and a - out[-1][1] < gap:
            out[-1][1] = int(b)
        else:
            out.append([int(a), int(b)])
    return [(a, b, float(np.sum(f.activity[a:b]))) for a, b in out]


def _two_level(lines: list[TextLine], f: VocalFeatures, language: str, cancel=None, progress=None,
               sigma: float = 0.5, skip: float = 1.0, max_lines: int = 8, max_phrases: int = 6,
               gap_s: float = 0.5) -> Alignment:
    """Lines to phrases by DP, then the syllable HMM inside each block of lines."""
    phrases = vocal_phrases(f, gap_s)
    if not phrases:
        return _hmm(lines, f, language, True, cancel, progress)
    n = np.array([sum(count_syllables(w, language) for w in li.words) for li in lines], float)
    v = np.array([p[2] for p in phrases])
    L, P = len(lines), len(phrases)
    rate = v.sum() / n.sum()
    cn = np.concatenate([[0], np.cumsum(n)])
    cv = np.concatenate([[0], np.cumsum(v)])
    INF = 1e18
    D = np.full((L + 1, P + 1), INF)
    B: dict[tuple[int, int], tuple[int, int]] = {}
    D[0, 0] = 0.0
    for i in range(L + 1):
        for j in range(P + 1):
            d = D[i, j]
            if d >= INF:
                continue
            if j < P:  # a phrase that is in no line (ooh, ad-lib, leakage): cost per syllable it would hold
                c = d + skip * (1.0 + v[j] / rate)
                if c < D[i, j + 1]:
                    D[i, j + 1] = c
                    B[(i, j + 1)] = (i, j)
            for a in range(1, max_lines + 1):
                if i + a > L:
                    break
                for b in range(1, max_phrases + 1):
                    if j + b > P:
                        break
                    ratio = (cv[j + b] - cv[j]) / (rate * (cn[i + a] - cn[i]))
                    c = d + 0.5 * (math.log(ratio) / sigma) ** 2
                    if c < D[i + a, j + b]:
                        D[i + a, j + b] = c
                        B[(i + a, j + b)] = (i, j)
    i, j = L, int(np.argmin(D[L]))
    if D[i, j] >= INF:
        return _hmm(lines, f, language, True, cancel, progress)
    blocks = []
    while (i, j) != (0, 0):
        pi, pj = B[(i, j)]
        if pi < i:
            blocks.append((pi, i, pj, j))
        i, j = pi, pj
    blocks.reverse()
    out: list[AlignedLine] = []
    for bi, (l0, l1, p0, p1) in enumerate(blocks):
        a = phrases[p0][0]
        b = phrases[p1 - 1][1]
        pad = int(round(0.25 / f.hop))
        lo = max(0, a - pad, phrases[p0 - 1][1] if p0 > 0 else 0)
        hi = min(f.frames, b + pad, phrases[p1][0] if p1 < P else f.frames)
        sub = VocalFeatures(f.activity[lo:hi], f.onset[lo:hi], f.hop, f.time(lo))
        out.extend(_hmm(lines[l0:l1], sub, language, True, cancel).lines)
        if progress is not None:
            progress((bi + 1) / len(blocks))
    return Alignment(out, language, "two-level")



VARIANTS = [
    ("hmm (shipped)", None, {}),
    ("hmm-1pass", None, {"method": "hmm-1pass"}),
    ("hold p=0.2 x4", _hmm_hold, {}),
    ("hold p=0.1 x2", _hmm_hold, {"hold_p": 0.1, "hold_factor": 2.0}),
    ("line-end hold p=0.3 x2", _hmm_hold, {"hold_p": 0.3, "hold_factor": 2.0, "line_end_only": True}),
    ("line-end hold p=0.7 x4", _hmm_hold, {"hold_p": 0.7, "hold_factor": 4.0, "line_end_only": True}),
    ("vocable holds p=0.5 x4", _hmm_hold, {"hold_p": 0.5, "hold_factor": 4.0, "hold_words": VOCABLES}),
    ("vocable holds, 2 passes", _vocable_holds, {}),
    ("two-level gap 0.5", _two_level, {}),
    ("two-level gap 0.3", _two_level, {"gap_s": 0.3}),
    ("two-level gap 0.8", _two_level, {"gap_s": 0.8}),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "lyrics-dev"))
    args = ap.parse_args()
    data = Path(args.data)
    if not data.is_dir():
        print(f"{data}: not found (the lyrics-dev set); nothing measured", file=sys.stderr)
        return 1
    songs = sorted(p for p in data.iterdir() if (p / "song.mp3").is_file())
    prepared = []
    for song in songs:
        sv = song_vocals(song / "song.mp3")
        text = (song / "lyrics.txt").read_text(encoding="utf-8")
        prepared.append((song, text, vocal_features(sv.vocals, sv.sample_rate, sv.contour)))
    print("# word MAE s / line MAE s / share <=0.3 s / share <=1 s per song: " + " | ".join(s.name for s in songs))
    for name, fn, kw in VARIANTS:
        cells = []
        for song, text, f in prepared:
            lang = detect_language(text)
            al = align_text(text, f, lang, **kw) if fn is None else fn(parse_plain(text), f, lang, **kw)
            m = score(al, song / "words.csv", song / "lines.csv")
            cells.append(f"{m['word_mae_s']:5.2f}/{m['line_mae_s']:5.2f}/{m['within_0.3s']:.2f}/{m['within_1s']:.2f}")
        print(f"{name:24s} " + "   ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
