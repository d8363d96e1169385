"""BSSEval v4 evaluation of separation methods and the tutorial's oracle baselines.

Public API::

    load_track_folder(dir, targets=None) -> Track          # mixture + true sources, (n, 2) 44.1 kHz
    iter_tracks(root, targets=None, max_tracks=None)       # Track generator over DIR/<track>/
    bsseval(references, estimates) -> TrackScores          # frames + medians per target
    oracle(method, sources, mixture) -> {target: (n, 2)}   # ibm, irm1, irm2, mwf
    evaluate_method(tracks, separate_fn, targets, name) -> EvaluationResults
    evaluate_methods(tracks, {name: track_fn}, targets) -> EvaluationResults
    oracle_method(method) -> track_fn ; model_separate_fn(model, settings, targets) -> separate_fn
    EvaluationResults: .summary() .table() .to_csv() .to_json() .plot() .merge()
"""

from .bsseval import METRICS, TrackScores, bsseval
from .oracles import ORACLE_LABELS, ORACLE_METHODS, oracle
from .results import EvaluationResults
from .runner import evaluate_method, evaluate_methods, model_separate_fn, oracle_method
from .tracks import Track, find_track_folders, iter_tracks, load_track_folder

__all__ = [
    "METRICS", "ORACLE_LABELS", "ORACLE_METHODS", "EvaluationResults", "Track", "TrackScores", "bsseval",
    "evaluate_method", "evaluate_methods", "find_track_folders", "iter_tracks", "load_track_folder",
    "model_separate_fn", "oracle", "oracle_method",
]
