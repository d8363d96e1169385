"""`unmix separate SONG... --out DIR`: write DIR/<song>/<target>.wav for each song."""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from .. import outputs
from ..audio.io import DEFAULT_MAX_DURATION, soundfile_os_error
from ..audio.stream import open_audio
from ..errors import AudioError, UnmixError, UsageError
from ..progress import ProgressBar
from ..separation.settings import SeparationSettings
from .argtypes import finite_float, limit_seconds, non_negative_int, positive_float

SUBTYPES = {"wav": "PCM_16", "wav24": "PCM_24", "wavf": "FLOAT", "flac": "PCM_16"}


def add_parser(sub) -> argparse.ArgumentParser:
    d = SeparationSettings()
    p = sub.add_parser("separate", help="separate songs into stems",
                       description="Separate songs into stems: writes OUT/<song>/<target>.wav (44.1 kHz stereo).")
    p.add_argument("songs", nargs="+", metavar="SONG", help="audio files (wav, flac, ogg, mp3, m4a, aac, mp4, stem.mp4)")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="output folder")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--model", metavar="NAME", help="model name (see `unmix models`); default: the best installed")
    g.add_argument("--model-file", metavar="PATH", help="a model bundle folder or an open-unmix .pth checkpoint")
    p.add_argument("--targets", metavar="LIST", help="comma-separated targets to write, e.g. vocals,accompaniment")
    p.add_argument("--stems", type=int, choices=(2, 4), default=2,
                   help="4: also split the accompaniment into drums/bass/other (signal processing, see README)")
    p.add_argument("--four-stem-model", metavar="NAME", default=None,
                   help="with --stems 4: 'dsp' (signal processing) or a drums/bass/other model, e.g. umx-synth4")
    p.add_argument("--niter", type=non_negative_int, default=d.niter, help=f"Wiener EM iterations, 0 = ratio mask (default {d.niter})")
    p.add_argument("--softmask", action=argparse.BooleanOptionalAction, default=d.softmask,
                   help="start the Wiener filter from a ratio mask (default: %(default)s)")
    p.add_argument("--power", type=positive_float, default=d.power, help=f"ratio mask exponent (default {d.power})")
    p.add_argument("--residual", action=argparse.BooleanOptionalAction, default=d.residual,
                   help="accompaniment = mixture - other stems, so stems sum to the song (default: %(default)s)")
    p.add_argument("--logit", type=finite_float, default=d.logit, metavar="S", help="mask sharpening strength (off by default)")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=d.swap_tta,
                   help="average with the channel-swapped song (default: %(default)s)")
    p.add_argument("--window", type=positive_float, default=d.window_s, metavar="S", help="processing window in seconds (memory bound)")
    p.add_argument("--format", choices=("wav", "wav24", "wavf", "flac"), default="wav", help="output format (default wav 16-bit)")
    p.add_argument("--max-duration", type=limit_seconds, default=DEFAULT_MAX_DURATION, metavar="S",
                   help="refuse songs longer than this many seconds")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or mps (default: cuda when available)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    return p


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
                              targets=None if args.stems == 4 else targets)


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


def write_stems(stems, final_dir: Path, fmt: str, protect: tuple = ()) -> list[Path]:
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
    outputs.remove_stale(parent)
    new = not os.path.lexists(final_dir)
    if not new:
        reason = outputs.unusable_reason(final_dir, [], protect)
        if reason:
            raise AudioError(final_dir, reason)
        outputs.remove_stale(final_dir)
    owned = {} if new else (outputs.read_marker(final_dir) or {})
    files: dict[str, sf.SoundFile] = {}
    temps: dict[str, Path] = {}
    clipped: dict[str, int] = {}
    work = None
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
                        files[name] = sf.SoundFile(temps[name], "w", 44100, 2, SUBTYPES[fmt],
                                                   format="FLAC" if ext == "flac" else "WAV")
                        clipped[name] = 0
                    if SUBTYPES[fmt] != "FLOAT":
                        clipped[name] += int(np.count_nonzero(np.abs(audio) > 1.0))
                        audio = np.clip(audio, -1.0, 1.0)
                    try:
                        files[name].write(audio)
                    except RuntimeError as exc:  # LibsndfileError: a full disk, a file size limit...
                        raise (soundfile_os_error(exc, final_dir) or exc) from exc
            for fh in files.values():
                fh.close()
            names = [f"{name}.{ext}" for name in files]
            if new:
                outputs.write_marker(work, outputs.stamp(work, names))
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
                outputs.write_marker(final_dir, outputs.stamp(final_dir, names))
        except (OSError, RuntimeError, AssertionError) as exc:
            # soundfile reports a failed write as a RuntimeError (LibsndfileError) or a short write
            raise _write_error(final_dir, exc) from exc
    except BaseException:
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
        raise
    for name, count in clipped.items():
        if count:
            print(f"unmix: warning: {final_dir.name}/{name}: {count} samples clipped "
                  "(use --format wavf to keep them)", file=sys.stderr)
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
    if args.stems != 4:
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


def run(args) -> int:
    from ..devices import resolve_device
    from ..separation.registry import load_model
    from ..separation.separator import Separator

    out = Path(args.out)
    if os.path.lexists(out) and not out.is_dir():
        raise AudioError(out, "--out is a file, not a folder")
    device = resolve_device(args.device)
    settings = settings_from_args(args)
    model_ref = args.model_file or args.model
    model = load_model(model_ref, device=str(device))
    separator = Separator(model, settings, device=device)
    names = output_names(separator, args)
    files_written = [f"{n}.{_ext(args.format)}" for n in names]
    paths = [Path(song) for song in args.songs]
    bases = result_bases(paths)
    taken: list[str] = []
    failed = 0

    def warn(message: str) -> None:
        print(f"unmix: warning: {message}", file=sys.stderr)

    for path, base in zip(paths, bases):
        if base is None:
            print(f"unmix: note: {path}: listed twice, separated once", file=sys.stderr)
            continue
        label = path.name if len(path.name) <= 40 else path.name[:37] + "..."
        bar = None
        try:
            final_dir, why = outputs.choose_result_dir(out, base, files_written, taken, protect=(path,))
            taken.append(final_dir.name)
            if base != song_name(path):
                print(f"unmix: note: {path}: another song of this run is also named '{song_name(path)}'; "
                      f"its stems go to '{base}'", file=sys.stderr)
            if why:
                print(f"unmix: note: {path}: {why}; writing to {final_dir}", file=sys.stderr)
            bar = None if args.quiet else ProgressBar(label)
            # Decoded as it is separated, window by window: memory does not grow with the song.
            with open_audio(path, max_duration=args.max_duration, on_warning=warn) as audio:
                stems = separator.stream(audio, progress=bar)
                if args.stems == 4:
                    from ..separation import learned4
                    from ..separation.fourstems import four_stems, stream_four_stems

                    if learned4.is_dsp(args.four_stem_model):
                        split = stream_four_stems(stems)
                    else:  # the learned splitter works on the whole accompaniment (memory grows with it)
                        whole = collect_blocks(stems)
                        split = iter([(0, four_stems(whole, model=args.four_stem_model))])
                    stems = ((o, {k: v for k, v in b.items() if k in names}) for o, b in split)
                files = write_stems(stems, final_dir, args.format, protect=(path,))
            if bar:
                bar.close(f"{label}: {len(files)} stems -> {final_dir}")
        except (UnmixError, OSError) as exc:
            if bar:
                bar.close()
            if isinstance(exc, OSError):
                exc = AudioError(outputs.os_error_path(exc, path), exc.strerror or str(exc))
            print(f"unmix: error: {exc}", file=sys.stderr)
            failed += 1
    if failed:
        print(f"unmix: {failed} of {len(args.songs)} songs failed", file=sys.stderr)
        return 2
    return 0
