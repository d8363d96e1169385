"""``unmix chords SONG [--json FILE] [--lab FILE] [--vocabulary majmin|sevenths]``: the key and a chord chart.

SONG is an audio file (separated through the song pipeline, stems and chart cached in the stem cache) or
a stems folder from ``unmix separate`` (the chart is cached in that folder as ``chords-<vocabulary>.json``).
The chords come from the accompaniment (the song without vocals) and the bass stem when there is one; see
``analysis/chords.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import AudioError, UnmixError


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("song", metavar="SONG", help="an audio file, or a stems folder from `unmix separate`")
    p.add_argument("--model", metavar="NAME", help="separation model (default: the best installed)")
    p.add_argument("--no-cache", action="store_true", help="separate and analyse again (the caches are rewritten)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..analysis.chords import DEFAULT_VOCABULARY, VOCABULARIES

    p = subparsers.add_parser(
        "chords", help="the key and the chords of a song (Harte labels), as a chord chart",
        description="Print the song's key and a chord chart (one bar per cell, one slot per beat). The chords "
                    "come from the separated accompaniment and bass; boundaries fall on beats.")
    add_common(p)
    p.add_argument("--json", metavar="FILE", help='write {"key": "A:min", "chords": [{"start", "end", "label"}]} '
                                                  "(seconds)")
    p.add_argument("--lab", metavar="FILE", help="write the chords as a MIREX .lab file (start end label)")
    p.add_argument("--vocabulary", choices=sorted(VOCABULARIES), default=DEFAULT_VOCABULARY,
                   help=f"majmin: major/minor triads; sevenths: + 7, maj7, min7 (default {DEFAULT_VOCABULARY})")
    p.add_argument("--transpose", type=int, default=0, metavar="ST",
                   help="print the chart moved by this many semitones (-12..12)")
    return p


def _check_output(out: Path | None, song: Path, suffix: str) -> None:
    if out is None:
        return
    if out.is_dir():
        raise AudioError(out, "is a folder, not a file")
    if out.exists() and song.exists() and os.path.samefile(out, song):
        raise AudioError(out, "refusing to overwrite the song")
    if out.exists() and out.suffix.lower() != suffix:
        raise AudioError(out, f"exists and is not a {suffix} file; refusing to overwrite it")
    if not out.parent.is_dir():
        raise AudioError(out, "its folder does not exist")


def song_chart(args: argparse.Namespace, vocabulary: str):
    """The :class:`ChordChart` of ``args.song`` (cached)."""
    from ..analysis.chords import ChordError, cache_name, chords_for_stems
    from ..audio.io import SAMPLE_RATE

    song = Path(args.song)
    try:
        if song.is_dir():
            from .play import load_stems, stem_files

            stems = load_stems(song)
            cache_file = song / cache_name(vocabulary)
            newest = max(f.stat().st_mtime for f in stem_files(song).values())
            if cache_file.is_file() and (args.no_cache or cache_file.stat().st_mtime < newest):
                cache_file.unlink()  # our own cache file: stale or not wanted
            return chords_for_stems(stems, SAMPLE_RATE, cache_file, vocabulary)[0]
        stems, sample_rate, cache_file = _separate(song, args)
        if args.no_cache and cache_file is not None and cache_file.is_file():
            cache_file.unlink()
        return chords_for_stems(stems, sample_rate, cache_file, vocabulary)[0]
    except ChordError as exc:
        raise UnmixError(f"{song}: {exc}") from None


def _separate(song: Path, args: argparse.Namespace):
    """Separate through the song pipeline (the stem cache); ``(stems, sample rate, chart cache file)``."""
    from ..audio.io import check_song_path

    path = check_song_path(song)   # before the model code's imports: a wrong path is one line at once
    from ..analysis.chords import cache_name
    from ..cache import StemCache, make_key
    from ..progress import ProgressBar
    from ..separation.pipeline import ModelProvider, Pipeline, SongRequest, worker_threads
    from ..separation.registry import default_model_name
    from ..separation.settings import SeparationSettings

    request = SongRequest(path, args.model or default_model_name(), SeparationSettings(), use_cache=not args.no_cache)
    cache = StemCache()
    bar = None if args.quiet else ProgressBar(path.name[:40])

    def report(stage: str, fraction: float) -> None:
        if bar is not None and stage == "separate":
            bar(fraction)

    try:
        result = Pipeline(ModelProvider(), cache, threads=worker_threads()).run(request, report)
    finally:
        if bar is not None:
            bar.close()
    cache_file = None
    if result.content_hash:
        folder = cache._folder(make_key(result.content_hash, result.model_name, result.settings_key, ""))
        if folder.is_dir():
            cache_file = folder / cache_name(args.vocabulary if hasattr(args, "vocabulary") else "majmin")
    return result.stems, result.sample_rate, cache_file


def run(args: argparse.Namespace) -> int:
    from ..analysis.chords import chart_text, key_name

    song = Path(args.song)
    if not -12 <= args.transpose <= 12:
        raise UnmixError(f"--transpose must be within -12..12, got {args.transpose}")
    out = Path(args.json) if args.json else None
    lab = Path(args.lab) if args.lab else None
    _check_output(out, song, ".json")
    _check_output(lab, song, ".lab")
    chart = song_chart(args, args.vocabulary)
    heard = f" (as played {args.transpose:+d}: {key_name(chart.key, args.transpose)})" if args.transpose else ""
    print(f"Key: {key_name(chart.key)} [{chart.key}]{heard}")
    if len(chart.keys) > 1:
        from ..progress import format_time

        print("Key changes: " + ", ".join(f"{format_time(k.start)} {key_name(k.label, args.transpose)}"
                                           for k in chart.keys))
    print(chart_text(chart, args.transpose), end="")
    for path, write in ((out, lambda p: chart.save_json(p, full=False)), (lab, chart.save_lab)):
        if path is None:
            continue
        try:
            write(path)
        except OSError as exc:
            raise AudioError(path, exc.strerror or str(exc)) from None
        if not args.quiet:
            print(f"wrote {path}", file=sys.stderr)
    return 0
