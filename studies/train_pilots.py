"""Short pilot trainings on MIR-1K: which augmentation / input scaling generalises to real songs?

All pilots share one process, one decoded data set and one STFT cache (built once), the same seed
(same excerpts and batch order) and the same number of epochs each; only the recipe differs. Each
pilot's best model is exported (high band: ``extend``) and scored with the app's Separator on

* the dev song (``shared/data/dev/waveform-playlist-demo``): BSSEval v4 + global SDR;
* MIR-1K valid, every ``--mir-step``-th clip: global SDR (quick).

Usage::

    .venv/bin/python studies/train_pilots.py --epochs 2 --pilots mono stereo stereo_eq stereo_eq_floor

Writes ``studies/results/train_pilots.json`` (and runs/pilots/<name>/ with each model).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from unmix_desktop.evaluation import iter_tracks, load_track_folder  # noqa: E402
from unmix_desktop.separation.bundle import load_bundle  # noqa: E402
from unmix_desktop.training.augment import Augmentation  # noqa: E402
from unmix_desktop.training.quickeval import score_model  # noqa: E402
from unmix_desktop.training.trainer import TrainConfig, prepare_data, train  # noqa: E402

DATA = ROOT.parent / "shared" / "data"

PILOTS = {
    # dual-mono sources, no level/EQ change, open-unmix's recipe otherwise
    "mono": dict(aug=dict(stereo=False), input_floor=0.01),
    # + stereo synthesis (pan, width, per-channel gain) for the mono sources
    "stereo": dict(aug=dict(stereo=True), input_floor=0.01),
    # + random EQ (3 dB) and mixture level (±6 dB)
    "stereo_eq": dict(aug=dict(stereo=True, eq_db=3.0, level_db=(-6.0, 6.0)), input_floor=0.01),
    # + a higher floor for the near-empty bins' input scale (0.25 × median std)
    "stereo_eq_floor": dict(aug=dict(stereo=True, eq_db=3.0, level_db=(-6.0, 6.0)), input_floor=0.25),
    "mono_floor": dict(aug=dict(stereo=False), input_floor=0.25),
    "stereo_floor": dict(aug=dict(stereo=True), input_floor=0.25),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=str(DATA / "mir1k"))
    ap.add_argument("--dev", default=str(DATA / "dev" / "waveform-playlist-demo"))
    ap.add_argument("--out", default=str(ROOT / "runs" / "pilots"))
    ap.add_argument("--pilots", nargs="+", default=["mono", "stereo", "stereo_eq", "stereo_eq_floor"])
    ap.add_argument("--epochs", type=int, default=2, help="epochs per pilot (56 batches of 16 excerpts each)")
    ap.add_argument("--minutes", type=float, default=6.0, help="safety limit per pilot")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--mir-step", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=str(ROOT / "studies" / "results" / "train_pilots.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    base = TrainConfig(root=args.root, out="", epochs=args.epochs, hidden=args.hidden, layers=args.layers,
                       threads=args.threads, max_minutes=args.minutes, patience=1000)
    t0 = time.perf_counter()
    data = prepare_data(base)
    setup_s = time.perf_counter() - t0
    folders = sorted(p for p in (Path(args.root) / "valid").iterdir() if p.is_dir())[:: args.mir_step]
    mir = [load_track_folder(p, ["vocals", "accompaniment"]) for p in folders]
    dev = list(iter_tracks(args.dev, ["vocals", "accompaniment"]))
    results = {"setup_s": round(setup_s, 1), "epochs_per_pilot": args.epochs, "hidden": args.hidden,
               "layers": args.layers, "mir_tracks": [t.name for t in mir], "machine": platform.platform(),
               "pilots": {}}
    for name in args.pilots:
        spec = PILOTS[name]
        aug = replace(Augmentation(), **spec["aug"])
        cfg = replace(base, out=str(Path(args.out) / name), augmentation=aug, input_floor=spec["input_floor"],
                      name=f"pilot-{name}")
        print(f"== pilot {name}", flush=True)
        res = train(cfg, quiet=True, data=data)
        torch.set_num_threads(args.threads)
        model = load_bundle(cfg.out)
        dev_scores = score_model(model, dev, bss=True)
        mir_scores = score_model(model, mir)
        results["pilots"][name] = {
            "recipe": spec, "epochs": len(res.history), "batches": sum(h["batches"] for h in res.history),
            "train_s": round(res.elapsed_s, 1), "best_valid_loss": res.best_valid_loss,
            "history": [[h["epoch"], h["train_loss"], h["valid_loss"]] for h in res.history],
            "dev": dev_scores["median"], "mir_valid": mir_scores["median"],
        }
        d, m = dev_scores["median"]["vocals"], mir_scores["median"]["vocals"]
        print(f"   {name}: valid loss {res.best_valid_loss:.4g}  dev vocals SDR {d['SDR']:.2f} (gSDR {d['gSDR']:.2f})  "
              f"MIR valid vocals gSDR {m['gSDR']:.2f}  acc gSDR {mir_scores['median']['accompaniment']['gSDR']:.2f}",
              flush=True)
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
