"""Decode and encode audio files.

Everything comes out as float32 ``(n_samples, 2)`` at the requested rate (44.1 kHz by default):
mono is duplicated to two channels, more than two channels are folded to stereo, other rates are
resampled with soxr. wav/flac/ogg/mp3 go through soundfile (libsndfile); m4a/aac/mp4 (and
``.stem.mp4``, whose first audio stream is the mix) through PyAV (FFmpeg).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .. import outputs
from ..errors import AudioError

SAMPLE_RATE = 44100
SOUNDFILE_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff"}
PYAV_EXTENSIONS = {".m4a", ".aac", ".mp4", ".m4b", ".opus", ".webm", ".mkv"}
AUDIO_EXTENSIONS = SOUNDFILE_EXTENSIONS | PYAV_EXTENSIONS
WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}
DEFAULT_SUBTYPES = {".wav": "PCM_16", ".flac": "PCM_16", ".ogg": "VORBIS", ".mp3": "MPEG_LAYER_III"}
#: Longest song accepted by default (seconds); override per call or with UNMIX_MAX_DURATION.
DEFAULT_MAX_DURATION = float(os.environ.get("UNMIX_MAX_DURATION", 3 * 3600))


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


class AudioWarning(UserWarning):
    """A song was read, but not all of it as its header promises (e.g. a cut-off MP3)."""


#: A decode shorter than the stated length by more than this (seconds, and fraction) is reported.
SHORT_DECODE_S = 0.5
SHORT_DECODE_FRACTION = 0.02


def is_audio_file_name(name: str) -> bool:
    """Whether a file name looks like a song: an audio extension, not hidden (temporary files are)."""
    return not name.startswith(".") and Path(name).suffix.lower() in AUDIO_EXTENSIONS


def audio_files(folder: str | os.PathLike, recursive: bool = False, skip=None,
                on_error: Callable[[AudioError], None] | None = None,
                on_skip: Callable[[AudioError], None] | None = None) -> list[Path]:
    """The audio files in ``folder`` (by extension, see :data:`AUDIO_EXTENSIONS`), sorted.

    The one folder listing of the package. Hidden files and folders are left out. With
    ``recursive``, sub-folders are searched too, in a stable order (names sorted at every level,
    a folder's files before its sub-folders); symbolic links to folders are not followed (no
    loops); ``skip(folder) -> bool`` leaves a sub-folder out (e.g. the output folder). A folder
    that cannot be read raises :class:`AudioError` for the top one; below it, it is left out
    and ``on_error(AudioError)`` is told. A link with an audio file's name whose target is missing
    (a broken link) is left out and ``on_skip(AudioError)`` is told.
    """
    folder = Path(folder)
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise AudioError(folder, exc.strerror or str(exc)) from None
    files: list[Path] = []
    subdirs: list[Path] = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            if entry.is_file() and is_audio_file_name(entry.name):
                files.append(Path(entry.path))
            elif recursive and entry.is_dir(follow_symlinks=False):
                subdirs.append(Path(entry.path))
            elif on_skip is not None and entry.is_symlink() and is_audio_file_name(entry.name) \
                    and not os.path.exists(entry.path):
                on_skip(AudioError(Path(entry.path), f"broken link (its target {os.readlink(entry.path)} is missing); "
                                                     "skipped"))
        except OSError:
            continue
    for sub in subdirs:
        if skip is not None and skip(sub):
            continue
        try:
            files.extend(audio_files(sub, True, skip, on_error, on_skip))
        except AudioError as exc:
            if on_error is not None:
                on_error(exc)
    return files


def _check_file(path: Path) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise AudioError(path, "file not found") from None
    except PermissionError:
        raise AudioError(path, "permission denied (its folder cannot be read)") from None
    except OSError as exc:
        raise AudioError(path, exc.strerror or str(exc)) from None
    if path.is_dir():
        raise AudioError(path, "is a folder, not an audio file")
    if not os.access(path, os.R_OK):
        raise AudioError(path, "permission denied")
    if st.st_size == 0:
        raise AudioError(path, "file is empty")


def _uses_pyav(path: Path) -> bool:
    return path.suffix.lower() in PYAV_EXTENSIONS


def native_rate(path: str | os.PathLike | None) -> int:
    """The song file's own sample rate (:data:`SAMPLE_RATE` when there is no file or it cannot be read:
    a moved source only loses the native-rate default of an export)."""
    if path is None:
        return SAMPLE_RATE
    try:
        return int(audio_info(path).sample_rate)
    except (AudioError, OSError, ValueError):
        return SAMPLE_RATE


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Sample rate, channel count and length without decoding the whole file."""
    path = Path(path)
    _check_file(path)
    if _uses_pyav(path):
        import av

        try:
            with av.open(str(path)) as container:
                stream = _first_audio_stream(path, container)
                sr = stream.codec_context.sample_rate
                return AudioInfo(sr, stream.codec_context.channels, _stated_frames(container, stream, sr) or 0)
        except AudioError:
            raise
        except Exception as exc:
            raise AudioError(path, f"not a readable audio file ({_short(exc)})") from exc
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as exc:
        raise _soundfile_error(path, exc) from exc
    return AudioInfo(int(info.samplerate), int(info.channels), int(info.frames))


def load_audio(
    path: str | os.PathLike,
    sample_rate: int = SAMPLE_RATE,
    max_duration: float | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> np.ndarray:
    """Decode ``path`` to float32 ``(n, 2)`` at ``sample_rate``.

    Raises :class:`AudioError` naming the file and the reason for every bad input: not found,
    empty, not audio, corrupt or truncated, unsupported codec, longer than ``max_duration``.
    A lossy file that decodes clearly shorter than its header states (a cut-off MP3) is kept
    but reported: ``on_warning("PATH: ...")`` (default: an :class:`AudioWarning`).
    """
    path = Path(path)
    _check_file(path)
    limit = DEFAULT_MAX_DURATION if max_duration is None else float(max_duration)
    info = audio_info(path)
    if info.duration > limit:
        raise AudioError(path, f"too long: {info.duration / 60:.1f} min (limit {limit / 60:.1f} min)")
    if _uses_pyav(path):
        audio, sr = _load_pyav(path)
    else:
        audio, sr = _load_soundfile(path, info)
    if audio.shape[0] == 0:
        raise AudioError(path, "contains no audio samples")
    stated = info.frames / info.sample_rate if info.sample_rate else 0.0
    decoded = audio.shape[0] / sr
    if stated - decoded > max(SHORT_DECODE_S, SHORT_DECODE_FRACTION * stated):
        message = (f"{path}: truncated? its header states {stated:.1f} s but only {decoded:.1f} s could be decoded; "
                   "using what is there")
        if on_warning is None:
            warnings.warn(message, AudioWarning, stacklevel=2)
        else:
            on_warning(message)
    if not np.all(np.isfinite(audio)):
        raise AudioError(path, "corrupt: decoded samples are not finite")
    audio = to_stereo(audio)
    if sr != sample_rate:
        audio = resample(audio, sr, sample_rate)
    return np.ascontiguousarray(audio, dtype=np.float32)


def to_stereo(audio: np.ndarray) -> np.ndarray:
    """(n,) or (n, c) -> (n, 2): mono is duplicated, more channels are averaged into L/R."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[:, None]
    channels = audio.shape[1]
    if channels == 2:
        return audio
    if channels == 1:
        return np.repeat(audio, 2, axis=1)
    left = audio[:, 0::2].mean(axis=1)
    right = audio[:, 1::2].mean(axis=1)
    return np.stack([left, right], axis=1)


def resample(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """High-quality resampling (soxr), float32 in and out."""
    if source_rate == target_rate:
        return audio
    import soxr

    return soxr.resample(audio, source_rate, target_rate, quality="HQ").astype(np.float32, copy=False)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def soundfile_os_error(exc: BaseException, path: str | os.PathLike) -> OSError | None:
    """The OS error behind a libsndfile "System error." (disk full, file too large, ...), if any."""
    if "system error" not in str(exc).lower():
        return None
    import soundfile as sf

    code = getattr(getattr(sf, "_ffi", None), "errno", 0)
    return OSError(code, os.strerror(code), os.fspath(path)) if code else None


def _soundfile_error(path: Path, exc: BaseException) -> AudioError:
    text = str(exc).lower()
    if "format not recognised" in text or "unknown format" in text or "not recognised" in text:
        return AudioError(path, "not an audio file (format not recognised)")
    if "unsupported" in text or "not supported" in text:
        return AudioError(path, f"unsupported codec or encoding ({_short(exc)})")
    return AudioError(path, f"corrupt or unreadable ({_short(exc)})")


def _wav_is_truncated(path: Path) -> bool:
    """True when a RIFF/WAVE file's data chunk claims more bytes than the file holds.

    libsndfile silently shortens such files to what is there; a cut-off download should be
    reported instead of played as if it were the whole song.
    """
    import struct

    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return False
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", fh.read(8))
            if chunk_id == b"data":
                return chunk_size != 0xFFFFFFFF and pos + 8 + chunk_size > size
            pos += 8 + chunk_size + (chunk_size & 1)
    return False


def _load_soundfile(path: Path, info: AudioInfo) -> tuple[np.ndarray, int]:
    import soundfile as sf

    if path.suffix.lower() == ".wav" and _wav_is_truncated(path):
        raise AudioError(path, "truncated: the file ends before its audio data does")

    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise _soundfile_error(path, exc) from exc
    # Uncompressed and lossless containers state their exact length; fewer decoded frames
    # means the file was cut off (an interrupted download or copy).
    if path.suffix.lower() in {".wav", ".flac", ".aif", ".aiff"} and audio.shape[0] < info.frames:
        raise AudioError(path, f"truncated: {audio.shape[0]} of {info.frames} frames could be decoded")
    return audio, int(sr)


def _first_audio_stream(path: Path, container):
    streams = [s for s in container.streams if s.type == "audio"]
    if not streams:
        raise AudioError(path, "contains no audio stream")
    return streams[0]  # for .stem.mp4 files the first audio stream is the full mix


def _stated_frames(container, stream, sr: int) -> int | None:
    if stream.duration is not None and stream.time_base is not None:
        return int(round(float(stream.duration * stream.time_base) * sr))
    if container.duration is not None:
        return int(round(container.duration / 1_000_000 * sr))
    return None


def _load_pyav(path: Path) -> tuple[np.ndarray, int]:
    import av

    try:
        container = av.open(str(path))
    except Exception as exc:
        raise AudioError(path, f"not a readable audio file ({_short(exc)})") from exc
    with container:
        stream = _first_audio_stream(path, container)
        try:
            codec = stream.codec_context
            sr = int(codec.sample_rate)
            if not sr:
                raise AudioError(path, "unsupported codec (no sample rate)")
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=sr)
            chunks: list[np.ndarray] = []
            first_offset: int | None = None
            for frame in container.decode(stream):
                if first_offset is None and frame.pts is not None and frame.time_base is not None:
                    first_offset = int(round(float(frame.pts * frame.time_base) * sr))
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
        except AudioError:
            raise
        except av.error.DecoderNotFoundError as exc:  # type: ignore[attr-defined]
            raise AudioError(path, f"unsupported codec ({_short(exc)})") from exc
        except Exception as exc:
            raise AudioError(path, f"corrupt or truncated ({_short(exc)})") from exc
        if not chunks:
            raise AudioError(path, "contains no audio samples")
        audio = np.concatenate(chunks, axis=1).T.astype(np.float32, copy=False)
        # Encoders prepend priming samples (negative timestamps); drop them, then trim the
        # decoder's padding so the length matches the duration the container states.
        if first_offset is not None and first_offset < 0:
            audio = audio[-first_offset:]
        stated = _stated_frames(container, stream, sr)
        if stated is not None and 0 < stated < audio.shape[0]:
            audio = audio[:stated]
    return audio, sr


_umask = outputs.umask  # kept for callers of the old name


def save_audio(
    path: str | os.PathLike,
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    subtype: str | None = None,
    protect: tuple[str | os.PathLike, ...] = (),
) -> Path:
    """Write ``audio`` (n, channels) to ``path`` (wav/flac/ogg/mp3 from the suffix).

    The file is written to a temporary name in the same folder (``.<name>.part-<pid>-…``) and
    renamed when complete, so a crash, a signal or a full disk never leaves a half-written file
    under the final name; leftovers of processes that died are removed by a later write into the
    same folder (:func:`unmix_desktop.outputs.remove_stale`). Paths in
    ``protect`` (e.g. the user's source song) are never overwritten. Integer and lossy formats
    are clipped to [-1, 1]; subtype ``FLOAT`` keeps the values as they are.
    """
    import soundfile as sf

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_FORMATS:
        raise AudioError(path, f"cannot write '{suffix or path.name}' files (use wav, flac, ogg or mp3)")
    for other in protect:
        if other and Path(other).exists() and path.exists() and path.resolve() == Path(other).resolve():
            raise AudioError(path, "refusing to overwrite the source song")
    subtype = (subtype or DEFAULT_SUBTYPES[suffix]).upper()
    data = np.asarray(audio, dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]
    if subtype != "FLOAT":
        data = np.clip(data, -1.0, 1.0)
    if path.is_dir():
        raise AudioError(path, "is a folder")
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        outputs.remove_stale(path.parent)
        tmp_name = outputs.temp_file(path.parent, path.stem, suffix)
        try:
            sf.write(tmp_name, data, sample_rate, subtype=subtype, format=WRITE_FORMATS[suffix])
        except RuntimeError as exc:
            raise (soundfile_os_error(exc, path) or exc) from exc
        os.replace(tmp_name, path)
    except BaseException as exc:  # KeyboardInterrupt/SIGTERM too: never leave the temporary file
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass
        if isinstance(exc, AudioError) or not isinstance(exc, Exception):
            raise
        if isinstance(exc, OSError):
            raise AudioError(outputs.os_error_path(exc, path), exc.strerror or _short(exc)) from exc
        raise AudioError(path, f"could not write ({_short(exc)})") from exc
    return path


def check_song_path(path: str | os.PathLike) -> Path:
    """Validate a path the user gave; raises :class:`AudioError` with the reason."""
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "file not found")
    if path.is_dir():
        raise AudioError(path, "is a folder: drop a single audio file")
    if path.suffix.lower() not in AUDIO_EXTENSIONS:
        kinds = ", ".join(sorted(e.lstrip(".") for e in AUDIO_EXTENSIONS))
        raise AudioError(path, f"not a supported audio file (supported: {kinds})")
    return path
