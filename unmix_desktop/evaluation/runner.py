"""Run separation methods over evaluation tracks and collect BSSEval scores.

A *method* is anything that turns a track into estimates. Two kinds are accepted:

* ``separate_fn(mixture (n, 2)) -> {target: (n, 2)}`` (a model; see :func:`model_separate_fn`),
  via :func:`evaluate_method`;
* ``track_fn(track) -> {target: (n, 2)}`` (may use the true sources, e.g. the oracles; see
  :func:`oracle_method`), via :func:`evaluate_methods`, which loads each track once and runs all
  methods on it.

Example (another study)::

    from unmix_desktop.evaluation import iter_tracks, evaluate_method, evaluate_methods, oracle_method
    tracks = list(iter_tracks("../shared/data/mir1k/valid", targets=["vocals", "accompaniment"], max_tracks=10))
    res = evaluate_method(tracks, lambda mix: my_separate(mix), ["vocals", "accompaniment"], name="mine")
    res.merge(evaluate_methods(tracks, {"IRM2": oracle_method("irm2")}, ["vocals", "accompaniment"]))
    print(res.table()); res.to_csv("out/scores.csv")
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Iterable, Mapping

import numpy as np

from ..errors import UnmixError
from .bsseval import SAMPLE_RATE, bsseval
from .oracles import ORACLE_LABELS, oracle
from .results import EvaluationResults
from .tracks import Track

SeparateFn = Callable[[np.ndarray], Mapping[str, np.ndarray]]
TrackFn = Callable[[Track], Mapping[str, np.ndarray]]
LogFn = Callable[[str], None]


def oracle_method(method: str) -> TrackFn:
    """A track method computing the oracle ``method`` (ibm, irm1, irm2, mwf) from the track's
    true sources (all of the track's loaded sources take part in the mask)."""
    key = method.lower()
    if key not in ORACLE_LABELS:
        raise ValueError(f"unknown oracle '{method}' (choose from {', '.join(ORACLE_LABELS)})")

    def run(track: Track) -> Mapping[str, np.ndarray]:
        return oracle(key, track.sources, track.mixture)

    run.__name__ = f"oracle_{key}"
    return run


def model_separate_fn(model, settings=None, targets: list[str] | None = None,
                      threads: int | None = None, device=None) -> SeparateFn:
    """``separate_fn`` for a :class:`~unmix_desktop.separation.base.SpectrogramModel`, through the
    song pipeline's :func:`~unmix_desktop.separation.pipeline.separate_audio` (same model options and
    thread policy as the app; torch's thread count is restored after each track).

    "accompaniment" is produced as the residual (mixture - other stems) when the model does not
    estimate it itself.
    """
    from ..separation.pipeline import separate_audio
    from ..separation.settings import SeparationSettings

    if settings is None:
        settings = SeparationSettings()
    if targets and "accompaniment" in targets and "accompaniment" not in model.targets:
        settings = dataclasses.replace(settings, residual=True)

    def run(mixture: np.ndarray) -> Mapping[str, np.ndarray]:
        return separate_audio(model, mixture, settings, threads=threads, device=device)

    return run


def evaluate_methods(
    tracks: Iterable[Track],
    methods: Mapping[str, TrackFn],
    targets: list[str] | None = None,
    win: int = SAMPLE_RATE,
    hop: int = SAMPLE_RATE,
    log: LogFn | None = None,
    results: EvaluationResults | None = None,
    projection: str = "track",
) -> EvaluationResults:
    """Score every method on every track (BSSEval v4, 1-s frames, median over frames).

    ``targets``: evaluated targets (default: every source of each track). ``projection``: see
    :mod:`.bsseval` ("track", or "frame" for museval's exact numbers). A method that gives no
    estimate for one of them raises :class:`UnmixError`. ``log`` receives one progress line per
    (track, method). Tracks may be a generator: each is used for all methods, then dropped.
    """
    results = results if results is not None else EvaluationResults()
    results.meta.setdefault("win", win)
    results.meta.setdefault("hop", hop)
    results.meta.setdefault("projection", projection)
    tracks_seen = 0
    for i, track in enumerate(tracks):
        tracks_seen += 1
        tgts = list(targets) if targets else list(track.sources)
        missing = [t for t in tgts if t not in track.sources]
        if missing:
            raise UnmixError(f"{track.path or track.name}: no reference for target(s) {', '.join(missing)}")
        refs = {t: track.sources[t] for t in tgts}
        for name, fn in methods.items():
            t0 = time.perf_counter()
            estimates = fn(track)
            t1 = time.perf_counter()
            lacking = [t for t in tgts if t not in estimates]
            if lacking:
                raise UnmixError(f"method '{name}' gave no estimate for {', '.join(lacking)} "
                                 f"(it gave: {', '.join(estimates) or 'nothing'})")
            scores = bsseval(refs, {t: estimates[t] for t in tgts}, win=win, hop=hop, targets=tgts,
                             projection=projection)
            t2 = time.perf_counter()
            results.add(name, track.name, scores, duration=track.duration, separate_s=t1 - t0, eval_s=t2 - t1)
            if log:
                med = scores.medians
                parts = "  ".join(f"{t} SDR {med[t]['SDR']:6.2f}" for t in tgts)
                log(f"[{i + 1}] {track.name} ({track.duration:.1f} s) {name}: {parts}  "
                    f"(separate {t1 - t0:.1f} s, bsseval {t2 - t1:.1f} s)")
    if tracks_seen == 0:
        raise UnmixError("no tracks to evaluate")
    return results


def evaluate_method(
    tracks: Iterable[Track],
    separate_fn: SeparateFn,
    targets: list[str] | None = None,
    name: str = "model",
    win: int = SAMPLE_RATE,
    hop: int = SAMPLE_RATE,
    log: LogFn | None = None,
    projection: str = "track",
) -> EvaluationResults:
    """Score ``separate_fn(mixture) -> {target: (n, 2)}`` on ``tracks`` (see :func:`evaluate_methods`)."""
    return evaluate_methods(tracks, {name: lambda tr: separate_fn(tr.mixture)}, targets, win, hop, log,
                            projection=projection)
