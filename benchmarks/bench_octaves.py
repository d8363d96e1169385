"""Do the two trackers agree on REAL separated vocals, and how often do the chart's octave checks
change a note? The lyrics-dev songs (../shared/data/lyrics-dev, 60 s from 0:30 each), vocals from
the song pipeline (stem cache), swift-f0 (shipped) and pYIN (librosa). Per song: frames voiced in
both, share within 50 cents, share an octave apart (+-100 cents), display notes, and how many notes
``check_octaves`` (pYIN) and ``fix_octaves`` (isolated slips) changed.

    python benchmarks/bench_octaves.py        # writes benchmarks/results/bench_octaves.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unmix_desktop.analysis.melody import quantise_notes, track_melody  # noqa: E402
from unmix_desktop.lyrics.chart import check_octaves, fix_octaves  # noqa: E402
from unmix_desktop.lyrics.vocals import song_vocals  # noqa: E402


def main() -> int:
    data = ROOT.parent / "shared" / "data" / "lyrics-dev"
    out = {}
    for song in sorted(p for p in data.iterdir() if (p / "song.mp3").is_file()):
        sv = song_vocals(song / "song.mp3")
        vocals = sv.vocals[int(30 * sv.sample_rate): int(90 * sv.sample_rate)]
        swift = track_melody(vocals, sv.sample_rate, "swift-f0")
        pyin = track_melody(vocals, sv.sample_rate, "pyin")
        both = (swift.at(pyin.times) > 0) & (pyin.hz > 0)
        cents = 1200 * np.log2(np.maximum(swift.at(pyin.times)[both], 1) / pyin.hz[both])
        notes = quantise_notes(swift)
        checked = check_octaves(notes, pyin)
        folded = fix_octaves(notes)
        final = fix_octaves(checked)
        row = {"frames_both_voiced": int(both.sum()), "agree_50c": round(float(np.mean(np.abs(cents) <= 50)), 3),
               "octave_apart": round(float(np.mean(np.abs(np.abs(cents) - 1200) <= 100)), 3), "notes": len(notes),
               "changed_by_pyin_check": sum(a.midi != b.midi for a, b in zip(notes, checked)),
               "changed_by_fold": sum(a.midi != b.midi for a, b in zip(notes, folded)),
               "changed_total": sum(a.midi != b.midi for a, b in zip(notes, final))}
        out[song.name] = row
        print(song.name, row, flush=True)
    target = ROOT / "benchmarks" / "results" / "bench_octaves.json"
    target.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
