"""Entry script of the PyInstaller bundle (packaging/unmix-desktop.spec).

The bundle has two executables built from this one script and sharing one ``_internal/`` folder:
``unmix`` runs the command line (unmix_desktop.cli:main), ``unmix-desktop`` (any other name) the
window (unmix_desktop.ui.app:main). Dispatching on the executable's own name keeps a single
analysed module set, while Windows still gets a console ``unmix.exe`` and a windowed
``unmix-desktop.exe`` (two EXE targets in one COLLECT).
"""

from __future__ import annotations

import multiprocessing
import os
import sys


def program_name() -> str:
    name = os.path.basename(sys.executable if getattr(sys, "frozen", False) else sys.argv[0])
    return os.path.splitext(name)[0].lower()


# Developer commands whose libraries (TorchDynamo for the optimisers, museval) are left out of the
# bundle to keep it small; they run from a source checkout.
SOURCE_ONLY_COMMANDS = ("train", "evaluate")


def main() -> int:
    multiprocessing.freeze_support()
    if program_name() == "unmix":
        args = [a for a in sys.argv[1:] if not a.startswith("-")]
        if getattr(sys, "frozen", False) and args and args[0] in SOURCE_ONLY_COMMANDS:
            print(f"unmix: error: `unmix {args[0]}` is not part of the app bundle; run it from a source "
                  "checkout (`make setup`, then .venv/bin/unmix)", file=sys.stderr)
            return 2
        from unmix_desktop.cli import main as cli_main

        return int(cli_main() or 0)
    from unmix_desktop.ui.app import main as gui_main

    return int(gui_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
