"""``unmix-desktop``: the GUI entry point.

    unmix-desktop [SONG] [--model NAME] [--screenshot PNG [--size WxH]] [--version]
    unmix-desktop --party [--host ADDR] [--port N] [--pin PIN]

``--party`` opens the window in host mode (karaoke night) with the phone remote on; the first line
on stdout is ``Party remote: URL`` (the guest URL with its token). The default address is this
machine's LAN address.

``SONG`` is opened at start. With ``--screenshot`` the window separates the song, draws the
spectrograms, renders itself to the PNG and exits (0 on success, 2 with a one-line message on
failure).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .. import __version__

SCREENSHOT_TIMEOUT_S = float(os.environ.get("UNMIX_SCREENSHOT_TIMEOUT", 900))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="unmix-desktop", description="Separate a song into stems and remix it.")
    p.add_argument("song", nargs="?", help="a song to open at start")
    p.add_argument("--model", help="separation model (default: the saved choice, else the best installed)")
    p.add_argument("--preset", metavar="NAME",
                   help="mix preset once SONG is separated: full, karaoke, acappella, practice-drums, ...")
    p.add_argument("--screenshot", metavar="PNG", help="open SONG, wait for the separation, save the window "
                                                       "to PNG and exit")
    p.add_argument("--size", default="1400x860", help="window size for --screenshot (default 1400x860)")
    p.add_argument("--seek", type=float, default=None,
                   help="with --screenshot: put the playhead at this many seconds (default: 40%% of the song)")
    p.add_argument("--party", action="store_true", help="host mode: singer rotation, room screen, phone remote on")
    p.add_argument("--host", metavar="ADDR", help="with --party: the address to listen on (default: the LAN address)")
    p.add_argument("--port", type=_port, default=0, metavar="N", help="with --party: the port (default: a free one)")
    p.add_argument("--pin", type=_pin, metavar="PIN", help="with --party: the host PIN (default: a random one, shown)")
    p.add_argument("--version", action="version", version=f"unmix-desktop {__version__}")
    return p


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535, got {port}")
    return port


def _pin(text: str) -> str:
    if not (4 <= len(text) <= 32 and text.isascii() and text.isalnum()):
        raise argparse.ArgumentTypeError("a PIN is 4 to 32 letters or digits")
    return text


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"unmix-desktop: error: --size must look like 1400x860, got {text!r}") from None
    return max(w, 640), max(h, 400)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.screenshot and not args.song:
        print("unmix-desktop: error: --screenshot needs a SONG", file=sys.stderr)
        return 2

    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from ..paths import resources_dir
    from .main_window import MainWindow
    from .settings import AppSettings
    from .theme import apply_theme

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "unmix-desktop"])
    app.setApplicationName("unmix-desktop")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("unmix-desktop")
    app.setDesktopFileName("unmix-desktop")
    icon = QIcon()
    for png in sorted((resources_dir() / "icons" / "hicolor").glob("*/apps/unmix-desktop.png")):
        icon.addFile(str(png))
    if not icon.isNull():
        app.setWindowIcon(icon)
    apply_theme(app)
    window = MainWindow(settings=AppSettings(), session_model=args.model, preload_model=not args.song)
    outcome = {"code": 0}
    if args.preset:
        window.song_loaded.connect(lambda: window.apply_preset(args.preset))

    if args.screenshot:
        png = Path(args.screenshot)
        window.resize(*_parse_size(args.size))

        def fail(message: str) -> None:
            print(f"unmix-desktop: error: {message}", file=sys.stderr)
            outcome["code"] = 2
            app.exit(2)

        def capture() -> None:
            if window.song is not None:
                window.seek(args.seek if args.seek is not None else 0.4 * window.song.duration)
            QTimer.singleShot(250, grab)  # a few transport ticks: the panes follow the new position

        def grab() -> None:
            app.processEvents()
            png.parent.mkdir(parents=True, exist_ok=True)
            if not window.grab().save(str(png)):
                fail(f"{png}: could not write the screenshot")
                return
            print(f"unmix-desktop: screenshot written to {png}")
            app.exit(0)

        window.song_ready.connect(lambda: QTimer.singleShot(400, capture))
        window.separation_failed.connect(fail)
        window.separation_cancelled.connect(lambda: fail("separation cancelled"))
        QTimer.singleShot(int(SCREENSHOT_TIMEOUT_S * 1000),
                          lambda: fail(f"no result after {SCREENSHOT_TIMEOUT_S:.0f} s"))

    window.show()
    if args.party:
        party = window.party()
        try:
            url = party.enable_remote(args.host, args.port, args.pin)
        except OSError as exc:
            print(f"unmix-desktop: error: {args.host or 'LAN address'}:{args.port}: cannot start the party remote "
                  f"({exc.strerror or exc})", file=sys.stderr)
            window.close()
            return 2
        print(f"Party remote: {url}", flush=True)
        print(f"Host PIN: {party.server.pin}", flush=True)
    if args.song:
        if not window.open_song(args.song):
            if args.screenshot:
                print(f"unmix-desktop: error: {window.last_notice[1]}", file=sys.stderr)
                window.close()
                return 2
    code = app.exec()
    if args.screenshot:
        window.close()
        return outcome["code"] or code
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
