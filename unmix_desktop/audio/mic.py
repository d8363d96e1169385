"""Microphone input over a sounddevice ``InputStream``: input level and the singer's live pitch.

The PortAudio callback folds each block to mono, appends it to a preallocated ring and, for every
``hop`` new samples, runs YIN (:class:`YinPitch`) on the last ``frame`` samples. Results go into
preallocated reading arrays; the count of readings is published last (a single int assignment),
so the UI thread reads ``readings(since)`` without a lock and the callback never waits. Latency
from a sound to its reading: PortAudio's input latency + one block + half a frame (2048 samples
at 44.1 kHz: 23 ms); see :attr:`Microphone.latency_s`.

No PortAudio, no input device, or a device that refuses to open (permission denied, busy) gives
``available = False`` and a ``unavailable_reason``; nothing raises. sounddevice is imported lazily.

Audio here is float32 mono ``(n,)`` (the device's channels are averaged) at ``sample_rate``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .io import SAMPLE_RATE
from .player import NO_PORTAUDIO, _sounddevice, list_devices

NO_INPUT = "no input device (microphone)"
FMIN = 65.0
FMAX = 1100.0


class YinPitch:
    """YIN pitch of one frame (de Cheveigne & Kawahara 2002), vectorised with an FFT.

    ``frame``: samples per analysis frame; periods up to ``sample_rate / fmin`` are searched, so
    ``frame`` must exceed twice that. ``threshold``: the cumulative-mean-normalised difference
    below which a dip counts as a period (lower = stricter voicing); ``min_rms``: frames quieter
    than this are unvoiced.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, frame: int = 2048, fmin: float = FMIN, fmax: float = FMAX,
                 threshold: float = 0.15, min_rms: float = 10 ** (-50 / 20)):
        self.sample_rate = int(sample_rate)
        self.frame = int(frame)
        self.tau_min = max(2, int(self.sample_rate / fmax))
        self.tau_max = int(np.ceil(self.sample_rate / fmin))
        if self.frame < 2 * self.tau_max:
            raise ValueError(f"frame {frame} too short for fmin {fmin} Hz at {sample_rate} Hz")
        self.window = self.frame - self.tau_max
        self.threshold = float(threshold)
        self.min_rms = float(min_rms)
        self._nfft = 1 << int(np.ceil(np.log2(self.frame + self.window)))
        self._taus = np.arange(self.tau_max + 1)

    def __call__(self, x: np.ndarray) -> tuple[float, float]:
        """``(hz, clarity)`` of float32 ``(frame,)``; hz 0 when unvoiced; clarity 1 - dip depth."""
        x = np.asarray(x, dtype=np.float64)
        if x.size != self.frame:
            raise ValueError(f"expected {self.frame} samples, got {x.size}")
        x = x - x.mean()
        if np.sqrt(np.mean(x * x)) < self.min_rms:
            return 0.0, 0.0
        w, tmax = self.window, self.tau_max
        # d(tau) = sum_j (x_j - x_{j+tau})^2 over j < w = e0 + e_tau - 2 r(tau)
        spec_full = np.fft.rfft(x, self._nfft)
        spec_win = np.fft.rfft(x[:w], self._nfft)
        r = np.fft.irfft(spec_full * np.conj(spec_win), self._nfft)[: tmax + 1]
        sq = np.concatenate(([0.0], np.cumsum(x * x)))
        e_tau = sq[self._taus + w] - sq[self._taus]
        d = np.maximum(sq[w] + e_tau - 2 * r, 0.0)
        cmnd = np.ones_like(d)
        cums = np.cumsum(d[1:])
        cmnd[1:] = d[1:] * self._taus[1:] / np.maximum(cums, 1e-12)
        seg = cmnd[self.tau_min: tmax]
        below = np.flatnonzero(seg < self.threshold)
        if below.size == 0:
            return 0.0, float(max(0.0, 1.0 - seg.min()))
        tau = int(below[0]) + self.tau_min
        while tau + 1 < tmax and cmnd[tau + 1] < cmnd[tau]:  # walk down to the dip's bottom
            tau += 1
        a, b, c = cmnd[tau - 1], cmnd[tau], cmnd[tau + 1]  # parabolic interpolation
        denom = a - 2 * b + c
        shift = 0.5 * (a - c) / denom if abs(denom) > 1e-12 else 0.0
        period = tau + float(np.clip(shift, -1, 1))
        return self.sample_rate / period, float(max(0.0, 1.0 - b))


#: Capture devices that are not microphones: ALSA's "null" plugin hands over zeros (or garbage).
NOT_MICROPHONES = frozenset({"null"})


def list_input_devices() -> list[tuple[int, str]]:
    """``(index, "name, host API")`` of every device that can record (ALSA's null device left out:
    it is no microphone); empty without PortAudio."""
    return [(i, label) for i, label in list_devices("input")
            if label.split(",")[0].strip().lower() not in NOT_MICROPHONES]


class Microphone:
    """Live input level and pitch. ``device``: sounddevice index or name (``None``: the default input).

    ``open_stream=False`` never touches the audio system: the owner feeds blocks to :meth:`process`
    (tests, files). Readings: ``times`` are seconds of input since :meth:`start` (sample count),
    ``wall`` the ``time.monotonic()`` at which each reading was made, ``hz`` (0 = unvoiced) and
    ``level`` (RMS of the frame, dBFS).
    """

    CAPACITY = 4096  # readings kept (~47 s at hop 512)

    def __init__(self, device=None, sample_rate: int = SAMPLE_RATE, blocksize: int = 512, frame: int = 2048,
                 hop: int = 512, *, open_stream: bool = True):
        self._device = device
        self.sample_rate = int(sample_rate)
        self.blocksize = int(blocksize)
        self.hop = int(hop)
        self.yin = YinPitch(self.sample_rate, frame)
        self.frame = self.yin.frame
        self._open = bool(open_stream)
        self._stream: Any = None  # sounddevice.InputStream while started
        self._ring = np.zeros(self.frame + max(self.blocksize, self.hop) * 4 + 8192, np.float32)
        self._filled = 0          # samples in the ring (oldest first)
        self._since_hop = 0
        self._samples = 0         # samples received since start
        self._times = np.zeros(self.CAPACITY)
        self._wall = np.zeros(self.CAPACITY)
        self._hz = np.zeros(self.CAPACITY, np.float32)
        self._levels = np.full(self.CAPACITY, -120.0, np.float32)
        self._count = 0           # readings made; written last by the callback
        self._peak = 0.0          # block peak, linear
        self._overflows = 0
        self._error: str | None = None
        self._reason = self._probe() if self._open else None

    # availability -----------------------------------------------------------------------------
    def _probe(self) -> str | None:
        sd, error = _sounddevice()
        if sd is None:
            return error or NO_PORTAUDIO
        if not list_input_devices():
            return NO_INPUT
        try:
            info = sd.query_devices(self._device, kind="input")
        except (ValueError, sd.PortAudioError):
            return f"input device {self._device!r} not found" if self._device is not None else NO_INPUT
        if info["max_input_channels"] < 1:
            return f"device {self._device!r} has no input channels"
        return None

    @property
    def available(self) -> bool:
        return self._reason is None

    @property
    def unavailable_reason(self) -> str | None:
        return self._reason

    @property
    def running(self) -> bool:
        return self._stream is not None and bool(self._stream.active)

    @property
    def latency_s(self) -> float:
        """Sound-to-reading delay: input latency + one block + half a frame."""
        stream_latency = float(self._stream.latency) if self._stream is not None else 0.0
        return stream_latency + self.blocksize / self.sample_rate + self.frame / 2 / self.sample_rate

    @property
    def level_db(self) -> float:
        """Peak of the last block in dBFS (-120 when silent)."""
        return float(20 * np.log10(max(self._peak, 1e-6)))

    @property
    def overflows(self) -> int:
        return self._overflows

    # stream -----------------------------------------------------------------------------------
    def start(self) -> bool:
        """Open and start the input stream; ``False`` (with ``unavailable_reason``) when impossible."""
        if not self._open:
            return False
        if self._stream is not None:
            return True
        self._reason = self._probe()
        if self._reason is not None:
            return False
        sd, _ = _sounddevice()
        try:
            info = sd.query_devices(self._device, kind="input")
            channels = max(1, min(2, int(info["max_input_channels"])))
            self._stream = sd.InputStream(device=self._device, samplerate=self.sample_rate, channels=channels,
                                          dtype="float32", blocksize=self.blocksize, callback=self._callback)
            self._stream.start()
        except Exception as exc:  # noqa: BLE001 - PortAudioError, permission denied, busy device
            self._close()
            self._reason = f"microphone could not be opened: {str(exc).strip() or type(exc).__name__}"
            return False
        return True

    def stop(self) -> None:
        self._close()

    def _close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except Exception:  # noqa: BLE001
                pass

    def configure(self, device=...) -> bool:
        """Switch to another input device (restarts the stream if it was running)."""
        was_running = self._stream is not None
        self._close()
        if device is not ...:
            self._device = device
        self._reason = self._probe() if self._open else None
        return self.start() if was_running else self.available

    def _callback(self, indata, frames, time_info, status) -> None:
        if status and getattr(status, "input_overflow", False):
            self._overflows += 1
        try:
            self.process(indata[:, 0] if indata.shape[1] == 1 else indata.mean(axis=1))
        except Exception as exc:  # noqa: BLE001 - never let an exception stop the stream
            self._error = repr(exc)

    # analysis ---------------------------------------------------------------------------------
    def process(self, block: np.ndarray) -> None:
        """Take float32 mono ``(n,)`` samples: update the level and make a pitch reading per hop."""
        # A misbehaving driver can hand over garbage (ALSA's null device does): keep it finite and in range.
        block = np.clip(np.nan_to_num(np.asarray(block, dtype=np.float32), nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
        n = block.size
        if n == 0:
            return
        self._peak = float(np.max(np.abs(block)))
        ring = self._ring
        pos = 0
        while pos < n:
            take = min(n - pos, self.hop - self._since_hop, ring.size - self._filled)
            if take <= 0:  # ring full: drop the oldest samples
                keep = self.frame
                ring[:keep] = ring[self._filled - keep: self._filled]
                self._filled = keep
                continue
            ring[self._filled: self._filled + take] = block[pos: pos + take]
            self._filled += take
            self._since_hop += take
            self._samples += take
            pos += take
            if self._since_hop >= self.hop:
                self._since_hop = 0
                if self._filled >= self.frame:
                    self._read(ring[self._filled - self.frame: self._filled])

    def _read(self, frame: np.ndarray) -> None:
        hz, _ = self.yin(frame)
        rms = float(np.sqrt(np.mean(np.square(frame, dtype=np.float64))))
        k = self._count % self.CAPACITY
        # Reading time = centre of the analysed frame, in input seconds.
        self._times[k] = (self._samples - self.frame / 2) / self.sample_rate
        self._wall[k] = time.monotonic()
        self._hz[k] = hz
        self._levels[k] = 20 * np.log10(max(rms, 1e-6))
        self._count += 1  # published last

    @property
    def count(self) -> int:
        return self._count

    def readings(self, since: int = 0) -> tuple[int, dict[str, np.ndarray]]:
        """Readings made since reading number ``since`` (at most the last ``CAPACITY``):
        ``(count, {"times", "wall", "hz", "level"})``; pass ``count`` back next time."""
        count = self._count
        start = max(since, count - self.CAPACITY + 1, 0)
        idx = np.arange(start, count) % self.CAPACITY
        return count, {"times": self._times[idx].copy(), "wall": self._wall[idx].copy(),
                       "hz": self._hz[idx].copy(), "level": self._levels[idx].copy()}

    def latest_hz(self) -> float:
        """The most recent pitch reading (0: unvoiced or none yet)."""
        count = self._count
        return float(self._hz[(count - 1) % self.CAPACITY]) if count else 0.0
