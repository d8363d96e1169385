"""Oracle baselines of the open-unmix tutorial (sigsep-mus-oracle), computed from the true sources.

They show what a perfect spectrogram model could reach with a given filtering scheme, all with
the app's STFT (Hann, n_fft 4096, hop 1024) applied to the mixture:

``ibm``   ideal binary mask: ``1 if |S_j| / sum_k |S_k| >= 0.5 else 0`` (alpha 1, theta 0.5),
          per channel.
``irm1``  ideal ratio mask on magnitudes, ``|S_j| / sum_k |S_k|`` (alpha 1).
``irm2``  ideal ratio mask on powers, ``|S_j|^2 / sum_k |S_k|^2`` (alpha 2, the Wiener gain).
``mwf``   oracle multichannel Wiener filter: each source's power spectral density
          ``v_j(f, t)`` and spatial covariance ``R_j(f)`` are estimated from its true STFT
          (norbert's local Gaussian model), and the mixture is filtered by
          ``v_j R_j (sum_k v_k R_k)^-1``. This equals one iteration of
          ``norbert.expectation_maximization`` started from the true source STFTs; it is done
          here in blocks of frames so memory stays a few STFTs.

When the given sources do not add up to the mixture (e.g. only ``vocals`` is evaluated on a
4-source track) the remainder ``mixture - sum(sources)`` is modelled as one more source, so the
masks still describe the whole mixture; it is not returned.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..separation import transforms

ORACLE_METHODS = ("ibm", "irm1", "irm2", "mwf")
ORACLE_LABELS = {"ibm": "IBM", "irm1": "IRM1", "irm2": "IRM2", "mwf": "MWF"}
_REMAINDER = "__remainder__"
EPS = np.finfo(np.float64).eps


def _with_remainder(sources: Mapping[str, np.ndarray], mixture: np.ndarray) -> dict[str, np.ndarray]:
    out = {k: np.asarray(v, dtype=np.float32) for k, v in sources.items()}
    rest = mixture.astype(np.float64) - np.sum([v.astype(np.float64) for v in out.values()], axis=0)
    mix_energy = float(np.sum(mixture.astype(np.float64) ** 2))
    if np.sum(rest**2) > 1e-6 * max(mix_energy, 1e-20):  # more than -60 dB of the mixture
        out[_REMAINDER] = rest.astype(np.float32)
    return out


def _masked(mask: np.ndarray, X: np.ndarray, n: int) -> np.ndarray:
    return transforms.istft_np((mask * X).astype(np.complex64), n)


def ideal_mask(sources: Mapping[str, np.ndarray], mixture: np.ndarray, alpha: float = 1.0,
               binary: bool = False, theta: float = 0.5) -> dict[str, np.ndarray]:
    """IRM (``binary=False``) or IBM (``binary=True``) with exponent ``alpha``."""
    mixture = np.asarray(mixture, dtype=np.float32)
    n = mixture.shape[0]
    srcs = _with_remainder(sources, mixture)
    X = transforms.stft_np(mixture)
    P = {k: np.abs(transforms.stft_np(v)).astype(np.float64) ** alpha for k, v in srcs.items()}
    total = np.sum(list(P.values()), axis=0)
    out = {}
    for k in sources:
        ratio = P[k] / (total + EPS)
        mask = (ratio >= theta).astype(np.float32) if binary else ratio.astype(np.float32)
        out[k] = _masked(mask, X, n)
    return out


def oracle_mwf(sources: Mapping[str, np.ndarray], mixture: np.ndarray, block: int = 64) -> dict[str, np.ndarray]:
    """Oracle multichannel Wiener filter (see the module docstring)."""
    import norbert

    mixture = np.asarray(mixture, dtype=np.float32)
    n = mixture.shape[0]
    srcs = _with_remainder(sources, mixture)
    names = list(srcs)
    X = transforms.stft_np(mixture)  # (T, F, C) complex64
    scale = max(1.0, float(np.abs(X).max()) / 10.0)  # as norbert.wiener, but on copies
    T, F, C = X.shape
    eps = EPS
    v, R = [], []
    for k in names:
        Y = transforms.stft_np(srcs[k]).astype(np.complex128) / scale
        vj = np.mean(np.abs(Y) ** 2, axis=2)  # (T, F)
        Rj = np.einsum("tfi,tfj->fij", Y, Y.conj()) / (eps + vj.sum(axis=0))[:, None, None]
        v.append(vj)
        R.append(Rj)
        del Y
    Xs = X.astype(np.complex128) / scale
    regularization = np.sqrt(eps) * np.eye(C, dtype=np.complex128)[None, None]
    Ys = {k: np.empty((T, F, C), dtype=np.complex64) for k in sources}
    for t0 in range(0, T, block):
        t1 = min(T, t0 + block)
        Cxx = sum(v[j][t0:t1, :, None, None] * R[j][None] for j in range(len(names))) + regularization
        inv = norbert._invert(Cxx, eps)
        for j, k in enumerate(names):
            if k == _REMAINDER:
                continue
            W = norbert.wiener_gain(v[j][t0:t1], R[j], inv)
            Ys[k][t0:t1] = norbert.apply_filter(Xs[t0:t1], W) * scale
    return {k: transforms.istft_np(Ys[k], n) for k in sources}


def oracle(method: str, sources: Mapping[str, np.ndarray], mixture: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Estimates of every source in ``sources`` by the oracle ``method`` (ibm, irm1, irm2, mwf).

    ``sources``: target -> true (n, 2) signal; ``mixture`` (n, 2) defaults to their sum.
    Returns target -> (n, 2) float32.
    """
    if not sources:
        raise ValueError("oracle: no sources given")
    if mixture is None:
        mixture = np.sum([np.asarray(v, dtype=np.float32) for v in sources.values()], axis=0)
    key = method.lower()
    if key == "ibm":
        return ideal_mask(sources, mixture, alpha=1.0, binary=True, theta=0.5)
    if key == "irm1":
        return ideal_mask(sources, mixture, alpha=1.0)
    if key == "irm2":
        return ideal_mask(sources, mixture, alpha=2.0)
    if key == "mwf":
        return oracle_mwf(sources, mixture)
    raise ValueError(f"unknown oracle method '{method}' (choose from {', '.join(ORACLE_METHODS)})")
