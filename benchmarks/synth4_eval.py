"""Learned drums/bass/other splitter vs the DSP split (separation/fourstems.py), with oracles.

1. Held-out synthetic excerpts (the corpus's ``test`` split: songs never used in training):
   input = drums + bass + other (the true accompaniment), per-stem BSSEval v4 SDR (median over
   1-s frames, then median over excerpts) for: the learned splitter, the DSP split, the oracle
   ratio mask IRM2 (3 sources).
2. The dev song (shared/data/dev/waveform-playlist-demo): drums + bass vs ``bass_drums``, other vs
   ``guitar + piano_synth``, from (a) the true accompaniment and (b) the accompaniment that
   Spleeter 2-stems separates from the mixture (what the app does), beside the oracle IRM2.

    python benchmarks/synth4_eval.py --model resources/models/umx-synth4 --corpus CORPUS [--limit N]

Prints a table and writes benchmarks/results/synth4_eval.json.
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
from unmix_desktop.evaluation import bsseval, oracle  # noqa: E402
from unmix_desktop.evaluation.bsseval import nanmedian  # noqa: E402
from unmix_desktop.separation.fourstems import split_accompaniment  # noqa: E402
from unmix_desktop.separation.learned4 import split_accompaniment_learned  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "dev" / "waveform-playlist-demo"
OUT = ROOT / "benchmarks" / "results" / "synth4_eval.json"
STEMS = ("drums", "bass", "other")
warnings.filterwarnings("ignore")


def sdr3(refs, est) -> dict:
    med = bsseval(refs, {k: est[k] for k in STEMS}, targets=list(STEMS)).medians
    return {k: med[k]["SDR"] for k in STEMS}


def sdr_groups(refs, split) -> dict:
    est = {"bass_drums": split["drums"] + split["bass"], "melodic": split["other"]}
    med = bsseval(refs, est).medians
    return {g: round(m["SDR"], 2) for g, m in med.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--no-spleeter", action="store_true")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--spleeter-cache", default=None, help=".npy file to keep the Spleeter accompaniment in")
    args = ap.parse_args()
    torch.set_num_threads(1)
    report: dict = {"model": args.model, "metric": "BSSEval v4 SDR (dB), median over 1-s frames",
                    "machine": {"platform": platform.platform(), "torch_threads": 1}}
    if args.corpus:
        folders = sorted(p for p in (Path(args.corpus) / "test").iterdir() if p.is_dir())[: args.limit]
        per = {m: {s: [] for s in STEMS} for m in ("learned", "dsp", "oracle_irm2")}
        t_learned = 0.0
        for f in folders:
            refs = {s: load_audio(f / f"{s}.flac") for s in STEMS}
            acc = sum(refs.values())
            t0 = time.perf_counter()
            est = {"learned": split_accompaniment_learned(acc, args.model)}
            t_learned += time.perf_counter() - t0
            est["dsp"] = split_accompaniment(acc)
            est["oracle_irm2"] = oracle("irm2", refs, acc)
            for m, e in est.items():
                for s, v in sdr3(refs, e).items():
                    per[m][s].append(v)
            print(f"{f.name}: " + "  ".join(f"{m} " + "/".join(f"{per[m][s][-1]:.1f}" for s in STEMS) for m in per),
                  flush=True)
        report["synthetic_test"] = {
            "corpus": str(args.corpus), "excerpts": len(folders),
            "median_over_excerpts": {m: {s: round(nanmedian(v), 2) for s, v in d.items()} for m, d in per.items()},
            "mean_over_excerpts": {m: {s: round(float(np.nanmean(v)), 2) for s, v in d.items()}
                                   for m, d in per.items()},
            "learned_split_s_per_excerpt": round(t_learned / max(len(folders), 1), 2)}
    if DEV.is_dir():
        stems = {k: load_audio(DEV / f"{k}.flac") for k in ("mixture", "vocals", "accompaniment", "bass_drums",
                                                             "guitar", "piano_synth")}
        refs = {"bass_drums": stems["bass_drums"], "melodic": stems["guitar"] + stems["piano_synth"]}
        inputs = {"true_accompaniment": stems["accompaniment"]}
        if not args.no_spleeter:
            from unmix_desktop.separation.registry import load_model
            from unmix_desktop.separation.separator import SeparationSettings, Separator

            cache = Path(args.spleeter_cache) if args.spleeter_cache else None
            if cache is not None and cache.is_file():
                inputs["spleeter_accompaniment"] = np.load(cache)
            else:
                sep = Separator(load_model("spleeter-2stems"), SeparationSettings(), device="cpu", threads=1)
                inputs["spleeter_accompaniment"] = sep.separate(stems["mixture"])["accompaniment"]
                if cache is not None:
                    np.save(cache, inputs["spleeter_accompaniment"])
        dev = {}
        for name, acc in inputs.items():
            learned = split_accompaniment_learned(acc, args.model)
            dev[name] = {"learned": sdr_groups(refs, learned), "dsp": sdr_groups(refs, split_accompaniment(acc)),
                         "learned_sum_error": float(np.abs(sum(learned.values()) - acc).max())}
        o = oracle("irm2", refs, stems["accompaniment"])
        dev["oracle_irm2_true_accompaniment"] = sdr_groups(refs, {"drums": o["bass_drums"], "bass": 0 * o["bass_drums"],
                                                                  "other": o["melodic"]})
        report["dev_song"] = dev
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k in ("synthetic_test", "dev_song")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
