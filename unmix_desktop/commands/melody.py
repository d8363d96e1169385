"""`unmix melody SONG --out f0.csv`: the sung melody (time,hz; 0 = unvoiced) from the vocals stem.

SONG is an audio file (separated first with the default or given model) or a stems folder written
by `unmix separate` (its vocals stem is used and the melody is cached in that folder).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..analysis.melody import (
    DEFAULT_TRACKER,
    TRACKERS,
    MelodyError,
    melody_for_stems,
    track_melody,
)
from ..audio.io import DEFAULT_MAX_DURATION, SAMPLE_RATE, load_audio
from ..errors import UnmixError
from .argtypes import limit_seconds


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("melody", help="write the sung melody (time,hz) of a song",
                       description="Write the sung melody as CSV rows time,hz (0 when nobody sings), "
                                   "from the separated vocals.")
    p.add_argument("song", metavar="SONG", help="an audio file, or a stems folder from `unmix separate`")
    p.add_argument("--out", "-o", required=True, metavar="CSV", help="output file (time,hz)")
    p.add_argument("--model", metavar="NAME", help="separation model (default: the best installed)")
    p.add_argument("--tracker", choices=sorted(TRACKERS), default=DEFAULT_TRACKER,
                   help=f"pitch tracker (default {DEFAULT_TRACKER}; see benchmarks/bench_melody.py)")
    p.add_argument("--no-cache", action="store_true", help="recompute even if a stems folder holds a cached melody")
    p.add_argument("--max-duration", type=limit_seconds, default=DEFAULT_MAX_DURATION, metavar="S",
                   help="refuse songs longer than this many seconds (inf: no limit)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    return p


def run(args) -> int:
    song = Path(args.song)
    out = Path(args.out)
    if out.is_dir():
        raise UnmixError(f"{out}: is a folder; give a file name such as f0.csv")
    if song.exists() and out.exists() and out.resolve() == song.resolve():
        raise UnmixError(f"{out}: refusing to overwrite the song")
    if song.is_dir():
        try:
            contour = melody_for_stems(song, args.tracker, use_cache=not args.no_cache)
        except MelodyError as exc:
            raise UnmixError(str(exc)) from exc
    else:
        from ..progress import ProgressBar
        from ..separation.pipeline import make_separator
        from ..separation.registry import load_model
        from ..separation.settings import SeparationSettings

        audio = load_audio(song, max_duration=args.max_duration)
        model = load_model(args.model)
        separator = make_separator(model, SeparationSettings(targets=["vocals"]), device="cpu")
        bar = None if args.quiet else ProgressBar(song.name[:40])
        vocals = separator.separate(audio, progress=bar)["vocals"]
        if bar:
            bar.close()
        try:
            contour = track_melody(vocals, SAMPLE_RATE, args.tracker)
        except MelodyError as exc:
            raise UnmixError(f"{song}: {exc}") from exc
    try:
        contour.to_csv(out)
    except OSError as exc:
        raise UnmixError(f"{out}: could not write ({exc.strerror or exc})") from exc
    voiced = float(contour.voiced.mean()) if contour.times.size else 0.0
    if not args.quiet:
        print(f"{out}: {contour.times.size} frames, {voiced:.0%} voiced ({args.tracker})", file=sys.stderr)
    return 0
