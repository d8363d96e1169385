"""How well `unmix align` times plain lyrics: every song of ../shared/data/lyrics-dev (real songs,
word starts annotated by people; a DEVELOPMENT set, the product is judged on other songs).

For each song: the vocals come from the song pipeline with the stem cache (separation timed once,
a cache hit afterwards), features and melody from the shipped tracker, then every method of
``lyrics/align.py``:

* ``even``: the naive baseline (words spread evenly over the voiced part of the song);
* ``voiced``: syllables laid over the voiced frames in proportion;
* ``hmm-no-onsets``: one HMM pass without its onset term (ablation);
* ``hmm-1pass``: one HMM pass (the method shipped before the re-estimation);
* ``hmm``: the shipped method (a second pass with the first pass's median syllable duration).

Metrics: mean absolute error of word starts and of line starts (s), share of word starts within
0.3 s and 1 s. Speed: seconds of compute per minute of song for separation (uncached run),
melody+features and the alignment.

    python benchmarks/bench_align.py [--data ../shared/data/lyrics-dev]

Prints a table and writes benchmarks/results/bench_align.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unmix_desktop.lyrics.align import align_text, vocal_features  # noqa: E402
from unmix_desktop.lyrics.text import detect_language  # noqa: E402
from unmix_desktop.lyrics.vocals import song_vocals  # noqa: E402

METHODS = ["even", "voiced", "hmm-no-onsets", "hmm-1pass", "hmm"]


def score(alignment, words_csv: Path, lines_csv: Path) -> dict:
    ref = np.loadtxt(words_csv, delimiter=",", skiprows=1, ndmin=2)
    ref_lines = np.loadtxt(lines_csv, delimiter=",", skiprows=1, usecols=(0,), ndmin=1)
    starts = np.array([w.start for w in alignment.words()])
    line_starts = np.array([li.start for li in alignment.lines])
    if starts.size != ref.shape[0] or line_starts.size != ref_lines.size:
        raise SystemExit(f"{words_csv.parent}: {starts.size} words / {line_starts.size} lines timed, "
                         f"annotation has {ref.shape[0]} / {ref_lines.size}")
    err = np.abs(starts - ref[:, 0])
    line_err = np.abs(line_starts - ref_lines)
    return {"word_mae_s": round(float(err.mean()), 3), "word_median_s": round(float(np.median(err)), 3),
            "line_mae_s": round(float(line_err.mean()), 3),
            "within_0.3s": round(float(np.mean(err <= 0.3)), 3), "within_1s": round(float(np.mean(err <= 1.0)), 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "lyrics-dev"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_align.json"))
    args = ap.parse_args()
    data = Path(args.data)
    if not data.is_dir():
        print(f"{data}: not found (the lyrics-dev set); nothing measured", file=sys.stderr)
        return 1
    songs = sorted(p for p in data.iterdir() if (p / "song.mp3").is_file())
    results = {"machine": platform.platform(), "songs": {}, "methods": METHODS}
    for song in songs:
        text = (song / "lyrics.txt").read_text(encoding="utf-8")
        t0 = time.perf_counter()
        sv = song_vocals(song / "song.mp3")
        t_sep = time.perf_counter() - t0
        minutes = sv.vocals.shape[0] / sv.sample_rate / 60
        t0 = time.perf_counter()
        features = vocal_features(sv.vocals, sv.sample_rate, sv.contour)
        t_feat = time.perf_counter() - t0
        row = {"language": detect_language(text), "minutes": round(minutes, 2),
               "separation_and_melody_s_per_min": round(t_sep / minutes, 2),
               "features_s_per_min": round(t_feat / minutes, 2), "methods": {}}
        for method in METHODS:
            t0 = time.perf_counter()
            alignment = align_text(text, features, None, method)
            t_align = time.perf_counter() - t0
            m = score(alignment, song / "words.csv", song / "lines.csv")
            m["align_s_per_min"] = round(t_align / minutes, 3)
            row["methods"][method] = m
        results["songs"][song.name] = row
        print(f"\n{song.name} ({row['language']}, {minutes:.1f} min; separation+melody {t_sep:.0f} s "
              f"{'(cached)' if t_sep < 5 else ''}, features {t_feat:.1f} s)")
        print(f"  {'method':14s} {'word MAE':>9s} {'median':>7s} {'line MAE':>9s} {'<=0.3s':>7s} {'<=1s':>6s} "
              f"{'s/min':>6s}")
        for method, m in row["methods"].items():
            print(f"  {method:14s} {m['word_mae_s']:9.2f} {m['word_median_s']:7.2f} {m['line_mae_s']:9.2f} "
                  f"{m['within_0.3s']:7.2f} {m['within_1s']:6.2f} {m['align_s_per_min']:6.3f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"\n{args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
