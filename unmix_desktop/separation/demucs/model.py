"""A loaded Demucs model or bag of models (:func:`load_demucs`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, cast

import torch

from ...errors import ModelError
from . import checkpoint
from .network import HTDemucs, build_network


class DemucsModel:
    """One Demucs network or a bag of them, ready for :func:`~.separate_demucs`.

    ``nets`` are the networks (eval mode, no gradients), ``weights[i][k]`` the weight of net ``i`` for
    source ``k`` (all ones unless the bag's yaml says otherwise), ``sources`` the source names in the
    networks' output order, ``samplerate`` 44100 and ``audio_channels`` 2 for every official model.
    ``card`` describes it (name, description, sources, architecture, files, licence...).
    """

    def __init__(self, nets: list[torch.nn.Module], weights: list[list[float]] | None, card: dict):
        first = cast(Any, nets[0])  # HTDemucs-like: sources, samplerate, audio_channels
        for net in cast(list[Any], nets):
            if (list(net.sources) != list(first.sources) or net.samplerate != first.samplerate
                    or net.audio_channels != first.audio_channels):
                raise ValueError("the models of a bag must have the same sources, rate and channels")
        self.nets = nets
        self.sources: list[str] = list(first.sources)
        self.samplerate: int = int(first.samplerate)
        self.audio_channels: int = int(first.audio_channels)
        if weights is None:
            weights = [[1.0] * len(self.sources) for _ in nets]
        if len(weights) != len(nets) or any(len(w) != len(self.sources) for w in weights):
            raise ValueError("bag weights must be one list per model with one weight per source")
        totals = [sum(w[k] for w in weights) for k in range(len(self.sources))]
        if any(t == 0 for t in totals):
            raise ValueError("a source has zero total weight in the bag")
        self.weights = [list(map(float, w)) for w in weights]
        self.card = card

    @property
    def max_shift(self) -> int:
        """Largest random shift of ``shifts`` (the reference's ``int(0.5 * samplerate)``)."""
        return int(0.5 * self.samplerate)

    def to(self, device) -> DemucsModel:
        for net in self.nets:
            net.to(device)
        return self

    def __repr__(self) -> str:
        return f"DemucsModel({self.card.get('name')!r}, {len(self.nets)} net(s), sources={self.sources})"


def _net_from_file(path: Path, check_name: bool = True) -> tuple[torch.nn.Module, dict]:
    package = checkpoint.read_package(path, check_name=check_name)
    klass = package["klass"]
    if klass not in checkpoint.SUPPORTED_KLASSES:
        raise ModelError(f"{path}: {package['qualified']} models are not supported (only HTDemucs)")
    kwargs = package["kwargs"]
    sources = kwargs.get("sources", package["args"][0] if package["args"] else None)
    if not isinstance(sources, list) or not sources or not all(isinstance(s, str) for s in sources):
        raise ModelError(f"{path}: not a Demucs checkpoint (no list of sources)")
    try:
        net = build_network(klass, package["args"], kwargs)
    except (ValueError, TypeError, AssertionError) as exc:
        raise ModelError(f"{path}: unsupported model configuration ({exc})") from None
    try:
        net.load_state_dict(package["state"], strict=True)
    except RuntimeError as exc:
        first = " ".join(str(exc).split())[:200]
        raise ModelError(f"{path}: weights do not match the model configuration ({first})") from None
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    if net.audio_channels != 2:
        raise ModelError(f"{path}: only stereo models are supported (audio_channels={net.audio_channels})")
    info = {"file": path.name, "klass": package["qualified"],
            "segment": float(cast(float, net.segment)), "parameters": sum(p.numel() for p in net.parameters())}
    return net, info


def load_demucs(path: str | Path) -> DemucsModel:
    """Load an official Demucs checkpoint (``.th``) or a bag of them (``.yaml`` with the files beside it).

    Nothing in the files is executed (:mod:`.checkpoint`). Raises :class:`ModelError` with one line
    ``"PATH: reason"`` for a missing, damaged, unsafe or unsupported file.
    """
    path = Path(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        bag = checkpoint.read_bag(path)
        nets, infos = [], []
        for file in bag["models"]:
            net, info = _net_from_file(file)
            nets.append(net)
            infos.append(info)
        weights = bag["weights"]
        segment = bag["segment"]
        if segment is not None:
            for net in nets:  # BagOfModels: override the segment unless it would lengthen an HTDemucs's
                if not isinstance(net, HTDemucs) or segment <= net.segment:
                    net.segment = segment
        name = path.stem
    else:
        net, info = _net_from_file(path)
        nets, infos, weights = [net], [info], None
        m = checkpoint._SIG_FILE.match(path.stem)
        name = m.group(1) if m else path.stem
    htnets = cast(list[Any], nets)  # HTDemucs-like: sources, segment, samplerate
    try:
        card = {
            "name": name,
            "description": _describe(name, nets),
            "sources": list(htnets[0].sources),
            "architecture": "htdemucs",
            "models": len(nets),
            "weights": weights,
            "files": [i["file"] for i in infos],
            "segment_s": float(min(n.segment for n in htnets)),
            "parameters": sum(i["parameters"] for i in infos),
            "samplerate": int(htnets[0].samplerate),
            "license": "MIT (code and weights: facebookresearch/demucs)",
            "paper": "Rouard, Massa, Defossez, 'Hybrid Transformers for Music Source Separation', ICASSP 2023",
            "path": str(path),
        }
        return DemucsModel(nets, weights, card)
    except ValueError as exc:
        raise ModelError(f"{path}: {exc}") from None


def _describe(name: str, nets) -> str:
    from .remote import KNOWN_MODELS

    known = KNOWN_MODELS.get(name)
    if known:
        return known["description"]
    n = len(nets[0].sources)
    kind = f"bag of {len(nets)} Hybrid Transformer Demucs models" if len(nets) > 1 else \
        "Hybrid Transformer Demucs"
    return f"{kind}, {n} sources"


def segment_length(net) -> int:
    """Samples per segment in the reference's split (``int(samplerate * segment)``)."""
    return int(net.samplerate * net.segment)


def n_chunks(length: int, stride: int) -> int:
    return max(0, math.ceil(length / stride))
