"""Our model bundle format: a folder with ``model.json`` (targets, audio/STFT settings,
architecture, card) and ``model.safetensors`` (weights, keys ``<target>.<param>``).

safetensors holds raw tensors only, so loading a bundle never executes code from it.

Everything read from a bundle is checked before use (:func:`read_meta`, :func:`check_weights`): a
folder with a damaged or foreign ``model.json`` or weights file gives one :class:`ModelError` line
naming the file and the reason, never a traceback. New bundles record the weights' size and
SHA-256 in ``model.json``; :func:`load_bundle` verifies them when present.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import cast

import torch

from ..atomic import atomic_write_bytes
from ..errors import ModelError
from .model import MultiTargetUMX, OpenUnmix

FORMAT = "unmix-bundle"
VERSION = 1
JSON_NAME = "model.json"
WEIGHTS_NAME = "model.safetensors"
#: Longest model name (UTF-8 bytes): room for temporary-file prefixes within a 255-byte file name.
MAX_NAME_BYTES = 100
#: OpenUnmix(...) arguments a bundle may set, with the range each may take (sanity bounds: a
#: damaged model.json must not make the loader allocate gigabytes).
_CONFIG_LIMITS = {"nb_bins": (1, 1 << 15), "nb_channels": (1, 8), "hidden_size": (1, 4096), "nb_layers": (1, 16),
                  "max_bin": (1, 1 << 15)}


def validate_model_name(name: str) -> str:
    """Check a name for a new user model (a folder name under the user models folder); returns it.

    Refused with one :class:`ModelError` line: an empty name, ``.``/``..``, a path (separators,
    absolute), a hidden name (leading ``.``: the app's own temporary folders), control
    characters, or more than :data:`MAX_NAME_BYTES` bytes."""
    if not isinstance(name, str) or not name.strip():
        raise ModelError(f"invalid model name {name!r}: it is empty")
    if "/" in name or "\\" in name or (os.sep in name) or (os.altsep and os.altsep in name) or os.path.isabs(name):
        raise ModelError(f"invalid model name {name!r}: a name, not a path (no / or \\)")
    if name.startswith("."):
        raise ModelError(f"invalid model name {name!r}: it may not start with '.'")
    if name != name.strip() or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ModelError(f"invalid model name {name!r}: no leading/trailing spaces or control characters")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise ModelError(f"invalid model name {name[:20]!r}...: longer than {MAX_NAME_BYTES} bytes")
    return name


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
        "config": {t: cast(OpenUnmix, net).config() for t, net in model.networks.items()},
        "card": dict(card if card is not None else model.card),
    }
    weights = save(tensors)
    meta["weights"] = {"size": len(weights), "sha256": hashlib.sha256(weights).hexdigest()}
    atomic_write_bytes(folder / WEIGHTS_NAME, weights)
    atomic_write_bytes(folder / JSON_NAME, (json.dumps(meta, indent=2) + "\n").encode())
    return folder


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _config_problem(config) -> str | None:
    if not isinstance(config, dict):
        return "not an object"
    for key, value in config.items():
        if key in _CONFIG_LIMITS:
            lo, hi = _CONFIG_LIMITS[key]
            if key == "max_bin" and value is None:
                continue
            if not (isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi):
                return f"{key} must be an integer in {lo}..{hi}, not {value!r}"
        elif key == "unidirectional":
            if not isinstance(value, bool):
                return f"unidirectional must be true or false, not {value!r}"
        elif key == "dropout":
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1):
                return f"dropout must be a number in [0, 1), not {value!r}"
        else:
            return f"unknown setting {key!r}"
    if config.get("max_bin") and config["max_bin"] > config.get("nb_bins", 2049):
        return "max_bin is larger than nb_bins"
    return None


def read_meta(folder: str | os.PathLike) -> dict:
    """Read and check a bundle's ``model.json``; raises :class:`ModelError` (``PATH: reason``)."""
    folder = Path(folder)
    path = check_inside(folder, JSON_NAME)
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"{folder}: not a model bundle (no {JSON_NAME})") from exc
    except IsADirectoryError as exc:
        raise ModelError(f"{path}: is a folder, not a model description") from exc
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ModelError(f"{path}: unreadable model description (not valid JSON: {str(exc)[:120]})") from exc
    if not isinstance(meta, dict):
        kind = {list: "list", str: "string", int: "number", float: "number", bool: "true/false"}.get(type(meta), "null")
        raise ModelError(f"{path}: not a model description (a JSON {kind}, expected an object)")
    if meta.get("format") != FORMAT:
        raise ModelError(f"{path}: not an {FORMAT} file")
    if not isinstance(meta.get("version", VERSION), int) or meta.get("version", VERSION) > VERSION:
        raise ModelError(f"{path}: bundle version {meta.get('version')!r} is newer than this program reads ({VERSION})")
    if meta.get("architecture") != "open-unmix":
        raise ModelError(f"{folder}: unsupported architecture {meta.get('architecture')!r}")
    targets = meta.get("targets")
    if (not isinstance(targets, list) or not targets or not all(isinstance(t, str) and t for t in targets)
            or len(set(targets)) != len(targets)):
        raise ModelError(f"{path}: 'targets' must be a non-empty list of distinct names, not {targets!r}"[:300])
    for key in ("sample_rate", "n_fft", "n_hop"):
        if not _positive_int(meta.get(key)):
            raise ModelError(f"{path}: '{key}' must be a positive integer, not {meta.get(key)!r}"[:300])
    config = meta.get("config")
    if not isinstance(config, dict):
        raise ModelError(f"{path}: 'config' must map each target to its network settings")
    for target in targets:
        if target not in config:
            raise ModelError(f"{path}: no network settings ('config') for target '{target}'")
        problem = _config_problem(config[target])
        if problem:
            raise ModelError(f"{path}: settings of '{target}': {problem}"[:300])
        if config[target].get("nb_bins", 2049) != meta["n_fft"] // 2 + 1:
            raise ModelError(f"{path}: '{target}' has nb_bins {config[target].get('nb_bins', 2049)}, "
                             f"but n_fft {meta['n_fft']} gives {meta['n_fft'] // 2 + 1}")
    if "card" in meta and not isinstance(meta["card"], dict):
        raise ModelError(f"{path}: 'card' must be an object")
    weights = meta.get("weights")
    if weights is not None and not (isinstance(weights, dict) and _positive_int(weights.get("size"))
                                    and isinstance(weights.get("sha256"), str)):
        raise ModelError(f"{path}: 'weights' must hold the weights file's size and sha256")
    return meta


def check_inside(folder: str | os.PathLike, name: str) -> Path:
    """``folder/name``, refused (:class:`ModelError`) when it is a link that leads out of the folder:
    a bundle is one folder, and its files are what was verified there."""
    path = Path(folder) / name
    if path.is_symlink():
        try:
            target = path.resolve(strict=False)
            inside = target.is_relative_to(Path(folder).resolve())
        except (OSError, RuntimeError):  # a link loop
            inside = False
        if not inside:
            raise ModelError(f"{path}: is a link out of the model folder (refused: copy the file into the folder)")
    return path


def check_weights(folder: str | os.PathLike, meta: dict) -> list[str]:
    """Cheap check of ``model.safetensors`` (its header only, no tensor data): the file exists (not
    a link out of the folder), its header parses, its tensors fill the file exactly and every
    target has tensors. Returns the tensor names; raises :class:`ModelError` (``PATH: reason``)."""
    path = check_inside(folder, WEIGHTS_NAME)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ModelError(f"{path}: not a file")
        with open(path, "rb") as fh:
            head = fh.read(8)
            n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
            if n < 2 or n > min(size - 8, 100 << 20):
                raise ModelError(f"{path}: cannot read weights (not a safetensors file)")
            header = json.loads(fh.read(n).decode("utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: weights file is missing") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read weights ({exc.strerror or exc})") from exc
    except (ValueError, RecursionError) as exc:
        raise ModelError(f"{path}: cannot read weights (damaged safetensors header)") from exc
    if not isinstance(header, dict):
        raise ModelError(f"{path}: cannot read weights (damaged safetensors header)")
    end = 0
    names = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
                and 0 <= offsets[0] <= offsets[1]):
            raise ModelError(f"{path}: cannot read weights (damaged safetensors header)")
        end = max(end, offsets[1])
        names.append(name)
    if 8 + n + end != size:
        raise ModelError(f"{path}: cannot read weights (truncated or damaged: {size} bytes, "
                         f"the header describes {8 + n + end})")
    weights = meta.get("weights")
    if weights and weights["size"] != size:
        raise ModelError(f"{path}: weights file is {size} bytes, the description says {weights['size']}")
    for target in meta["targets"]:
        if not any(k.startswith(target + ".") for k in names):
            raise ModelError(f"{path}: no weights for target '{target}'")
    return names


def load_bundle(folder: str | os.PathLike, device: str | torch.device = "cpu") -> MultiTargetUMX:
    """Load a bundle folder (or its model.json / model.safetensors path)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    folder = Path(folder)
    if folder.is_file():
        folder = folder.parent
    meta = read_meta(folder)
    check_weights(folder, meta)
    path = folder / WEIGHTS_NAME
    try:
        data = path.read_bytes()
        expected = (meta.get("weights") or {}).get("sha256")
        if expected and hashlib.sha256(data).hexdigest() != expected:
            raise ModelError(f"{path}: weights are damaged (SHA-256 does not match {JSON_NAME})")
        tensors = load(data)
    except (OSError, SafetensorError) as exc:
        raise ModelError(f"{path}: cannot read weights ({exc})") from exc
    networks = {}
    for target in meta["targets"]:
        try:
            net = OpenUnmix(**meta["config"][target])
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ModelError(f"{folder}: cannot build the network for '{target}' ({exc})") from exc
        prefix = f"{target}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelError(f"{folder}: weights do not match the description for '{target}' "
                             f"({str(exc).splitlines()[0][:200]})") from exc
        networks[target] = net.eval()
    card = dict(meta.get("card", {}))
    card.setdefault("name", folder.name)
    model = MultiTargetUMX(networks, meta["sample_rate"], meta["n_fft"], meta["n_hop"], card=card).eval()
    try:
        return model.to(device)
    except (RuntimeError, AssertionError) as exc:  # torch: an unknown or unavailable device
        raise ModelError(f"cannot use device {str(device)!r} ({str(exc).splitlines()[0][:200]})") from exc
