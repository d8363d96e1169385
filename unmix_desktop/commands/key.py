"""``unmix key SONG``: the song's key (e.g. ``A minor [A:min]``), from the same analysis as ``unmix chords``."""

from __future__ import annotations

import argparse

from .chords import add_common


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("key", help="the key of a song (major or minor)",
                              description="Print the song's key, e.g. 'A minor [A:min]', found from the separated "
                                          "accompaniment and bass (see 'unmix chords').")
    add_common(p)
    return p


def run(args: argparse.Namespace) -> int:
    from ..analysis.chords import DEFAULT_VOCABULARY, key_name
    from .chords import song_chart

    args.vocabulary = DEFAULT_VOCABULARY
    chart = song_chart(args, DEFAULT_VOCABULARY)
    print(f"{key_name(chart.key)} [{chart.key}]")
    return 0
