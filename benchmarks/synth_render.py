"""Render speed of the synthetic corpus (training/synth): seconds of audio per CPU second, for
FluidSynth and the numpy fallback, with and without production. CPU time (process_time) of the
rendering + production of each excerpt in this process (one core), excluding FLAC writing.

    python benchmarks/synth_render.py [--excerpts 8] [--duration 10]

Writes benchmarks/results/synth_render.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from unmix_desktop.training.synth.corpus import write_corpus  # noqa: E402
from unmix_desktop.training.synth.render import fluidsynth_available  # noqa: E402

POP909 = ROOT.parent / "shared" / "data" / "pop909"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--excerpts", type=int, default=8)
    ap.add_argument("--duration", type=float, default=10.0)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    results = {}
    renderers = (["fluidsynth"] if fluidsynth_available() else []) + ["numpy"]
    for renderer in renderers:
        for produce in (True, False):
            with tempfile.TemporaryDirectory() as tmp:
                s = write_corpus(POP909, tmp, args.excerpts, args.duration, seed=7, renderer=renderer,
                                 produce=produce)
            key = f"{renderer}{'' if produce else '_no_production'}"
            results[key] = {k: s[k] for k in ("audio_s_rendered_now", "cpu_s", "wall_s", "audio_s_per_cpu_s")}
            print(f"{key:28s} {s['audio_s_per_cpu_s']:6.1f} s of audio per CPU second "
                  f"({s['audio_s_rendered_now']:.0f} s in {s['cpu_s']:.1f} CPU s, {s['wall_s']:.1f} s wall)",
                  flush=True)
    out = ROOT / "benchmarks" / "results" / "synth_render.json"
    out.write_text(json.dumps({"excerpts": args.excerpts, "duration_s": args.duration, "machine": platform.platform(),
                               "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
