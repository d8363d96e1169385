"""Live stem player over a sounddevice ``OutputStream`` (no Qt).

Threads: the UI thread calls the public methods; PortAudio's thread calls :meth:`StemPlayer._callback`.
They share no lock. Each control is a single attribute that only one side writes, and the UI
publishes a change by assigning a *new* immutable object (a tuple, or a gains array it never
touches again), which is an atomic reference swap in CPython:

* UI -> audio: ``_target`` (gains array), ``_transport = (seq, want_playing)``,
  ``_seek = (seq, frame, resume)``, ``_loop = (a, b) | None``, ``_engine`` (swapped on :meth:`load`);
* audio -> UI: ``_transport_seen``, ``_seek_seen``, ``_underruns``, ``_callbacks`` and the
  engine's ``pos``/``playing``/``levels``/``clipped``.

The callback itself only calls :meth:`MixEngine.render`, which works in preallocated buffers.

The end of the song is the one transport change the audio side makes by itself, so a request can cross
it: a seek asked while the UI saw the song playing may reach an engine that has just played into the end
and stopped (the block was still being rendered when the UI looked). A seek therefore carries the play
state it was asked in (``resume``): it goes on playing from its target, as asked, unless a newer
play/pause request says otherwise. (Without it, the soak test's whole-song loop, set while playing,
stopped at 0:00 for good once in a while: seek to the end, B, seek to A.)

Tempo and key (:meth:`StemPlayer.set_tempo`, :meth:`StemPlayer.set_key`): at tempo 1 and no shift
the callback renders exactly as above (bit-identical). Otherwise a producer thread
(:class:`~unmix_desktop.audio.stretch.StretchProducer`) owns the engine: it applies the requests,
renders the mix, stretches it (Rubber Band R3, real time) and fills a small ring
(:class:`~unmix_desktop.audio.stretch.AudioRing`); the callback copies from the ring and reports the
song frame it plays (``_heard``). ``_mode`` says who owns the engine: ``BYPASS`` (the callback),
``STRETCH`` (the producer), ``RELEASED`` (the producer gave it back; the callback takes it at the next
block). Switching goes through a short fade-out / fade-in, never a cut.

sounddevice is imported lazily: it raises ``OSError`` at import when libportaudio is missing, and
then the player reports ``available = False`` with a reason instead of failing.
"""

from __future__ import annotations

import time
from typing import Mapping

import numpy as np

from ..errors import UnmixError
from .mixer import SAMPLE_RATE, MixEngine, MixState
from .stretch import (
    DEFAULT_WINDOW,
    LEAD_FRAMES,
    SWITCH_FADE,
    AudioRing,
    StretchProducer,
    check_key,
    check_tempo,
    is_bypass,
    pitch_scale,
)

NO_PORTAUDIO = "no audio output: install libportaudio2"
NO_DEVICE = "no output device"


class _Status:
    """Stands in for ``sounddevice.CallbackFlags`` when the owner drives the callback."""

    output_underflow = False


_NO_STATUS = _Status()


class PlayerError(UnmixError):
    """Playback is impossible: no audio library, no device, or the device refused to open."""


_SD = None
_SD_ERROR: str | None = None


def _sounddevice():
    """``(module, None)`` or ``(None, reason)``; imports sounddevice once."""
    global _SD, _SD_ERROR
    if _SD is None and _SD_ERROR is None:
        try:
            import sounddevice

            _SD = sounddevice
        except OSError:  # sounddevice raises OSError when the PortAudio library is not found
            _SD_ERROR = NO_PORTAUDIO
        except ImportError:
            _SD_ERROR = "no audio output: the sounddevice package is not installed"
    return _SD, _SD_ERROR


def list_devices(kind: str = "output") -> list[tuple[int, str]]:
    """``(index, "name, host API")`` of every device that can play (``kind="output"``) or record
    (``"input"``); empty when there is none or no PortAudio. Either value can be given as ``device``
    (the name matches exactly)."""
    sd, _ = _sounddevice()
    if sd is None:
        return []
    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
    except Exception:  # noqa: BLE001 - PortAudio errors mean "nothing usable"
        return []
    result = []
    for index, dev in enumerate(devices):
        if dev[f"max_{kind}_channels"] > 0:
            api = hostapis[dev["hostapi"]]["name"] if dev["hostapi"] < len(hostapis) else ""
            result.append((index, f"{dev['name']}, {api}" if api else dev["name"]))
    return result


def list_output_devices() -> list[tuple[int, str]]:
    """Devices that can play: :func:`list_devices` ``("output")``."""
    return list_devices("output")


def _probe(device) -> str | None:
    """Why playback on ``device`` is impossible, or ``None`` when it looks possible."""
    sd, error = _sounddevice()
    if sd is None:
        return error
    outputs = list_output_devices()
    if not outputs:
        return NO_DEVICE
    if device is None:
        return None
    try:
        info = sd.query_devices(device, kind="output")
    except (ValueError, sd.PortAudioError):
        return f"output device {device!r} not found"
    if info["max_output_channels"] < 1:
        return f"device {device!r} has no output channels"
    return None


def _as_stereo(name: str, audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[1] not in (1, 2):
        raise PlayerError(f"stem '{name}': expected (n, 2) audio, got shape {a.shape}")
    if a.shape[1] == 1:
        a = np.repeat(a, 2, axis=1)
    return np.ascontiguousarray(a)


class StemPlayer:
    """Plays N stems with live gain/mute/solo/pan, master gain, seek and A-B loop.

    ``device``: a sounddevice device index or name (``None``: the system default).
    ``blocksize``: frames per callback; ``latency``: seconds or ``"low"``/``"high"`` (``None``: PortAudio's).
    ``open_stream=False``: never touch the audio system; the owner drives :meth:`process` (or the
    callback) with its own buffers: tests, benchmarks, rendering to another sink.
    ``stretch_thread=False``: no producer thread; the callback runs the stretch producer itself
    (deterministic, for tests and benchmarks only: it is not real-time safe).
    ``stretch_window``: ``"short"`` (default: control latency within 150 ms down to tempo 0.5) or
    ``"standard"`` (Rubber Band R3's full quality, more latency), see
    :data:`unmix_desktop.audio.stretch.WINDOWS`.
    """

    BYPASS, STRETCH, RELEASED = 0, 1, 2

    def __init__(
        self,
        device=None,
        blocksize: int = 512,
        latency=None,
        sample_rate: int = SAMPLE_RATE,
        *,
        open_stream: bool = True,
        stretch_thread: bool = True,
        stretch_window: str = DEFAULT_WINDOW,
    ):
        self._open = bool(open_stream)
        self._device = device
        self._blocksize = int(blocksize)
        if self._blocksize <= 0:
            raise PlayerError(f"block size must be positive, got {blocksize}")
        self._latency = latency
        self._sample_rate = int(sample_rate)
        self._stream = None
        self._state = MixState.from_names(())
        self._target = self._state.gains()
        self._engine = self._new_engine([], self._target)
        self._transport: tuple[int, bool] = (0, False)
        self._seek: tuple[int, int, bool] = (0, 0, False)  # (seq, frame, resume: asked while playing)
        self._loop: tuple[int, int] | None = None
        self._transport_seen = 0
        self._seek_seen = 0
        self._swap: tuple[int, MixEngine | None, np.ndarray | None] = (0, None, None)  # replace_stems()
        self._swap_seen = 0
        self._underruns = 0
        self._callbacks = 0
        self._callback_error: str | None = None
        self._unavailable_reason = _probe(device) if self._open else None
        # tempo / key stage
        self._tempo, self._semitones, self._cents = 1.0, 0.0, 0.0
        self._stretch_params: tuple[float, float] = (1.0, 1.0)  # (tempo, pitch scale), UI -> producer
        self._mode = self.BYPASS
        self._release_requested = False  # callback -> producer: give the engine back
        self._fade_in_next = False  # callback -> producer: crossfade from the hand-over tail
        self._handover_tail = np.zeros((SWITCH_FADE, 2), np.float32)  # written in BYPASS mode only
        self._handover_stamps = np.zeros(SWITCH_FADE, np.float64)
        self._ring = AudioRing()
        self._heard = 0.0  # song frame after the last one the callback played from the ring
        self._seek_mark: tuple[int, int] = (0, 0)  # (ring write index, frame) of the last seek
        self._stretch_underruns = 0
        self._streaming = False
        self._loop_passes = 0
        self._stretch_thread = bool(stretch_thread)
        self._count_in: tuple[int, np.ndarray | None] = (0, None)  # UI -> callback: audio to play first
        self._count_in_seen = 0
        self._pre: np.ndarray | None = None  # the count-in being played (callback)
        self._pre_pos = 0
        self._producer = StretchProducer(self, self._sample_rate, stretch_window)
        self._lead = np.zeros((LEAD_FRAMES, 2), np.float32)
        self._lead_stamps = np.zeros(LEAD_FRAMES, np.float64)
        self._lead_base = np.arange(LEAD_FRAMES, dtype=np.float64)
        self._lead_mask = np.zeros(LEAD_FRAMES, np.bool_)
        self._idx = np.arange(1, max(self._blocksize, 4096) + 1, dtype=np.float32)
        self._ramp = np.zeros((max(self._blocksize, 4096), 2), np.float32)
        self._xf = np.zeros((max(self._blocksize, 4096), 2), np.float32)

    # availability and devices --------------------------------------------------------------
    @property
    def available(self) -> bool:
        return self._unavailable_reason is None

    @property
    def unavailable_reason(self) -> str | None:
        return self._unavailable_reason

    @property
    def device(self):
        return self._device

    @property
    def blocksize(self) -> int:
        return self._blocksize

    @property
    def latency(self):
        """The latency setting; once a stream is open, the actual output latency in seconds."""
        if self._stream is not None:
            return self._stream.latency
        return self._latency

    def configure(self, device=..., blocksize: int | None = None, latency=...) -> None:
        """Change the output device, block size or latency; reopens the stream when one is open."""
        was_playing = self.playing
        self._fade_out_and_wait()
        self._close_stream()
        if device is not ...:
            self._device = device
        if blocksize is not None:
            if int(blocksize) <= 0:
                raise PlayerError(f"block size must be positive, got {blocksize}")
            self._blocksize = int(blocksize)  # the engine renders any number of frames
            if self._blocksize > self._idx.shape[0]:
                self._idx = np.arange(1, self._blocksize + 1, dtype=np.float32)
                self._ramp = np.zeros((self._blocksize, 2), np.float32)
                self._xf = np.zeros((self._blocksize, 2), np.float32)
        if latency is not ...:
            self._latency = latency
        self._unavailable_reason = _probe(self._device) if self._open else None
        if was_playing and self.available:
            self.play()

    def _new_engine(self, stems, gains, ready=None) -> MixEngine:
        return MixEngine(stems, gains, sample_rate=self._sample_rate, max_block=max(self._blocksize, 4096),
                         ready=ready)

    # loading ---------------------------------------------------------------------------------
    def load(self, stems: Mapping[str, np.ndarray], sample_rate: int = SAMPLE_RATE, ready=None) -> None:
        """Replace the stems (name -> float32 (n, 2)); resets faders, position and loop.

        ``ready``: stems still being separated into these very arrays (a
        :class:`~unmix_desktop.audio.growing.GrowingStems`, whose ``stems`` are passed here): playback
        never passes its published ``ready`` frames; it waits there and goes on by itself."""
        arrays = [_as_stereo(name, audio) for name, audio in stems.items()]
        self._swap = (self._swap[0] + 1, None, None)  # a replace_stems() not applied yet is void
        self._fade_out_and_wait()
        self._producer.stop_thread()  # nobody but this thread touches the engine now
        self._producer.reset()
        self._mode = self.BYPASS
        self._release_requested = False
        self._ring.reset()
        self._streaming = False
        self._heard = 0.0
        if int(sample_rate) != self._sample_rate:
            self._close_stream()
            self._sample_rate = int(sample_rate)
        state = MixState.from_names(stems.keys())
        target = state.gains()
        self._loop = None
        self._transport = (self._transport[0] + 1, False)
        self._seek = (self._seek[0] + 1, 0, False)
        # engine first: a callback in between sees the new engine with the old target, which the
        # engine ignores (wrong shape); the new engine already starts at the new gains
        self._engine = self._new_engine(arrays, target, ready)
        self._state = state
        self._target = target
        if self._producer.sample_rate != self._sample_rate:
            self._producer.stop_thread()
            self._producer = StretchProducer(self, self._sample_rate, self._producer.window)
        if self._stretch_thread and len(arrays):
            self._producer.start_thread()  # idle until tempo/key leave 1.0/0; builds the stretcher now

    def replace_stems(self, stems: Mapping[str, np.ndarray], sample_rate: int = SAMPLE_RATE,
                      state: MixState | None = None) -> bool:
        """Swap the song's stems for others of the same song (the best-quality stems once they are
        separated) without a gap: at a block boundary, crossfaded over that block, with the position,
        play/pause and loop kept. ``state``: the mix of the new stems (default 0 dB each, the current
        master). Returns ``False`` (nothing changed: use :meth:`load` and :meth:`seek`) when it cannot
        be gapless: another rate, nothing loaded, or the tempo/key stage in the signal path."""
        if int(sample_rate) != self._sample_rate or self._mode != self.BYPASS or not self._engine.n_frames:
            return False
        arrays = [_as_stereo(name, audio) for name, audio in stems.items()]
        if state is None:
            state = MixState.from_names(stems.keys())
            state.master_db = self._state.master_db
        else:
            state = state.copy()
        if list(state.names) != list(stems):
            raise PlayerError(f"the mix names {', '.join(state.names)}, not the stems {', '.join(stems)}")
        target = state.gains()
        engine = self._new_engine(arrays, target)
        self._state = state
        if self._open and self._stream is None:  # no callback runs (no device): swap here
            self._swap_engine(engine, target, None)
        else:
            self._swap = (self._swap[0] + 1, engine, target)
        return True

    def _swap_engine(self, new: MixEngine, target: np.ndarray, outdata: np.ndarray | None) -> bool:
        """Put ``new`` in the old engine's place (callback thread, or any thread when no callback runs).
        With ``outdata``, render this block from both, crossfaded; ``False``: not now (mid-fade)."""
        old = self._engine
        if old._fade != 0 or old._xf_left:  # a fade or seek crossfade in progress: next block
            return False
        new.loop = old.loop
        new.pos = min(old.pos, new.n_frames)
        new.finished = old.finished
        if outdata is not None and old.playing:
            frames = outdata.shape[0]
            old.render(outdata, self._target)
            new.playing = True
            plain = self._xf[:frames]
            new.render(plain, target)
            ramp = self._ramp[:frames]  # (t + 1) / n: the new stems fade in, the old ones out
            np.divide(self._idx[:frames], float(frames), out=ramp[:, 0])
            ramp[:, 1] = ramp[:, 0]
            np.subtract(plain, outdata, out=plain)
            np.multiply(plain, ramp, out=plain)
            np.add(outdata, plain, out=outdata)
        else:
            new.playing = old.playing
        self._engine = new
        if self._target.shape != target.shape:  # else a newer target of the new stems is already published
            self._target = target
        return True

    def _fade_out_and_wait(self, timeout: float = 0.5) -> None:
        """Pause with a fade and give the callback time to play it (only when a stream runs)."""
        if not self.playing:
            return
        self.pause()
        if self._stream is None or not self._stream.active:
            return
        deadline = time.monotonic() + timeout
        while self.playing and time.monotonic() < deadline:
            time.sleep(0.002)

    @property
    def names(self) -> tuple[str, ...]:
        return self._state.names

    # transport -------------------------------------------------------------------------------
    def play(self, count_in: np.ndarray | None = None) -> None:
        """Start or resume playback. Raises :class:`PlayerError` when there is no usable output.

        ``count_in``: float32 (n, 2) audio played before the song starts (a bar of clicks, see
        :func:`unmix_desktop.analysis.practice.count_in`); the song starts right after it."""
        if not self.available:
            raise PlayerError(self._unavailable_reason)
        if count_in is not None and not self.playing:
            self._count_in = (self._count_in[0] + 1, _as_stereo("count-in", count_in))
        self._transport = (self._transport[0] + 1, True)
        self._ensure_producer()
        self._open_stream()

    def pause(self) -> None:
        if self._count_in[1] is not None:
            self._count_in = (self._count_in[0] + 1, None)  # a count-in still playing stops too
        self._transport = (self._transport[0] + 1, False)

    def stop(self) -> None:
        """Pause and go back to the start."""
        self.pause()
        self.seek(0.0)

    def seek(self, seconds: float) -> None:
        """Move the play head; the play state stays as it is now, also when the audio thread reaches the
        end of the song before it takes the request (module docstring)."""
        frame = int(round(max(float(seconds), 0.0) * self._sample_rate))
        self._seek = (self._seek[0] + 1, min(frame, self._engine.n_frames), self.playing)

    def set_loop(self, a_s: float, b_s: float) -> None:
        """Loop between ``a_s`` and ``b_s`` seconds (crossfaded at the jump)."""
        sr = self._sample_rate
        a = int(round(max(float(a_s), 0.0) * sr))
        b = int(round(min(float(b_s), self.duration) * sr))
        if b - a < 2 * self._engine.xfade:
            raise PlayerError(f"loop {a_s:.3f}-{b_s:.3f} s is too short or outside the song")
        self._loop = (a, b)

    def clear_loop(self) -> None:
        self._loop = None

    @property
    def loop(self) -> tuple[float, float] | None:
        loop = self._loop
        return None if loop is None else (loop[0] / self._sample_rate, loop[1] / self._sample_rate)

    @property
    def playing(self) -> bool:
        """Playing, or asked to (a pending play, or a pending seek asked while playing)."""
        seq, want = self._transport
        if seq != self._transport_seen:
            return want
        seek_seq, _, resume = self._seek
        if resume and seek_seq != self._seek_seen:
            return True
        if self._mode != self.BYPASS:
            return self._engine.playing or self._producer.active or self._ring.fill > 0
        return self._engine.playing

    @property
    def position(self) -> float:
        """Seconds of the song (at any tempo): the frame heard next (a pending seek shows its target)."""
        seq, frame, _ = self._seek
        if seq != self._seek_seen:
            return frame / self._sample_rate
        if self._mode != self.BYPASS:
            ring = self._ring
            mark_index, mark_frame = self._seek_mark
            if ring.read_index < mark_index:
                return mark_frame / self._sample_rate
            if self._producer.active or ring.fill > 0 or self._streaming:
                return self._heard / self._sample_rate
        return self._engine.pos / self._sample_rate

    @property
    def duration(self) -> float:
        return self._engine.n_frames / self._sample_rate

    @property
    def ready_seconds(self) -> float:
        """Seconds from the start that can be played (the whole song unless it is being separated)."""
        return self._engine.ready_frames / self._sample_rate

    @property
    def waiting(self) -> bool:
        """Playing, but held at the part that is not separated yet (silence until it arrives)."""
        return self._engine.waiting and self.playing

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    # tempo and key -----------------------------------------------------------------------------
    def set_tempo(self, tempo: float) -> None:
        """Playback speed, 0.25..2.0 (1.0: the original); the key does not change."""
        self._tempo = check_tempo(tempo)
        self._publish_stretch()

    def set_key(self, semitones: float, cents: float = 0.0) -> None:
        """Transpose by ``semitones`` (-12..12) plus ``cents`` (-100..100); the tempo does not change."""
        self._semitones, self._cents = check_key(semitones, cents)
        self._publish_stretch()

    @property
    def tempo(self) -> float:
        return self._tempo

    @property
    def key(self) -> tuple[float, float]:
        """``(semitones, cents)``."""
        return self._semitones, self._cents

    def _publish_stretch(self) -> None:
        self._stretch_params = (self._tempo, pitch_scale(self._semitones, self._cents))
        self._ensure_producer()

    def _ensure_producer(self) -> None:
        if self._stretch_thread and not is_bypass(*self._stretch_params):
            self._producer.start_thread()

    @property
    def stretching(self) -> bool:
        """Whether the stretch stage is in the signal path now (not bypassed)."""
        return self._mode != self.BYPASS

    @property
    def stretch_underruns(self) -> int:
        """Blocks the callback found the stretch ring short of audio while streaming."""
        return self._stretch_underruns

    @property
    def producer_cpu_s(self) -> float:
        """CPU seconds the stretch producer has used."""
        return self._producer.cpu_ns / 1e9

    @property
    def loop_passes(self) -> int:
        """How many times playback has wrapped from B back to A (for a loop trainer)."""
        return self._loop_passes

    # mix controls ----------------------------------------------------------------------------
    def _publish(self) -> None:
        self._target = self._state.gains()  # a new array: atomic swap for the callback

    def set_gain_db(self, name: str, db: float) -> None:
        self._state.set_gain_db(name, db)
        self._publish()

    def set_mute(self, name: str, muted: bool) -> None:
        self._state.set_mute(name, muted)
        self._publish()

    def set_solo(self, name: str, soloed: bool) -> None:
        self._state.set_solo(name, soloed)
        self._publish()

    def set_pan(self, name: str, pan: float) -> None:
        self._state.set_pan(name, pan)
        self._publish()

    def set_master_db(self, db: float) -> None:
        self._state.set_master_db(db)
        self._publish()

    def set_mix_state(self, state: MixState) -> None:
        """Apply a whole :class:`MixState` (for the stems this player has)."""
        new = MixState.from_names(self._state.names)
        for name in new.names:
            if name in state.gain_db:
                new.set_gain_db(name, state.gain_db[name])
                new.set_mute(name, state.mute[name])
                new.set_solo(name, state.solo[name])
                new.set_pan(name, state.pan[name])
        new.set_master_db(state.master_db)
        self._state = new
        self._publish()

    def mix_state(self) -> MixState:
        """A copy of the current settings, for :func:`unmix_desktop.audio.export.render_mix`."""
        return self._state.copy()

    def levels(self) -> dict[str, float]:
        """Recent post-fader peak per stem (linear, decaying), for meters."""
        levels = self._engine.levels
        names = self._state.names
        if len(levels) != len(names):  # replace_stems() is waiting for the next block
            return dict.fromkeys(names, 0.0)
        return {name: float(levels[i]) for i, name in enumerate(names)}

    @property
    def underruns(self) -> int:
        return self._underruns

    @property
    def clipped(self) -> int:
        """Samples of the current song whose mix went over full scale (the limiter caught them)."""
        return self._engine.clipped

    @property
    def callbacks(self) -> int:
        return self._callbacks

    @property
    def callback_error(self) -> str | None:
        return self._callback_error

    # stream ----------------------------------------------------------------------------------
    def _open_stream(self) -> None:
        if not self._open:
            return
        if self._stream is not None:
            if self._stream.active:
                return
            self._close_stream()  # stopped by an error (device unplugged...): open a new one
        sd, error = _sounddevice()
        if sd is None:
            raise PlayerError(error)
        try:
            stream = sd.OutputStream(
                samplerate=self._sample_rate,
                channels=2,
                dtype="float32",
                blocksize=self._blocksize,
                device=self._device,
                latency=self._latency,
                callback=self._callback,
            )
            stream.start()
        except Exception as exc:
            where = "default output" if self._device is None else f"output device {self._device!r}"
            self._transport = (self._transport[0] + 1, False)
            raise PlayerError(f"cannot open {where}: {exc}") from exc
        self._stream = stream

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            stream.stop()
            stream.close()
        except Exception:  # noqa: BLE001 - closing a dead device must not fail the caller
            pass

    def close(self) -> None:
        """Fade out and release the audio device. The player can play again later."""
        self._fade_out_and_wait()
        self._close_stream()
        self._producer.stop_thread()

    def __enter__(self) -> "StemPlayer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # pragma: no cover - best effort
        try:
            self._close_stream()
        except Exception:  # noqa: BLE001
            pass

    # the audio callback ----------------------------------------------------------------------
    def process(self, outdata: np.ndarray) -> None:
        """Render the next ``len(outdata)`` frames into ``outdata`` exactly as the stream callback does."""
        self._callback(outdata, outdata.shape[0], None, _NO_STATUS)

    def _apply_requests(self, engine: MixEngine) -> None:
        """Apply pending transport and seek requests to ``engine`` (its owner's thread)."""
        seq, want = self._transport
        seek_seq, frame, resume = self._seek
        engine.loop = self._loop
        if engine.playing:  # pause first, so that stop() lands exactly on its seek target
            if seq != self._transport_seen:
                engine.start() if want else engine.pause()
                self._transport_seen = seq
            if seek_seq != self._seek_seen:
                engine.seek(frame)
                self._seek_mark = (self._ring.write_index, frame)
                self._seek_seen = seek_seq
        else:  # seek first, so that play() after a seek starts at the new place
            if seek_seq != self._seek_seen:
                ended = engine.finished  # played into the end by itself, maybe after the seek was asked
                engine.seek(frame)
                self._seek_mark = (self._ring.write_index, frame)
                self._seek_seen = seek_seq
                if resume and ended and seq == self._transport_seen and frame < engine.n_frames:
                    engine.start()  # asked while playing: it plays on from there (module docstring)
            if seq != self._transport_seen:
                engine.start() if want else engine.pause()
                self._transport_seen = seq

    def _callback(self, outdata: np.ndarray, frames: int, time_info, status) -> None:
        """PortAudio's thread: apply pending requests, render one block. Never blocks."""
        try:
            if status.output_underflow:
                self._underruns += 1
            if self._count_in[0] != self._count_in_seen or self._pre is not None:
                outdata, frames = self._play_count_in(outdata, frames)
                if not frames:
                    self._callbacks += 1
                    return
            if self._swap[0] != self._swap_seen and self._mode == self.BYPASS:
                seq, new, target = self._swap
                self._apply_requests(self._engine)
                if new is None:  # cancelled by load()
                    self._swap_seen = seq
                elif target is not None and self._swap_engine(new, target, outdata):
                    self._swap_seen = seq
                    self._callbacks += 1
                    return
            if self._mode == self.BYPASS and self._stretch_params == (1.0, 1.0):
                engine = self._engine
                self._apply_requests(engine)
                before = engine.pos
                engine.render(outdata, self._target)
                if engine.pos < before and engine.loop is not None:
                    self._loop_passes += 1
            else:
                self._stretch_callback(outdata, frames)
            self._callbacks += 1
        except Exception as exc:  # noqa: BLE001 - an exception here would kill the stream
            outdata.fill(0)
            self._callback_error = f"{type(exc).__name__}: {exc}"

    def _play_count_in(self, outdata: np.ndarray, frames: int) -> tuple[np.ndarray, int]:
        """Copy the next part of the count-in; the part of the block after it, for the song."""
        seq, audio = self._count_in
        if seq != self._count_in_seen:
            self._count_in_seen = seq
            self._pre, self._pre_pos = audio, 0
        pre = self._pre
        if pre is None:
            return outdata, frames
        k = min(frames, pre.shape[0] - self._pre_pos)
        np.copyto(outdata[:k], pre[self._pre_pos:self._pre_pos + k])
        self._pre_pos += k
        if self._pre_pos >= pre.shape[0]:
            self._pre = None
        return outdata[k:], frames - k

    def _stretch_callback(self, outdata: np.ndarray, frames: int) -> None:
        """The callback while tempo/key is not bypassed, or while switching. Never allocates."""
        mode = self._mode
        engine = self._engine
        if mode == self.BYPASS:  # tempo/key just left 1.0/0: hand the engine to the producer
            self._apply_requests(engine)
            if not engine.playing:
                outdata.fill(0)
                self._ring.reset()
                self._mode = self.STRETCH
                return
            engine.render(outdata, self._target)
            # a lead of plain audio covers the producer's priming; its last SWITCH_FADE frames are
            # not played but handed over: the stretched output starts there and crossfades from them
            lead, stamps = self._lead, self._lead_stamps
            before: float = engine.pos
            engine.render(lead, self._target)
            np.add(self._lead_base, float(before), out=stamps)
            loop = engine.loop
            if loop is not None and engine.pos < before:
                np.greater_equal(stamps, loop[1], out=self._lead_mask)
                np.subtract(stamps, float(loop[1] - loop[0]), out=stamps, where=self._lead_mask)
            np.copyto(self._handover_tail, lead[-SWITCH_FADE:])
            np.copyto(self._handover_stamps, stamps[-SWITCH_FADE:])
            self._ring.reset()
            self._ring.write(lead[:-SWITCH_FADE], stamps[:-SWITCH_FADE])
            self._heard = float(before)
            self._streaming = True
            self._fade_in_next = True
            self._mode = self.STRETCH
            return
        ring = self._ring
        if mode == self.STRETCH and self._stretch_params == (1.0, 1.0):
            self._release_requested = True
        if not self._stretch_thread:  # synchronous producer (tests, benchmarks): keeps the ring as full
            # as the thread does, so latencies measured this way are the real ones
            want = self._producer.ring_target + frames
            while (ring.fill < want or self._release_requested) and self._producer.step():
                pass
            mode = self._mode
        n = min(frames, ring.fill)
        before = self._heard
        if n:
            self._heard = ring.read_into(outdata, n)
            loop = self._loop
            if loop is not None and self._heard < before - 1.0 and self._heard <= loop[0] + 2 * frames:
                self._loop_passes += 1  # heard playback wrapped from B to A (a seek lands elsewhere)
        if n < frames:
            outdata[n:].fill(0)
            if self._streaming and mode == self.STRETCH and (self._producer.active or engine.playing):
                self._stretch_underruns += 1
        self._streaming = n == frames
        if mode == self.RELEASED:  # the producer gave the engine back: crossfade to the plain mix
            if n:
                ramp = self._ramp[:n]  # 1 - (t + 1) / n: the engine fades in with (t + 1) / n
                np.divide(self._idx[:n], -float(n), out=ramp[:, 0])
                np.add(ramp[:, 0], 1.0, out=ramp[:, 0])
                ramp[:, 1] = ramp[:, 0]
                np.multiply(outdata[:n], ramp, out=outdata[:n])
                if engine.playing:
                    engine.jump(int(round(before)))  # where the block read from the ring started
                    plain = self._xf[:n]
                    engine.render(plain, self._target)
                    np.add(outdata[:n], plain, out=outdata[:n])
                else:
                    engine.jump(int(round(self._heard)))
            self._ring.reset()
            self._streaming = False
            self._mode = self.BYPASS
