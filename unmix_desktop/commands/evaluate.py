"""``unmix evaluate DIR``: BSSEval v4 of a model and/or the oracle baselines on a folder of tracks.

DIR holds one folder per track with ``mixture.*`` (optional: the sum of the targets otherwise)
and one file per target (``vocals.*``, ``accompaniment.*`` ...); a folder that directly holds the
files is one track. Writes ``scores.csv``, ``scores.json`` and ``boxplot_<target>.png`` to --out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UnmixError


def _csv_list(text: str) -> list[str]:
    return [t.strip().lower() for t in text.split(",") if t.strip()]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "evaluate",
        help="BSSEval v4 scores of a model and oracle baselines on a folder of tracks",
        description="BSSEval v4 (SDR/SIR/ISR/SAR) of a model and/or the oracle baselines (IBM, IRM1, IRM2, "
        "MWF) on a folder of tracks: median over 1-s frames per track, then median over tracks (SiSEC 2018). "
        "Writes scores.csv, scores.json and one box plot per target.",
    )
    p.add_argument("folder", metavar="DIR", help="folder of track folders (DIR/<track>/{mixture,<target>...})")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--model", metavar="NAME", help="registry model name to evaluate (see `unmix models`)")
    g.add_argument("--model-file", metavar="PATH", help="model bundle folder or open-unmix .pth checkpoint")
    p.add_argument("--oracles", default=None, metavar="LIST",
                   help="oracle baselines to compute: any of ibm,irm1,irm2,mwf (default: all when no "
                        "model is given, none otherwise); 'none' for none")
    p.add_argument("--targets", default="vocals,accompaniment", metavar="LIST",
                   help="targets to evaluate (default: vocals,accompaniment)")
    p.add_argument("--niter", type=int, default=None, metavar="N",
                   help="EM iterations of the model's multichannel Wiener filter (default: the separator's)")
    p.add_argument("--out", default="evaluation-results", metavar="RESULTS_DIR",
                   help="folder for scores.csv, scores.json and the box plots (default: ./evaluation-results)")
    p.add_argument("--max-tracks", type=int, default=None, metavar="N", help="evaluate only the first N tracks")
    p.add_argument("--max-duration", type=float, default=None, metavar="S",
                   help="use only the first S seconds of each track")
    p.add_argument("--projection", choices=("track", "frame"), default="track",
                   help="ISR/SIR/SAR projection: 'track' (default, stable on band-limited audio) or 'frame' "
                        "(museval's exact numbers, for comparison with published results); SDR is the same")
    p.add_argument("--no-plots", action="store_true", help="do not write the box-plot PNGs")
    return p


def run(args: argparse.Namespace) -> int:
    from ..evaluation import ORACLE_LABELS, evaluate_methods, iter_tracks, oracle_method
    from ..evaluation.runner import model_separate_fn

    targets = _csv_list(args.targets)
    if not targets:
        raise UnmixError("--targets: give at least one target")
    if args.max_tracks is not None and args.max_tracks < 1:
        raise UnmixError("--max-tracks must be at least 1")
    model_name = args.model_file or args.model
    if args.oracles is None:
        oracles = [] if model_name else list(ORACLE_LABELS)
    elif args.oracles.strip().lower() == "none":
        oracles = []
    else:
        oracles = _csv_list(args.oracles)
    unknown = [o for o in oracles if o not in ORACLE_LABELS]
    if unknown:
        raise UnmixError(f"--oracles: unknown method(s) {', '.join(unknown)} (choose from {', '.join(ORACLE_LABELS)})")
    if not oracles and not model_name:
        raise UnmixError("nothing to evaluate: give --model/--model-file or --oracles")

    methods = {}
    meta: dict = {"folder": str(Path(args.folder).resolve()), "targets": targets}
    if model_name:
        from ..separation.registry import load_model
        from ..separation.separator import SeparationSettings

        model = load_model(model_name)
        settings = SeparationSettings()
        if args.niter is not None:
            if args.niter < 0:
                raise UnmixError("--niter must be 0 or more")
            settings.niter = args.niter
        can_give = set(model.targets) | ({"accompaniment"} if settings.residual else set())
        lacking = [t for t in targets if t not in can_give]
        if lacking:
            raise UnmixError(f"model '{model_name}' gives {', '.join(model.targets)}; cannot evaluate "
                             f"{', '.join(lacking)}")
        label = Path(model_name).name if args.model_file else model_name
        separate_fn = model_separate_fn(model, settings, targets)
        methods[label] = lambda track, fn=separate_fn: fn(track.mixture)
        meta["model"] = {"name": label, "source": model_name, "settings": settings.to_dict(),
                         "card": getattr(model, "card", {})}
    for o in oracles:
        methods[ORACLE_LABELS[o]] = oracle_method(o)
    meta["methods"] = list(methods)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    tracks = iter_tracks(args.folder, targets=targets, max_tracks=args.max_tracks, max_duration=args.max_duration)
    results = evaluate_methods(tracks, methods, targets, log=log, projection=args.projection)
    results.meta.update(meta)
    out = Path(args.out)
    written = [results.to_csv(out / "scores.csv"), results.to_json(out / "scores.json")]
    if not args.no_plots:
        try:
            written += results.plot(out)
        except ImportError as exc:
            print(f"unmix: warning: {exc}; box plots skipped", file=sys.stderr)
    print(results.table())
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
