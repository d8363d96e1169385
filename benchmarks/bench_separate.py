"""Whole-process time and peak RSS of `unmix separate` on generated songs.

Full-size (hidden 512, 3 BLSTM layers, max_bin 1487) randomly initialised open-unmix models with
4 targets (vocals, drums, bass, other; + residual accompaniment) and 2 targets (vocals + residual),
EM iterations 0 and 1, songs of 1, 4 and 10 minutes. Each run is a fresh process; peak RSS comes
from os.wait4's rusage of that process. Prints a table and writes benchmarks/results/bench_separate.json.

    python benchmarks/bench_separate.py [--minutes 1 4 10] [--repeats 1] [--niter 0 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from unmix_desktop.separation.bundle import save_bundle  # noqa: E402
from unmix_desktop.separation.model import MultiTargetUMX, OpenUnmix  # noqa: E402

SR = 44100


def make_song(path: Path, minutes: float) -> None:
    """Write a generated stereo song block by block (memory stays small)."""
    rng = np.random.default_rng(0)
    block = SR * 10
    with sf.SoundFile(path, "w", SR, 2, "PCM_16") as fh:
        for start in range(0, int(minutes * 60 * SR), block):
            t = (start + np.arange(block)) / SR
            tone = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 55 * t)
            noise = 0.05 * rng.standard_normal((block, 2))
            fh.write((tone[:, None] + noise).astype(np.float32))


def make_model(folder: Path, targets: list[str]) -> Path:
    torch.manual_seed(0)
    nets = {t: OpenUnmix(hidden_size=512, nb_layers=3, max_bin=1487) for t in targets}
    return save_bundle(folder, MultiTargetUMX(nets, card={"name": folder.name, "description": "random, benchmark"}))


def run_once(song: Path, model: Path, niter: int, out: Path) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "unmix_desktop.cli", "separate", str(song), "--out", str(out),
           "--model-file", str(model), "--niter", str(niter), "-q"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd} failed: {proc.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024  # KiB -> MiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 4, 10])
    ap.add_argument("--niter", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "bench_separate.json"))
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        models = {"4-target": make_model(tmp / "umx4", ["vocals", "drums", "bass", "other"]),
                  "2-target": make_model(tmp / "umx2", ["vocals"])}
        print(f"{'model':9s} {'min':>4s} {'niter':>5s} {'wall s':>8s} {'x realtime':>10s} {'peak RSS MiB':>12s}")
        for minutes in args.minutes:
            song = tmp / f"song-{minutes:g}min.wav"
            make_song(song, minutes)
            for label, model in models.items():
                for niter in args.niter:
                    runs = [run_once(song, model, niter, tmp / "out") for _ in range(args.repeats)]
                    wall = statistics.median(r[0] for r in runs)
                    rss = max(r[1] for r in runs)
                    row = {"model": label, "minutes": minutes, "niter": niter, "wall_s": round(wall, 2),
                           "realtime_factor": round(wall / (minutes * 60), 3), "peak_rss_mib": round(rss, 1),
                           "repeats": args.repeats}
                    results.append(row)
                    print(f"{label:9s} {minutes:4g} {niter:5d} {wall:8.1f} {wall / (minutes * 60):10.3f} {rss:12.0f}",
                          flush=True)
            song.unlink()
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(),
                                           "torch": torch.__version__, "results": results}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
