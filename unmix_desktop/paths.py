"""Where settings, cache and user models live (platformdirs), and the bundled resources."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "unmix-desktop"


def _env_dir(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    path = Path(value) if value else default
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """User data (installed models). Override with UNMIX_DATA_DIR."""
    return _env_dir("UNMIX_DATA_DIR", Path(platformdirs.user_data_dir(APP_NAME)))


def cache_dir() -> Path:
    """Separation cache. Override with UNMIX_CACHE_DIR."""
    return _env_dir("UNMIX_CACHE_DIR", Path(platformdirs.user_cache_dir(APP_NAME)))


def config_dir() -> Path:
    """Settings. Override with UNMIX_CONFIG_DIR."""
    return _env_dir("UNMIX_CONFIG_DIR", Path(platformdirs.user_config_dir(APP_NAME)))


def user_models_dir() -> Path:
    path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def resources_dir() -> Path:
    """The bundled ``resources/`` folder (next to the package, or inside a PyInstaller bundle)."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def bundled_models_dir() -> Path:
    return resources_dir() / "models"
