"""``unmix play STEMS_DIR | SONG``: play the stems of a separated song in the terminal.

A song file is separated while it plays (the song pipeline's live buffers, see
:mod:`unmix_desktop.separation.pipeline`): sound starts once the first window is separated, the
play head waits where separation has not arrived yet, and the result goes to the stem cache, so
playing the song again starts at once."""

from __future__ import annotations

import argparse
import math
import sys
import threading
import time
from pathlib import Path

import numpy as np

from ..audio.io import AUDIO_EXTENSIONS, SAMPLE_RATE, audio_files, load_audio
from ..audio.mixer import MixState
from ..errors import AudioError, UsageError
from .argtypes import finite_float, non_negative_float, positive_float, positive_int

__all__ = ["UsageError", "add_mix_arguments", "load_stems", "state_from_args", "stem_files"]


def add_mix_arguments(parser: argparse.ArgumentParser, folder_optional: bool = False) -> None:
    """The fader options shared by ``play`` and ``mix``."""
    parser.add_argument("stems_dir", metavar="STEMS_DIR", nargs="?" if folder_optional else None,
                        help="folder of <stem>.wav/.flac files (from 'unmix separate')")
    parser.add_argument("--mute", action="append", default=[], metavar="STEM", help="mute a stem (repeatable, or a,b)")
    parser.add_argument("--solo", action="append", default=[], metavar="STEM",
                        help="solo a stem (repeatable; solo wins over mute)")
    parser.add_argument("--gain", action="append", default=[], metavar="STEM=DB",
                        help="stem gain in dB, -inf..+6 (e.g. drums=-6)")
    parser.add_argument("--pan", action="append", default=[], metavar="STEM=P", help="stem pan, -1 (left) .. 1 (right)")
    parser.add_argument("--master", type=float, default=0.0, metavar="DB", help="master gain in dB (default 0)")


def add_stretch_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tempo`` and ``--key``, shared by ``play`` and ``mix``."""
    parser.add_argument("--tempo", type=finite_float, default=1.0, metavar="R",
                        help="speed, 0.25..2 (0.8 = 80 %%); the key stays (default 1)")
    parser.add_argument("--key", type=finite_float, default=0.0, metavar="SEMITONES",
                        help="transpose by -12..12 semitones (fractions are cents); the tempo stays")


def stretch_from_args(args: argparse.Namespace) -> dict:
    """``{"tempo", "semitones", "cents"}`` from ``--tempo``/``--key``, checked."""
    from ..audio.stretch import StretchError, check_key, check_tempo, is_bypass, pitch_scale, semitone_cents
    from ..audio.stretch import unavailable_reason as stretch_unavailable

    tempo = check_tempo(args.tempo)
    semitones, cents = semitone_cents(args.key)
    check_key(semitones, cents)
    if not is_bypass(tempo, pitch_scale(semitones, cents)) and (reason := stretch_unavailable()) is not None:
        raise StretchError(f"--tempo/--key unavailable: {reason}")
    return {"tempo": tempo, "semitones": semitones, "cents": cents}


def _names(values: list[str]) -> list[str]:
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def _pairs(values: list[str], option: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, number = value.partition("=")
        if not sep or not name.strip() or not number.strip():
            raise UsageError(f"--{option} {value!r}: expected STEM=VALUE, e.g. drums=-6")
        pairs.append((name.strip(), number.strip()))
    return pairs


def state_from_args(names, args: argparse.Namespace) -> MixState:
    """A :class:`MixState` for ``names`` with the ``--mute/--solo/--gain/--pan/--master`` options applied."""
    state = MixState.from_names(names)
    for name in _names(args.mute):
        state.set_mute(name, True)
    for name in _names(args.solo):
        state.set_solo(name, True)
    for name, value in _pairs(args.gain, "gain"):
        state.set_gain_db(name, -math.inf if value.lower() in {"-inf", "-infinity", "off"} else value)
    for name, value in _pairs(args.pan, "pan"):
        state.set_pan(name, value)
    state.set_master_db(args.master)
    return state


def stem_files(folder: str | Path) -> dict[str, Path]:
    """``{stem name: file}`` for the audio files of a stems folder, sorted by name."""
    folder = Path(folder)
    if not folder.exists():
        raise AudioError(folder, "folder not found")
    if not folder.is_dir():
        raise AudioError(folder, "is not a folder of stems")
    files: dict[str, Path] = {}
    for path in audio_files(folder):
        if path.stem in files:
            raise AudioError(folder, f"two files for stem '{path.stem}': {files[path.stem].name} and {path.name}")
        files[path.stem] = path
    if not files:
        raise AudioError(folder, "no stems found (expected <stem>.wav or <stem>.flac files)")
    return files


def load_stems(folder: str | Path, start: float = 0.0, duration: float | None = None) -> dict[str, np.ndarray]:
    """Load every stem of ``folder`` (float32 (n, 2), 44.1 kHz), cut to ``start`` .. ``start + duration``."""
    if not math.isfinite(start) or start < 0:
        raise UsageError(f"--start must be a finite number >= 0, got {start}")
    if duration is not None and (not math.isfinite(duration) or duration <= 0):
        raise UsageError(f"--duration must be a finite number > 0, got {duration}")
    stems = {name: load_audio(path, SAMPLE_RATE) for name, path in stem_files(folder).items()}
    length = max(a.shape[0] for a in stems.values())
    first = int(round(start * SAMPLE_RATE))
    if first >= length:
        raise UsageError(f"--start {start:g} s is past the end of the song ({length / SAMPLE_RATE:.1f} s)")
    last = length if duration is None else min(length, first + int(round(duration * SAMPLE_RATE)))
    return {name: np.ascontiguousarray(a[first:last]) for name, a in stems.items()}


def _clock(seconds: float) -> str:
    minutes, secs = divmod(max(seconds, 0.0), 60.0)
    return f"{int(minutes)}:{secs:04.1f}"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "play",
        help="play a song (separated while it plays) or its stems with mute/solo/gain",
        description="Play a folder of stems, or a song file (separated while it plays), in the terminal. Ctrl-C stops.",
    )
    add_mix_arguments(p, folder_optional=True)
    p.add_argument("--start", type=non_negative_float, default=0.0, metavar="S", help="start at S seconds")
    p.add_argument("--duration", type=positive_float, default=None, metavar="S", help="play S seconds")
    p.add_argument("--loop", action="store_true", help="loop the played section until Ctrl-C")
    p.add_argument("--device", default=None, metavar="N", help="output device index or name (see --list-devices)")
    p.add_argument("--list-devices", action="store_true", help="list the output devices and exit")
    p.add_argument("--blocksize", type=positive_int, default=512, metavar="FRAMES",
                   help="frames per audio block (default 512)")
    p.add_argument("--latency", default=None, metavar="S", help="output latency in seconds, or low/high")
    add_stretch_arguments(p)
    p.add_argument("--model", default=None, metavar="NAME",
                   help="for a song file: the model (name or bundle folder; default: the best installed)")
    p.add_argument("--no-cache", action="store_true", help="for a song file: separate again even when cached")
    p.add_argument("--count-in", action="store_true", help="one bar of clicks (at the song's detected tempo) first")
    return p


def _device(value):
    if value is None:
        return None
    return int(value) if value.strip().lstrip("-").isdigit() else value


def _latency(value):
    if value is None or value in {"low", "high"}:
        return value
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(f"--latency {value!r}: expected seconds > 0, 'low' or 'high'")
    return seconds


def run(args: argparse.Namespace) -> int:
    from ..audio.player import PlayerError, StemPlayer, list_output_devices

    if args.list_devices:
        devices = list_output_devices()
        for index, name in devices:
            print(f"{index:3d}  {name}")
        if not devices:
            print(StemPlayer().unavailable_reason or "no output device")
        return 0
    if not args.stems_dir:
        raise UsageError("play needs a STEMS_DIR (a folder of <stem>.wav files from 'unmix separate') or a song file")

    player = StemPlayer(device=_device(args.device), blocksize=args.blocksize, latency=_latency(args.latency))
    if not player.available:
        raise PlayerError(player.unavailable_reason)
    if Path(args.stems_dir).is_file() or Path(args.stems_dir).suffix.lower() in AUDIO_EXTENSIONS:
        return _run_song(args, player)
    stems = load_stems(args.stems_dir, args.start, args.duration)
    state = state_from_args(stems.keys(), args)
    stretch = stretch_from_args(args)
    player.load(stems)
    player.set_mix_state(state)
    player.set_tempo(stretch["tempo"])
    player.set_key(stretch["semitones"], stretch["cents"])
    clicks = None
    if args.count_in:
        from ..analysis.beats import estimate_beats
        from ..analysis.practice import count_in

        grid = estimate_beats(stems)
        clicks = count_in(grid.bpm, grid.beats_per_bar, stretch["tempo"])
        print(f"count-in: {grid.bpm:.1f} BPM ({grid.source})", flush=True)
    if args.loop:
        player.set_loop(0.0, player.duration)
    tty = sys.stdout.isatty()
    offset, total = args.start, args.start + player.duration
    heard = ", ".join(n for n in state.names if state.audible(n)) or "nothing"
    looping = "  (looping, Ctrl-C stops)" if args.loop else ""
    print(f"playing {Path(args.stems_dir).name}: {heard}{looping}", flush=True)
    interrupted = False
    try:
        player.play(count_in=clicks)
        last_print = 0.0
        while player.playing:
            now = time.monotonic()
            if tty or now - last_print >= 1.0:
                end = "\r" if tty else "\n"
                print(f"  {_clock(offset + player.position)} / {_clock(total)}", end=end, flush=True)
                last_print = now
            time.sleep(0.05)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        player.close()
    print(f"  {_clock(offset + player.position)} / {_clock(total)}" + ("  stopped" if interrupted else ""))
    print(f"underruns: {player.underruns}  clipped samples: {player.clipped}"
          + (f"  stretch underruns: {player.stretch_underruns}" if player.stretching else ""))
    if player.callback_error:
        raise PlayerError(f"audio callback failed: {player.callback_error}")
    return 0


class LiveSong:
    """A song file separated in a thread while it plays (the song pipeline's live buffers).

    :meth:`wait_playable` returns the stems to load (``(stems, growing)``; ``growing`` is ``None``
    when they came from the cache) as soon as the first window can be separated into them."""

    def __init__(self, path: str | Path, model: str | None = None, use_cache: bool = True, threads: int | None = None):
        from ..cache import StemCache
        from ..separation.pipeline import (
            ModelProvider,
            Pipeline,
            SongRequest,
            check_song_path,
            worker_threads,
        )
        from ..separation.registry import default_model_name
        from ..separation.settings import SeparationSettings

        path = check_song_path(path)
        self.request = SongRequest(path, model or default_model_name(), SeparationSettings(), use_cache=use_cache)
        self.pipeline = Pipeline(ModelProvider(), StemCache(), threads=threads or worker_threads())
        self.cancel = threading.Event()
        self.growing = None
        self.result = None
        self.error: BaseException | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="unmix-play-separation", daemon=True)
        self._thread.start()

    def _live(self, partial, growing) -> None:
        self.growing = growing
        self._started.set()

    def _run(self) -> None:
        try:
            self.result = self.pipeline.run(self.request, cancel=self.cancel, live=self._live)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self.error = exc
        finally:
            self._started.set()

    def wait_playable(self):
        while not self._started.wait(0.1):
            pass
        if self.growing is not None:
            return self.growing.stems, self.growing
        if self.error is not None:
            raise self.error
        return self.result.stems, None

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel a separation still running (nothing half done is cached) and wait for it."""
        self.cancel.set()
        self._thread.join(timeout)


def _run_song(args: argparse.Namespace, player) -> int:
    from ..audio.player import PlayerError
    from ..errors import Cancelled

    if args.count_in:
        raise UsageError("--count-in needs separated stems: play the stems folder, or drop --count-in")
    song = LiveSong(args.stems_dir, args.model, use_cache=not args.no_cache)
    interrupted = False
    try:
        stems, growing = song.wait_playable()
        state = state_from_args(stems.keys(), args)
        stretch = stretch_from_args(args)
        player.load(stems, ready=growing)
        player.set_mix_state(state)
        player.set_tempo(stretch["tempo"])
        player.set_key(stretch["semitones"], stretch["cents"])
        first = min(args.start, player.duration)
        last = player.duration if args.duration is None else min(player.duration, first + args.duration)
        if args.loop:
            player.set_loop(first, last)
        player.seek(first)
        heard = ", ".join(n for n in state.names if state.audible(n)) or "nothing"
        how = "separating while playing" if growing is not None else "from the cache"
        print(f"playing {Path(args.stems_dir).name} ({how}): {heard}", flush=True)
        tty = sys.stdout.isatty()
        player.play()
        last_print = 0.0
        while player.playing and player.position < last - 1e-3:
            now = time.monotonic()
            if tty or now - last_print >= 1.0:
                wait = "  waiting for separation…" if player.waiting else ""
                ready = "" if growing is None or growing.complete else f"  (separated {_clock(player.ready_seconds)})"
                print(f"  {_clock(player.position)} / {_clock(player.duration)}{ready}{wait}",
                      end="\r" if tty else "\n", flush=True)
                last_print = now
            if song.error is not None and not isinstance(song.error, Cancelled):
                raise song.error
            time.sleep(0.02)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        player.close()
        if not song.done:
            song.stop()
    print(f"  {_clock(player.position)} / {_clock(player.duration)}" + ("  stopped" if interrupted else ""))
    print(f"underruns: {player.underruns}  clipped samples: {player.clipped}")
    if player.callback_error:
        raise PlayerError(f"audio callback failed: {player.callback_error}")
    return 0
