"""The ``unmix`` command line. Each subcommand lives in ``unmix_desktop/commands/<name>.py``
and provides ``add_parser(subparsers)`` and ``run(args) -> int``."""

from __future__ import annotations

import signal
import sys

try:  # Ctrl-C while the interpreter loads us: the same one line as later, no traceback
    import argparse
    import importlib
    import threading

    from . import __version__
    from .errors import Stopped, UnmixError
    from .persist import one_line
except KeyboardInterrupt:  # pragma: no cover - exercised by tests/test_trust3_cli.py in a subprocess
    print("unmix: interrupted", file=sys.stderr)
    sys.exit(130)

COMMANDS = ["separate", "models", "evaluate", "play", "mix", "train", "beats", "melody", "chords", "key",
            "make-corpus", "align", "ultrastar"]
#: Signals that stop a command the way Ctrl-C does: temporary files are removed on the way out.
STOP_SIGNALS = [s for s in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, s)]


class Parser(argparse.ArgumentParser):
    """Usage errors in one line (``unmix: error: argument --window: ...``), exit 2."""

    def error(self, message: str):
        self.exit(2, f"unmix: error: {message} (see '{self.prog} --help')\n")


def _stop(signum, frame) -> None:
    for name in STOP_SIGNALS:  # the clean-up that follows is not interrupted by a second signal
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    raise Stopped(signum)


def _install_stop_handlers() -> dict:
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {name: signal.signal(getattr(signal, name), _stop) for name in STOP_SIGNALS}


def _restore(previous: dict) -> None:
    for name, handler in previous.items():
        signal.signal(getattr(signal, name), handler if handler is not None else signal.SIG_DFL)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="unmix", description="Separate songs into stems, play and remix them.")
    parser.add_argument("--version", action="version", version=f"unmix {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"unmix_desktop.commands.{name.replace('-', '_')}")
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    previous = {}
    try:
        previous = _install_stop_handlers()  # before the commands' imports (numpy, torch...): Ctrl-C there too
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "_run", None):
            parser.print_help()
            return 2
        return int(args._run(args) or 0)
    except UnmixError as exc:
        print(one_line(f"unmix: error: {exc}"), file=sys.stderr)
        return 2
    except OSError as exc:  # an output-side failure no command turned into its own message
        from .outputs import os_error_path

        print(one_line(f"unmix: error: {os_error_path(exc, '-')}: {exc.strerror or exc}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        if signum == signal.SIGINT:
            print("unmix: interrupted", file=sys.stderr)
        else:
            print(f"unmix: stopped by {signal.Signals(signum).name}", file=sys.stderr)
        return 128 + signum
    finally:
        _restore(previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
