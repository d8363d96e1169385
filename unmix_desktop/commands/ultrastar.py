"""`unmix ultrastar SONG [--lyrics FILE.lrc|FILE.txt] --out DIR`: write an UltraStar song folder.

DIR gets ``<song>.txt`` (UltraStar v1.1: notes from the sung melody on the song's beat grid, one
syllable per note from the lyrics: an .lrc is used as timed, a plain .txt is aligned first),
a copy of the audio, and the ``#VOCALS`` / ``#INSTRUMENTAL`` stems (FLAC). Files already in DIR
are never overwritten (--force replaces the ones this command writes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UnmixError


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("ultrastar", help="write an UltraStar song folder (notes, lyrics, audio, stems)",
                       description="Write an UltraStar song folder: the chart (.txt, format v1.1) with notes from "
                                   "the sung melody and syllables from the lyrics, the audio and the stems.")
    p.add_argument("song", metavar="SONG", help="an audio file")
    p.add_argument("--lyrics", metavar="FILE", help="lyrics: synced .lrc, or plain .txt (aligned first)")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="song folder to write (created if needed)")
    p.add_argument("--language", metavar="xx", help="language of plain lyrics (default: from the text)")
    p.add_argument("--model", metavar="NAME", help="separation model (default: the best installed)")
    p.add_argument("--check-octaves", action="store_true",
                   help="check each note's octave against pYIN too (needs librosa; slow: ~3x the song's length)")
    p.add_argument("--force", action="store_true", help="replace files a previous export wrote")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress messages")
    return p


def run(args) -> int:
    from ..analysis.beats import estimate_beats
    from ..lyrics.align import align_text, from_lyrics, vocal_features
    from ..lyrics.chart import export_folder, export_targets
    from ..lyrics.lrc import looks_like_lrc, parse_lrc
    from ..lyrics.vocals import song_vocals
    from .align import read_lyrics_text

    song, out = Path(args.song), Path(args.out)
    if not song.is_file():
        raise UnmixError(f"{song}: " + ("is a folder; give an audio file" if song.is_dir() else "no such file"))
    if out.exists() and not out.is_dir():
        raise UnmixError(f"{out}: is a file; give a folder")
    text = read_lyrics_text(Path(args.lyrics)) if args.lyrics else None
    targets = export_targets(out, song)
    if not args.force:
        for path in targets.values():
            if path.exists():
                raise UnmixError(f"{path}: already exists (use --force to replace an earlier export)")
    if not args.quiet:
        print(f"{song.name}: separating the vocals...", file=sys.stderr)
    sv = song_vocals(song, args.model, keep_stems=True)
    alignment = None
    language = args.language
    if text is not None:
        if looks_like_lrc(text):
            alignment = from_lyrics(parse_lrc(text, str(args.lyrics)))
            if not alignment.lines:
                raise UnmixError(f"{args.lyrics}: no timed lines")
            from ..lyrics.text import detect_language

            alignment.language = language or detect_language(parse_lrc(text).text())
        else:
            features = vocal_features(sv.vocals, sv.sample_rate, sv.contour)
            alignment = align_text(text, features, language)
            if not alignment.lines:
                raise UnmixError(f"{args.lyrics}: no words")
    grid = estimate_beats(sv.stems, sv.sample_rate)
    first = grid.beats[0] if grid.beats else 0.0
    instrumental = sv.stems.get("accompaniment")
    if instrumental is None:
        instrumental = sv.mixture - sv.vocals
    second = None
    if args.check_octaves:
        from ..analysis.melody import MelodyError, track_melody

        try:
            second = track_melody(sv.vocals, sv.sample_rate, "pyin")
        except MelodyError as exc:
            raise UnmixError(f"--check-octaves: {exc}") from exc
    try:
        chart = export_folder(out, song, sv.vocals, instrumental, sv.sample_rate, sv.contour, alignment, grid.bpm,
                              first, {"CREATOR": "unmix ultrastar"}, second)
    except OSError as exc:
        raise UnmixError(f"{exc.filename or out}: could not write ({exc.strerror or exc})") from exc
    if not args.quiet:
        print(f"{targets['chart']}: {len(chart.notes())} notes in {len(chart.lines)} lines, "
              f"{chart.bpm:g} BPM", file=sys.stderr)
    return 0
