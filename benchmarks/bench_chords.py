"""Chords and key on held-out POP909 renders: mir_eval scores per song, ours beside a baseline.

Songs: POP909 numbers with ``n % 20 == 1`` (the synthetic corpus's ``test`` split; development and
tuning used ``n % 20 == 0`` songs rendered with FluidR3_GM). Each song is rendered once by the corpus
renderer (``training/synth/corpus.make_excerpt``: generated drums and bass, chord-voiced parts, the
song's piano/bridge, its melody as a "voice"; random tempo and key shift, production) with the soundfont
given by ``--soundfont`` (default: MuseScore General, which was never used while developing), and kept
in the temp folder (``unmix-bench-chords/``) so a rerun does not render again. The reference chords are
POP909's ``chord_midi.txt`` moved by the excerpt's key shift and tempo; the reference key is
``key_audio.txt`` (the key covering most of the excerpt; it is aligned with the original recording, so
only roughly with the MIDI).

Systems (one row each per song):

* ``ours-stems``: :func:`analyse_chords` on the rendered accompaniment (bass + other + drums) and bass
  stems (what the separation would give at best);
* ``ours-sep``: the same on the mix separated by the default model (accompaniment only: the bass chroma
  is its low band), the way ``unmix chords`` runs;
* ``baseline``: plain chroma (the same log-frequency spectrum, folded, no NNLS, no bass) of the full mix
  on fixed 0.5 s frames, major/minor (and seventh) templates, argmax per frame, no HMM; key by
  Krumhansl-Kessler profiles on the whole-song chroma.

Scores (mir_eval.chord): weighted chord symbol recall ``majmin`` and ``sevenths``, segmentation
(``seg``: mir_eval.chord.seg, the lower of under- and over-segmentation); mir_eval.key weighted score. Speed: seconds
of compute per minute of song (analysis only, separation apart).

Needs the ``eval`` and ``train`` extras (mir_eval; mido, pyfluidsynth) and ``make bench-deps`` (FluidSynth,
the soundfonts).

    python benchmarks/bench_chords.py [--songs 12] [--duration 60] [--soundfont PATH] [--no-sep]

Prints the table; writes benchmarks/results/bench_chords.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unmix_desktop.analysis import chords as C  # noqa: E402
from unmix_desktop.audio.io import SAMPLE_RATE, load_audio, save_audio  # noqa: E402

POP909 = ROOT.parent / "shared" / "data" / "pop909"
EVAL_SOUNDFONTS = ("/usr/share/sounds/sf3/MuseScore_General.sf3", "/usr/share/sounds/sf2/MuseScore_General.sf2")
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def reference(song_dir: Path, seed: int, duration: float) -> tuple[list, str, dict]:
    """The excerpt's reference chords ``[(start, end, label)]`` and key, replaying the excerpt's random
    draws (tempo, key shift, start) exactly as ``make_excerpt`` makes them."""
    from unmix_desktop.training.synth.corpus import excerpt_draws
    from unmix_desktop.training.synth.pop909 import read_song

    song = read_song(song_dir)
    _rng, bpm, factor, key_shift, t0 = excerpt_draws(song, seed, duration)
    span = duration / factor
    labels = [ln.split()[2] for ln in (song_dir / "chord_midi.txt").read_text().splitlines() if len(ln.split()) >= 3]
    if len(labels) != len(song.chords):
        raise RuntimeError(f"{song_dir}: chord lines and parsed chords differ")
    chords = []
    for c, lab in zip(song.chords, labels):
        a, b = (c.start - t0) * factor, (c.end - t0) * factor
        if b <= 0 or a >= duration:
            continue
        chords.append((max(a, 0.0), min(b, duration), C.transpose_label(lab, key_shift) if lab != "N" else "N"))
    best, key = -1.0, "N"
    for ln in (song_dir / "key_audio.txt").read_text().splitlines():
        parts = ln.split()
        if len(parts) >= 3:
            overlap = min(float(parts[1]), t0 + span) - max(float(parts[0]), t0)
            if overlap > best:
                best, key = overlap, C.transpose_label(parts[2], key_shift)
    return chords, key, {"bpm": bpm, "key_shift": key_shift, "start_s": t0}


def render(song_dir: Path, seed: int, duration: float, soundfont: str, cache: Path) -> dict[str, np.ndarray]:
    """``{vocals, drums, bass, other}`` of the excerpt (rendered once, then read from ``cache``)."""
    folder = cache / f"{song_dir.name}_{seed}_{int(duration)}_{Path(soundfont).stem}"
    names = ("vocals", "drums", "bass", "other")
    if all((folder / f"{n}.flac").is_file() for n in names):
        return {n: load_audio(folder / f"{n}.flac") for n in names}
    from unmix_desktop.training.synth.corpus import make_excerpt
    from unmix_desktop.training.synth.pop909 import read_song
    from unmix_desktop.training.synth.render import make_renderer

    renderer = make_renderer("fluidsynth", soundfont=soundfont, seed=seed)
    try:
        stems, _ = make_excerpt(read_song(song_dir), seed, duration, renderer)
    finally:
        renderer.close()
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        save_audio(folder / f"{n}.flac", stems[n])
    return stems


def separated(pipe, model_name: str, mix: np.ndarray, folder: Path) -> dict[str, np.ndarray]:
    """The mix separated by ``model_name`` (kept beside the render: a rerun does not separate again)."""
    names = ("vocals", "accompaniment")
    files = {n: folder / f"sep-{model_name}-{n}.flac" for n in names}
    if all(f.is_file() for f in files.values()):
        return {n: load_audio(f) for n, f in files.items()}
    stems = pipe.separate(mix, model_name)
    for n in names:
        save_audio(files[n], stems[n])
    return stems


def baseline(mix: np.ndarray, vocabulary: str) -> tuple[list, str]:
    """Plain chroma over the full mix, templates, argmax per 0.5 s frame (no NNLS, bass, beats or HMM)."""
    duration = mix.shape[0] / SAMPLE_RATE
    grid = np.minimum(np.arange(int(np.ceil(duration / 0.5)) + 1) * 0.5, duration)
    spec, fps = C.log_spectrum(mix, SAMPLE_RATE)
    pooled = C._pool(spec, fps, grid)
    chroma = np.zeros((12, pooled.shape[1]))
    for b in range(pooled.shape[0]):
        chroma[(C.MIDI_LO + b) % 12] += pooled[b]
    states = C.chord_states(vocabulary)[1:]
    temps = []
    for name in states:
        root, q, _ = C.split_label(name)
        t = np.zeros(12)
        for iv in C.QUALITIES[q]:
            t[(root + iv) % 12] = 1
        temps.append(t / np.linalg.norm(t))
    cn = chroma / (np.linalg.norm(chroma, axis=0, keepdims=True) + 1e-9)
    labels = [states[i] for i in np.argmax(np.array(temps) @ cn, axis=0)]
    segs = C._segments(labels, grid)
    g = chroma.sum(axis=1)
    keys = [(np.corrcoef(np.roll(p, r), g)[0, 1], f"{C.NOTE_NAMES[r]}:{m}")
            for p, m in ((KK_MAJOR, "maj"), (KK_MINOR, "min")) for r in range(12)]
    return [(s.start, s.end, s.label) for s in segs], max(keys)[1]


def mirex_key(label: str) -> str:
    root, q, _ = C.split_label(label)
    return f"{C.NOTE_NAMES[root]} {'minor' if q == 'min' else 'major'}" if root >= 0 else "C major"


def score(ref: list, est: list, ref_key: str, est_key: str, duration: float) -> dict:
    import mir_eval

    ri = np.array([[a, b] for a, b, _ in ref])
    rl = [lab for _, _, lab in ref]
    ei = np.array([[a, b] for a, b, _ in est])
    el = [lab for _, _, lab in est]
    ei, el = mir_eval.util.adjust_intervals(ei, el, ri.min(), ri.max(), mir_eval.chord.NO_CHORD,
                                            mir_eval.chord.NO_CHORD)
    intervals, r, e = mir_eval.util.merge_labeled_intervals(ri, rl, ei, el)
    durations = mir_eval.util.intervals_to_durations(intervals)
    out = {}
    for name, fn in (("majmin", mir_eval.chord.majmin), ("sevenths", mir_eval.chord.sevenths)):
        comp = fn(r, e)
        out[name] = float(mir_eval.chord.weighted_accuracy(comp, durations))
    out["seg"] = float(mir_eval.chord.seg(ri, ei))
    out["key"] = float(mir_eval.key.weighted_score(mirex_key(ref_key), mirex_key(est_key)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--songs", type=int, default=12)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--split", type=int, default=1, help="songs with n %% 20 == SPLIT (1: held out, 0: dev)")
    ap.add_argument("--soundfont", default=None)
    ap.add_argument("--no-sep", action="store_true", help="skip the separated-mix system (faster)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_chords.json"))
    args = ap.parse_args()
    if not POP909.is_dir():
        print(f"skip: {POP909} not found", file=sys.stderr)
        return 0
    soundfont = args.soundfont or next((p for p in EVAL_SOUNDFONTS if Path(p).is_file()), None)
    if soundfont is None:
        print("no MuseScore General soundfont (apt-get install musescore-general-soundfont) and no --soundfont",
              file=sys.stderr)
        return 2
    cache = Path(tempfile.gettempdir()) / "unmix-bench-chords"
    songs = [d for d in sorted(POP909.iterdir()) if d.name.isdigit() and int(d.name) % 20 == args.split]
    songs = songs[: args.songs]
    pipe = None
    if not args.no_sep:
        from unmix_desktop.separation.pipeline import Pipeline
        from unmix_desktop.separation.registry import default_model_name, load_model

        pipe, model_name = Pipeline(load_model, threads=None), default_model_name()
    rows, speed = [], {"ours-stems": [], "ours-sep": [], "baseline": []}
    for d in songs:
        stems = render(d, args.seed, args.duration, soundfont, cache)
        ref, ref_key, info = reference(d, args.seed, args.duration)
        mix = sum(stems.values())
        minutes = mix.shape[0] / SAMPLE_RATE / 60.0
        systems = {}
        acc = stems["drums"] + stems["bass"] + stems["other"]
        for vocab in ("majmin", "sevenths"):
            t = time.perf_counter()
            chart = C.analyse_chords({"accompaniment": acc, "bass": stems["bass"], "drums": stems["drums"]},
                                     SAMPLE_RATE, vocabulary=vocab)
            speed["ours-stems"].append((time.perf_counter() - t) / minutes)
            systems[f"ours-stems/{vocab}"] = ([(s.start, s.end, s.label) for s in chart.chords], chart.key)
            if pipe is not None:
                if vocab == "majmin":
                    sep = separated(pipe, model_name, mix, cache / f"{d.name}_{args.seed}_{int(args.duration)}_"
                                                                 f"{Path(soundfont).stem}")
                t = time.perf_counter()
                chart = C.analyse_chords({"vocals": sep["vocals"], "accompaniment": sep["accompaniment"]},
                                         SAMPLE_RATE, vocabulary=vocab)
                speed["ours-sep"].append((time.perf_counter() - t) / minutes)
                systems[f"ours-sep/{vocab}"] = ([(s.start, s.end, s.label) for s in chart.chords], chart.key)
            t = time.perf_counter()
            systems[f"baseline/{vocab}"] = baseline(mix, vocab)
            speed["baseline"].append((time.perf_counter() - t) / minutes)
        for name, (est, key) in systems.items():
            system, vocab = name.split("/")
            sc = score(ref, est, ref_key, key, args.duration)
            row = {"song": d.name, "system": system, "vocabulary": vocab, "ref_key": ref_key, "est_key": key,
                   "majmin": sc["majmin"] if vocab == "majmin" else None,
                   "sevenths": sc["sevenths"] if vocab == "sevenths" else None,
                   "seg": sc["seg"], "key": sc["key"], **info}
            rows.append(row)
        line = "  ".join(f"{n}: mm {score(ref, e, ref_key, k, args.duration)['majmin']:.2f}"
                         for n, (e, k) in systems.items() if n.endswith("majmin"))
        print(f"{d.name} key {ref_key:7s}  {line}", flush=True)

    def mean(system, field, vocab):
        vals = [r[field] for r in rows if r["system"] == system and r["vocabulary"] == vocab and r[field] is not None]
        return float(np.mean(vals)) if vals else None

    summary = {}
    for system in speed:
        if not speed[system]:
            continue
        summary[system] = {"majmin": mean(system, "majmin", "majmin"), "sevenths": mean(system, "sevenths", "sevenths"),
                           "seg": mean(system, "seg", "majmin"), "key": mean(system, "key", "majmin"),
                           "seconds_per_song_minute": float(np.median(speed[system]))}
    print(f"\n{'song':6s} {'ref key':8s} " + " ".join(f"{s + ' mm/7/seg/key':>32s}" for s in summary))
    for d in songs:
        cells = []
        for system in summary:
            mine = [r for r in rows if r["song"] == d.name and r["system"] == system]
            mm = next(r for r in mine if r["vocabulary"] == "majmin")
            sv = next(r for r in mine if r["vocabulary"] == "sevenths")
            cells.append(f"{mm['majmin']:.2f} {sv['sevenths']:.2f} {mm['seg']:.2f} {mm['key']:.1f} ({mm['est_key']})")
        ref_key = next(r["ref_key"] for r in rows if r["song"] == d.name)
        print(f"{d.name:6s} {ref_key:8s} " + " ".join(f"{c:>32s}" for c in cells))
    print("mean           " + " ".join(
        f"{v['majmin']:.3f} {v['sevenths']:.3f} {v['seg']:.3f} {v['key']:.2f} {v['seconds_per_song_minute']:.1f}s/min"
        .rjust(32) for v in summary.values()))
    result = {"songs": [d.name for d in songs], "duration_s": args.duration, "seed": args.seed,
              "soundfont": soundfont, "split": args.split, "summary": summary, "rows": rows,
              "note": "wall times on a shared, loaded 2-core machine: noisy"}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from unmix_desktop.atomic import atomic_write_json

    atomic_write_json(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
