"""``unmix mix STEMS_DIR --out FILE``: render a mix of separated stems to a file."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..audio.export import check_export_path, export_karaoke, export_mix
from ..audio.io import SAMPLE_RATE
from .argtypes import non_negative_float, positive_float
from .play import (
    add_mix_arguments,
    add_stretch_arguments,
    load_stems,
    state_from_args,
    stem_files,
    stretch_from_args,
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "mix",
        help="render a mix of stems (karaoke, custom faders) to wav/flac/ogg/mp3",
        description="Render a folder of stems with mute/solo/gain/pan to one audio file.",
    )
    add_mix_arguments(p)
    p.add_argument("--out", "-o", required=True, metavar="FILE", help="output file; the format follows the suffix")
    p.add_argument("--karaoke", action="store_true", help="everything but the vocals (ignores the fader options)")
    p.add_argument("--start", type=non_negative_float, default=0.0, metavar="S", help="start at S seconds")
    p.add_argument("--duration", type=positive_float, default=None, metavar="S", help="render S seconds")
    add_stretch_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    inputs = list(stem_files(args.stems_dir).values())  # never overwrite one of the stems
    check_export_path(out, inputs)  # before the (slow) loading
    stretch = stretch_from_args(args)
    stems = load_stems(args.stems_dir, args.start, args.duration)
    if args.karaoke:
        written = export_karaoke(out, stems, source_path=inputs, **stretch)
    else:
        written = export_mix(out, stems, state_from_args(stems.keys(), args), source_path=inputs, **stretch)
    seconds = max(a.shape[0] for a in stems.values()) / SAMPLE_RATE / stretch["tempo"]
    print(f"wrote {written} ({seconds:.1f} s)")
    return 0
