"""Where settings, cache and user models live (platformdirs), and the bundled resources."""

from __future__ import annotations

import importlib.resources
import os
import sys
from pathlib import Path

import platformdirs

from .errors import UnmixError

APP_NAME = "unmix-desktop"


def _env_dir(var: str, default: Path, required: bool = True) -> Path:
    """The folder named by ``$var`` (else ``default``), created if missing.

    When it cannot be created (an unwritable home, a read-only disk): one-line
    :class:`UnmixError` if ``required``, else the path is returned as it is, for readers that
    treat a missing folder as empty (writers then fail with the OS reason, naming the path).
    """
    value = os.environ.get(var)
    path = Path(value) if value else default
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if required:
            raise UnmixError(f"{path}: cannot create this folder ({exc.strerror or exc}); "
                             f"set {var} to a writable folder") from None
    return path


def data_dir() -> Path:
    """User data (installed models). Override with UNMIX_DATA_DIR. May not exist when it cannot be created."""
    return _env_dir("UNMIX_DATA_DIR", Path(platformdirs.user_data_dir(APP_NAME)), required=False)


def cache_dir() -> Path:
    """Separation cache. Override with UNMIX_CACHE_DIR."""
    return _env_dir("UNMIX_CACHE_DIR", Path(platformdirs.user_cache_dir(APP_NAME)))


def config_dir() -> Path:
    """Settings. Override with UNMIX_CONFIG_DIR."""
    return _env_dir("UNMIX_CONFIG_DIR", Path(platformdirs.user_config_dir(APP_NAME)))


def user_models_dir() -> Path:
    """``<data>/models``; may not exist when the data folder is not writable (then no user models)."""
    path = data_dir() / "models"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    return path


def resources_dir() -> Path:
    """The bundled resources (models, icons, desktop entry).

    In order: a PyInstaller bundle's ``sys._MEIPASS/resources``; the package's own
    ``unmix_desktop/resources/`` (a wheel install: setup.py copies the checkout's ``resources/``
    there), found through ``importlib.resources``; the ``resources/`` folder next to the package
    (a source checkout or an editable install)."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    try:
        packaged = importlib.resources.files(__package__) / "resources"
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - loaded without its package
        packaged = None
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "resources"


def bundled_models_dir() -> Path:
    return resources_dir() / "models"


def folder_size(folder: Path) -> int:
    """Bytes of the plain files below ``folder`` (unreadable ones count 0)."""
    total = 0
    for p in Path(folder).rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            pass
    return total
