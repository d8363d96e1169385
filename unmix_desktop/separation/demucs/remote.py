"""The pretrained Demucs models we know by name, and where they are downloaded from.

Taken from the reference package ``demucs`` 4.1.0 (MIT licence, Copyright (c) Meta Platforms, Inc.
and affiliates): ``demucs/pretrained.py`` (``ROOT_URL``) and ``demucs/remote/files.txt`` (a file's
folder under the root and its name ``<signature>-<first 8 hex digits of its SHA-256>.th``) and
``demucs/remote/<name>.yaml`` (the models of each named bag, their per-source ``weights`` and an
optional ``segment``). The model weights themselves are MIT too (README of facebookresearch/demucs).
"""

from __future__ import annotations

ROOT_URL = "https://dl.fbaipublicfiles.com/demucs/"

SOURCES_4 = ["drums", "bass", "other", "vocals"]
SOURCES_6 = ["drums", "bass", "other", "vocals", "guitar", "piano"]

#: ``files.txt``: signature -> path under ROOT_URL (only the models of the bags below)
FILES = {
    "955717e8": "hybrid_transformer/955717e8-8726e21a.th",
    "f7e0c4bc": "hybrid_transformer/f7e0c4bc-ba3fe64a.th",
    "d12395a8": "hybrid_transformer/d12395a8-e57c48e6.th",
    "92cfc3b6": "hybrid_transformer/92cfc3b6-ef3bcb9c.th",
    "04573f0d": "hybrid_transformer/04573f0d-f3cf25b2.th",
    "75fc33f5": "hybrid_transformer/75fc33f5-1941ce65.th",
    "5c90dfd2": "hybrid_transformer/5c90dfd2-34c22ccb.th",
}

#: name -> what the reference's yaml says, plus what we know about it. ``files`` are the file names
#: (``<sig>-<sha8>.th``) in the bag's order; ``bag`` is the yaml's content when it is more than one
#: model or has weights/segment (``None`` for a single model with default settings); ``size_mb`` is the
#: approximate download size; ``supported`` says whether unmix-desktop's own network code runs it.
KNOWN_MODELS: dict[str, dict] = {
    "htdemucs": {
        "description": "Hybrid Transformer Demucs, 4 sources (Rouard, Massa, Defossez, ICASSP 2023)",
        "files": ["955717e8-8726e21a.th"],
        "sources": SOURCES_4,
        "bag": None,
        "size_mb": 80,
        "architecture": "htdemucs",
        "supported": True,
    },
    "htdemucs_ft": {
        "description": "Hybrid Transformer Demucs fine-tuned per source: a bag of 4 models, "
                       "each one used for its own source (4x slower than htdemucs, slightly better)",
        "files": ["f7e0c4bc-ba3fe64a.th", "d12395a8-e57c48e6.th", "92cfc3b6-ef3bcb9c.th",
                  "04573f0d-f3cf25b2.th"],
        "sources": SOURCES_4,
        "bag": {"models": ["f7e0c4bc", "d12395a8", "92cfc3b6", "04573f0d"],
                "weights": [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0],
                            [0.0, 0.0, 0.0, 1.0]]},
        "size_mb": 320,
        "architecture": "htdemucs",
        "supported": True,
    },
    "htdemucs_6s": {
        "description": "Hybrid Transformer Demucs, 6 sources (adds guitar and piano; piano is weak)",
        "files": ["5c90dfd2-34c22ccb.th"],
        "sources": SOURCES_6,
        "bag": None,
        "size_mb": 55,
        "architecture": "htdemucs",
        "supported": True,
    },
    "hdemucs_mmi": {
        "description": "Hybrid Demucs v3 retrained on MUSDB + 800 songs",
        "files": ["75fc33f5-1941ce65.th"],
        "sources": SOURCES_4,
        "bag": {"models": ["75fc33f5"], "segment": 44},
        "size_mb": 84,
        "architecture": "hdemucs",
        "supported": False,  # HDemucs (with its BLSTM/local-attention layers) is not ported yet
    },
}


def url_for(file_name: str, root: str = ROOT_URL) -> str:
    """Download URL of a ``<sig>-<sha8>.th`` file (``root`` may be overridden, e.g. for tests)."""
    sig = file_name.split("-", 1)[0]
    rel = FILES.get(sig)
    if rel is None or not rel.endswith(file_name):
        raise KeyError(file_name)
    return root.rstrip("/") + "/" + rel
