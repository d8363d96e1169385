"""Render the application icon PNGs from resources/icons/unmix-desktop.svg with Qt's QSvgRenderer.

    .venv/bin/python packaging/render_icons.py          # rewrites resources/icons/hicolor/<N>x<N>/apps/*.png

The PNGs are committed, so neither ``make install-desktop`` nor the bundle build needs Qt to run this.
Re-run it after editing the SVG (tests/test_packaging.py checks the PNGs still match the SVG).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ICONS_DIR = ROOT / "resources" / "icons"
SVG_PATH = ICONS_DIR / "unmix-desktop.svg"
ICON_NAME = "unmix-desktop"
# The hicolor sizes desktops look up (menus 16-48, docks/launchers 64-256, HiDPI 512).
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)


def png_path(size: int, icons_dir: Path = ICONS_DIR) -> Path:
    return icons_dir / "hicolor" / f"{size}x{size}" / "apps" / f"{ICON_NAME}.png"


def _app():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    return QGuiApplication.instance() or QGuiApplication(["render_icons"])


def render_image(size: int, svg_path: Path = SVG_PATH):
    """The icon as a ``size`` x ``size`` premultiplied-ARGB QImage."""
    _app()
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg_path))
    if not renderer.isValid():
        raise ValueError(f"{svg_path}: not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    return image


def render_all(icons_dir: Path = ICONS_DIR, svg_path: Path = SVG_PATH) -> list[Path]:
    written = []
    for size in ICON_SIZES:
        out = png_path(size, icons_dir)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp.png")
        if not render_image(size, svg_path).save(str(tmp), "PNG"):
            raise OSError(f"{out}: could not write PNG")
        os.replace(tmp, out)
        written.append(out)
    return written


def main() -> int:
    for path in render_all():
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
