"""`unmix separate SONG... --out DIR`: write DIR/<song>/<target>.wav for each song."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..audio.io import DEFAULT_MAX_DURATION, _umask, load_audio
from ..errors import UnmixError
from ..progress import ProgressBar
from ..separation.settings import SeparationSettings

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
    p.add_argument("--niter", type=int, default=d.niter, help=f"Wiener EM iterations, 0 = ratio mask (default {d.niter})")
    p.add_argument("--softmask", action=argparse.BooleanOptionalAction, default=d.softmask,
                   help="start the Wiener filter from a ratio mask (default: %(default)s)")
    p.add_argument("--power", type=float, default=d.power, help=f"ratio mask exponent (default {d.power})")
    p.add_argument("--residual", action=argparse.BooleanOptionalAction, default=d.residual,
                   help="accompaniment = mixture - other stems, so stems sum to the song (default: %(default)s)")
    p.add_argument("--logit", type=float, default=d.logit, metavar="S", help="mask sharpening strength (off by default)")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=d.swap_tta,
                   help="average with the channel-swapped song (default: %(default)s)")
    p.add_argument("--window", type=float, default=d.window_s, metavar="S", help="processing window in seconds (memory bound)")
    p.add_argument("--format", choices=("wav", "wav24", "wavf", "flac"), default="wav", help="output format (default wav 16-bit)")
    p.add_argument("--max-duration", type=float, default=DEFAULT_MAX_DURATION, metavar="S",
                   help="refuse songs longer than this many seconds")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
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


def write_stems(stems, final_dir: Path, fmt: str, protect: tuple = ()) -> list[Path]:
    """Write stems into a hidden temporary folder next to ``final_dir``, then rename it.

    ``stems`` is either ``{name: (n, 2)}`` or an iterator of ``(offset, {name: block})`` as
    :meth:`Separator.stream` yields, so a long song is written while it is separated and the whole
    set of stems never sits in memory. A failure leaves nothing under the final name; an earlier
    result is replaced only once the new one is complete.
    """
    import soundfile as sf

    blocks = iter([(0, stems)]) if isinstance(stems, dict) else stems
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    for p in protect:
        if final_dir.resolve() in Path(p).resolve().parents:
            raise UnmixError(f"{final_dir}: holds the source song {Path(p).name}; choose another --out folder")
    tmp = Path(tempfile.mkdtemp(prefix=f".{final_dir.name}.partial-", dir=final_dir.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; the result is an ordinary folder
    ext = "flac" if fmt == "flac" else "wav"
    files: dict[str, sf.SoundFile] = {}
    clipped: dict[str, int] = {}
    try:
        for _, chunk in blocks:
            for name, audio in chunk.items():
                if name not in files:
                    files[name] = sf.SoundFile(tmp / f"{name}.{ext}", "w", 44100, 2, SUBTYPES[fmt],
                                               format="FLAC" if ext == "flac" else "WAV")
                    clipped[name] = 0
                if SUBTYPES[fmt] != "FLOAT":
                    clipped[name] += int(np.count_nonzero(np.abs(audio) > 1.0))
                    audio = np.clip(audio, -1.0, 1.0)
                files[name].write(audio)
        for fh in files.values():
            fh.close()
        if final_dir.exists():
            old = final_dir.with_name(f".{final_dir.name}.old-{int(time.time() * 1000)}")
            final_dir.rename(old)
            tmp.rename(final_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final_dir)
    except BaseException:
        for fh in files.values():
            fh.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for name, count in clipped.items():
        if count:
            print(f"unmix: warning: {final_dir.name}/{name}: {count} samples clipped "
                  "(use --format wavf to keep them)", file=sys.stderr)
    return [final_dir / f"{name}.{ext}" for name in files]


def run(args) -> int:
    from ..separation.registry import load_model
    from ..separation.separator import Separator

    settings = settings_from_args(args)
    model_ref = args.model_file or args.model
    model = load_model(model_ref, device=args.device or "cpu")
    separator = Separator(model, settings, device=args.device)
    out = Path(args.out)
    failed = 0
    for song in args.songs:
        path = Path(song)
        label = path.name if len(path.name) <= 40 else path.name[:37] + "..."
        bar = None if args.quiet else ProgressBar(label)
        try:
            audio = load_audio(path, max_duration=args.max_duration)
            if args.stems == 4:
                stems = separator.separate(audio, progress=bar)
                from ..separation.fourstems import four_stems

                stems = four_stems(stems, model=args.four_stem_model)
                if args.targets:
                    wanted = [t.strip() for t in args.targets.split(",")]
                    stems = {k: v for k, v in stems.items() if k in wanted}
            else:
                stems = separator.stream(audio, progress=bar)
            files = write_stems(stems, out / song_name(path), args.format, protect=(path,))
            if bar:
                bar.close(f"{label}: {len(files)} stems -> {out / song_name(path)}")
        except UnmixError as exc:
            if bar:
                bar.close()
            print(f"unmix: error: {exc}", file=sys.stderr)
            failed += 1
    if failed:
        print(f"unmix: {failed} of {len(args.songs)} songs failed", file=sys.stderr)
        return 2
    return 0
