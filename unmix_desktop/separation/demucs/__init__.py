"""Hybrid Transformer Demucs (Rouard, Massa, Defossez, ICASSP 2023) run by unmix-desktop's own code.

Shapes: audio is ``(n, 2)`` float32 at ``model.samplerate`` (44100) on the way in and out, like the
rest of the app; inside, the networks take ``(batch, 2, samples)`` and return
``(batch, sources, 2, samples)`` torch tensors (the reference's layout).

* :func:`load_demucs` - an official ``.th`` checkpoint or a bag ``.yaml``, loaded without running code
  from it (:mod:`.checkpoint`), into a :class:`DemucsModel`;
* :func:`separate_demucs` / :func:`stream_demucs` - the reference's normalisation, split, overlap,
  shifts and bag weighting (:mod:`.apply`), whole song or streamed with bounded memory;
* :data:`KNOWN_MODELS`, :data:`ROOT_URL` - the reference's named models and download root (:mod:`.remote`).

The network code (:mod:`.network`) is ported from the reference package ``demucs`` 4.1.0 (MIT).
"""

from .apply import mix_stats, separate_demucs, stream_demucs
from .model import DemucsModel, load_demucs
from .remote import KNOWN_MODELS, ROOT_URL, url_for

__all__ = ["KNOWN_MODELS", "ROOT_URL", "DemucsModel", "load_demucs", "mix_stats", "separate_demucs",
           "stream_demucs", "url_for"]
