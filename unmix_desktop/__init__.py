"""unmix-desktop: separate songs into stems, play them with live faders, export karaoke tracks."""

import os as _os

# OpenMP threads that wait between torch ops sleep instead of spinning (must be set before torch
# loads). On a busy machine spinning threads steal the cores from the working one: 2.8x faster
# separation measured on the shared 2-core machine (docs/QUALITY.md, "Speed"). A user's own
# setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
