"""Mixing math shared by the live player callback and offline export (one code path).

:class:`MixState` holds what the faders show (per-stem gain in dB, mute, solo, pan, master gain)
and turns it into a ``(n_stems, 2)`` float32 array of linear left/right gains.

:class:`MixEngine` renders a mix block by block into a caller's buffer: the sounddevice
callback hands it the ``outdata`` buffer, :func:`unmix_desktop.audio.export.render_mix` hands it
slices of the output array. Both go through :meth:`MixEngine.render`, so what you hear is what
you export, sample for sample.

What the engine does per block, without allocating audio buffers (every array is preallocated and
every numpy call writes through ``out=``):

* gain changes are ramped linearly over one block (no zipper noise, no clicks);
* pause/resume fade out/in over one block; seeks and A-B loop jumps crossfade over
  :data:`XFADE_FRAMES` samples (about 6 ms);
* stems still being separated (``ready``: a :class:`~unmix_desktop.audio.growing.GrowingStems` or
  anything with an ``int`` attribute ``ready``, read lock-free once per block): the play head never
  passes the ready frames. Reaching them, the engine fades out over up to :data:`XFADE_FRAMES`
  samples and *waits* (silence, position held, :attr:`MixEngine.waiting`); when more is ready it
  fades in and goes on by itself. A seek into the unready part waits the same way;
* a soft limiter on the master: identity below -1 dBFS, a tanh knee above it that never passes
  :data:`LIMIT_CEILING`, so the output never reaches full scale and a hot mix never wraps.
  Samples that would have clipped are counted.

Nothing here imports Qt or sounddevice; the engine's state belongs to the one thread that calls
:meth:`MixEngine.render` (the audio callback, or the exporting thread).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from ..errors import UnmixError
from .io import SAMPLE_RATE

MAX_GAIN_DB = 6.0
#: Soft limiter knee: the output is untouched below this level (-1 dBFS) and never reaches 1.0.
LIMIT_THRESHOLD = 10.0 ** (-1.0 / 20.0)
#: The limiter's output approaches this level and never passes it.
LIMIT_CEILING = 0.999
#: Length of the seek / loop crossfade in samples (about 5.8 ms at 44.1 kHz).
XFADE_FRAMES = 256
#: Peak meters fall by this many dB per second.
METER_FALL_DB_PER_S = 24.0


class MixError(UnmixError):
    """An invalid mix setting: unknown stem name, gain or pan that is not a number."""


def db_to_gain(db: float) -> float:
    """Decibels to a linear factor; ``-inf`` is silence."""
    return 0.0 if db == -math.inf else 10.0 ** (db / 20.0)


def _number(value, what: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise MixError(f"{what} must be a number, got {value!r}") from None
    if math.isnan(x):
        raise MixError(f"{what} must be a number, got NaN")
    return x


@dataclass
class MixState:
    """The mixing-desk settings of a set of stems, independent of any player.

    ``gain_db`` runs from ``-inf`` to ``+6`` dB, ``pan`` from -1 (left) to +1 (right). A stem is
    heard when some stem is soloed and it is soloed too, or when nothing is soloed and it is not
    muted: solo wins over mute, as on a mixing desk.
    """

    names: tuple[str, ...] = ()
    gain_db: dict[str, float] = field(default_factory=dict)
    mute: dict[str, bool] = field(default_factory=dict)
    solo: dict[str, bool] = field(default_factory=dict)
    pan: dict[str, float] = field(default_factory=dict)
    master_db: float = 0.0

    @classmethod
    def from_names(cls, names: Iterable[str]) -> "MixState":
        names = tuple(names)
        if len(set(names)) != len(names):
            raise MixError(f"duplicate stem names: {', '.join(names)}")
        return cls(
            names=names,
            gain_db={n: 0.0 for n in names},
            mute={n: False for n in names},
            solo={n: False for n in names},
            pan={n: 0.0 for n in names},
        )

    def copy(self) -> "MixState":
        return MixState(
            self.names, dict(self.gain_db), dict(self.mute), dict(self.solo), dict(self.pan), self.master_db
        )

    def _check(self, name: str) -> None:
        if name not in self.gain_db:
            known = ", ".join(self.names) or "none"
            raise MixError(f"unknown stem '{name}' (stems: {known})")

    # setters -------------------------------------------------------------------------------
    def set_gain_db(self, name: str, db: float) -> None:
        self._check(name)
        self.gain_db[name] = min(_number(db, f"gain of '{name}'"), MAX_GAIN_DB)

    def set_mute(self, name: str, muted: bool = True) -> None:
        self._check(name)
        self.mute[name] = bool(muted)

    def set_solo(self, name: str, soloed: bool = True) -> None:
        self._check(name)
        self.solo[name] = bool(soloed)

    def set_pan(self, name: str, pan: float) -> None:
        self._check(name)
        self.pan[name] = min(max(_number(pan, f"pan of '{name}'"), -1.0), 1.0)

    def set_master_db(self, db: float) -> None:
        self.master_db = min(_number(db, "master gain"), MAX_GAIN_DB)

    # derived values --------------------------------------------------------------------------
    def audible(self, name: str) -> bool:
        self._check(name)
        if any(self.solo.values()):
            return self.solo[name]
        return not self.mute[name]

    def stem_gain(self, name: str) -> tuple[float, float]:
        """Linear (left, right) gain of one stem, master included.

        Pan is a balance control: centre leaves both channels alone, turning right fades the left
        channel out linearly (and vice versa).
        """
        if not self.audible(name):
            return 0.0, 0.0
        g = db_to_gain(self.gain_db[name]) * db_to_gain(self.master_db)
        p = self.pan[name]
        return g * min(1.0, 1.0 - p), g * min(1.0, 1.0 + p)

    def gains(self, names: Sequence[str] | None = None) -> np.ndarray:
        """``(len(names), 2)`` float32 linear gains in the order of ``names`` (default: ``self.names``)."""
        names = self.names if names is None else names
        return np.array([self.stem_gain(n) for n in names], dtype=np.float32).reshape(len(names), 2)


def crossfade_curves(length: int) -> tuple[np.ndarray, np.ndarray]:
    """Raised-cosine fade-in and fade-out of ``length`` samples (they sum to one)."""
    t = (np.arange(length, dtype=np.float64) + 0.5) / max(length, 1)
    fade_out = (0.5 * (1.0 + np.cos(np.pi * t))).astype(np.float32)
    fade_in = (1.0 - fade_out).astype(np.float32)
    return fade_in, fade_out


class MixEngine:
    """Renders a mix of stems block by block: transport, gain ramps, crossfades, limiter.

    ``stems``: float32 ``(n, 2)`` arrays (different lengths are padded with silence).
    ``gains``: initial ``(n_stems, 2)`` gains (see :meth:`MixState.gains`); later targets are passed
    to :meth:`render` and reached by a linear ramp over that block.
    ``ready``: for stems that are still being filled, an object whose ``ready`` attribute (an
    ``int``, published by another thread) counts the leading frames that are final; ``None``: all.

    All attributes belong to the thread that calls :meth:`render`.
    """

    def __init__(
        self,
        stems: Sequence[np.ndarray],
        gains: np.ndarray | None = None,
        *,
        sample_rate: int = SAMPLE_RATE,
        max_block: int = 4096,
        xfade: int = XFADE_FRAMES,
        meters: bool = True,
        ready=None,
    ):
        self.stems = [np.ascontiguousarray(s, dtype=np.float32) for s in stems]
        for s in self.stems:
            if s.ndim != 2 or s.shape[1] != 2:
                raise ValueError(f"stems must be (n, 2) arrays, got shape {s.shape}")
        n = len(self.stems)
        self.lengths = [s.shape[0] for s in self.stems]
        self.n_frames = max(self.lengths, default=0)
        self.sample_rate = int(sample_rate)
        self.max_block = int(max_block)
        self.meters = meters
        if gains is None:
            gains = np.ones((n, 2), np.float32)
        self.gains = np.array(gains, dtype=np.float32).reshape(n, 2)  # gains at the end of the last block
        self._applied: np.ndarray | None = None  # the last target array taken (identity check)

        # transport
        self.pos = 0  # next frame to play (sample exact)
        self.playing = False
        self.finished = False  # reached the end of the song (not by pause)
        self.loop: tuple[int, int] | None = None  # (a, b) frames
        self.ready_source = ready  # see the class docstring; None: every frame is ready
        self.waiting = False  # the play head is at the unready part: silence until it arrives
        self._fade = 0  # +1: fade in over the next block, -1: fade out then pause
        self._pending_seek = -1  # seek to apply after a fade-out block
        self._xf_src = 0  # read position of the signal being crossfaded out
        self._xf_left = 0  # samples of crossfade still to do
        self.xfade = int(xfade)
        fade_in, fade_out = crossfade_curves(self.xfade)
        self._fade_in = np.repeat(fade_in[:, None], 2, axis=1)  # (xfade, 2): same shape as the audio
        self._fade_out = np.repeat(fade_out[:, None], 2, axis=1)

        # results for the UI
        self.clipped = 0
        self.levels = np.zeros(n, np.float32)

        # preallocated work buffers
        b = self.max_block
        # Every operation below is between arrays of one shape, or an array and a scalar: numpy
        # broadcasting ((b, 2) * (2,)) would allocate a temporary buffer in the ufunc machinery.
        self._idx = np.repeat(np.arange(1, b + 1, dtype=np.float32)[:, None], 2, axis=1)
        self._ramp = np.empty((b, 2), np.float32)  # (t + 1) / frames on both channels
        self._ramp_down = np.empty((b, 2), np.float32)  # 1 - ramp
        self._delta = np.zeros((n, 2), np.float32)
        self._g = np.empty(b, np.float32)  # per-sample gain of one channel while ramping
        self._tmp = np.empty((b, 2), np.float32)  # one stem times its gain
        self._tail = np.empty((b, 2), np.float32)  # the signal being crossfaded out
        self._abs = np.empty((b, 2), np.float32)
        self._mask = np.empty((b, 2), np.bool_)
        self._active = np.zeros(n, np.bool_)  # stems with a non-zero gain in this block
        self._active_tgt = np.zeros(n, np.bool_)
        self._ramping = False
        self._was_playing = False  # whether the last block ended playing (else: silence)

    # transport (called from the rendering thread) ---------------------------------------------
    @property
    def duration(self) -> float:
        return self.n_frames / self.sample_rate

    def start(self) -> None:
        """Play from the current position; fades in over one block unless it starts the song."""
        if self.playing:
            if self._fade < 0:  # resumed before the fade-out happened: just keep playing
                self._fade = 0
                if self._pending_seek >= 0:
                    frame, self._pending_seek = self._pending_seek, -1
                    self.seek(frame)
            return
        if self.pos >= self.n_frames:
            self.pos = 0
        self._fade = 1 if self.pos > 0 else 0
        self.playing = True
        self.finished = False

    def pause(self) -> None:
        """Fade out over the next block, then stop advancing."""
        if self.playing:
            self._fade = -1

    def seek(self, frame: int) -> None:
        """Move the play head; while playing, crossfade from the old position."""
        frame = min(max(int(frame), 0), self.n_frames)
        if self.playing and self._fade >= 0:
            self._xf_src = self.pos
            self._xf_left = self.xfade
            self.pos = frame
        elif self.playing:  # fading out: jump once the fade-out block is done
            self._pending_seek = frame
        else:
            self.pos = frame
            self._xf_left = 0
        self.finished = False

    def jump(self, frame: int) -> None:
        """Move the play head at once, without a crossfade; while playing, the next block fades in.

        For an owner that has faded the previous signal out itself (the stretch stage handing the
        engine back to the callback)."""
        self.pos = min(max(int(frame), 0), self.n_frames)
        self._xf_left = 0
        self._pending_seek = -1
        if self.playing and self._fade >= 0:
            self._fade = 1
        self.finished = False

    @property
    def ready_frames(self) -> int:
        """Frames that can be played (``n_frames`` when nothing is being filled any more)."""
        source = self.ready_source
        if source is None:
            return self.n_frames
        ready = source.ready
        return self.n_frames if ready >= self.n_frames else max(int(ready), 0)

    # rendering ----------------------------------------------------------------------------------
    def render(self, out: np.ndarray, target: np.ndarray | None = None) -> None:
        """Fill ``out`` (frames, 2) float32 with the next ``frames`` samples of the mix.

        ``target``: the gains to reach at the end of this block (an array that is never modified
        afterwards: a new setting is a new array). ``None`` keeps the current gains.
        """
        frames = out.shape[0]
        start = 0
        while start < frames:
            stop = min(start + self.max_block, frames)
            self._render_block(out[start:stop], target)
            start = stop

    def _render_block(self, out: np.ndarray, target: np.ndarray | None) -> None:
        n = out.shape[0]
        gains = self.gains
        ramp = self._ramp[:n]
        ramping = False
        if target is not None and target is not self._applied and target.shape == gains.shape:
            self._applied = target
            if self.playing and self._was_playing:
                np.subtract(target, gains, out=self._delta)
                ramping = True
            else:  # the last block was silent: take the new gains at once
                np.copyto(gains, target)
        if ramping or self._fade:
            np.divide(self._idx[:n], n, out=ramp)
        self._ramping = ramping
        np.any(gains, axis=1, out=self._active)
        if ramping:
            np.any(target, axis=1, out=self._active_tgt)
            np.logical_or(self._active, self._active_tgt, out=self._active)
        if self.meters:
            np.multiply(self.levels, 10.0 ** (-METER_FALL_DB_PER_S * n / self.sample_rate / 20.0), out=self.levels)

        out[...] = 0.0
        pos = self.pos
        t = 0
        limit = self.ready_frames
        partial = limit < self.n_frames
        resume = self.waiting and pos < limit and self.playing
        if resume or not self.playing:
            self.waiting = False
        stop_at = -1  # where the play head reached the unready part in this block
        while self.playing and t < n:
            loop = self.loop
            loop_a, loop_b = loop if loop is not None else (0, 0)
            looping = loop is not None and pos < loop_b
            if partial and pos >= limit:  # the unseparated part: hold the position, play silence
                if self._xf_left:  # finish fading out the signal a seek left
                    k = min(n - t, self._xf_left)
                    tail = self._tail[:k]
                    self._mix(tail, self._xf_src, t)
                    i = self.xfade - self._xf_left
                    np.multiply(tail, self._fade_out[i : i + k], out=out[t : t + k])
                    self._xf_src += k
                    self._xf_left -= k
                    t += k
                    continue
                if not self.waiting:
                    self.waiting = True
                    stop_at = t
                break
            if pos >= self.n_frames and not looping and self._xf_left == 0:
                self.playing = False
                self.finished = True
                break
            k = n - t
            if looping:
                k = min(k, loop_b - pos)
            if pos < limit:
                k = min(k, limit - pos)
            if self._xf_left:
                k = min(k, self._xf_left)
            seg = out[t : t + k]
            self._mix(seg, pos, t)
            if self._xf_left:
                tail = self._tail[:k]
                self._mix(tail, self._xf_src, t)
                i = self.xfade - self._xf_left
                np.multiply(seg, self._fade_in[i : i + k], out=seg)
                np.multiply(tail, self._fade_out[i : i + k], out=tail)
                np.add(seg, tail, out=seg)
                self._xf_src += k
                self._xf_left -= k
            pos += k
            t += k
            if looping and pos == loop_b:
                self._xf_src = pos
                self._xf_left = self.xfade
                pos = loop_a
        self.pos = pos
        if partial and self.playing and pos >= limit and not self.waiting and not self._xf_left:
            self.waiting = True  # the block ended exactly at the ready frames
            stop_at = t
        if stop_at > 0:  # ramp out into the wait (the samples before it were played at full level)
            m = min(self.xfade, stop_at)
            self._ramp_edge(out[stop_at - m : stop_at], m, down=True)
        if resume:  # ramp in from the wait
            m = min(self.xfade, n)
            self._ramp_edge(out[:m], m, down=False)

        if self._fade > 0:
            np.multiply(out, ramp, out=out)
            self._fade = 0
        elif self._fade < 0:
            np.subtract(1.0, ramp, out=self._ramp_down[:n])
            np.multiply(out, self._ramp_down[:n], out=out)
            self._fade = 0
            self.playing = False
            self._xf_left = 0
            if self._pending_seek >= 0:
                self.pos = self._pending_seek
                self._pending_seek = -1
        if ramping and target is not None:
            np.copyto(gains, target)
        self._was_playing = self.playing
        self._limit(out)

    def _ramp_edge(self, seg: np.ndarray, m: int, down: bool) -> None:
        """Multiply ``seg`` (m, 2) by a linear ramp 0 -> 1 (or 1 -> 0 when ``down``) of ``m`` samples."""
        r = self._tmp[:m]
        np.divide(self._idx[:m], float(m), out=r)  # (t + 1) / m
        if down:
            np.subtract(1.0, r, out=r)
        np.multiply(seg, r, out=seg)

    def _mix(self, dest: np.ndarray, pos: int, t: int) -> None:
        """``dest`` = sum over stems of stem[pos : pos + k] * gain, gains ramped from block offset ``t``."""
        k = dest.shape[0]
        dest[...] = 0.0
        for s, stem in enumerate(self.stems):
            if not self._active[s]:
                continue
            m = min(k, self.lengths[s] - pos)
            if m <= 0:
                continue
            src = stem[pos : pos + m]
            tmp = self._tmp[:m]
            for c in (0, 1):  # per channel: a column times a scalar or a ramp, no broadcasting
                if self._ramping:
                    g = self._g[:m]
                    np.multiply(self._ramp[t : t + m, c], self._delta[s, c], out=g)
                    np.add(g, self.gains[s, c], out=g)
                    np.multiply(src[:, c], g, out=tmp[:, c])
                else:
                    np.multiply(src[:, c], self.gains[s, c], out=tmp[:, c])
            np.add(dest[:m], tmp, out=dest[:m])
            if self.meters:
                peak = max(tmp.max(), -tmp.min())
                if peak > self.levels[s]:
                    self.levels[s] = peak

    def _limit(self, out: np.ndarray) -> None:
        """Soft limiter: identity up to the threshold T, then ``T + (C - T) tanh((|x| - T) / (C - T))``.

        Continuous with slope 1 at T, monotonic, and below the ceiling C for any input.
        """
        n = out.shape[0]
        a = self._abs[:n]
        np.abs(out, out=a)
        if a.max() <= LIMIT_THRESHOLD:
            return
        mask = self._mask[:n]
        np.greater(a, 1.0, out=mask)
        self.clipped += int(np.count_nonzero(mask))
        np.greater(a, LIMIT_THRESHOLD, out=mask)
        knee = LIMIT_CEILING - LIMIT_THRESHOLD
        np.subtract(a, LIMIT_THRESHOLD, out=a)
        np.multiply(a, 1.0 / knee, out=a)
        np.tanh(a, out=a)
        np.multiply(a, knee, out=a)
        np.add(a, LIMIT_THRESHOLD, out=a)
        np.copysign(a, out, out=a)
        np.copyto(out, a, where=mask)
