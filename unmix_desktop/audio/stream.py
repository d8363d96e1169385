"""Audio that arrives in pieces: a file decoded and resampled block by block, and fixed windows over it.

A *source* is anything with ``read(frames) -> float32 (m, 2)`` that returns fewer than ``frames``
(possibly zero) only at the end, and a ``frames`` attribute: the expected total at the output rate
(exact for arrays and PCM files, the container's statement for compressed ones; ``None`` if unknown).
Memory held by a source does not depend on the song's length.

* :class:`ArraySource` serves an in-memory ``(n, 2)`` array.
* :func:`open_audio` decodes a file like :func:`~unmix_desktop.audio.io.load_audio` (same formats,
  same checks and one-line errors, same output: float32 ``(n, 2)`` at 44.1 kHz), but in blocks:
  libsndfile blocks or FFmpeg frames (MP3 too, see :data:`STREAM_WITH_PYAV`), folded to stereo,
  resampled with a streaming soxr resampler.
  Checks that need the whole file (truncation, no samples) raise when the end is reached.
* :func:`iter_windows` cuts a source into the same overlapping windows as
  :func:`~unmix_desktop.separation.windows.spans` gives for the whole length, holding at most one
  window plus one overlap, without knowing the length in advance.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generator, Iterator, Protocol

import numpy as np

from ..errors import AudioError
from . import io

BLOCK = 1 << 16  # frames decoded per read from libsndfile
# libsndfile 1.2.2 decodes MP3 wrongly when read in pieces (samples after the first read are off by
# up to 0.3 for a 0.3 sine; one read of the whole file is right), so MP3 is streamed through FFmpeg,
# which gives the same samples as that one read (within 2e-6, same length).
STREAM_WITH_PYAV = {".mp3"}


class Source(Protocol):
    frames: int | None

    def read(self, frames: int) -> np.ndarray: ...


def _empty() -> np.ndarray:
    return np.zeros((0, 2), dtype=np.float32)


class ArraySource:
    """An in-memory ``(n, 2)`` float32 array read in pieces (no copy until read)."""

    def __init__(self, audio: np.ndarray):
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 2 or audio.shape[1] != 2:
            raise ValueError(f"expected (n, 2) audio, got {audio.shape}")
        self._audio = audio
        self._pos = 0
        self.frames: int | None = audio.shape[0]

    def read(self, frames: int) -> np.ndarray:
        out = self._audio[self._pos:self._pos + max(int(frames), 0)]
        self._pos += out.shape[0]
        return out

    def close(self) -> None:
        pass


def as_source(audio) -> Source:
    """An array becomes an :class:`ArraySource`; a source is returned as it is."""
    if hasattr(audio, "read") and hasattr(audio, "frames"):
        return audio
    return ArraySource(audio)


class _Stereo44k:
    """Folds blocks to stereo, checks they are finite, resamples them with one soxr stream."""

    def __init__(self, path: Path, source_rate: int, rate: int):
        self.path = path
        self._resampler = None
        if source_rate != rate:
            import soxr

            self._resampler = soxr.ResampleStream(source_rate, rate, 2, dtype="float32", quality="HQ")

    def push(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        block = io.to_stereo(block) if block.size else _empty()
        if not np.all(np.isfinite(block)):
            raise AudioError(self.path, "corrupt: decoded samples are not finite")
        if self._resampler is None:
            return np.ascontiguousarray(block, dtype=np.float32)
        out = self._resampler.resample_chunk(np.ascontiguousarray(block, dtype=np.float32), last=last)
        return np.asarray(out, dtype=np.float32).reshape(-1, 2)


class _Reader:
    """Pulls blocks from ``_blocks()`` (at the file's rate), hands out exact ``read(n)`` sizes."""

    def __init__(self, path: Path, source_rate: int, stated_frames: int | None, rate: int):
        self.path = path
        self.on_warning: Callable[[str], None] | None = None
        self._stated_frames = stated_frames
        self.source_rate = source_rate
        self.rate = rate
        self.frames = (int(round(stated_frames * rate / source_rate)) if stated_frames else None)
        self._conv = _Stereo44k(path, source_rate, rate)
        self._gen = self._blocks()
        self._buf: list[np.ndarray] = []
        self._buffered = 0
        self._done = False
        self.decoded = 0  # frames at the file's rate

    def _blocks(self) -> Generator[np.ndarray, None, None]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _finish(self) -> None:
        """Checks at the end of the file (truncation); raise AudioError."""

    def _pull(self) -> None:
        try:
            block = next(self._gen)
        except StopIteration:
            self._done = True
            if self.decoded == 0:
                raise AudioError(self.path, "contains no audio samples") from None
            self._finish()
            self._warn_if_short()
            out = self._conv.push(_empty(), last=True)
        else:
            self.decoded += block.shape[0]
            out = self._conv.push(block)
        if out.shape[0]:
            self._buf.append(out)
            self._buffered += out.shape[0]

    def _warn_if_short(self) -> None:
        """A lossy file that decodes clearly shorter than its header states (a cut-off MP3) is kept
        but reported, as :func:`~unmix_desktop.audio.io.load_audio` does."""
        if not self._stated_frames:
            return
        stated = self._stated_frames / self.source_rate
        decoded = self.decoded / self.source_rate
        if stated - decoded > max(io.SHORT_DECODE_S, io.SHORT_DECODE_FRACTION * stated):
            message = (f"{self.path}: truncated? its header states {stated:.1f} s but only {decoded:.1f} s "
                       "could be decoded; using what is there")
            if self.on_warning is None:
                warnings.warn(message, io.AudioWarning, stacklevel=3)
            else:
                self.on_warning(message)

    def read(self, frames: int) -> np.ndarray:
        frames = max(int(frames), 0)
        while self._buffered < frames and not self._done:
            self._pull()
        if not self._buf:
            return _empty()
        data = self._buf[0] if len(self._buf) == 1 else np.concatenate(self._buf)
        out, rest = data[:frames], data[frames:]
        self._buf = [rest] if rest.shape[0] else []
        self._buffered = rest.shape[0]
        return np.ascontiguousarray(out)

    def close(self) -> None:
        self._gen.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _SoundFileReader(_Reader):
    def __init__(self, path: Path, info: io.AudioInfo, rate: int):
        import soundfile as sf

        if path.suffix.lower() == ".wav" and io._wav_is_truncated(path):
            raise AudioError(path, "truncated: the file ends before its audio data does")
        try:
            self._file = sf.SoundFile(str(path))
        except Exception as exc:
            raise io._soundfile_error(path, exc) from exc
        self._stated = info.frames
        super().__init__(path, int(self._file.samplerate), info.frames, rate)

    def _blocks(self) -> Generator[np.ndarray, None, None]:
        try:
            while True:
                try:
                    block = self._file.read(BLOCK, dtype="float32", always_2d=True)
                except Exception as exc:
                    raise io._soundfile_error(self.path, exc) from exc
                if block.shape[0] == 0:
                    return
                yield block
                if block.shape[0] < BLOCK:
                    return
        finally:
            self._file.close()

    def _finish(self) -> None:
        # Uncompressed and lossless containers state their exact length (as load_audio checks).
        if self.path.suffix.lower() in {".wav", ".flac", ".aif", ".aiff"} and self.decoded < self._stated:
            raise AudioError(self.path, f"truncated: {self.decoded} of {self._stated} frames could be decoded")


class _PyAVReader(_Reader):
    def __init__(self, path: Path, rate: int):
        import av

        try:
            self._container = av.open(str(path))
        except Exception as exc:
            raise AudioError(path, f"not a readable audio file ({io._short(exc)})") from exc
        try:
            self._stream = io._first_audio_stream(path, self._container)
            sr = int(self._stream.codec_context.sample_rate)
            if not sr:
                raise AudioError(path, "unsupported codec (no sample rate)")
        except BaseException:
            self._container.close()
            raise
        self._stated = io._stated_frames(self._container, self._stream, sr)
        super().__init__(path, sr, self._stated, rate)

    def _blocks(self) -> Generator[np.ndarray, None, None]:
        """Like ``io._load_pyav``: priming samples (negative timestamps) dropped, decoder padding
        beyond the stated length trimmed."""
        import av

        sr = self.source_rate
        skip: int | None = None
        left = self._stated if self._stated else None
        try:
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=sr)

            def frames():
                for frame in self._container.decode(self._stream):
                    yield frame
                yield None

            for frame in frames():
                if skip is None and frame is not None and frame.pts is not None and frame.time_base is not None:
                    first = int(round(float(frame.pts * frame.time_base) * sr))
                    skip = -first if first < 0 else 0
                for out in resampler.resample(frame):
                    block = out.to_ndarray().T.astype(np.float32, copy=False)
                    if skip:
                        cut = min(skip, block.shape[0])
                        block, skip = block[cut:], skip - cut
                    if left is not None:
                        block = block[:left]
                        left -= block.shape[0]
                    if block.shape[0]:
                        yield block
                if skip is None and frame is not None:
                    skip = 0
        except AudioError:
            raise
        except av.error.DecoderNotFoundError as exc:  # type: ignore[attr-defined]
            raise AudioError(self.path, f"unsupported codec ({io._short(exc)})") from exc
        except Exception as exc:
            raise AudioError(self.path, f"corrupt or truncated ({io._short(exc)})") from exc
        finally:
            self._container.close()


def open_audio(path: str | os.PathLike, sample_rate: int = io.SAMPLE_RATE,
               max_duration: float | None = None,
               on_warning: Callable[[str], None] | None = None) -> _Reader:
    """A source that decodes ``path`` in blocks to float32 ``(m, 2)`` at ``sample_rate``.

    Reading it to the end gives what :func:`~unmix_desktop.audio.io.load_audio` returns (to soxr's
    streaming rounding when the file is resampled). Errors found on opening (not found, empty, not
    audio, too long, a WAV whose data chunk is cut off) raise here; errors found while decoding
    (corrupt data, non-finite samples, fewer frames than a lossless file states, no samples at all)
    raise from :meth:`read`. Close it (or use ``with``) if not read to the end.
    """
    path = Path(path)
    io._check_file(path)
    limit = io.DEFAULT_MAX_DURATION if max_duration is None else float(max_duration)
    info = io.audio_info(path)
    if info.duration > limit:
        raise AudioError(path, f"too long: {info.duration / 60:.1f} min (limit {limit / 60:.1f} min)")
    if io._uses_pyav(path) or path.suffix.lower() in STREAM_WITH_PYAV:
        reader: _Reader = _PyAVReader(path, sample_rate)
    else:
        reader = _SoundFileReader(path, info, sample_rate)
    reader.on_warning = on_warning
    return reader


@dataclass(frozen=True)
class Window:
    """One processing window: ``audio`` covers ``[start, end)``; ``fade_in`` / ``fade_out`` are the
    overlaps with the previous / next window; ``done`` is where the next window starts (``end``
    for the last), i.e. everything before it is final once this window is processed."""

    start: int
    end: int
    fade_in: int
    fade_out: int
    done: int
    audio: np.ndarray
    last: bool


def iter_windows(source: Source, win: int, overlap: int) -> Iterator[Window]:
    """The windows of ``spans(n, win, overlap)`` over a source of unknown length ``n``.

    ``spans`` merges a last window shorter than ``2 * overlap`` into the previous one. Reading ahead
    ``win + overlap`` frames (at least ``win + 1``) from each window's start is enough to decide
    that: with ``n`` frames in all, the window at ``s`` is the last one (ending at ``n``) iff
    ``n < s + win + max(overlap, 1)``. Holds at most that many frames.
    """
    if not 0 <= overlap <= win // 2 or win <= 0:
        raise ValueError(f"bad window {win} / overlap {overlap}")
    step, ahead = win - overlap, win + max(overlap, 1)
    buf, buf_start, eof = _empty(), 0, False
    start, prev_end = 0, None
    while True:
        need = start + ahead - (buf_start + buf.shape[0])
        if need > 0 and not eof:
            parts = [buf]
            while need > 0:
                got = source.read(need)
                if got.shape[0] < need:
                    eof = True
                if got.shape[0]:
                    parts.append(np.asarray(got, dtype=np.float32))
                    need -= got.shape[0]
                if eof:
                    break
            buf = np.concatenate(parts) if len(parts) > 1 else buf
        avail = buf_start + buf.shape[0]
        last = eof and avail < start + ahead
        end, done = (avail, avail) if last else (start + win, start + step)
        fade_in = prev_end - start if prev_end is not None else 0
        yield Window(start, end, fade_in, end - done, done, buf[start - buf_start:end - buf_start], last)
        if last:
            return
        prev_end = end
        buf = buf[done - buf_start:]
        buf_start, start = done, done


#: Frames of each resampled stem held back until the end, so the last block can be cut or padded
#: to the exact length (soxr's streaming output may differ from it by a few frames).
HOLD = 1024


def target_frames(decoded: int, source_rate: int, rate: int) -> int:
    """The length at ``rate`` of ``decoded`` frames at ``source_rate``: the same to the sample
    when the rates are equal, ``round(decoded * rate / source_rate)`` otherwise."""
    return int(decoded) if rate == source_rate else int(round(decoded * rate / source_rate))


def resample_blocks(blocks, from_rate: int, to_rate: int,
                    frames: Callable[[], int]) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Resample a stream of stem blocks ``(offset, {name: (m, 2)})`` from ``from_rate`` to ``to_rate``.

    One soxr stream per stem (quality HQ, like the decoder's), so memory does not grow with the
    song: at most one input block and :data:`HOLD` frames per stem are held. ``frames()`` is
    asked once the input ends and gives the exact output length (:func:`target_frames` of the
    decoded length); the last block is cut or zero-padded to it. Every stem of a block must have
    the same length (as :meth:`~unmix_desktop.separation.separator.Separator.stream` yields), so
    the output blocks of all stems have the same lengths too. Output blocks are float32.
    """
    import soxr

    streams: dict[str, Any] = {}  # soxr.ResampleStream
    tails: dict[str, np.ndarray] = {}
    offset = 0

    def push(name: str, audio: np.ndarray, last: bool) -> np.ndarray:
        if name not in streams:
            streams[name] = soxr.ResampleStream(from_rate, to_rate, 2, dtype="float32", quality="HQ")
            tails[name] = _empty()
        out = streams[name].resample_chunk(np.ascontiguousarray(audio, dtype=np.float32), last=last)
        out = np.asarray(out, dtype=np.float32).reshape(-1, 2)
        return np.concatenate([tails[name], out]) if tails[name].shape[0] else out

    for _, chunk in blocks:
        ready: dict[str, np.ndarray] = {}
        for name, audio in chunk.items():
            held = push(name, audio, last=False)
            cut = max(held.shape[0] - HOLD, 0)
            ready[name], tails[name] = held[:cut], held[cut:]
        n = min((a.shape[0] for a in ready.values()), default=0)
        if n:
            for name, audio in ready.items():  # lengths agree; keep any excess for the next block
                if audio.shape[0] > n:
                    tails[name] = np.concatenate([audio[n:], tails[name]])
            yield offset, {name: audio[:n] for name, audio in ready.items()}
            offset += n
    total = int(frames())
    need = max(total - offset, 0)
    last: dict[str, np.ndarray] = {}
    for name in streams:
        held = push(name, _empty(), last=True)[:need]
        if held.shape[0] < need:
            held = np.concatenate([held, np.zeros((need - held.shape[0], 2), dtype=np.float32)])
        last[name] = held
    if last and need:
        yield offset, last
