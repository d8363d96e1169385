"""The ``unmix`` command line. Each subcommand lives in ``unmix_desktop/commands/<name>.py``
and provides ``add_parser(subparsers)`` and ``run(args) -> int``."""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import UnmixError

COMMANDS = ["separate", "models", "evaluate", "play", "mix", "train", "make-corpus"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unmix", description="Separate songs into stems, play and remix them.")
    parser.add_argument("--version", action="version", version=f"unmix {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"unmix_desktop.commands.{name.replace('-', '_')}")
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except UnmixError as exc:
        print(f"unmix: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("unmix: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
