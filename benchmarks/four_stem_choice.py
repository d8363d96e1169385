"""Per-stem choice of the offline drums/bass/other split: DSP, learned (umx-synth4), and per-stem
combinations, measured on the dev song AND the held-out synthetic songs together (issue 20 §3).

Methods (``other`` is always ``accompaniment - drums - bass``, so the stems sum to the song):

- ``dsp``: separation/fourstems.py (HPSS + low band) alone.
- ``learned``: the learned splitter (``--model``, default umx-synth4) alone.
- ``hybrid``: bass from the learned splitter; drums from the DSP split of what is left
  (``accompaniment - bass``); other = the rest (what the app ships as ``hybrid``).
- ``bass_l+drums_dsp``: bass learned, drums from the DSP split of the whole accompaniment.
- ``drums_l+bass_dsp``: drums learned, bass from the DSP split.
- ``hybrid_low_to_bass``: as ``hybrid``, but the DSP split's own bass of what is left (its
  sustained content below ~200 Hz) goes to bass too, not to other.

Songs: every excerpt in ``CORPUS/test`` (POP909 songs n % 20 == 1; the learned splitter was trained
on songs 001-202 outside that split, so none of them was seen in training; render them with
``--render-to CORPUS --last-song N``: seed 0, 10 s, the corpus recipe of the model card) with input =
the true accompaniment, per-stem SDR; and the dev song (shared/data/dev/waveform-playlist-demo) from
the true accompaniment and from the accompaniment that Spleeter 2-stems gives (what the app splits):
drums + bass vs ``bass_drums`` and other vs ``guitar + piano_synth``.
Metric: BSSEval v4 SDR (dB), median over 1-s frames (benchmarks/synth4_eval.py's metric).

    python benchmarks/four_stem_choice.py --corpus CORPUS [--render-to CORPUS --last-song 421]

Writes benchmarks/results/four_stem_choice.json. On a loaded machine split the work:
``--shard K/N --no-dev --out part_K.json`` per process (and one ``--dev-only``), then
``--merge part_*.json`` writes the one report.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from unmix_desktop.audio.io import load_audio  # noqa: E402
from unmix_desktop.evaluation import bsseval  # noqa: E402
from unmix_desktop.separation.fourstems import split_accompaniment  # noqa: E402
from unmix_desktop.separation.learned4 import split_accompaniment_learned  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "dev" / "waveform-playlist-demo"
POP909 = ROOT.parent / "shared" / "data" / "pop909"
OUT = ROOT / "benchmarks" / "results" / "four_stem_choice.json"
STEMS = ("drums", "bass", "other")
METHODS = ("dsp", "learned", "hybrid", "bass_l+drums_dsp", "drums_l+bass_dsp", "hybrid_low_to_bass")
warnings.filterwarnings("ignore")


def render_test_songs(out: Path, last: int) -> None:
    """The held-out excerpts (POP909 songs n % 20 == 1 up to ``last``), as ``unmix make-corpus`` renders them."""
    from unmix_desktop.training.synth.corpus import _job, song_folders

    for f in song_folders(POP909):
        dest = out / "test" / f"{f.name}_0"
        if int(f.name) % 20 == 1 and int(f.name) <= last and not dest.is_dir():
            _job((str(f), str(dest), 0, 10.0, "auto", True))


def combos(acc: np.ndarray, model: str) -> dict[str, dict[str, np.ndarray]]:
    learned = split_accompaniment_learned(acc, model)
    dsp = split_accompaniment(acc)
    rest = split_accompaniment(acc - learned["bass"])

    def make(drums, bass):
        return {"drums": drums, "bass": bass, "other": acc - drums - bass}

    return {"dsp": dsp, "learned": learned, "hybrid": make(rest["drums"], learned["bass"]),
            "bass_l+drums_dsp": make(dsp["drums"], learned["bass"]),
            "drums_l+bass_dsp": make(learned["drums"], dsp["bass"]),
            "hybrid_low_to_bass": make(rest["drums"], learned["bass"] + rest["bass"])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="umx-synth4")
    ap.add_argument("--corpus", required=True, help="corpus folder: test/<song>_<k>/{drums,bass,other}.flac")
    ap.add_argument("--render-to", default=None, help="render the held-out excerpts into this corpus first")
    ap.add_argument("--last-song", type=int, default=201, help="highest POP909 song number to render (n %% 20 == 1)")
    ap.add_argument("--no-spleeter", action="store_true")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--shard", default="1/1", help="K/N: only every N-th synthetic song from the K-th")
    ap.add_argument("--songs", default=None, help="only these synthetic songs (comma-separated folder names)")
    ap.add_argument("--no-dev", action="store_true", help="skip the dev song")
    ap.add_argument("--dev-only", action="store_true", help="only the dev song")
    ap.add_argument("--methods", default=",".join(METHODS), help="the methods to score (comma-separated)")
    ap.add_argument("--merge", nargs="+", default=None, help="merge these partial reports into --out")
    args = ap.parse_args()
    if args.merge:
        report = json.loads(Path(args.merge[0]).read_text())
        for part in args.merge[1:]:
            for song, row in json.loads(Path(part).read_text())["songs"].items():  # methods of one song add up
                report["songs"].setdefault(song, {}).update(row)
        report["songs"] = dict(sorted(report["songs"].items()))
        return finish(report, args.out)
    torch.set_num_threads(1)
    if args.render_to:
        render_test_songs(Path(args.render_to), args.last_song)
    report: dict = {"model": args.model, "metric": "BSSEval v4 SDR (dB), median over 1-s frames",
                    "machine": {"platform": platform.platform(), "torch_threads": 1}, "songs": {}}
    t0 = time.perf_counter()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    folders = sorted(p for p in (Path(args.corpus) / "test").iterdir() if p.is_dir() and not p.name.endswith(".part"))
    k, n = (int(x) for x in args.shard.split("/"))
    folders = [] if args.dev_only else folders[k - 1::n]
    if args.songs:
        folders = [f for f in folders if f.name in args.songs.split(",")]
    for f in folders:
        refs = {s: load_audio(f / f"{s}.flac") for s in STEMS}
        acc = sum(refs.values())
        row = {}
        for m, est in combos(acc, args.model).items():
            if m not in args.methods.split(","):
                continue
            med = bsseval(refs, est, targets=list(STEMS)).medians
            row[m] = {s: round(float(med[s]["SDR"]), 2) for s in STEMS}
        report["songs"][f"synth/{f.name}"] = row
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")  # partial: a stopped run keeps its songs
        print(f.name, "  ".join(f"{m} " + "/".join(f"{row[m][s]:.1f}" for s in STEMS) for m in row), flush=True)
    if DEV.is_dir() and not args.no_dev:
        st = {k: load_audio(DEV / f"{k}.flac") for k in ("mixture", "accompaniment", "bass_drums", "guitar",
                                                          "piano_synth")}
        refs = {"bass_drums": st["bass_drums"], "melodic": st["guitar"] + st["piano_synth"]}
        inputs = {"true_accompaniment": st["accompaniment"]}
        if not args.no_spleeter:
            from unmix_desktop.separation.registry import load_model
            from unmix_desktop.separation.separator import SeparationSettings, Separator

            sep = Separator(load_model("spleeter-2stems"), SeparationSettings(), device="cpu", threads=1)
            inputs["spleeter_accompaniment"] = sep.separate(st["mixture"])["accompaniment"]
        for name, acc in inputs.items():
            row = {}
            for m, est in combos(acc, args.model).items():
                if m not in args.methods.split(","):
                    continue
                med = bsseval(refs, {"bass_drums": est["drums"] + est["bass"], "melodic": est["other"]}).medians
                row[m] = {g: round(float(med[g]["SDR"]), 2) for g in refs}
            report["songs"][f"dev/{name}"] = row
            print(name, "  ".join(f"{m} " + "/".join(f"{v:.1f}" for v in row[m].values()) for m in row), flush=True)
    report["wall_s"] = round(time.perf_counter() - t0, 1)
    return finish(report, args.out)


def finish(report: dict, out: str) -> int:
    # the summary, per method: the median per stem over the synthetic songs; each song's gain over
    # dsp (its SDR averaged over its stems, minus dsp's), averaged over the synthetic songs and over the
    # dev song's inputs; "balanced" weighs the two domains equally (the dev song is the one real
    # recording: 22 synthetic songs must not outvote it), and how many songs the method wins
    synth = [r for k, r in report["songs"].items() if k.startswith("synth/")]
    dev = [r for k, r in report["songs"].items() if k.startswith("dev/")]
    summary = {}

    def gain(r, m):
        return float(np.mean([r[m][k] - r["dsp"][k] for k in r[m]]))

    for m in [m for m in METHODS if all(m in r and "dsp" in r for r in report["songs"].values())]:
        gs = [gain(r, m) for r in synth]
        gd = [gain(r, m) for r in dev]
        summary[m] = {"synthetic_median": {s: round(float(np.median([r[m][s] for r in synth])), 2) for s in STEMS}
                      if synth else None,
                      "synthetic_mean": {s: round(float(np.mean([r[m][s] for r in synth])), 2) for s in STEMS}
                      if synth else None,
                      "dev": {k.split("/", 1)[1]: r[m] for k, r in report["songs"].items() if k.startswith("dev/")},
                      "synthetic_mean_gain_over_dsp_db": round(float(np.mean(gs)), 2) if gs else None,
                      "dev_mean_gain_over_dsp_db": round(float(np.mean(gd)), 2) if gd else None,
                      "balanced_gain_over_dsp_db": round(float(np.mean([np.mean(x) for x in (gs, gd) if x])), 2)
                      if gs or gd else None,
                      "songs_better_than_dsp": sum(g > 0 for g in gs + gd), "songs": len(gs) + len(gd)}
    report["summary"] = summary
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
