"""Time-stretch and pitch-shift stage after the stem mixer (Rubber Band R3 "finer", no Qt).

One stereo stretcher serves the whole mix: the :class:`~unmix_desktop.audio.mixer.MixEngine` renders
the faders, its output goes through the stretcher, so faders stay live at any tempo or key.

* **Offline** (export): :func:`stretch_offline` runs Rubber Band's offline mode (``study`` then
  ``process``), which knows the whole signal and gives the exact output length ``round(n / tempo)``.
* **Live** (player): :class:`StretchProducer` runs Rubber Band's real-time mode in a producer thread.
  It pulls the mix from the engine block by block, stretches it and writes the result, with the song
  frame of every output frame, into an :class:`AudioRing`. The audio callback only copies out of the
  ring (no allocation, no lock). The stretcher releases the GIL while it works, so the callback runs
  while the producer computes.

Tempo is a speed factor (0.8 = 80 % speed: 10 s of song last 12.5 s); key is a shift in semitones plus
cents. ``tempo == 1`` and no shift is *bypass*: the player does not touch the stretcher at all.

Audio is float32 ``(n, 2)`` at 44.1 kHz unless stated; Rubber Band wants ``(2, n)``.
"""

from __future__ import annotations

import atexit
import math
import threading
import time
import weakref
from typing import Any

import numpy as np

from ..errors import UnmixError
from .io import SAMPLE_RATE

TEMPO_MIN, TEMPO_MAX = 0.25, 2.0
KEY_MIN, KEY_MAX = -12.0, 12.0
CENTS_MIN, CENTS_MAX = -100.0, 100.0

#: Output frames the producer keeps ready in the ring, per window choice: part of the control
#: latency, and what carries playback through a producer thread that the system holds back. The
#: standard window's CPU also comes in bursts (its long FFTs). Measured on a 2-core machine at load
#: 15: short at 1024 frames had a 140 ms gap in 1 of ~10 runs; standard at 2048, 0-2 underruns per 4 s.
RING_TARGETS = {"standard": 3072, "short": 2048}
#: Ring capacity in frames (only the target plus a block or two is ever used).
RING_CAPACITY = 1 << 15
#: Input frames the producer renders from the mixer per step (small: at tempo 0.25 a step makes
#: four times as many output frames, and the ring's fill swings by that much).
CHUNK = 256
#: Rubber Band R3 window choice for the live stage. "short" (the default): one short window; the
#: stretcher holds about 57 ms of audio at tempo 1, 84 ms at 0.5, 142 ms at 0.25, so with the ring
#: control changes are heard within 150 ms down to tempo 0.5; 2.3x less CPU; a little less bass resolution (log-spectral
#: distance to the offline R3 render of the dev song at 0.75/-2: 6.1 dB, vs 4.9 dB standard and 6.7 dB
#: for the R2 engine). "standard": R3's full multi-resolution analysis (about 97 / 142 / 232 ms).
#: Export always uses the offline standard path. Measured in benchmarks/bench_player.py.
WINDOWS = ("short", "standard")
DEFAULT_WINDOW = "short"
#: Plain (unstretched) frames the callback renders ahead when stretching starts mid-play, to cover the
#: producer's priming (about 70 ms): the first tempo/key change from bypass is heard after it.
LEAD_FRAMES = 3072
#: Silent input frames fed at most to let the stretcher's tail out after a pause or the end.
FLUSH_LIMIT = 16384
#: Input frames per study/process call offline. Rubber Band 3.1 (Debian bookworm) loses output with
#: 65536-frame blocks in R3 offline mode (a short render, clicks where its ring overflows); 16384 and
#: below give the exact length and no clicks (tests/test_stretch.py checks both).
OFFLINE_BLOCK = 8192
#: Frames of the fade-out / fade-in used where playback switches between bypass and stretching.
SWITCH_FADE = 512


class StretchError(UnmixError):
    """A tempo or key outside the supported range, or no Rubber Band library."""


def unavailable_reason() -> str | None:
    """One line saying why tempo/key change cannot work here (no Rubber Band library), or ``None``."""
    from . import rubberband

    return rubberband.unavailable_reason()


def _rubberband():
    from . import rubberband

    reason = rubberband.unavailable_reason()
    if reason is not None:
        raise StretchError(f"tempo/key change unavailable: {reason}")
    return rubberband


def check_tempo(tempo: float) -> float:
    try:
        t = float(tempo)
    except (TypeError, ValueError):
        raise StretchError(f"tempo must be a number, got {tempo!r}") from None
    if not (TEMPO_MIN <= t <= TEMPO_MAX):  # also refuses NaN
        raise StretchError(f"tempo {tempo} is outside {TEMPO_MIN:g}..{TEMPO_MAX:g}")
    return t


def check_key(semitones: float, cents: float = 0.0) -> tuple[float, float]:
    try:
        s, c = float(semitones), float(cents)
    except (TypeError, ValueError):
        raise StretchError(f"key must be a number of semitones, got {semitones!r}") from None
    if not (KEY_MIN <= s <= KEY_MAX):
        raise StretchError(f"key {semitones} is outside {KEY_MIN:g}..{KEY_MAX:+g} semitones")
    if not (CENTS_MIN <= c <= CENTS_MAX):
        raise StretchError(f"fine tune {cents} is outside {CENTS_MIN:g}..{CENTS_MAX:+g} cents")
    return s, c


def pitch_scale(semitones: float = 0.0, cents: float = 0.0) -> float:
    """Frequency ratio of a shift by ``semitones`` + ``cents`` (equal temperament)."""
    return 2.0 ** ((float(semitones) + float(cents) / 100.0) / 12.0)


def is_bypass(tempo: float, pitch: float) -> bool:
    return tempo == 1.0 and pitch == 1.0


def _options(realtime: bool, window: str = "standard") -> int:
    rb = _rubberband()
    o = rb.OPTION_ENGINE_FINER | rb.OPTION_CHANNELS_TOGETHER
    if realtime:
        o |= rb.OPTION_PROCESS_REALTIME | rb.OPTION_PITCH_HIGH_CONSISTENCY
    if window == "short":
        o |= rb.OPTION_WINDOW_SHORT
    return o


def stretch_offline(audio: np.ndarray, tempo: float = 1.0, semitones: float = 0.0, cents: float = 0.0,
                    sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``audio`` (n, 2) played at ``tempo`` and shifted by ``semitones`` + ``cents``: float32
    ``(round(n / tempo), 2)``, clipped to [-1, 1]. Bypass returns ``audio`` itself."""
    tempo = check_tempo(tempo)
    semitones, cents = check_key(semitones, cents)
    pitch = pitch_scale(semitones, cents)
    if is_bypass(tempo, pitch):
        return audio
    n = audio.shape[0]
    if n == 0:
        return np.zeros((0, 2), np.float32)
    rb = _rubberband()
    s = rb.RubberBandStretcher(int(sample_rate), 2, _options(realtime=False),
                               initial_time_ratio=1.0 / tempo, initial_pitch_scale=pitch)
    s.set_expected_input_duration(n)
    x = np.ascontiguousarray(np.asarray(audio, np.float32).T)
    block = OFFLINE_BLOCK
    s.set_max_process_size(block)
    for start in range(0, n, block):
        s.study(x[:, start:start + block], final=start + block >= n)
    parts = []
    for start in range(0, n, block):
        s.process(x[:, start:start + block], final=start + block >= n)
        while s.available() > 0:
            parts.append(s.retrieve(s.available()))
    while not s.is_done():
        avail = s.available()
        if avail <= 0:
            break
        parts.append(s.retrieve(avail))
    out = np.concatenate(parts, axis=1).T if parts else np.zeros((0, 2), np.float32)
    want = int(round(n / tempo))
    if out.shape[0] < want:
        out = np.concatenate([out, np.zeros((want - out.shape[0], 2), np.float32)])
    out = np.ascontiguousarray(out[:want], dtype=np.float32)
    np.clip(out, -1.0, 1.0, out=out)
    return out


class AudioRing:
    """Single-producer single-consumer ring of float32 ``(capacity, 2)`` audio plus, per frame, the
    song frame it came from (float64). Indices only grow; each is written by one side only, and
    a plain int assignment is atomic, so neither side locks. :meth:`read_into` never allocates."""

    def __init__(self, capacity: int = RING_CAPACITY):
        self.capacity = int(capacity)
        self.data = np.zeros((self.capacity, 2), np.float32)
        self.stamps = np.zeros(self.capacity, np.float64)
        self.write_index = 0  # producer
        self.read_index = 0  # consumer

    @property
    def fill(self) -> int:
        return self.write_index - self.read_index

    def write(self, audio: np.ndarray, stamps: np.ndarray) -> None:
        """Producer side: append ``audio`` (k, 2) and its song frames (k,). The caller keeps fill <= capacity."""
        k = audio.shape[0]
        w = self.write_index % self.capacity
        first = min(k, self.capacity - w)
        self.data[w:w + first] = audio[:first]
        self.stamps[w:w + first] = stamps[:first]
        if first < k:
            self.data[:k - first] = audio[first:]
            self.stamps[:k - first] = stamps[first:]
        self.write_index += k

    def read_into(self, out: np.ndarray, count: int) -> float:
        """Consumer side: move ``count`` (<= fill) frames into ``out[:count]``; returns the song
        frame that follows the last one read (or -1 when ``count`` is 0)."""
        if count <= 0:
            return -1.0
        r = self.read_index % self.capacity
        first = min(count, self.capacity - r)
        np.copyto(out[:first], self.data[r:r + first])
        if first < count:
            np.copyto(out[first:count], self.data[:count - first])
        last = self.stamps[(self.read_index + count - 1) % self.capacity]
        self.read_index += count
        return float(last) + 1.0

    def reset(self) -> None:
        self.read_index = self.write_index


_PRODUCERS: "weakref.WeakSet[StretchProducer]" = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    """Stop producer threads before the interpreter goes down (a stretcher must not be deleted while
    the thread still uses it)."""
    for producer in list(_PRODUCERS):
        producer.stop_thread()
        producer._stretcher = None


class StretchProducer:
    """The producer thread of the live stretch stage.

    ``host`` is the :class:`~unmix_desktop.audio.player.StemPlayer`; the producer uses its
    ``_engine`` only while ``host._mode == STRETCH`` (it owns the engine then; the callback owns it
    otherwise), applies the host's transport and seek requests to it (``host._apply_requests``), reads
    the fader targets (``host._target``), the loop and the tempo/key (``host._stretch_params``), and
    writes into ``host._ring``. :meth:`step` does one unit of work and can also be called
    synchronously (tests, benchmarks) instead of running the thread.
    """

    def __init__(self, host, sample_rate: int, window: str = DEFAULT_WINDOW):
        if window not in WINDOWS:
            raise StretchError(f"stretch window must be one of {', '.join(WINDOWS)}, got {window!r}")
        self.host = host
        self.sample_rate = int(sample_rate)
        self.window = window
        self.ring_target = RING_TARGETS[window]
        self._stretcher: Any = None  # rubberband.RubberBandStretcher once built
        self._params = (1.0, 1.0)
        self._inbuf = np.zeros((CHUNK, 2), np.float32)
        self._zeros = np.zeros((2, CHUNK), np.float32)
        self._flush_until = -1  # input frames the output must cover before the stretcher goes idle
        self._in_stamps = np.zeros(1 << 16, np.float64)  # song frame of input frame k (mod size)
        self._fed = 0  # real input frames fed since priming
        self._consumed = 0.0  # input frames the output so far stands for
        self._skip = 0  # output frames still to drop (the stretcher's start delay)
        self._fade_in = 0  # output frames of crossfade from the plain hand-over tail still to do
        self._tail: Any = None  # (SWITCH_FADE, 2) plain audio the stretched output crossfades from
        self.primed = False
        self.active = False  # playing or flushing: more output is coming
        self.cpu_ns = 0  # this producer's CPU time in step() (thread time)
        self._stop = False
        self._thread: threading.Thread | None = None
        ramp = (np.arange(SWITCH_FADE, dtype=np.float32) + 0.5) / SWITCH_FADE
        self._ramp = np.repeat(ramp[:, None], 2, axis=1)
        self._ramp_down = np.ascontiguousarray(1.0 - self._ramp)
        _PRODUCERS.add(self)

    # thread ----------------------------------------------------------------------------------
    def start_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="unmix-stretch", daemon=True)
        self._thread.start()

    def stop_thread(self) -> None:
        self._stop = True
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)

    @property
    def threaded(self) -> bool:
        return self._thread is not None

    def warm(self) -> None:
        """Build the stretcher now (about 90 ms), not when the first tempo change needs it."""
        if self._stretcher is None:
            self._stretcher = self._new_stretcher(*self._params)

    def _run(self) -> None:
        try:
            self.warm()
        except Exception as exc:  # noqa: BLE001
            self.host._callback_error = f"stretch: {type(exc).__name__}: {exc}"
            return
        while not self._stop:
            try:
                busy = self.step()
            except Exception as exc:  # noqa: BLE001 - report, never die silently
                self.host._callback_error = f"stretch: {type(exc).__name__}: {exc}"
                busy = False
            if not busy:
                time.sleep(0.002 if self.host._mode != self.host.BYPASS else 0.004)

    # stretcher -------------------------------------------------------------------------------
    def _new_stretcher(self, tempo: float, pitch: float):
        rb = _rubberband()
        s = rb.RubberBandStretcher(self.sample_rate, 2, _options(realtime=True, window=self.window),
                                   initial_time_ratio=1.0 / tempo, initial_pitch_scale=pitch)
        s.set_max_process_size(8192)
        return s

    def reset(self) -> None:
        """Forget the stretcher's state (after a load); the next output is primed afresh."""
        self.primed = False
        self.active = False

    def _prime(self, tempo: float, pitch: float, handover: bool) -> None:
        """Reset the stretcher and feed it its start pad. ``handover``: the callback just played plain
        audio up to here; its last :data:`SWITCH_FADE` frames (``host._handover_tail``, not played)
        become the first input, and the first output frames crossfade from them."""
        if self._stretcher is None:
            self._stretcher = self._new_stretcher(tempo, pitch)
        else:
            self._stretcher.reset()
            self._stretcher.time_ratio = 1.0 / tempo
            self._stretcher.pitch_scale = pitch
        self._params = (tempo, pitch)
        s = self._stretcher
        s.process(np.zeros((2, s.get_preferred_start_pad()), np.float32))
        self._skip = s.get_start_delay()
        self._fed = 0
        self._consumed = 0.0
        self._fade_in = 0
        self._flush_until = -1
        self.primed = True
        if handover:
            tail, stamps = self.host._handover_tail, self.host._handover_stamps
            self._feed(np.ascontiguousarray(tail.T), stamps, final=False)
            self._tail = tail
            self._fade_in = SWITCH_FADE

    def _feed(self, x: np.ndarray, stamps: np.ndarray, final: bool) -> None:
        """Give the stretcher ``x`` (2, k) whose frames came from song frames ``stamps`` (k,)."""
        k = x.shape[1]
        size = self._in_stamps.shape[0]
        self._in_stamps[(self._fed + np.arange(k)) % size] = stamps
        self._fed += k
        self._stretcher.process(x, final=final)

    def step(self) -> bool:
        """One unit of work; ``False`` when there was nothing to do (the caller may sleep)."""
        host = self.host
        if host._mode != host.STRETCH:
            return False
        t0 = time.thread_time_ns()
        try:
            return self._step(host)
        finally:
            self.cpu_ns += time.thread_time_ns() - t0

    def _step(self, host) -> bool:
        engine = host._engine
        host._apply_requests(engine)
        engine.loop = host._loop
        tempo, pitch = host._stretch_params
        ring = host._ring
        if is_bypass(tempo, pitch) and self.primed and engine.playing and ring.fill < host._blocksize + CHUNK:
            tempo, pitch = self._params  # keep a block ready for the callback's crossfade, then release
        elif is_bypass(tempo, pitch):
            if host._release_requested:
                host._release_requested = False
                self.primed = False
                self.active = False
                host._mode = host.RELEASED  # hand the engine back to the callback
            return False
        if ring.fill >= self.ring_target:
            return False
        if not engine.playing and not self.active:
            return False
        if not self.primed:
            if not engine.playing:
                return False
            self._prime(tempo, pitch, handover=host._fade_in_next)
            host._fade_in_next = False
            self.active = True
        s = self._stretcher
        if (tempo, pitch) != self._params:
            s.time_ratio = 1.0 / tempo
            s.pitch_scale = pitch
            self._params = (tempo, pitch)
        if engine.playing:
            before = engine.pos
            buf = self._inbuf
            engine.render(buf, host._target)
            after = engine.pos
            stamps = before + np.arange(CHUNK, dtype=np.float64)
            loop = engine.loop
            if loop is not None and after < before:
                stamps[stamps >= loop[1]] -= loop[1] - loop[0]
            elif after != before + CHUNK and engine.playing:
                stamps = after - CHUNK + np.arange(CHUNK, dtype=np.float64)  # a seek (crossfaded)
            if not engine.playing:  # paused or at the end in this chunk: let the tail out
                np.minimum(stamps, after, out=stamps)
                self._flush_until = self._fed + CHUNK
            x = np.ascontiguousarray(buf.T)
        else:
            # Flush with silence, one chunk per step (``process(final=True)`` would do it all at
            # once: about 60 ms in one go, longer than the ring lasts).
            if self._flush_until < 0:
                self._flush_until = self._fed
            x = self._zeros
            stamps = np.full(CHUNK, float(engine.pos))
        self._feed(x, stamps, False)
        self._drain(s, tempo)
        if not engine.playing and (self._consumed >= self._flush_until
                                   or self._fed > self._flush_until + FLUSH_LIMIT):
            self.primed = False
            self.active = False
            self._flush_until = -1
        return True

    def _drain(self, s, tempo: float) -> None:
        avail = s.available()
        if avail <= 0:
            return
        y = s.retrieve(avail).T  # (k, 2)
        if self._skip:
            drop = min(self._skip, y.shape[0])
            self._skip -= drop
            y = y[drop:]
        k = y.shape[0]
        if k == 0:
            return
        y = np.ascontiguousarray(y, dtype=np.float32)
        if self._fade_in:  # crossfade from the plain tail the callback did not play
            i = SWITCH_FADE - self._fade_in
            m = min(k, self._fade_in)
            y[:m] *= self._ramp[i:i + m]
            y[:m] += self._tail[i:i + m] * self._ramp_down[i:i + m]
            self._fade_in -= m
        # the song frame of each output frame: the input it stands for advances by the tempo
        c = self._consumed + tempo * np.arange(k, dtype=np.float64)
        np.clip(c, 0.0, max(self._fed - 1, 0), out=c)
        self._consumed += tempo * k
        ci = c.astype(np.int64)
        size = self._in_stamps.shape[0]
        stamps = self._in_stamps[ci % size] + (c - ci)
        ring = self.host._ring
        free = ring.capacity - ring.fill
        if k > free:  # never happens at the ring target << capacity; drop rather than overwrite
            y, stamps = y[:free], stamps[:free]
        ring.write(y, stamps)


def bypass_params() -> tuple[float, float]:
    return (1.0, 1.0)


def semitone_cents(value: float) -> tuple[float, float]:
    """Split a fractional semitone value into (whole semitones, cents)."""
    whole = math.trunc(value)
    return float(whole), round((value - whole) * 100.0, 6)
