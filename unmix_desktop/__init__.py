"""unmix-desktop: separate songs into stems, play them with live faders, export karaoke tracks."""

__version__ = "0.1.0"
