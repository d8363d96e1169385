"""Quick scores for training experiments (the full BSSEval study lives in ``evaluation/``).

``global_sdr``: ``10 log10(|s|^2 / |s - s_hat|^2)`` over the whole track (all channels), the
"quick SDR" used to compare pilot runs; :func:`score_model` runs the app's real
:class:`~unmix_desktop.separation.separator.Separator` (through the song pipeline's
:func:`~unmix_desktop.separation.pipeline.separate_audio`) on evaluation tracks and returns per-track
global SDRs and, optionally, BSSEval v4 medians (museval, via ``evaluation.bsseval``).
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, Mapping

import numpy as np


def global_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)[: ref.shape[0]]
    if est.shape[0] < ref.shape[0]:
        est = np.pad(est, [(0, ref.shape[0] - est.shape[0])] + [(0, 0)] * (ref.ndim - 1))
    num = float(np.sum(ref**2))
    den = float(np.sum((ref - est) ** 2))
    return 10.0 * np.log10((num + 1e-12) / (den + 1e-12))


def score_estimates(track, estimates: Mapping[str, np.ndarray], targets: list[str], bss: bool = False) -> dict:
    """``{target: {"gSDR": ..., ["SDR", "SIR", "ISR", "SAR"]}}`` for one track."""
    out = {t: {"gSDR": global_sdr(track.sources[t], estimates[t])} for t in targets}
    if bss:
        from ..evaluation.bsseval import bsseval

        med = bsseval({t: track.sources[t] for t in targets}, {t: estimates[t] for t in targets},
                      targets=targets).medians
        for t in targets:
            out[t].update(med[t])
    return out


def score_model(model, tracks: Iterable, targets: list[str] = ("vocals", "accompaniment"), settings=None,
                bss: bool = False, threads: int | None = 1,
                transform: Callable[[object, dict], dict] | None = None) -> dict:
    """Separate each track with ``model`` and score it. ``transform(track, stems) -> stems`` may
    change the estimates first (e.g. a blend). Returns ``{"tracks": {name: scores}, "median":
    {target: {metric: median}}, "seconds": ...}``."""
    from ..separation.pipeline import separate_audio
    from ..separation.settings import SeparationSettings

    settings = settings or SeparationSettings()
    t0 = time.perf_counter()
    per_track = {}
    for track in tracks:
        stems = separate_audio(model, track.mixture, settings, threads=threads, device="cpu")
        if transform is not None:
            stems = transform(track, stems)
        per_track[track.name] = score_estimates(track, stems, list(targets), bss)
    return {"tracks": per_track, "median": median_scores(per_track), "seconds": round(time.perf_counter() - t0, 1)}


def median_scores(per_track: Mapping[str, Mapping[str, Mapping[str, float]]]) -> dict:
    out: dict[str, dict[str, float]] = {}
    for scores in per_track.values():
        for target, metrics in scores.items():
            for m, v in metrics.items():
                out.setdefault(target, {}).setdefault(m, []).append(v)
    return {t: {m: float(np.nanmedian(v)) for m, v in ms.items()} for t, ms in out.items()}
