"""``unmix make-corpus``: render a synthetic multitrack corpus (vocals, drums, bass, other) from
POP909 MIDI with generated drums, bass and accompaniment parts (see unmix_desktop/training/synth/).

Example::

    unmix make-corpus --pop909 ../shared/data/pop909 --out ~/corpora/synth4 --excerpts 300 --duration 10
    unmix train --root ~/corpora/synth4 --targets drums,bass,other --interferers drums bass other ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UnmixError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "make-corpus", help="render a synthetic multitrack training corpus from POP909 MIDI",
        description="Render excerpts of POP909 songs with generated drums, bass and chord parts into "
                    "OUT/{train,valid,test}/<song>_<k>/{vocals,drums,bass,other}.flac (stems sum to the mix). "
                    "Deterministic from --seed; existing excerpts are kept, so an interrupted run resumes.")
    p.add_argument("--pop909", required=True, help="POP909 folder (NNN/NNN.mid, chord_midi.txt, beat_midi.txt)")
    p.add_argument("--out", required=True, help="corpus folder (created)")
    p.add_argument("--excerpts", type=int, default=300, help="number of excerpts (default 300)")
    p.add_argument("--duration", type=float, default=10.0, help="excerpt length in seconds (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--renderer", choices=["auto", "fluidsynth", "numpy"], default="auto",
                   help="auto: FluidSynth when pyfluidsynth and a GM soundfont are installed, else numpy")
    p.add_argument("--workers", type=int, default=1, help="render processes (default 1)")
    p.add_argument("--no-production", action="store_true", help="no EQ/compression/reverb/bus processing")
    p.add_argument("--quiet", action="store_true")
    return p


def run(args) -> int:
    from ..training.synth.corpus import write_corpus

    root = Path(args.pop909)
    if not root.is_dir():
        raise UnmixError(f"{root}: not a folder")
    if args.excerpts < 1 or args.duration <= 0:
        raise UnmixError("--excerpts and --duration must be positive")
    if args.renderer == "fluidsynth":
        from ..training.synth.render import fluidsynth_available

        if not fluidsynth_available():
            raise UnmixError("--renderer fluidsynth: pyfluidsynth or a General MIDI soundfont is missing "
                             "(make training-deps installs fluidsynth and fluid-soundfont-gm)")
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=args.excerpts, desc="rendering", unit="excerpt", file=sys.stderr, dynamic_ncols=True)

    def progress(done, total):
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()

    try:
        summary = write_corpus(root, args.out, args.excerpts, args.duration, args.seed, args.renderer,
                               args.workers, not args.no_production, progress=progress)
    except FileNotFoundError as exc:
        raise UnmixError(str(exc)) from exc
    finally:
        if bar is not None:
            bar.close()
    ex = summary["excerpts"]
    print(f"{args.out}: {ex['train']} train / {ex['valid']} valid / {ex['test']} test excerpts of "
          f"{args.duration:g} s; rendered {summary['rendered_now']} now at "
          f"{summary['audio_s_per_cpu_s']} s of audio per CPU second")
    return 0
