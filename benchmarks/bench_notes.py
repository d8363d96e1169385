"""Note accuracy of the UltraStar export's note segmentation against POP909 MELODY tracks.

A few POP909 songs (../shared/data/pop909; every 150th song folder, 30 s from the first melody
note) have their MELODY track rendered with FluidSynth (General MIDI "Voice Oohs", a sung-like
timbre) into a clean 'vocal' stem; the shipped tracker (swift-f0) and pYIN run on it, and the
notes are compared with the MIDI notes by ``mir_eval.transcription`` (onset within 50 ms, pitch
within 50 cents; F1 with offsets too, offset ratio 0.2) for:

* ``display``: the melody lane's notes (``quantise_notes`` on swift-f0);
* ``chart``: + isolated octave slips folded (``fix_octaves``);
* ``chart+pyin``: + octave decisions checked against pYIN (``check_octaves``), the export's path
  when pYIN is available;
* ``pyin``: ``quantise_notes`` on pYIN alone (for reference).

Also the frame agreement of the two trackers (share of frames voiced in both within 50 cents,
and an octave apart). Writes benchmarks/results/bench_notes.json.

    python benchmarks/bench_notes.py [--songs 5] [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unmix_desktop.analysis.melody import midi_to_hz, quantise_notes, track_melody  # noqa: E402
from unmix_desktop.lyrics.chart import check_octaves, fix_octaves  # noqa: E402
from unmix_desktop.training.synth.pop909 import read_midi_notes, song_folders  # noqa: E402
from unmix_desktop.training.synth.render import FluidRenderer, Part  # noqa: E402
from unmix_desktop.training.synth.theory import Note as MidiNote  # noqa: E402

SR = 44100
VOICE_OOHS = 53


def scores(ref: list, est: list) -> dict:
    import mir_eval

    ri = np.array([[n.start, n.end] for n in ref])
    rp = midi_to_hz(np.array([n.pitch for n in ref], float))
    if not est:
        return {"f1_onset": 0.0, "f1_onset_offset": 0.0, "precision": 0.0, "recall": 0.0, "notes": 0}
    ei = np.array([[n.start, max(n.end, n.start + 0.01)] for n in est])
    ep = midi_to_hz(np.array([n.midi for n in est], float))
    p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep, offset_ratio=None)
    _, _, f2, _ = mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep)
    # chroma: octave-independent (what the singing score uses)
    epc = midi_to_hz(np.array([n.midi for n in est], float) - 12 * np.round(
        (np.array([n.midi for n in est], float) - np.interp(ei[:, 0], ri[:, 0], [n.pitch for n in ref])) / 12))
    _, _, fc, _ = mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, epc, offset_ratio=None)
    return {"f1_onset": round(f, 3), "f1_onset_offset": round(f2, 3), "f1_onset_chroma": round(fc, 3),
            "precision": round(p, 3), "recall": round(r, 3), "notes": len(est)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "pop909"))
    ap.add_argument("--songs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_notes.json"))
    args = ap.parse_args()
    folders = song_folders(args.data)[::150][: args.songs]
    renderer = FluidRenderer(sample_rate=SR)
    results = {"songs": {}, "seconds": args.seconds, "program": VOICE_OOHS}
    for folder in folders:
        melody = read_midi_notes(folder / f"{folder.name}.mid").get("MELODY", [])
        if not melody:
            continue
        t0 = melody[0].start
        ref = [MidiNote(n.start - t0 + 0.5, min(n.end - t0 + 0.5, args.seconds), n.pitch, n.velocity)
               for n in melody if n.start - t0 + 0.5 < args.seconds - 0.2]
        audio = renderer.render([Part(ref, VOICE_OOHS)], int(args.seconds * SR))
        tic = time.perf_counter()
        swift = track_melody(audio, SR, "swift-f0")
        t_swift = time.perf_counter() - tic
        tic = time.perf_counter()
        pyin = track_melody(audio, SR, "pyin")
        t_pyin = time.perf_counter() - tic
        display = quantise_notes(swift)
        variants = {"display": display, "chart": fix_octaves(display),
                    "chart+pyin": fix_octaves(check_octaves(display, pyin)),
                    "pyin": quantise_notes(pyin)}
        both = (swift.at(pyin.times) > 0) & (pyin.hz > 0)
        cents = 1200 * np.log2(np.maximum(swift.at(pyin.times)[both], 1) / pyin.hz[both])
        row = {"ref_notes": len(ref), "tracker_agree_50c": round(float(np.mean(np.abs(cents) <= 50)), 3),
               "tracker_octave_apart": round(float(np.mean(np.abs(np.abs(cents) - 1200) <= 100)), 3),
               "swift_s": round(t_swift, 2), "pyin_s": round(t_pyin, 2),
               "variants": {k: scores(ref, v) for k, v in variants.items()}}
        results["songs"][folder.name] = row
        print(f"{folder.name}: {len(ref)} notes; trackers agree {row['tracker_agree_50c']:.0%}, "
              f"octave apart {row['tracker_octave_apart']:.0%}")
        for k, m in row["variants"].items():
            print(f"  {k:11s} F1(onset) {m['f1_onset']:.3f}  F1(on+off) {m['f1_onset_offset']:.3f}  "
                  f"F1(chroma) {m['f1_onset_chroma']:.3f}  P {m['precision']:.3f} R {m['recall']:.3f} n={m['notes']}")
    renderer.close()
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
