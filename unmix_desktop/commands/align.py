"""`unmix align SONG LYRICS.txt --out SONG.lrc [--language xx] [--json FILE]`: time plain lyrics.

SONG is an audio file (separated with the stem cache) or a stems folder from `unmix separate`.
LYRICS.txt holds the words as sung, one line per line, blank lines between verses. Writes enhanced
LRC (every word timed) and, with --json, ``{"lines": [{"start", "end", "confidence", "words":
[{"text", "start", "end"}]}]}`` in seconds. The method: unmix_desktop/lyrics/align.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..atomic import atomic_write_text
from ..errors import UnmixError


def add_parser(sub) -> argparse.ArgumentParser:
    from ..lyrics.align import METHODS

    p = sub.add_parser("align", help="time plain lyrics against the song (enhanced LRC)",
                       description="Align plain lyrics (one sung line per line) to the separated vocals and "
                                   "write enhanced LRC with a time for every line and word.")
    p.add_argument("song", metavar="SONG", help="an audio file, or a stems folder from `unmix separate`")
    p.add_argument("lyrics", metavar="LYRICS", help="plain lyrics text file (UTF-8)")
    p.add_argument("--out", "-o", required=True, metavar="LRC", help="output .lrc file")
    p.add_argument("--json", metavar="FILE", help="also write lines and words with times as JSON")
    p.add_argument("--language", metavar="xx", help="language code (en, es, fr, de, ...); default: from the text")
    p.add_argument("--method", choices=METHODS + ("hmm-no-onsets",), default="hmm", help=argparse.SUPPRESS)
    p.add_argument("--model", metavar="NAME", help="separation model (default: the best installed)")
    p.add_argument("--no-cache", action="store_true", help="separate again even when the stems are cached")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress messages")
    return p


def read_lyrics_text(path: Path) -> str:
    if not path.is_file():
        raise UnmixError(f"{path}: " + ("is a folder" if path.is_dir() else "no such file"))
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    return text


def run(args) -> int:
    from ..lyrics.align import align_text, vocal_features
    from ..lyrics.lrc import looks_like_lrc
    from ..lyrics.text import LANGUAGES, parse_plain
    from ..lyrics.vocals import song_vocals

    song, lyrics_path, out = Path(args.song), Path(args.lyrics), Path(args.out)
    text = read_lyrics_text(lyrics_path)
    if looks_like_lrc(text):
        from ..lyrics.lrc import parse_lrc

        text = parse_lrc(text).text()
    if not parse_plain(text):
        raise UnmixError(f"{lyrics_path}: no words to align")
    if args.language and not (args.language.isalpha() and 2 <= len(args.language) <= 3):
        raise UnmixError(f"--language {args.language!r}: give a language code such as {', '.join(LANGUAGES)}")
    for target in [out] + ([Path(args.json)] if args.json else []):
        if target.is_dir():
            raise UnmixError(f"{target}: is a folder; give a file name")
        if target.exists() and (target.resolve() in (song.resolve(), lyrics_path.resolve())):
            raise UnmixError(f"{target}: refusing to overwrite an input")
    if not song.exists():
        raise UnmixError(f"{song}: no such file")
    t0 = time.perf_counter()
    if not args.quiet:
        print(f"{song.name}: separating the vocals...", file=sys.stderr)
    sv = song_vocals(song, args.model, use_cache=not args.no_cache)
    features = vocal_features(sv.vocals, sv.sample_rate, sv.contour)
    alignment = align_text(text, features, args.language.lower() if args.language else None, args.method)
    alignment.metadata = {"re": "unmix align", "la": alignment.language}
    try:
        atomic_write_text(out, alignment.to_lrc())
        if args.json:
            atomic_write_text(args.json, alignment.to_json_text())
    except OSError as exc:
        raise UnmixError(f"{exc.filename or out}: could not write ({exc.strerror or exc})") from exc
    if not args.quiet:
        words = len(alignment.words())
        print(f"{out}: {len(alignment.lines)} lines, {words} words timed ({alignment.language}, "
              f"{time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return 0
