"""BSSEval v4 "images" metrics (museval's implementation) with the SiSEC 2018 conventions.

Conventions: 1-second frames (``win = hop = 44100`` samples); time-invariant distortion
filters (512 taps) estimated once on the whole track (v4); a track's score for a target is the
median over its frames (frames where any reference or estimate is silent give NaN and are
skipped); a method's score is the median of its track scores. All targets are evaluated jointly:
the SIR of one target counts the others as interference.

Two ways of applying the whole-track filters (``projection``):

``"track"`` (default) decomposes the whole track once into true source, spatial distortion,
    interference and artefacts, then takes the energy ratios on each 1-s frame of those signals.
    The least-squares filters get a tiny Tikhonov term (1e-10 of the references' mean energy)
    so that frequency bands where the references are (numerically) empty do not blow them up.
``"frame"`` is museval's ``bss_eval(..., framewise_filters=False)``: it re-projects every
    1-s excerpt of the references with the whole-track filters.

SDR is identical in both (it only uses ``estimate - reference``). ISR/SIR/SAR differ: real
recordings are band-limited (lossy codecs cut above 16-20 kHz; MIR-1K has nothing above 8 kHz),
which makes the reference correlation matrix nearly singular, the least-squares filters get
huge components that cancel over the whole track but not over a cut-out excerpt, and museval's
frame values turn into noise (numerical instability of BSSEval's matrix inversions is a known
problem, see mir-evaluation/mir_eval#273). Measured with estimates ``vocals + 0.1 accompaniment
+ noise`` whose SIR and SAR are known in closed form (median over frames):

==========================  ===============  ===================  ====================
references                  analytic SIR/SAR  "track" (reg 1e-10)  museval ("frame")
==========================  ===============  ===================  ====================
full-band white noise       19.61 / 10.53    19.38 / 10.61        19.38 / 10.61
noise cut at 7 kHz          19.58 / 10.50    19.49 / 10.53        -0.00 / 0.00
dev song, 10 s              19.57 /  9.12    19.41 /  9.15         9.37 / 6.58
MIR-1K clip (16 kHz, mono)  20.46 / 10.75    20.56 / 10.76       -12.61 / 0.01
==========================  ===============  ===================  ====================

The "track" values do not move between reg 1e-12 and 1e-8 (< 0.05 dB on SIR/SAR), museval's
converge to them only with reg ~1e-6. ``projection="frame"`` reproduces museval bit for bit
(tested), for comparisons with published numbers.

Dual-mono references (identical channels, e.g. MIR-1K's mono files duplicated by
``load_audio``) make that matrix exactly singular; they are projected on their single channel,
separately for each estimate channel (the subspace spanned by delayed copies of two identical
channels is the one spanned by one, so this is the same decomposition without the redundancy).

``museval/__init__.py`` imports musdb -> stempeg, which refuses to import without the ffmpeg
binaries; only ``museval/metrics.py`` (numpy + scipy) is needed, so it is loaded on its own.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from ..audio.io import SAMPLE_RATE

METRICS = ("SDR", "SIR", "ISR", "SAR")
FILTERS_LEN = 512
#: Tikhonov term of the "track" projection filters, relative to the references' mean energy.
REGULARIZATION = 1e-10

_METRICS_MODULE = None


def museval_metrics():
    """The ``museval.metrics`` module, imported without running ``museval/__init__.py``."""
    global _METRICS_MODULE
    if _METRICS_MODULE is not None:
        return _METRICS_MODULE
    already = sys.modules.get("museval.metrics")
    if already is not None:
        _METRICS_MODULE = already
        return already
    spec = importlib.util.find_spec("museval")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("museval is not installed (pip install museval)")
    path = Path(list(spec.submodule_search_locations)[0]) / "metrics.py"
    mspec = importlib.util.spec_from_file_location("_unmix_museval_metrics", path)
    module = importlib.util.module_from_spec(mspec)
    mspec.loader.exec_module(module)  # type: ignore[union-attr]
    _METRICS_MODULE = module
    return module


@dataclass
class TrackScores:
    """BSSEval result of one track: per target and metric, the values of the 1-s frames."""

    frames: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    @property
    def medians(self) -> dict[str, dict[str, float]]:
        """target -> metric -> median over the frames (NaN frames skipped)."""
        return {t: {m: nanmedian(v) for m, v in ms.items()} for t, ms in self.frames.items()}


def nanmedian(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(np.median(values)) if values.size else float("nan")


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Cut or zero-pad ``x`` (samples first) to ``n`` samples (museval's pad_or_truncate)."""
    if x.shape[0] >= n:
        return x[:n]
    return np.pad(x, [(0, n - x.shape[0])] + [(0, 0)] * (x.ndim - 1))


def _as_batch(signals: Mapping[str, np.ndarray], targets: list[str]) -> np.ndarray:
    arrays = []
    for t in targets:
        a = np.asarray(signals[t], dtype=np.float64)
        arrays.append(a[:, None] if a.ndim == 1 else a)
    return np.stack(arrays)


def _cross_correlations(sf: np.ndarray, est: np.ndarray, L: int) -> np.ndarray:
    """D of museval's ``_compute_projection_filters``: correlations of the (delayed) references
    ``sf`` (nsrc, nref, n_fft) with ``est`` (n, nchan) -> (nsrc * nref * L, nchan)."""
    import scipy.fftpack

    nsampl, nchan = est.shape
    nsrc, nref, n_fft = sf.shape
    padded = np.zeros((nchan, nsampl + L - 1))
    padded[:, :nsampl] = est.T
    sef = scipy.fftpack.fft(padded, n=n_fft)
    D = np.zeros((nsrc, nref, L, nchan))
    for j in range(nsrc):
        for cj in range(nref):
            for c in range(nchan):
                ssef = np.real(scipy.fftpack.ifft(sf[j, cj] * np.conj(sef[c])))
                D[j, cj, :, c] = np.hstack((ssef[0], ssef[-1:-L:-1]))
    return D.reshape(nsrc * nref * L, nchan)


def _solve(G: np.ndarray, D: np.ndarray, reg: float) -> np.ndarray:
    """museval's filter solve ``(G + eps I) C = D`` with a Tikhonov term ``reg * mean(diag(G))``
    added (museval adds only machine epsilon). G: (nsrc, nsrc, nref, nref, L, L)."""
    nsrc, nref, L = G.shape[0], G.shape[2], G.shape[-1]
    Gm = np.moveaxis(G, (1, 3), (3, 4)).reshape(nsrc * nref * L, nsrc * nref * L)
    lam = np.finfo(float).eps + reg * float(np.mean(np.diag(Gm)))
    Gm[np.diag_indices_from(Gm)] += lam
    return np.linalg.solve(Gm, D)


def _bss_eval_track(refs: np.ndarray, ests: np.ndarray, win: int, hop: int, reg: float = REGULARIZATION,
                    filters_len: int = FILTERS_LEN):
    """Whole-track v4 decomposition, energy ratios per frame. Returns SDR, ISR, SIR, SAR (nsrc, nwin)."""
    m = museval_metrics()
    nsrc, n, nchan = ests.shape
    L = filters_len
    dual_mono = nchan > 1 and all(np.array_equal(r[:, 0], r[:, c]) for r in refs for c in range(1, nchan))
    groups = [slice(c, c + 1) for c in range(nchan)] if dual_mono else [slice(0, nchan)]
    basis = refs[:, :, :1] if dual_mono else refs
    nref = basis.shape[2]
    G, sf = m._compute_reference_correlations(basis, L)
    frames = list(m.Framing(win, hop, n))
    out = np.full((4, nsrc, len(frames)), np.nan)
    valid = [not (m._any_source_silent(refs[:, w]) or m._any_source_silent(ests[:, w])) for w in frames]
    parts: list[list] = [[] for _ in range(nsrc)]
    for g in groups:
        D = [_cross_correlations(sf, ests[j, :, g], L) for j in range(nsrc)]  # each (nsrc*nref*L, k)
        k = D[0].shape[1]
        # one factorisation of the joint matrix for all estimates
        C_all = _solve(G, np.concatenate(D, axis=1), reg).reshape(nsrc, nref, L, nsrc, k)
        for j in range(nsrc):
            C = C_all[:, :, :, j, :]
            Dj = D[j].reshape(nsrc, nref * L, k)[j]
            Cj = _solve(G[j, j][None, None], Dj, reg).reshape(nref, L, k)
            parts[j].append(m._bss_decomp_mtifilt(basis, ests[j, :, g], j, C, Cj))
    for j in range(nsrc):
        s_true, e_spat, e_interf, e_artif = (np.concatenate([p[i] for p in parts[j]], axis=1) for i in range(4))
        for t, w in enumerate(frames):
            if valid[t]:
                out[:, j, t] = m._bss_crit(s_true[w], e_spat[w], e_interf[w], e_artif[w], False)
    return out[0], out[1], out[2], out[3]


def bsseval(
    references: Mapping[str, np.ndarray],
    estimates: Mapping[str, np.ndarray],
    win: int = SAMPLE_RATE,
    hop: int = SAMPLE_RATE,
    targets: list[str] | None = None,
    projection: str = "track",
    reg: float = REGULARIZATION,
) -> TrackScores:
    """BSSEval v4 metrics of ``estimates`` against ``references`` (both target -> (n, channels)).

    ``targets``: which ones, in this order (default: those in both). Estimates are cut or
    zero-padded to the reference length. An all-zero estimate (a model that returned silence)
    would make museval raise; it is replaced by a -200 dB dither so it scores (very badly)
    instead. A target whose reference is all zero cannot be evaluated (BSSEval is undefined) and
    gets NaN. ``projection``: "track" (default, with the relative Tikhonov term ``reg``) or
    "frame" (museval's exact output, ``reg`` unused), see the module docstring.
    """
    if projection not in ("track", "frame"):
        raise ValueError(f"projection must be 'track' or 'frame', not {projection!r}")
    if targets is None:
        targets = [t for t in references if t in estimates]
    missing = [t for t in targets if t not in estimates or t not in references]
    if missing or not targets:
        raise ValueError(f"no estimate or reference for target(s) {', '.join(missing) or '(none)'}")
    refs = _as_batch(references, targets)
    n = refs.shape[1]
    ests = _as_batch({t: _fit_length(np.asarray(estimates[t]), n) for t in targets}, targets)
    if ests.shape[2] != refs.shape[2]:
        raise ValueError(f"estimates have {ests.shape[2]} channels, references {refs.shape[2]}")

    metrics = museval_metrics()
    nwin = metrics.Framing(win, hop, n).nwin
    scores = TrackScores()
    silent_ref = np.all(refs == 0, axis=(1, 2))
    for i in np.flatnonzero(silent_ref):
        warnings.warn(f"reference '{targets[i]}' is silent: BSSEval is undefined for it", stacklevel=2)
    keep = [i for i in range(len(targets)) if not silent_ref[i]]
    values = {targets[i]: {m: np.full(nwin, np.nan) for m in METRICS} for i in range(len(targets))}
    if keep:
        refs, ests = refs[keep], ests[keep].copy()
        silent_est = np.all(ests == 0, axis=(1, 2))
        if np.any(silent_est):
            rng = np.random.default_rng(0)
            ests[silent_est] = 1e-10 * rng.standard_normal(ests[silent_est].shape)
        if projection == "track":
            sdr, isr, sir, sar = _bss_eval_track(refs, ests, win, hop, reg)
        else:
            sdr, isr, sir, sar, _ = metrics.bss_eval(
                refs, ests, window=win, hop=hop, compute_permutation=False,
                framewise_filters=False, bsseval_sources_version=False,
            )
        for k, i in enumerate(keep):
            values[targets[i]] = {"SDR": sdr[k], "SIR": sir[k], "ISR": isr[k], "SAR": sar[k]}
    scores.frames = values
    return scores
