"""Official open-unmix checkpoints: safe loading, import into our bundle format, download.

The official per-target files (``vocals-b62c91ce.pth`` …) are plain ``state_dict`` pickles of
tensors; they are read with ``torch.load(weights_only=True)``, which refuses anything that is not
a tensor container, so no code from the file runs. The 8 hex digits in the file name are the
start of the file's SHA-256, checked after every download (as torch.hub does).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.request
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..errors import Cancelled, ModelError
from ..paths import user_models_dir
from .bundle import save_bundle
from .model import MultiTargetUMX, OpenUnmix

#: Official pretrained models (Stöter et al.), per target, with their hash-suffixed file names.
OFFICIAL_MODELS: dict[str, dict] = {
    "umxhq": {
        "base_url": "https://zenodo.org/records/3370489/files/",
        "files": {
            "vocals": "vocals-b62c91ce.pth",
            "drums": "drums-9619578f.pth",
            "bass": "bass-8d85a5bd.pth",
            "other": "other-b52fbbf7.pth",
        },
        "description": "open-unmix UMX-HQ (MUSDB18-HQ), official weights, MIT",
    },
}
_HASH_RE = re.compile(r"-([0-9a-f]{8,64})\.pth?$")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def config_from_state_dict(state: dict) -> dict:
    """Infer OpenUnmix(...) arguments from an official state_dict's shapes.

    Raises :class:`ModelError` (one line) when a tensor is missing or has a shape no open-unmix
    network has.
    """
    try:
        fc1, input_mean, output_mean = state["fc1.weight"], state["input_mean"], state["output_mean"]
    except KeyError as exc:
        raise ModelError(f"not an open-unmix checkpoint (missing {exc.args[0]})") from None
    if fc1.ndim != 2 or input_mean.ndim != 1 or output_mean.ndim != 1:
        raise ModelError("not an open-unmix checkpoint (fc1.weight must be 2-D, input_mean and output_mean 1-D; "
                         f"got {tuple(fc1.shape)}, {tuple(input_mean.shape)}, {tuple(output_mean.shape)})")
    hidden, in_features = fc1.shape
    max_bin, nb_bins = input_mean.shape[0], output_mean.shape[0]
    layers = len([k for k in state if re.fullmatch(r"lstm\.weight_ih_l\d+", k)])
    if min(hidden, in_features, max_bin, nb_bins, layers) <= 0 or in_features % max_bin or max_bin > nb_bins:
        raise ModelError(f"not an open-unmix checkpoint (inconsistent shapes: fc1.weight {tuple(fc1.shape)}, "
                         f"input_mean {tuple(input_mean.shape)}, output_mean {tuple(output_mean.shape)}, "
                         f"{layers} LSTM layers)")
    unidirectional = not any(k.endswith("_reverse") for k in state)
    return {"nb_bins": int(nb_bins), "nb_channels": int(in_features // max_bin), "hidden_size": int(hidden),
            "nb_layers": layers, "unidirectional": unidirectional, "max_bin": int(max_bin)}


def load_state_dict(path: str | os.PathLike) -> dict:
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise ModelError(f"{path}: file not found") from None
    except OSError as exc:
        raise ModelError(f"{path}: {exc.strerror or _first_line(exc)}") from None
    if os.path.isdir(path):
        raise ModelError(f"{path}: is a folder, not a .pth checkpoint")
    if size == 0:
        raise ModelError(f"{path}: file is empty")
    try:
        state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{path}: refused or unreadable checkpoint ({_first_line(exc)})") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path}: not a state_dict of tensors")
    return state


def load_official_network(path: str | os.PathLike) -> OpenUnmix:
    state = load_state_dict(path)
    try:
        config = config_from_state_dict(state)
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from None
    try:
        net = OpenUnmix(**config)
        net.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise ModelError(f"{path}: does not match the open-unmix layout ({_first_line(exc)})") from exc
    return net.eval()


def target_of(path: str | os.PathLike) -> str:
    """'vocals-b62c91ce.pth' -> 'vocals'."""
    name = Path(path).name
    return _HASH_RE.sub("", name).removesuffix(".pth").removesuffix(".pt")


def load_official_checkpoint(path: str | os.PathLike) -> MultiTargetUMX:
    """One official .pth file -> a one-target model named after the file."""
    target = target_of(path)
    return MultiTargetUMX({target: load_official_network(path)},
                          card={"name": Path(path).stem, "description": f"open-unmix checkpoint {Path(path).name}"})


def import_official(paths: Sequence[str | os.PathLike], name: str, dest_root: Path | None = None,
                    description: str = "") -> Path:
    """Convert official per-target checkpoints into one bundle under the user models dir."""
    networks = {target_of(p): load_official_network(p) for p in paths}
    model = MultiTargetUMX(networks, card={"name": name, "description": description or f"imported {name}",
                                           "source": [Path(p).name for p in paths]})
    return save_bundle((dest_root or user_models_dir()) / name, model)


def verify_hash(path: Path, name: str | None = None) -> None:
    """Check that the file's SHA-256 starts with the hex digits in ``name`` (default: its own name)."""
    name = name or path.name
    match = _HASH_RE.search(name)
    if not match:
        return
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if not digest.startswith(match.group(1)):
        raise ModelError(f"{name}: checksum mismatch (expected {match.group(1)}..., got {digest[:8]}...)")


def download(url: str, dest: Path, progress: Callable[[float], None] | None = None,
             cancel=None, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` via a temporary file; verify the name's hash; then rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0)
            done = 0
            while chunk := resp.read(1 << 16):
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                fh.write(chunk)
                done += len(chunk)
                if progress and total:
                    progress(done / total)
        verify_hash(tmp, dest.name)
        os.replace(tmp, dest)
    except (OSError, urllib.error.URLError) as exc:
        raise ModelError(f"{url}: download failed ({exc})") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def download_official(model: str = "umxhq", base_url: str | None = None, dest_root: Path | None = None,
                      targets: list[str] | None = None, progress: Callable[[str, float], None] | None = None,
                      cancel=None) -> Path:
    """Fetch an official model's checkpoints and install it as a bundle named ``model``."""
    if model not in OFFICIAL_MODELS:
        raise ModelError(f"unknown official model '{model}' (known: {', '.join(OFFICIAL_MODELS)})")
    spec = OFFICIAL_MODELS[model]
    base = (base_url or spec["base_url"]).rstrip("/") + "/"
    root = dest_root or user_models_dir()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=root) as tmpdir:
        files = []
        for target, filename in spec["files"].items():
            if targets and target not in targets:
                continue
            cb = (lambda f, t=target: progress(t, f)) if progress else None
            files.append(download(base + filename, Path(tmpdir) / filename, cb, cancel))
        return import_official(files, model, root, spec["description"])
