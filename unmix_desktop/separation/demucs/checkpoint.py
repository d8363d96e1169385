"""Loading official Demucs checkpoints (``.th``) and bags (``.yaml``) without running code from them.

An official ``.th`` is ``torch.save`` of ``{"klass": <class>, "args": [...], "kwargs": {...},
"state": {name: tensor}, "training_args": {...}}`` (``demucs.states.serialize_model``), named
``<signature>-<first 8 hex digits of its SHA-256>.th``. The class is a pickled *global*
(``demucs.htdemucs.HTDemucs``) that ``torch.load(weights_only=False)`` would import and could be
anything. We unpickle with torch's ``weights_only`` unpickler (an allow-list of tensor/storage
rebuilding and plain containers) plus exactly these extra globals: the model class names, mapped to
inert markers (nothing is imported or called), and ``fractions.Fraction`` (the ``segment`` of an
HTDemucs is a Fraction). Any other global (``os.system``, ``builtins.exec``...) is refused and the
file reported with one line (:class:`~unmix_desktop.errors.ModelError`). As in the reference's
``LocalRepo``, a file whose name carries a SHA-256 prefix is checked against it.

A bag is the reference's yaml: ``models: [sig, ...]``, optional ``weights: [[w per source], ...]``
per model and ``segment: seconds``; its models are the files ``<sig>-<sha8>.th`` or ``<sig>.th``
beside it.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from fractions import Fraction
from pathlib import Path

import torch

from ...errors import ModelError

#: model classes found in official checkpoints -> our name for the network
KLASSES = {
    "demucs.htdemucs.HTDemucs": "HTDemucs",
    "demucs.hdemucs.HDemucs": "HDemucs",
    "demucs.demucs.Demucs": "Demucs",
}
SUPPORTED_KLASSES = {"HTDemucs"}
MAX_BAG_MODELS = 16
_SIG_FILE = re.compile(r"^([0-9a-f]{8})-([0-9a-f]{8})$")


class _KlassMarker:
    """What a pickled model class becomes: an inert object that only knows the class's name."""

    qualified = ""


def _markers():
    out = []
    for qualified, short in KLASSES.items():
        marker = type(short, (_KlassMarker,), {"qualified": qualified})
        out.append((marker, qualified))
    return out


_MARKERS = _markers()


def sha256_prefix(path: Path, n: int = 8) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for buf in iter(lambda: fh.read(1 << 20), b""):
            sha.update(buf)
    return sha.hexdigest()[:n]


def verify_name_checksum(path: Path) -> None:
    """Raise ModelError when ``path`` is named ``<sig>-<sha8>.th`` and its SHA-256 does not match."""
    m = _SIG_FILE.match(path.stem)
    if not m:
        return
    actual = sha256_prefix(path, 8)
    if actual != m.group(2):
        raise ModelError(f"{path}: checksum mismatch (SHA-256 starts with {actual}, the name says "
                         f"{m.group(2)}): the file is damaged or incomplete")


def read_package(path: str | Path, check_name: bool = True) -> dict:
    """Safely unpickle an official checkpoint; returns ``{"klass": "HTDemucs", "args", "kwargs", "state",
    "training_args"}`` with ``klass`` as our short class name. Raises ModelError with one line."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such checkpoint file")
    if check_name:
        verify_name_checksum(path)
    try:
        with torch.serialization.safe_globals([*_MARKERS, Fraction]), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            package = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise ModelError(f"{path}: cannot read checkpoint ({exc.strerror or exc})") from None
    except Exception as exc:  # noqa: BLE001 - the unpickler raises many kinds; all mean "refused"
        text = " ".join(str(exc).split())
        m = re.search(r"GLOBAL ([\w.]+)", text)
        if m:
            reason = f"refused global {m.group(1).rstrip('.')}"
        else:
            m = re.search(r"Unsupported operand [^ ]+", text)
            reason = m.group(0) if m else f"{type(exc).__name__}: {text[:160]}"
        raise ModelError(f"{path}: not a safe Demucs checkpoint ({reason})") from None
    if not isinstance(package, dict) or not {"klass", "args", "kwargs", "state"} <= set(package):
        raise ModelError(f"{path}: not a Demucs checkpoint (expected a dict with klass/args/kwargs/state)")
    klass = package["klass"]
    if not (isinstance(klass, type) and issubclass(klass, _KlassMarker)):
        raise ModelError(f"{path}: not a Demucs checkpoint (klass is {klass!r})")
    args, kwargs, state = package["args"], package["kwargs"], package["state"]
    if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict) or not isinstance(state, dict):
        raise ModelError(f"{path}: not a Demucs checkpoint (malformed args/kwargs/state)")
    if state.get("__quantized"):
        raise ModelError(f"{path}: quantized (DiffQ) checkpoints are not supported")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise ModelError(f"{path}: not a Demucs checkpoint (state entry {key!r} is not a tensor)")
    return {"klass": klass.__name__, "qualified": klass.qualified, "args": list(args), "kwargs": dict(kwargs),
            "state": state, "training_args": package.get("training_args")}


def read_bag(path: str | Path) -> dict:
    """Parse a bag yaml: ``{"models": [Path, ...], "weights": [[...]] | None, "segment": float | None}``."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelError(f"{path}: cannot read bag ({exc.strerror or exc})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not a bag of models (invalid YAML: {type(exc).__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), list) or not data["models"]:
        raise ModelError(f"{path}: not a bag of models (no `models:` list)")
    sigs = [str(s) for s in data["models"]]
    if len(sigs) > MAX_BAG_MODELS:
        raise ModelError(f"{path}: too many models in the bag ({len(sigs)})")
    files = []
    for sig in sigs:
        if not re.fullmatch(r"[A-Za-z0-9_.]+", sig):
            raise ModelError(f"{path}: invalid model signature {sig!r}")
        found = sorted(path.parent.glob(f"{sig}-*.th")) + ([path.parent / f"{sig}.th"]
                                                           if (path.parent / f"{sig}.th").is_file() else [])
        if not found:
            raise ModelError(f"{path}: model {sig} not found beside it (expected {sig}-<sha>.th or {sig}.th)")
        files.append(found[0])
    weights = data.get("weights")
    if weights is not None:
        ok = (isinstance(weights, list) and len(weights) == len(sigs)
              and all(isinstance(w, list) and all(isinstance(v, (int, float)) for v in w) for w in weights))
        if not ok:
            raise ModelError(f"{path}: `weights:` must be one list of numbers per model")
        weights = [[float(v) for v in w] for w in weights]
    segment = data.get("segment")
    if segment is not None and (not isinstance(segment, (int, float)) or segment <= 0):
        raise ModelError(f"{path}: `segment:` must be a positive number of seconds")
    return {"models": files, "signatures": sigs, "weights": weights, "segment": segment}
