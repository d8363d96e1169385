"""Data augmentation for training, on time signals at the data set's own rate (numpy).

Every function takes a ``numpy.random.Generator`` so an excerpt is reproducible from its seed.
Sources are ``float32 (n, c)`` arrays, ``c`` = 1 (mono, e.g. MIR-1K) or 2.

* :func:`choose_start`: silence-aware random excerpt (retries until the excerpt is not silent).
* :func:`random_gain`: per-source gain, uniform in 0.25–1.25 as in open-unmix.
* :func:`channel_swap`: swap left/right with probability 1/2.
* :func:`synth_stereo`: a stereo image for a mono source: constant-power pan, width (a delayed,
  decorrelated copy added to one channel and subtracted from the other, so L+R stays the mono
  source) and a small random gain per channel.
* :func:`random_eq`: a smooth random equaliser (gains at log-spaced frequencies, interpolated).

:class:`Augmentation` bundles them with their settings; ``Augmentation.source(x, sr, rng)`` turns
one source excerpt into an augmented stereo ``(n, 2)`` excerpt.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


def rms_db(x: np.ndarray) -> float:
    """RMS level of ``x`` in dBFS (-inf for digital silence)."""
    if x.size == 0:
        return float("-inf")
    ms = float(np.mean(np.square(x, dtype=np.float64)))
    return 10.0 * np.log10(ms) if ms > 0 else float("-inf")


def choose_start(audio: np.ndarray, length: int, rng: np.random.Generator, silence_db: float | None = -50.0,
                 tries: int = 10, scale: float = 1.0) -> int:
    """A random start for an excerpt of ``length`` samples of ``audio`` (n, c).

    With ``silence_db`` set, up to ``tries`` starts are drawn until the excerpt's RMS (times
    ``scale``, e.g. 1/32767 for int16 storage) exceeds ``silence_db`` dBFS; the last draw is kept
    when all are silent (a source may be silent throughout). Audio shorter than ``length`` -> 0.
    """
    n = audio.shape[0]
    if n <= length:
        return 0
    start = 0
    for _ in range(max(1, tries)):
        start = int(rng.integers(0, n - length + 1))
        if silence_db is None:
            return start
        seg = audio[start:start + length]
        if rms_db(seg.astype(np.float32) * scale) > silence_db:
            return start
    return start


def random_gain(x: np.ndarray, rng: np.random.Generator, low: float = 0.25, high: float = 1.25) -> np.ndarray:
    return x * np.float32(rng.uniform(low, high))


def channel_swap(x: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    if x.shape[1] == 2 and rng.random() < p:
        return np.ascontiguousarray(x[:, ::-1])
    return x


def stereo_params(rng: np.random.Generator, pan: float = 0.5, width: float = 0.4,
                  delay_ms: tuple[float, float] = (3.0, 20.0),
                  channel_gain_db: float = 2.0) -> tuple[float, float, float, float]:
    """Random stereo image ``(gain_left, gain_right, width, delay_s)`` (see :func:`synth_stereo`)."""
    p = rng.uniform(-pan, pan) if pan > 0 else 0.0
    theta = (p + 1.0) * np.pi / 4.0
    gl, gr = np.cos(theta) * np.sqrt(2.0), np.sin(theta) * np.sqrt(2.0)
    w = rng.uniform(0.0, width) if width > 0 else 0.0
    delay = rng.uniform(*delay_ms) / 1000.0 if w > 0 else 0.0
    if channel_gain_db > 0:
        gl *= 10 ** (rng.uniform(-channel_gain_db, channel_gain_db) / 20)
        gr *= 10 ** (rng.uniform(-channel_gain_db, channel_gain_db) / 20)
    return float(gl), float(gr), float(w), float(delay)


def synth_stereo(x: np.ndarray, sample_rate: int, rng: np.random.Generator, pan: float = 0.5,
                 width: float = 0.4, delay_ms: tuple[float, float] = (3.0, 20.0),
                 channel_gain_db: float = 2.0) -> np.ndarray:
    """Mono ``(n, 1)`` or ``(n,)`` -> stereo ``(n, 2)`` with a random image.

    ``pan``: largest |pan| (0 = centre, 1 = hard left/right), constant-power law normalised so
    the centre is (1, 1). ``width``: largest side/mid ratio; the side signal is the source delayed
    by ``delay_ms`` (uniform), so ``L = gL (s + w d)``, ``R = gR (s - w d)``. ``channel_gain_db``:
    independent uniform gain in ±that many dB per channel.
    """
    s = np.asarray(x, dtype=np.float32).reshape(x.shape[0], -1)[:, 0]
    n = s.shape[0]
    gl, gr, w, delay = stereo_params(rng, pan, width, delay_ms, channel_gain_db)
    left, right = s.copy(), s.copy()
    if w > 0:
        d = min(max(int(round(delay * sample_rate)), 1), n)
        side = np.zeros_like(s)
        side[d:] = s[: n - d] * np.float32(w)
        left += side
        right -= side
    return np.stack([left * np.float32(gl), right * np.float32(gr)], axis=1).astype(np.float32)


def eq_curve(freqs: np.ndarray, sample_rate: int, rng: np.random.Generator, db: float = 3.0,
             anchors: int = 6, low_hz: float = 60.0) -> np.ndarray:
    """Linear gains at ``freqs`` (Hz) of a smooth random EQ: gains ``N(0, db)`` dB at ``anchors``
    log-spaced frequencies from ``low_hz`` to Nyquist, interpolated in log frequency (flat outside)."""
    points = np.geomspace(low_hz, sample_rate / 2.0, anchors)
    gains_db = rng.normal(0.0, db, size=anchors)
    curve = np.interp(np.log(np.maximum(freqs, 1.0)), np.log(points), gains_db)
    return (10.0 ** (curve / 20.0)).astype(np.float32)


def random_eq(x: np.ndarray, sample_rate: int, rng: np.random.Generator, db: float = 3.0,
              anchors: int = 6, low_hz: float = 60.0) -> np.ndarray:
    """Smooth random equaliser (:func:`eq_curve`) applied with one FFT over the excerpt; the same
    curve for every channel."""
    if db <= 0:
        return x
    n = x.shape[0]
    spec = np.fft.rfft(x, axis=0)
    spec *= eq_curve(np.fft.rfftfreq(n, 1.0 / sample_rate), sample_rate, rng, db, anchors, low_hz)[:, None]
    return np.fft.irfft(spec, n=n, axis=0).astype(np.float32)


def to_stereo(x: np.ndarray) -> np.ndarray:
    """(n,), (n, 1) or (n, 2) -> (n, 2); mono is duplicated."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    if x.shape[1] == 2:
        return x
    if x.shape[1] == 1:
        return np.repeat(x, 2, axis=1)
    return np.stack([x[:, 0::2].mean(1), x[:, 1::2].mean(1)], axis=1)


@dataclass
class Augmentation:
    """Settings of the per-source augmentation chain (``None``/0 switches a step off)."""

    gain: tuple[float, float] | None = (0.25, 1.25)
    channel_swap: bool = True
    stereo: bool = True                 # synthesise a stereo image for mono sources (else dual mono)
    pan: float = 0.5
    width: float = 0.4
    delay_ms: tuple[float, float] = (3.0, 20.0)
    channel_gain_db: float = 2.0
    eq_db: float = 0.0                  # std of the random EQ gains in dB (0 = off)
    level_db: tuple[float, float] = (0.0, 0.0)  # gain of the whole mixture (and target) in dB
    silence_db: float | None = -50.0    # silence-aware excerpts; None = any excerpt
    mix_prob: float = 0.5               # probability that an interferer comes from another track

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Augmentation":
        d = dict(d)
        for key in ("gain", "delay_ms", "level_db"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @classmethod
    def none(cls) -> "Augmentation":
        """No augmentation at all (dual-mono sources, unit gains, any excerpt, matched tracks)."""
        return cls(gain=None, channel_swap=False, stereo=False, eq_db=0.0, silence_db=None, mix_prob=0.0)

    def source(self, x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        """One source excerpt (n, c) -> augmented (n, 2) float32."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 1:
            x = x[:, None]
        if self.eq_db > 0:
            x = random_eq(x, sample_rate, rng, self.eq_db)
        if x.shape[1] == 1 and self.stereo:
            x = synth_stereo(x, sample_rate, rng, self.pan, self.width, self.delay_ms, self.channel_gain_db)
        x = to_stereo(x)
        if self.gain is not None:
            x = random_gain(x, rng, *self.gain)
        if self.channel_swap:
            x = channel_swap(x, rng)
        return x

    def level(self, rng: np.random.Generator) -> float:
        lo, hi = self.level_db
        if lo == hi == 0:
            return 1.0
        return float(10 ** (rng.uniform(lo, hi) / 20.0))
