"""``unmix beats SONG [--json FILE]``: the tempo and the beat times of a song or a stems folder."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import AudioError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "beats",
        help="estimate the tempo (BPM), beats and downbeats of a song or a stems folder",
        description="Print the tempo as 'NNN.N BPM'. Given a folder of stems (from 'unmix separate'), the "
                    "drums or accompaniment stem is used when its pulse is clearer than the mix.",
    )
    p.add_argument("song", metavar="SONG", help="an audio file, or a folder of <stem>.wav/.flac files")
    p.add_argument("--json", metavar="FILE", default=None, help="write bpm, beat and downbeat times (seconds) here")
    p.add_argument("--beats-per-bar", type=int, default=4, metavar="N", help="beats per bar for downbeats (default 4)")
    return p


def run(args: argparse.Namespace) -> int:
    from ..analysis.beats import estimate_beats, song_beats
    from ..audio.io import SAMPLE_RATE, load_audio
    from .play import UsageError, load_stems, stem_files

    song = Path(args.song)
    if args.beats_per_bar < 1:
        raise UsageError(f"--beats-per-bar must be >= 1, got {args.beats_per_bar}")
    out = Path(args.json) if args.json else None
    if song.is_dir():
        inputs = list(stem_files(song).values())
    else:
        inputs = [song]
    if out is not None:
        if out.is_dir():
            raise AudioError(out, "is a folder, not a file")
        for src in inputs:
            if src.exists() and out.exists() and os.path.samefile(out, src):
                raise AudioError(out, "refusing to overwrite an input file")
        if out.suffix.lower() != ".json" and out.exists():
            raise AudioError(out, "exists and is not a .json file; refusing to overwrite it")
    if song.is_dir():
        grid = estimate_beats(load_stems(song), SAMPLE_RATE, args.beats_per_bar)
    else:  # the same call as the window's (one answer for one song)
        grid = song_beats(load_audio(song, SAMPLE_RATE), SAMPLE_RATE, args.beats_per_bar)
    if not grid.found:
        print(f"no beat found in {song}")
    else:
        print(f"{grid.bpm:.1f} BPM")
        print(f"{len(grid.beats)} beats, {len(grid.downbeats)} bars, from {grid.source}"
              f" (pulse clarity {grid.confidence:.1f})")
    if out is not None:
        try:
            grid.save(out)
        except OSError as exc:
            raise AudioError(out, exc.strerror or str(exc)) from None
        print(f"wrote {out}")
    return 0
