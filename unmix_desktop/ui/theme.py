"""Dark theme: Fusion style, a dark palette, a small style sheet, and the stem colours."""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

BG = "#15181d"          # window
PANEL = "#1c2027"       # strips, header
PANEL_2 = "#232832"     # buttons
PLOT_BG = "#0d0f13"     # spectrograms
BORDER = "#2c323d"
TEXT = "#e3e6eb"
TEXT_DIM = "#8b93a1"
ACCENT = "#3d9be9"
WARN = "#f0b429"
ERROR = "#ef5b5b"

STEM_COLOURS = {
    "mixture": "#c9d1dc",
    "vocals": "#ff5c8a",
    "accompaniment": "#4fc3f7",
    "drums": "#ffb74d",
    "bass": "#b388ff",
    "other": "#69d29b",
    "residual": "#90a4ae",
}
_FALLBACK = ["#4dd0e1", "#f06292", "#aed581", "#ffd54f", "#9575cd", "#4db6ac"]

STEM_LABELS = {
    "mixture": "Mix",
    "vocals": "Vocals",
    "accompaniment": "Accompaniment",
    "drums": "Drums",
    "bass": "Bass",
    "other": "Other",
}


def stem_colour(name: str, index: int = 0) -> str:
    return STEM_COLOURS.get(name, _FALLBACK[index % len(_FALLBACK)])


def stem_label(name: str) -> str:
    return STEM_LABELS.get(name, name.replace("_", " ").capitalize())


#: Unchecked check boxes draw this border (an unstyled indicator vanished on the dark background).
CHECK_BORDER = "#6b7480"


def _check_mark() -> str:
    """A white check mark (SVG) for checked boxes, written once to the app's cache folder (style sheets
    take a file); "" when it cannot be written (the box is then filled only)."""
    from ..atomic import atomic_write_text
    from ..paths import cache_dir

    svg = ("<svg xmlns='http://www.w3.org/2000/svg' width='14' height='14' viewBox='0 0 14 14'>"
           "<path d='M3 7.5 L6 10.5 L11.5 4' fill='none' stroke='white' stroke-width='2'/></svg>")
    try:
        path = cache_dir() / "check-mark.svg"
        if not path.is_file() or path.read_text("utf-8") != svg:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, svg)
    except (OSError, UnicodeDecodeError):
        return ""
    return path.as_posix()


CHECK_MARK = _check_mark()

STYLE_SHEET = f"""
QMainWindow, QDialog {{ background: {BG}; }}
QWidget {{ color: {TEXT}; }}
QToolTip {{ color: {TEXT}; background: {PANEL_2}; border: 1px solid {BORDER}; padding: 4px; }}
QMenuBar {{ background: {BG}; border-bottom: 1px solid {BORDER}; }}
QMenuBar::item:selected {{ background: {PANEL_2}; }}
QMenu {{ background: {PANEL}; border: 1px solid {BORDER}; }}
QMenu::item:selected {{ background: {ACCENT}; color: white; }}
QMenu::item:disabled {{ color: {TEXT_DIM}; }}
QStatusBar {{ background: {BG}; color: {TEXT_DIM}; border-top: 1px solid {BORDER}; }}
QPushButton, QToolButton {{
    background: {PANEL_2}; border: 1px solid {BORDER}; border-radius: 5px; padding: 5px 12px;
}}
QPushButton:hover, QToolButton:hover {{ border-color: #46505f; background: #2a303b; }}
QPushButton:pressed, QToolButton:pressed {{ background: #191c22; }}
QPushButton:disabled, QToolButton:disabled {{ color: #59606b; background: #1d2128; }}
QPushButton#primary {{ background: {ACCENT}; border-color: {ACCENT}; color: white; font-weight: 600; }}
QPushButton#primary:hover {{ background: #57aaf0; }}
QToolButton:checked {{ background: {ACCENT}; border-color: {ACCENT}; color: white; }}
QCheckBox::indicator {{ width: 14px; height: 14px; border: 1px solid {CHECK_BORDER}; border-radius: 3px;
                       background: #111419; }}
QCheckBox::indicator:hover {{ border-color: {ACCENT}; }}
QCheckBox::indicator:checked {{ background: {ACCENT}; border-color: {ACCENT}; image: url({CHECK_MARK}); }}
QCheckBox::indicator:disabled {{ border-color: {BORDER}; background: #1d2128; }}
QCheckBox::indicator:checked:disabled {{ background: #3a4350; border-color: #3a4350; }}
QToolButton#mute {{ padding: 2px 0px; min-width: 24px; font-weight: 700; }}
QToolButton#solo {{ padding: 2px 0px; min-width: 24px; font-weight: 700; }}
QToolButton#mute:checked {{ background: {ERROR}; border-color: {ERROR}; color: #1a1a1a; }}
QToolButton#solo:checked {{ background: {WARN}; border-color: {WARN}; color: #1a1a1a; }}
QToolButton#transport {{ padding: 4px; border-radius: 16px; min-width: 24px; min-height: 24px; }}
QToolButton#play {{ padding: 6px; border-radius: 20px; min-width: 28px; min-height: 28px;
                    background: {ACCENT}; border-color: {ACCENT}; }}
QToolButton#play:hover {{ background: #57aaf0; }}
QToolButton#play:disabled {{ background: #2a303b; border-color: {BORDER}; }}
QFrame#strip {{ background: {PANEL}; border: 1px solid {BORDER}; border-radius: 6px; }}
QFrame#header, QFrame#transportBar {{ background: {PANEL}; border: 1px solid {BORDER}; border-radius: 8px; }}
QFrame#dropZone {{ border: 2px dashed #3a4250; border-radius: 18px; background: #171b21; }}
QFrame#dropZone[hover="true"] {{ border-color: {ACCENT}; background: #1a2230; }}
QFrame#progressCard {{ background: {PANEL}; border: 1px solid {BORDER}; border-radius: 14px; }}
QLabel#dim {{ color: {TEXT_DIM}; }}
QLabel#title {{ font-size: 17pt; font-weight: 600; }}
QLabel#songTitle {{ font-size: 14pt; font-weight: 600; }}
QLabel#hero {{ font-size: 22pt; font-weight: 600; }}
QLabel#time {{ font-family: "DejaVu Sans Mono", monospace; font-size: 11pt; }}
QLabel#badge {{ background: #263041; color: #9fc7f0; border-radius: 9px; padding: 2px 8px; }}
QToolButton#badge {{ background: transparent; color: #9fc7f0; border: 1px solid #33415a; border-radius: 9px;
                     padding: 2px 8px; }}
QToolButton#badge:hover {{ background: #263041; border-color: #4a6a96; text-decoration: underline; }}
QLabel#warnBadge {{ background: #3a3120; color: {WARN}; border-radius: 9px; padding: 2px 8px; }}
QFrame#notice {{ border-radius: 6px; padding: 2px; }}
QFrame#notice[level="info"] {{ background: #1d2f45; border: 1px solid #2c4c70; }}
QFrame#notice[level="warning"] {{ background: #3a3120; border: 1px solid #6b5520; }}
QFrame#notice[level="error"] {{ background: #42201f; border: 1px solid #7a3431; }}
QProgressBar {{ background: #111419; border: 1px solid {BORDER}; border-radius: 6px; text-align: center;
                min-height: 14px; }}
QProgressBar::chunk {{ background: {ACCENT}; border-radius: 5px; }}
QSlider::groove:horizontal {{ height: 4px; background: #2f3541; border-radius: 2px; }}
QSlider::sub-page:horizontal {{ background: #5a6475; border-radius: 2px; }}
QSlider::handle:horizontal {{ background: #dfe4ea; width: 12px; height: 12px; margin: -5px 0;
                              border-radius: 6px; }}
QSlider#seek::sub-page:horizontal {{ background: {ACCENT}; }}
QListWidget {{ background: transparent; border: none; }}
QListWidget::item {{ padding: 4px 8px; border-radius: 4px; }}
QListWidget::item:hover {{ background: #222833; }}
QComboBox, QSpinBox, QLineEdit {{ background: {PANEL_2}; border: 1px solid {BORDER}; border-radius: 4px;
                                  padding: 3px 6px; }}
QComboBox QAbstractItemView {{ background: {PANEL}; selection-background-color: {ACCENT}; }}
QGroupBox {{ border: 1px solid {BORDER}; border-radius: 6px; margin-top: 12px; padding-top: 6px; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 10px; padding: 0 4px; color: {TEXT_DIM}; }}
"""


def apply_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: BG,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: "#111419",
        QPalette.ColorRole.AlternateBase: PANEL,
        QPalette.ColorRole.ToolTipBase: PANEL_2,
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: PANEL_2,
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: ACCENT,
        QPalette.ColorRole.PlaceholderText: TEXT_DIM,
    }
    for role, colour in roles.items():
        pal.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#59606b"))
    app.setPalette(pal)
    font = app.font()
    if font.pointSizeF() < 9.5:
        font.setPointSizeF(9.5)
    app.setFont(QFont(font))
    app.setStyleSheet(STYLE_SHEET)
