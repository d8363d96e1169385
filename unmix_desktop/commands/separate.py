"""`unmix separate SONG|FOLDER... --out DIR`: write DIR/<song>/<target>.wav for each song.

* A folder is searched recursively for audio files (by extension; hidden files and folders, the
  output folder and result folders inside it are left out), in a stable sorted order, and its
  structure is mirrored: ``FOLDER/a/b/song.mp3`` -> ``DIR/<FOLDER's name>/a/b/song/<target>.wav``.
  A song given as a file goes to ``DIR/<song>/``.
* A song whose result folder already holds the stems of the same job (same source size and
  modification time, model, settings, rate, format and stems: recorded in the folder's marker,
  see :mod:`unmix_desktop.outputs`) is skipped; ``--force`` separates it again.
* ``--jobs N`` separates N songs at once, each in its own ``unmix`` process with
  ``cores // N`` torch threads. Signals reach every child, which removes its own temporary files.
* Stems are written at the song's own sample rate (``--rate`` forces one); the model runs at
  44.1 kHz and its stems are resampled back as they stream (:func:`~unmix_desktop.audio.stream.resample_blocks`).
* Every failed song is one ``unmix: error: PATH: reason`` line and the batch goes on; the last
  line counts done / skipped / failed; the exit status is 2 when any song failed.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import outputs
from ..audio.io import (
    DEFAULT_MAX_DURATION,
    SAMPLE_RATE,
    audio_files,
    soundfile_os_error,
)
from ..audio.stream import open_audio, resample_blocks, target_frames
from ..errors import AudioError, UnmixError, UsageError
from ..persist import one_line
from ..progress import ProgressBar
from ..separation.settings import SeparationSettings
from .argtypes import (
    finite_float,
    limit_seconds,
    non_negative_int,
    positive_float,
    positive_int,
)

SUBTYPES = {"wav": "PCM_16", "wav24": "PCM_24", "wavf": "FLOAT", "flac": "PCM_16"}


def _four_stem_default() -> str:
    from ..separation.learned4 import DEFAULT

    return DEFAULT


def _four_stem_method(args) -> str | None:
    """The four-stem method of this run, by name (the default resolved), for the outputs' marker."""
    from ..separation.learned4 import resolve

    return resolve(args.four_stem_model) if args.stems == 4 else None


def add_parser(sub) -> argparse.ArgumentParser:
    d = SeparationSettings()
    p = sub.add_parser("separate", help="separate songs into stems",
                       description="Separate songs into stems: writes OUT/<song>/<target>.wav (stereo, at the "
                                   "song's sample rate). A folder is searched recursively and mirrored under OUT: "
                                   "FOLDER/a/song.mp3 -> OUT/FOLDER/a/song/. Songs already separated with the same "
                                   "model and settings are skipped (--force to redo).")
    p.add_argument("songs", nargs="+", metavar="SONG|FOLDER",
                   help="audio files (wav, flac, ogg, mp3, m4a, aac, mp4, stem.mp4) or folders of them")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="output folder")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--model", metavar="NAME", help="model name (see `unmix models`); default: the best installed")
    g.add_argument("--model-file", metavar="PATH", help="a model bundle folder or an open-unmix .pth checkpoint")
    p.add_argument("--targets", metavar="LIST", help="comma-separated targets to write, e.g. vocals,accompaniment")
    p.add_argument("--stems", type=int, choices=(2, 4), default=2,
                   help="4: also split the accompaniment into drums/bass/other (signal processing, see README)")
    p.add_argument("--four-stem-model", metavar="NAME", default=None,
                   help="with --stems 4: 'hybrid' (learned bass, DSP drums), 'dsp' (signal processing) or a "
                        "drums/bass/other model, e.g. umx-synth4 (default: %s)" % _four_stem_default())
    p.add_argument("--niter", type=non_negative_int, default=d.niter,
                   help=f"Wiener EM iterations, 0 = ratio mask (default {d.niter})")
    p.add_argument("--softmask", action=argparse.BooleanOptionalAction, default=d.softmask,
                   help="start the Wiener filter from a ratio mask (default: %(default)s)")
    p.add_argument("--power", type=positive_float, default=d.power, help=f"ratio mask exponent (default {d.power})")
    p.add_argument("--residual", action=argparse.BooleanOptionalAction, default=d.residual,
                   help="accompaniment = mixture - other stems, so stems sum to the song (default: %(default)s)")
    p.add_argument("--logit", type=finite_float, default=d.logit, metavar="S",
                   help="mask sharpening strength (off by default)")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=d.swap_tta,
                   help="average with the channel-swapped song (default: %(default)s)")
    p.add_argument("--window", type=positive_float, default=d.window_s, metavar="S",
                   help="processing window in seconds (memory bound)")
    p.add_argument("--shifts", type=non_negative_int, default=0, metavar="N",
                   help="Demucs models: average N randomly time-shifted passes (the reference's test-time "
                        "augmentation; N+1 times slower; default 0)")
    p.add_argument("--format", choices=("wav", "wav24", "wavf", "flac"), default="wav",
                   help="output format (default wav 16-bit)")
    p.add_argument("--max-duration", type=limit_seconds, default=DEFAULT_MAX_DURATION, metavar="S",
                   help="refuse songs longer than this many seconds")
    p.add_argument("--rate", type=sample_rate, default=d.rate, metavar="HZ",
                   help="sample rate of the stems, e.g. 44100 (default: each song's own rate)")
    p.add_argument("--force", action="store_true", help="separate again songs whose stems are already there")
    p.add_argument("--jobs", "-j", type=positive_int, default=1, metavar="N",
                   help="separate N songs at once, each in its own process (at most one per core)")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="torch threads per song (default: all cores, divided among --jobs)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or mps (default: cuda when available)")
    c = p.add_argument_group("cluster (Ray; pip install 'unmix-desktop[cluster]', see docs/SCALING.md)")
    c.add_argument("--cluster", metavar="ADDRESS", default=None,
                   help="run the songs as tasks on a Ray cluster: auto, HOST:PORT or ray://HOST:10001")
    c.add_argument("--cpus-per-task", type=positive_int, default=1, metavar="N",
                   help="with --cluster: CPU cores (and torch threads) per song (default 1)")
    c.add_argument("--gpus-per-task", type=gpu_fraction, default=0.0, metavar="F",
                   help="with --cluster: GPUs per song, e.g. 1 or 0.5 (default 0: CPU)")
    c.add_argument("--ship-audio", action="store_true",
                   help="with --cluster: send the songs' bytes to the workers through Ray's object store and the "
                        "stems back (when the workers cannot see the input and output folders)")
    c.add_argument("--report", metavar="FILE", default=None,
                   help="with --cluster: the JSON report (per song: worker, seconds, status); "
                        "default OUT/unmix-cluster-report.json")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # one song of a --jobs run (JSON)
    return p


def gpu_fraction(text: str) -> float:
    """``--gpus-per-task``: 0 (CPU), a fraction of one GPU, or a whole number of GPUs."""
    value = float(finite_float(text))
    if value < 0 or value > 64 or (value > 1 and value != int(value)):
        raise argparse.ArgumentTypeError(f"must be 0, a fraction of 1, or a whole number of GPUs, got {text!r}")
    return value


RATES = (8000, 384000)


def sample_rate(text: str) -> int:
    """``--rate``: a whole number of Hz in :data:`RATES`."""
    value = positive_int(text)
    if not RATES[0] <= value <= RATES[1]:
        raise argparse.ArgumentTypeError(f"must be between {RATES[0]} and {RATES[1]} Hz, got {text!r}")
    return value


def song_name(path: Path) -> str:
    name = path.name
    for suffix in (".stem.mp4", ".stem.m4a"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def settings_from_args(args) -> SeparationSettings:
    targets = [t.strip() for t in args.targets.split(",") if t.strip()] if args.targets else None
    return SeparationSettings(niter=args.niter, softmask=args.softmask, power=args.power, logit=args.logit,
                              residual=args.residual, swap_tta=args.tta, window_s=args.window,
                              targets=None if args.stems == 4 else targets, rate=args.rate)


def _ext(fmt: str) -> str:
    return "flac" if fmt == "flac" else "wav"


def _write_error(path: Path, exc: BaseException) -> AudioError:
    """One line for a failed write: the OS reason when there is one (disk full, read-only, ...)."""
    if isinstance(exc, OSError):
        return AudioError(outputs.os_error_path(exc, path), exc.strerror or str(exc))
    try:  # libsndfile does not say why a write failed; a full disk is the usual reason
        if shutil.disk_usage(path if path.is_dir() else path.parent).free < (1 << 20):
            return AudioError(path, os.strerror(errno.ENOSPC))
    except OSError:
        pass
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return AudioError(path, f"could not write ({reason[:160]})")


def write_stems(stems, final_dir: Path, fmt: str, protect: tuple = (), rate: int = SAMPLE_RATE,
                job: dict | None = None, clean_stale: bool = True) -> list[Path]:
    """:func:`_write_stems`; when it fails, the folders above ``final_dir`` that it created (``--out``
    and the folders inside it) are removed again if they are still empty -- never one that was there."""
    created = []
    folder = Path(final_dir).parent
    while not os.path.lexists(folder) and folder != folder.parent:
        created.append(folder)
        folder = folder.parent
    try:
        return _write_stems(stems, final_dir, fmt, protect, rate, job, clean_stale)
    except Exception:  # an error (a signal keeps what it found, as tests/test_cli_safety.py expects)
        for folder in created:  # deepest first; stops at the first that is not empty (or not ours)
            try:
                os.rmdir(folder)
            except OSError:
                break
        raise


def _write_stems(stems, final_dir: Path, fmt: str, protect: tuple = (), rate: int = SAMPLE_RATE,
                 job: dict | None = None, clean_stale: bool = True) -> list[Path]:
    """Write ``final_dir/<target>.<ext>`` for each stem, never touching a file the app did not write.

    ``stems`` is either ``{name: (n, 2)}`` or an iterator of ``(offset, {name: block})`` as
    :meth:`Separator.stream` yields, so a long song is written while it is separated and the whole
    set of stems never sits in memory.

    * ``final_dir`` does not exist: the stems (and the marker, see :mod:`unmix_desktop.outputs`)
      are written into a hidden ``.partial-<pid>-`` folder next to it, renamed when complete.
    * ``final_dir`` is a result folder the app created: each stem goes to a hidden temporary file
      in it and replaces the stem file of that name once all are written; earlier stems the app
      wrote that this run does not write (another format, fewer targets) are removed. Every other
      file there stays as it is.
    * Anything else (a file, a folder the app did not create, a stem file the user changed):
      :class:`AudioError`, nothing written. Use :func:`outputs.choose_result_dir` first.

    The files are written at ``rate`` Hz. ``job`` (:func:`outputs.job_record`) goes into the
    marker once every stem is written, so a later run can skip the song.
    ``clean_stale=False`` leaves other processes' leftovers alone (a cluster worker cannot tell
    whether a process of another machine is alive; the cluster driver removes its workers' own).

    A failure or a signal leaves nothing under the final names and no temporary files.
    """
    import soundfile as sf

    blocks = iter([(0, stems)]) if isinstance(stems, dict) else stems
    ext = _ext(fmt)
    parent = final_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_error(parent, exc) from exc
    if clean_stale:
        outputs.remove_stale(parent)
    new = not os.path.lexists(final_dir)
    if not new:
        reason = outputs.unusable_reason(final_dir, [], protect)
        if reason:
            raise AudioError(final_dir, reason)
        if clean_stale:
            outputs.remove_stale(final_dir)
    owned = {} if new else (outputs.read_marker(final_dir) or {})
    files: dict[str, sf.SoundFile] = {}
    temps: dict[str, Path] = {}
    clipped: dict[str, int] = {}
    work = None

    def write_block(items) -> None:
        for name, fh, audio in items:
            if SUBTYPES[fmt] != "FLOAT":
                clipped[name] += int(np.count_nonzero(np.abs(audio) > 1.0))
                audio = np.clip(audio, -1.0, 1.0)
            try:
                fh.write(audio)
            except RuntimeError as exc:  # LibsndfileError: a full disk, a file size limit...
                raise (soundfile_os_error(exc, final_dir) or exc) from exc

    from concurrent.futures import ThreadPoolExecutor

    writer = ThreadPoolExecutor(1, thread_name_prefix="unmix-write")
    pending = None
    try:
        try:
            work = outputs.temp_dir(parent, final_dir.name) if new else final_dir
            if new:
                outputs.write_marker(work, {})
            for _, chunk in blocks:
                for name, audio in chunk.items():
                    if name not in files:
                        fname = f"{name}.{ext}"
                        if not new:
                            reason = outputs.unusable_reason(final_dir, [fname], protect)
                            if reason:
                                raise AudioError(final_dir, reason)
                        temps[name] = work / fname if new else outputs.temp_file(final_dir, name, f".{ext}")
                        files[name] = sf.SoundFile(temps[name], "w", int(rate), 2, SUBTYPES[fmt],
                                                   format="FLAC" if ext == "flac" else "WAV")
                        clipped[name] = 0
                # written by one thread while the next window is separated (libsndfile releases the GIL);
                # at most one block in flight, so a write error surfaces within a window
                if pending is not None:
                    pending.result()
                pending = writer.submit(write_block, [(name, files[name], audio) for name, audio in chunk.items()])
            if pending is not None:
                pending.result()
                pending = None
            for fh in files.values():
                fh.close()
            names = [f"{name}.{ext}" for name in files]
            if new:
                outputs.write_marker(work, outputs.stamp(work, names), job)
                try:
                    os.rename(work, final_dir)
                except OSError as exc:
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
                        raise
                    raise AudioError(final_dir, "appeared while the stems were written; run again") from exc
                work = None
            else:
                outputs.write_marker(final_dir, {**owned, **{n: None for n in names}})
                for name, tmp in temps.items():
                    os.replace(tmp, final_dir / f"{name}.{ext}")
                temps.clear()
                for old in owned:
                    if old not in names and old != outputs.MARKER and outputs.owns(final_dir, old, owned):
                        (final_dir / old).unlink(missing_ok=True)
                outputs.write_marker(final_dir, outputs.stamp(final_dir, names), job)
        except (OSError, RuntimeError, AssertionError) as exc:
            # soundfile reports a failed write as a RuntimeError (LibsndfileError) or a short write
            raise _write_error(final_dir, exc) from exc
    except BaseException:
        if pending is not None:  # let the block in flight finish before its file is closed and removed
            try:
                pending.result()
            except BaseException:  # noqa: BLE001 - the first error is the one being raised
                pass
        for fh in files.values():
            fh.close()
        if new and work is not None:
            shutil.rmtree(work, ignore_errors=True)
        for tmp in temps.values():
            if not new:
                tmp.unlink(missing_ok=True)
        # a signal between creating a temporary name and remembering it
        outputs.remove_mine(parent)
        if not new:
            outputs.remove_mine(final_dir)
        writer.shutdown(wait=False)
        raise
    writer.shutdown()
    for name, count in clipped.items():
        if count:
            _say(f"unmix: warning: {final_dir.name}/{name}: {count} samples clipped "
                 "(use --format wavf to keep them)")
    return [final_dir / f"{name}.{ext}" for name in files]


def result_bases(paths: list[Path]) -> list[str | None]:
    """The result folder name of each song of one run; ``None`` for a song listed twice.

    The first song of a name gets ``<name>``; a later one with the same name (any case) gets
    ``<name> (<ext>)``, then ``<name> (<ext> 2)`` …, so no song overwrites another's stems.
    """
    bases: list[str | None] = []
    used: set[str] = set()
    seen: set[str] = set()
    for path in paths:
        key = os.path.normcase(os.path.abspath(path))
        if key in seen:
            bases.append(None)
            continue
        seen.add(key)
        name = song_name(path)
        ext = path.name[len(name):].lstrip(".").lower() or "file"
        candidates = [name, f"{name} ({ext})"] + [f"{name} ({ext} {i})" for i in range(2, 1000)]
        base = next(c for c in candidates if c.casefold() not in used)
        used.add(base.casefold())
        bases.append(base)
    return bases


def collect_blocks(blocks) -> dict[str, np.ndarray]:
    """A stream of ``(offset, {name: (m, 2)})`` blocks -> ``{name: (n, 2)}`` in memory."""
    parts: dict[str, list[np.ndarray]] = {}
    for _, chunk in blocks:
        for name, audio in chunk.items():
            parts.setdefault(name, []).append(audio)
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def output_names(separator, args) -> list[str]:
    """The stems this run writes; one line naming the valid ones when ``--targets`` asks for others."""
    if args.stems != 4 or getattr(separator, "native_stems", False):  # Demucs: its own sources
        return list(separator.output_targets)  # raises ModelError naming what the model gives
    from ..separation.fourstems import STEMS

    given = list(separator.output_targets)
    if "vocals" not in given or "accompaniment" not in given:
        raise UsageError(f"--stems 4 needs a model with vocals and an accompaniment (this one gives {', '.join(given)}"
                         "; keep --residual on)")
    valid = ["vocals", *STEMS]
    if not args.targets:
        return valid
    wanted = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = [t for t in wanted if t not in valid]
    if unknown:
        raise UsageError(f"--targets {','.join(unknown)}: not a stem of --stems 4 (valid: {', '.join(valid)})")
    return [t for t in valid if t in wanted]


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def expand_songs(items: list[str], out: Path, warn) -> tuple[list[tuple[Path, Path]], list[AudioError]]:
    """``(song, folder its result folder goes in)`` for each song, and the folders that gave none.

    A file (or anything that is not a folder, so a missing file fails later with its reason) goes
    straight into ``out``; a folder's audio files (recursively, sorted, see
    :func:`~unmix_desktop.audio.io.audio_files`) into ``out/<folder's name>/<its sub-folders>``.
    The output folder and the app's result folders inside a searched folder are not searched.
    """
    songs: list[tuple[Path, Path]] = []
    empty: list[AudioError] = []

    def skip(folder: Path) -> bool:
        return _same_dir(folder, out) or os.path.isfile(folder / outputs.MARKER)  # never raises

    for item in items:
        path = Path(item)
        if not os.path.isdir(path):  # never raises: an unreadable song fails later with its reason
            songs.append((path, out))
            continue
        name = path.resolve().name or "root"
        try:
            found = audio_files(path, recursive=True, skip=skip,
                                on_error=lambda exc: warn(f"{exc}; its songs are left out"),
                                on_skip=lambda exc: warn(str(exc)))
        except AudioError as exc:
            empty.append(exc)
            continue
        if not found:
            empty.append(AudioError(path, "no audio files in this folder"))
        for song in found:
            songs.append((song, out / name / song.parent.relative_to(path)))
    return songs, empty


def plan_bases(songs: list[tuple[Path, Path]]) -> list[str | None]:
    """:func:`result_bases` within each output folder; ``None`` for a song listed twice (even when
    named once as a file and once inside a folder)."""
    bases: list[str | None] = [None] * len(songs)
    seen: set[str] = set()
    groups: dict[str, list[int]] = {}
    for i, (path, parent) in enumerate(songs):
        key = os.path.normcase(os.path.abspath(path))
        if key in seen:
            continue
        seen.add(key)
        groups.setdefault(os.path.normcase(os.path.abspath(parent)), []).append(i)
    for indices in groups.values():
        for i, base in zip(indices, result_bases([songs[i][0] for i in indices])):
            bases[i] = base
    return bases


def model_id(args) -> str:
    """The model as recorded in a result folder's marker: its registry name, or the resolved path
    of a bundle / checkpoint given with ``--model-file``."""
    if args.model_file:
        return str(Path(args.model_file).resolve())
    if args.model:
        return args.model
    from ..separation.registry import default_model_name

    return default_model_name()


def job_for(path: Path, args, model: str, settings: SeparationSettings, names: list[str]) -> dict | None:
    """The marker's job record of one song (``None`` when the song cannot be looked at: it then
    fails with its reason when opened)."""
    try:
        return outputs.job_record(path, model=model, settings=settings.key(), rate=args.rate, format=args.format,
                                  stems=names, four_stem_model=_four_stem_method(args))
    except OSError:
        return None


def separate_one(separator, path: Path, final_dir: Path, args, names: list[str], job: dict | None,
                 bar=None, warn=None, clean_stale: bool = True) -> list[Path]:
    """Separate one song into ``final_dir`` (streamed: decode -> model -> split -> resample -> write)."""
    with song_stems(separator, path, args, names, bar=bar, warn=warn) as (stems, rate):
        return write_stems(stems, final_dir, args.format, protect=(path,), rate=rate, job=job,
                           clean_stale=clean_stale)


@contextlib.contextmanager
def song_stems(separator, path: Path, args, names: list[str], bar=None, warn=None):
    """``(blocks, rate)``: the stream of ``(offset, {name: (k, 2)})`` stem blocks of one song at the
    rate they are to be written (the song's own, or ``--rate``), while the song is open.

    Decoded as it is separated, window by window: memory does not grow with the song. Used by
    :func:`separate_one` and by the cluster workers (:mod:`unmix_desktop.cluster`)."""
    with open_audio(path, max_duration=args.max_duration, on_warning=warn) as audio:
        stems = separator.stream(audio, progress=bar)
        if args.stems == 4 and not getattr(separator, "native_stems", False):
            from ..separation import learned4
            from ..separation.fourstems import four_stems, stream_four_stems

            if learned4.is_dsp(args.four_stem_model):
                split = stream_four_stems(stems)
            elif learned4.is_hybrid(args.four_stem_model):  # streamed too: learned bass + DSP drums
                split = learned4.stream_hybrid(stems)
            else:  # the learned splitter works on the whole accompaniment (memory grows with it)
                whole = collect_blocks(stems)
                split = iter([(0, four_stems(whole, model=args.four_stem_model))])
            stems = ((o, {k: v for k, v in b.items() if k in names}) for o, b in split)
        model_rate = audio.rate
        rate = args.rate or audio.source_rate
        if rate != model_rate:  # back to the song's rate (or --rate), same length to the sample
            stems = resample_blocks(stems, model_rate, rate,
                                    lambda: target_frames(audio.decoded, audio.source_rate, rate))
        yield stems, rate


def _say(text: str) -> None:
    """One line on stderr: control characters in names (a newline in a file name) are escaped, so a
    message or a progress line is never split."""
    print(one_line(text), file=sys.stderr, flush=True)


def _label(path: Path) -> str:
    return path.name if len(path.name) <= 40 else path.name[:37] + "..."


def _error_line(exc: BaseException, path: Path) -> str:
    if isinstance(exc, OSError):
        exc = AudioError(outputs.os_error_path(exc, path), exc.strerror or str(exc))
    return f"unmix: error: {exc}"


def _make_separator(args, threads: int | None = None):
    """The song pipeline's separator: model options follow the settings (Spleeter's mask exponent =
    ``--power``), one device policy (:func:`~unmix_desktop.devices.resolve_device`)."""
    from ..devices import resolve_device
    from ..separation.pipeline import make_separator
    from ..separation.registry import load_model

    device = resolve_device(args.device)
    model = load_model(args.model_file or args.model, device=str(device))
    settings = settings_from_args(args)
    from ..separation.demucs_run import DemucsSettings, is_demucs_model

    if is_demucs_model(model):  # drums/bass/other/vocals[/guitar/piano] + accompaniment from the model
        settings = DemucsSettings(**{**settings.to_dict(), "targets": _target_list(args)}, shifts=args.shifts)
    return make_separator(model, settings, device=device, threads=threads)


def _target_list(args) -> list[str] | None:
    return [t.strip() for t in args.targets.split(",") if t.strip()] if args.targets else None


def _stop_with_parent(parent: int) -> None:
    """Linux: get SIGTERM (and so remove this child's temporary files) when the parent process
    ends for any reason, even kill -9; a child whose parent is already gone stops now."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def run_worker(args) -> int:
    """One song of a ``--jobs`` run, into the exact result folder the parent chose."""
    task = json.loads(args.worker)
    _stop_with_parent(int(task["parent"]))
    for key, value in task["args"].items():
        setattr(args, key, value)
    separator = _make_separator(args, threads=task["threads"])
    names = output_names(separator, args)
    path = Path(args.songs[0])

    def warn(message: str) -> None:
        _say(f"unmix: warning: {message}")

    try:
        separate_one(separator, path, Path(task["dir"]), args, names, task["job"], warn=warn)
    except (UnmixError, OSError) as exc:
        _say(_error_line(exc, path))
        return 2
    return 0


#: Options of the parent passed on to each ``--jobs`` child (everything that shapes the stems).
_CHILD_ARGS = ("model", "model_file", "targets", "stems", "four_stem_model", "niter", "softmask", "power",
               "residual", "logit", "tta", "window", "format", "max_duration", "device", "rate", "shifts")


class _Child:
    """One ``unmix separate --worker`` process; its stderr lines are passed on as they come."""

    def __init__(self, path: Path, final_dir: Path, args, job, threads: int, lock: threading.Lock):
        task = {"args": {k: getattr(args, k) for k in _CHILD_ARGS}, "dir": str(final_dir), "job": job,
                "threads": threads, "parent": os.getpid()}
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        self.path, self.final_dir = path, final_dir
        self.errors = 0
        self.quiet = False  # set once stopping: the children's "interrupted" lines are not news
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "unmix_desktop.cli", "separate", os.fspath(path), "--out",
             os.fspath(final_dir.parent), "-q", "--worker", json.dumps(task)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
            text=True, errors="replace")
        self._lock = lock
        self._reader = threading.Thread(target=self._relay, daemon=True)
        self._reader.start()

    def _relay(self) -> None:
        for line in self.proc.stderr:
            if line.startswith("unmix: error:"):
                self.errors += 1
            if not self.quiet:
                with self._lock:
                    sys.stderr.write(line)
                    sys.stderr.flush()

    def finish(self) -> int:
        self.proc.wait()
        self._reader.join(timeout=10)
        return self.proc.returncode


def _run_parallel(tasks, args, jobs: int, threads: int, report) -> tuple[int, int]:
    """Run ``tasks`` (``(path, final_dir, job)``) ``jobs`` at a time; returns ``(done, failed)``.

    On a signal (raised here as :class:`~unmix_desktop.errors.Stopped`) every running child gets
    the same signal, removes its own temporary files and is waited for before the signal goes on.
    """
    lock = threading.Lock()
    pending = list(tasks)
    running: list[_Child] = []
    done = failed = 0
    try:
        while pending or running:
            while pending and len(running) < jobs:
                path, final_dir, job = pending.pop(0)
                running.append(_Child(path, final_dir, args, job, threads, lock))
            time.sleep(0.05)
            for child in [c for c in running if c.proc.poll() is not None]:
                running.remove(child)
                code = child.finish()
                if code == 0:
                    done += 1
                    with lock:
                        report(child.path, child.final_dir)
                else:
                    failed += 1
                    if not child.errors:  # a crash, not one of our errors: still one line
                        with lock:
                            _say(f"unmix: error: {child.path}: separation process ended with status {code}")
    except BaseException as exc:
        default = signal.SIGINT if isinstance(exc, KeyboardInterrupt) else signal.SIGTERM
        signum = getattr(exc, "signum", default)
        for child in running:
            child.quiet = True
            if child.proc.poll() is None:
                try:
                    child.proc.send_signal(signum)
                except OSError:
                    pass
        deadline = time.monotonic() + 60
        for child in running:
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()  # a child that cannot stop; its temporary files go on the next run
                child.proc.wait()
        raise
    return done, failed


@dataclass
class Plan:
    """What one ``unmix separate`` run does: ``tasks`` (song, result folder, marker job) to separate,
    how many were skipped (already separated) or failed while planning, and the song count."""

    tasks: list[tuple[Path, Path, dict | None]]
    skipped: int
    failed: int
    total: int


def plan_run(args, out: Path, names: list[str], settings: SeparationSettings, model: str, warn) -> Plan:
    """List the songs, choose each one's result folder (so songs running at once never race for a
    name) and leave out those already separated the same way. Notes and errors are printed here."""
    files_written = [f"{n}.{_ext(args.format)}" for n in names]
    songs, empty = expand_songs(args.songs, out, warn)
    failed = len(empty)
    for exc in empty:
        _say(f"unmix: error: {exc}")
    bases = plan_bases(songs)
    taken: dict[str, list[str]] = {}
    tasks: list[tuple[Path, Path, dict | None]] = []
    skipped = 0
    total = sum(base is not None for base in bases) + len(empty)
    for (path, parent), base in zip(songs, bases):
        if base is None:
            _say(f"unmix: note: {path}: listed twice, separated once")
            continue
        try:
            used = taken.setdefault(os.path.normcase(os.path.abspath(parent)), [])
            final_dir, why = outputs.choose_result_dir(parent, base, files_written, used, protect=(path,))
            used.append(final_dir.name)
            if base != song_name(path):
                _say(f"unmix: note: {path}: another song of this run is also named '{song_name(path)}'; "
                     f"its stems go to '{base}'")
            if why:
                _say(f"unmix: note: {path}: {why}; writing to {final_dir}")
        except (UnmixError, OSError) as exc:
            _say(_error_line(exc, path))
            failed += 1
            continue
        job = job_for(path, args, model, settings, names)
        if job is not None and not args.force and outputs.is_done(final_dir, job, files_written):
            skipped += 1
            if not args.quiet:
                _say(f"{_label(path)}: already separated -> {final_dir} (skipped; --force to redo)")
            continue
        tasks.append((path, final_dir, job))
    return Plan(tasks, skipped, failed, total)


def run(args) -> int:
    if args.worker:
        return run_worker(args)
    out = Path(args.out)
    if os.path.lexists(out) and not out.is_dir():
        raise AudioError(out, "--out is a file, not a folder")

    def warn(message: str) -> None:
        _say(f"unmix: warning: {message}")

    if args.cluster is not None:
        from ..cluster import run_cluster

        return run_cluster(args, out, warn)
    jobs = min(args.jobs, cores())
    if jobs < args.jobs:
        _say(f"unmix: note: --jobs {args.jobs}: this machine has {cores()} cores; running {jobs} at once")
    threads = args.threads or (max(1, cores() // jobs) if jobs > 1 else None)
    separator = _make_separator(args, threads=None if jobs > 1 else threads)
    names = output_names(separator, args)
    files_written = [f"{n}.{_ext(args.format)}" for n in names]

    def report(path: Path, final_dir: Path, files=None) -> None:
        if not args.quiet:
            count = len(files) if files is not None else len(files_written)
            _say(f"{_label(path)}: {count} stems -> {final_dir}")

    plan = plan_run(args, out, names, separator.settings, model_id(args), warn)
    tasks, skipped, failed, total = plan.tasks, plan.skipped, plan.failed, plan.total
    done = 0
    if jobs > 1 and len(tasks) > 1:
        del separator  # each child loads its own model
        done, child_failed = _run_parallel(tasks, args, min(jobs, len(tasks)), threads, report)
        failed += child_failed
    else:
        for path, final_dir, job in tasks:
            label = _label(path)
            bar = None
            try:
                bar = None if args.quiet else ProgressBar(label)
                files = separate_one(separator, path, final_dir, args, names, job, bar=bar, warn=warn)
                done += 1
                if bar:
                    bar.close(f"{label}: {len(files)} stems -> {final_dir}")
            except (UnmixError, OSError) as exc:
                if bar:
                    bar.close()
                _say(_error_line(exc, path))
                failed += 1
    return summary(args, total, done, skipped, failed)


def summary(args, total: int, done: int, skipped: int, failed: int) -> int:
    """The closing line and the exit status (2 when any song failed)."""
    if failed:
        _say(f"unmix: {failed} of {total} songs failed ({done} done, {skipped} skipped)")
        return 2
    if not args.quiet and (total > 1 or skipped):
        _say(f"unmix: {total} songs: {done} done, {skipped} skipped, 0 failed")
    return 0
