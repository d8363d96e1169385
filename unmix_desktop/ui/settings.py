"""Persistent window settings: a QSettings ini file under ``paths.config_dir()``."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from .. import paths, persist

INI_NAME = "unmix-desktop.ini"
OUTPUT_FORMATS = ("wav", "flac", "ogg", "mp3")
MAX_RECENT = 10
MAX_NITER = 10


def _as_bool(value, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _as_int(value, default: int, lo: int, hi: int) -> int:
    try:
        return min(max(int(value), lo), hi)
    except (TypeError, ValueError):
        return default


class AppSettings:
    """Typed access to the ini file. Every getter falls back to a default on a bad value; an ini
    file Qt cannot parse is set aside (``NAME.bad-<time>``, :mod:`..persist`) with one notice, and a
    setting of the wrong kind (a list where a name belongs...) is dropped with one notice."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else paths.config_dir() / INI_NAME
        self.q = QSettings(str(self.path), QSettings.Format.IniFormat)
        if self.q.status() == QSettings.Status.FormatError:
            moved = persist.set_aside(self.path)
            where = f"set aside as {moved.name}" if moved else "left in place (it cannot be renamed)"
            persist.notice(f"{self.path}: damaged settings file; {where}, using defaults")
            self.q = QSettings(str(self.path), QSettings.Format.IniFormat)

    def _text(self, key: str, default: str = "") -> str:
        """A text setting; any other kind (a list, a broken variant) is dropped with one notice."""
        value = self.q.value(key, default)
        if value is None or isinstance(value, str):
            return value or default
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        self.q.remove(key)
        persist.notice(f"{self.path}: setting '{key}' is {persist.kind(value)}, not a text; using the default")
        return default

    def sync(self) -> None:
        self.q.sync()

    # separation -------------------------------------------------------------------------------
    @property
    def model(self) -> str | None:
        return self._text("separation/model") or None

    @model.setter
    def model(self, name: str | None) -> None:
        self.q.setValue("separation/model", name or "")

    @property
    def best_model(self) -> str | None:
        """The best-quality model that re-separates each song in the background ("fast first, best
        later": ui/upgrade_controller.py); ``None``: off."""
        value = self.q.value("separation/best_model", "")
        return str(value) or None

    @best_model.setter
    def best_model(self, name: str | None) -> None:
        self.q.setValue("separation/best_model", name or "")

    @property
    def niter(self) -> int:
        return _as_int(self.q.value("separation/niter", 1), 1, 0, MAX_NITER)

    @niter.setter
    def niter(self, value: int) -> None:
        self.q.setValue("separation/niter", _as_int(value, 1, 0, MAX_NITER))

    @property
    def four_stems(self) -> bool:
        return _as_bool(self.q.value("separation/four_stems"), False)

    @four_stems.setter
    def four_stems(self, value: bool) -> None:
        self.q.setValue("separation/four_stems", bool(value))

    @property
    def four_stem_model(self) -> str:
        """How the accompaniment is split into drums/bass/other: "dsp" or a splitter model's name."""
        return self._text("separation/four_stem_model") or "dsp"

    @four_stem_model.setter
    def four_stem_model(self, value: str | None) -> None:
        self.q.setValue("separation/four_stem_model", value or "dsp")

    def seconds_per_second(self, model: str) -> float | None:
        """Measured separation time per second of audio for ``model`` (for the first ETA)."""
        try:
            value = float(self.q.value(f"speed/{model}", 0) or 0)
        except (TypeError, ValueError):
            return None
        return value if value > 0 else None

    def set_seconds_per_second(self, model: str, value: float) -> None:
        old = self.seconds_per_second(model)
        self.q.setValue(f"speed/{model}", value if old is None else 0.5 * (old + value))

    # output -----------------------------------------------------------------------------------
    @property
    def output_format(self) -> str:
        value = self._text("export/format", "wav").lower()
        return value if value in OUTPUT_FORMATS else "wav"

    @output_format.setter
    def output_format(self, value: str) -> None:
        self.q.setValue("export/format", value if value in OUTPUT_FORMATS else "wav")

    @property
    def export_dir(self) -> str:
        return self._text("export/folder")

    @export_dir.setter
    def export_dir(self, value: str) -> None:
        self.q.setValue("export/folder", str(value))

    @property
    def export_choices(self) -> dict:
        """What the Export dialog had ticked last time: stems, karaoke, mix, open_folder."""
        defaults = {"stems": True, "karaoke": True, "mix": False, "open_folder": True}
        choices: dict = {k: _as_bool(self.q.value(f"export/{k}"), v) for k, v in defaults.items()}
        try:  # the files' sample rate: 0 = the song's own
            choices["rate"] = max(0, int(self.q.value("export/rate") or 0))
        except (TypeError, ValueError):
            choices["rate"] = 0
        return choices

    @export_choices.setter
    def export_choices(self, choices: dict) -> None:
        for k in ("stems", "karaoke", "mix", "open_folder"):
            if k in choices:
                self.q.setValue(f"export/{k}", bool(choices[k]))
        if "rate" in choices:
            self.q.setValue("export/rate", int(choices["rate"] or 0))

    @property
    def audio_device(self) -> str | None:
        """Output device name (``None``: the system default)."""
        return self._text("audio/device") or None

    @audio_device.setter
    def audio_device(self, value: str | None) -> None:
        self.q.setValue("audio/device", value or "")

    # window -----------------------------------------------------------------------------------
    @property
    def geometry(self) -> QByteArray | None:
        value = self.q.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self.q.setValue("window/geometry", value)

    @property
    def recent_files(self) -> list[str]:
        value = self.q.value("recent/files", [])
        if isinstance(value, str):
            value = [value]
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            self.q.remove("recent/files")
            persist.notice(f"{self.path}: setting 'recent/files' is {persist.kind(value)}, not a list of files; "
                           "the recent list starts empty")
            return []
        return [v for v in (value or []) if v][:MAX_RECENT]

    def add_recent(self, path: str | Path) -> None:
        path = str(Path(path).resolve())
        files = [path] + [f for f in self.recent_files if f != path]
        self.q.setValue("recent/files", files[:MAX_RECENT])

    def clear_recent(self) -> None:
        self.q.setValue("recent/files", [])
