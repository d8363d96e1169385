"""Score a trained open-unmix bundle on MIR-1K valid and the dev song (BSSEval v4, evaluation module),
next to the oracles, the high-band rules, Spleeter 2-stems and blends of the two.

Sections (each optional):

* ``model``: the bundle with the app's default separation settings, on MIR-1K valid (every
  ``--mir-step``-th clip, all with step 1) and the dev song;
* ``oracles``: IBM / IRM1 / IRM2 / MWF from the true sources (the ceiling of a spectrogram mask);
* ``highband``: the same trained network exported with each rule for the bins above its band
  (``--run`` = the training output folder), on the dev song (MIR-1K has nothing above 8 kHz);
* ``blend``: vocals = a·ours + (1-a)·Spleeter, accompaniment = mixture - vocals.

Usage::

    .venv/bin/python studies/train_evaluate.py --model resources/models/umx-mir1k --run runs/main \\
        --mir-step 1 --oracles irm2 mwf --highband --blend

Writes ``studies/results/train_evaluate.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from unmix_desktop.evaluation import ORACLE_LABELS, iter_tracks, load_track_folder, oracle  # noqa: E402
from unmix_desktop.separation.bundle import load_bundle  # noqa: E402
from unmix_desktop.separation.model import MultiTargetUMX  # noqa: E402
from unmix_desktop.separation.separator import SeparationSettings, Separator  # noqa: E402
from unmix_desktop.training.quickeval import median_scores, score_estimates  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
TARGETS = ["vocals", "accompaniment"]


def _sep(model) -> Separator:
    s = Separator(model, SeparationSettings(), device="cpu")
    torch.set_num_threads(THREADS)
    return s


def _section(name: str, methods: dict, tracks: list, log) -> dict:
    """methods: label -> fn(track) -> stems. BSSEval + global SDR per track; medians."""
    per = {label: {} for label in methods}
    t0 = time.perf_counter()
    for track in tracks:
        for label, fn in methods.items():
            stems = fn(track)
            per[label][track.name] = score_estimates(track, stems, TARGETS, bss=True)
        log(f"  [{name}] {track.name}: " + "  ".join(
            f"{label} {per[label][track.name]['vocals']['SDR']:.2f}" for label in methods))
    return {"tracks": [t.name for t in tracks], "seconds": round(time.perf_counter() - t0, 1),
            "median": {label: median_scores(per[label]) for label in methods}, "per_track": per}


THREADS = 1


def main() -> int:
    global THREADS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="bundle folder")
    ap.add_argument("--run", default=None, help="training output folder (for --highband)")
    ap.add_argument("--mir", default=str(DATA / "mir1k" / "valid"))
    ap.add_argument("--dev", default=str(DATA / "dev" / "waveform-playlist-demo"))
    ap.add_argument("--mir-step", type=int, default=1)
    ap.add_argument("--blend-step", type=int, default=6, help="MIR-1K clip step for the blend study")
    ap.add_argument("--oracles", nargs="*", default=[], choices=list(ORACLE_LABELS))
    ap.add_argument("--no-model", action="store_true")
    ap.add_argument("--highband", action="store_true")
    ap.add_argument("--blend", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=str(ROOT / "studies" / "results" / "train_evaluate.json"))
    args = ap.parse_args()
    THREADS = args.threads
    torch.set_num_threads(THREADS)

    def log(msg: str) -> None:
        print(msg, flush=True)

    out_path = Path(args.json)
    results = json.loads(out_path.read_text()) if out_path.is_file() else {}
    results.update({"model": args.model, "machine": platform.platform(), "threads": THREADS,
                    "settings": SeparationSettings().to_dict()})

    def save() -> None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(results, indent=2) + "\n")

    model = load_bundle(args.model)
    sep = _sep(model)
    folders = sorted(p for p in Path(args.mir).iterdir() if p.is_dir())
    mir = [load_track_folder(p, TARGETS) for p in folders[:: args.mir_step]]
    dev = list(iter_tracks(args.dev, TARGETS))
    ours = {"ours": lambda tr: sep.separate(tr.mixture)}
    oracles = {ORACLE_LABELS[o]: (lambda tr, o=o: oracle(o, tr.sources, tr.mixture)) for o in args.oracles}

    if not args.no_model or oracles:
        methods = ({} if args.no_model else ours) | oracles
        log(f"dev song: {', '.join(methods)}")
        kind = "oracles" if args.no_model else ("model+oracles" if oracles else "model")
        results[f"dev_{kind}"] = _section("dev", methods, dev, log)
        save()
        log(f"MIR-1K valid ({len(mir)} clips): {', '.join(methods)}")
        results[f"mir_valid_{kind}_step{args.mir_step}"] = _section("mir", methods, mir, log)
        save()

    if args.highband:
        from unmix_desktop.training.highband import expand_output_bins
        from unmix_desktop.training.trainer import load_band_limited

        net, cfg = load_band_limited(args.run, "best")
        methods = {}
        for mode in ("extend", "zero", "one", "0.5"):
            m = MultiTargetUMX({cfg.target: expand_output_bins(net, 2049, mode)}).eval()
            methods[f"high={mode}"] = (lambda tr, s=_sep(m): s.separate(tr.mixture))
        log("high-band rules on the dev song")
        results["highband_dev"] = _section("highband", methods, dev, log)
        save()

    if args.blend:
        from unmix_desktop.separation.spleeter import load_spleeter_2stems, spleeter_weights_available

        if not spleeter_weights_available():
            log("Spleeter weights not installed: no blend study")
        else:
            spl = _sep(load_spleeter_2stems().eval())
            alphas = (0.0, 0.25, 0.5, 0.75, 1.0)
            memo: dict[str, tuple[np.ndarray, np.ndarray]] = {}

            def both(tr):
                if tr.name not in memo:
                    memo.clear()
                    memo[tr.name] = (sep.separate(tr.mixture)["vocals"], spl.separate(tr.mixture)["vocals"])
                return memo[tr.name]

            def blend(a):
                def run(tr):
                    v_ours, v_spl = both(tr)
                    v = a * v_ours + (1 - a) * v_spl
                    return {"vocals": v, "accompaniment": tr.mixture - v}
                return run

            methods = {f"a={a:g}": blend(a) for a in alphas}  # a=0: Spleeter alone, a=1: ours alone
            log("blend: vocals = a*ours + (1-a)*spleeter")
            results["blend_dev"] = _section("blend", methods, dev, log)
            save()
            results[f"blend_mir_step{args.blend_step}"] = _section("blend", methods,
                                                                    folders_tracks(folders, args.blend_step), log)
            save()
    log(json.dumps({k: v.get("median") for k, v in results.items() if isinstance(v, dict) and "median" in v}, indent=1))
    return 0


def folders_tracks(folders, step):
    return [load_track_folder(p, TARGETS) for p in folders[::step]]


if __name__ == "__main__":
    sys.exit(main())
