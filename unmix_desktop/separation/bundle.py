"""Our model bundle format: a folder with ``model.json`` (targets, audio/STFT settings,
architecture, card) and ``model.safetensors`` (weights, keys ``<target>.<param>``).

safetensors holds raw tensors only, so loading a bundle never executes code from it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from ..errors import ModelError
from .model import MultiTargetUMX, OpenUnmix

FORMAT = "unmix-bundle"
VERSION = 1
JSON_NAME = "model.json"
WEIGHTS_NAME = "model.safetensors"


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_bundle(folder: str | os.PathLike, model: MultiTargetUMX, card: dict | None = None) -> Path:
    """Write ``model`` as a bundle folder (created if needed). Returns the folder."""
    from safetensors.torch import save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {
        f"{target}.{key}": value.detach().cpu().contiguous()
        for target, net in model.networks.items()
        for key, value in net.state_dict().items()
    }
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": "open-unmix",
        "targets": list(model.targets),
        "sample_rate": model.sample_rate,
        "n_fft": model.n_fft,
        "n_hop": model.n_hop,
        "config": {t: net.config() for t, net in model.networks.items()},
        "card": dict(card if card is not None else model.card),
    }
    _atomic_write_bytes(folder / WEIGHTS_NAME, save(tensors))
    _atomic_write_bytes(folder / JSON_NAME, (json.dumps(meta, indent=2) + "\n").encode())
    return folder


def read_meta(folder: str | os.PathLike) -> dict:
    folder = Path(folder)
    try:
        meta = json.loads((folder / JSON_NAME).read_text())
    except FileNotFoundError as exc:
        raise ModelError(f"{folder}: not a model bundle (no {JSON_NAME})") from exc
    except (OSError, ValueError) as exc:
        raise ModelError(f"{folder / JSON_NAME}: unreadable model description ({exc})") from exc
    if meta.get("format") != FORMAT:
        raise ModelError(f"{folder / JSON_NAME}: not an {FORMAT} file")
    if meta.get("architecture") != "open-unmix":
        raise ModelError(f"{folder}: unsupported architecture {meta.get('architecture')!r}")
    return meta


def load_bundle(folder: str | os.PathLike, device: str | torch.device = "cpu") -> MultiTargetUMX:
    """Load a bundle folder (or its model.json / model.safetensors path)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    if folder.is_file():
        folder = folder.parent
    meta = read_meta(folder)
    try:
        tensors = load_file(str(folder / WEIGHTS_NAME), device=str(device))
    except (OSError, SafetensorError) as exc:
        raise ModelError(f"{folder / WEIGHTS_NAME}: cannot read weights ({exc})") from exc
    networks = {}
    for target in meta["targets"]:
        net = OpenUnmix(**meta["config"][target])
        prefix = f"{target}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelError(f"{folder}: weights do not match the description for '{target}' ({exc})") from exc
        networks[target] = net.eval()
    card = dict(meta.get("card", {}))
    card.setdefault("name", folder.name)
    return MultiTargetUMX(networks, meta["sample_rate"], meta["n_fft"], meta["n_hop"], card=card).eval()
