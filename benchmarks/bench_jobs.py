"""``unmix separate DIR --jobs N``: wall time of a small library, one song at a time vs N at once.

Songs: ``--songs`` (4) excerpts of ``--seconds`` (30) s cut from the dev song
(``../shared/data/dev/waveform-playlist-demo``, rotated by a different offset each so no two are
the same), written as 44.1 kHz WAV into one folder. Each run is a real ``unmix separate`` process
on a fresh output folder; ``--jobs 1`` uses every core for torch in one process, ``--jobs N``
starts N processes of ``cores // N`` torch threads each. Runs alternate (1, N, 1, N ...) so a
change of the machine's load hits both. Prints and writes benchmarks/results/bench_jobs.json with
the wall times, the speed-up and the load average before and after each run (the machine is
shared: read the speed-up next to the load).

    python benchmarks/bench_jobs.py [--model spleeter-2stems] [--songs 4] [--seconds 30] [--jobs 2] [--repeat 1]
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
DEV = ROOT.parent / "shared" / "data" / "dev" / "waveform-playlist-demo"


def make_songs(folder: Path, count: int, seconds: float) -> list[Path]:
    mix, sr = sf.read(DEV / "mixture.flac", dtype="float32", always_2d=True)
    n = int(seconds * sr)
    paths = []
    for i in range(count):
        song = np.roll(mix, -int(i * mix.shape[0] / count), axis=0)
        song = np.resize(song, (n, 2)) if song.shape[0] < n else song[:n]
        paths.append(folder / f"song{i + 1}.wav")
        sf.write(paths[-1], song, sr, subtype="PCM_16")
    return paths


def run(lib: Path, out: Path, jobs: int, model: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("OMP_NUM_THREADS", None)
    before = os.getloadavg()
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "unmix_desktop.cli", "separate", str(lib), "--out", str(out),
                        "--model", model, "--jobs", str(jobs)], capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t
    if r.returncode:
        raise SystemExit(r.stderr)
    summary = r.stderr.strip().splitlines()[-1]
    print(f"--jobs {jobs}: {wall:.1f} s  ({summary}; load {before[0]:.1f} -> {os.getloadavg()[0]:.1f})")
    return {"jobs": jobs, "wall_s": round(wall, 2), "summary": summary,
            "load_average_before": [round(x, 2) for x in before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="spleeter-2stems")
    ap.add_argument("--songs", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_jobs.json"))
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "lib"
        lib.mkdir()
        make_songs(lib, args.songs, args.seconds)
        for rep in range(args.repeat):
            for jobs in (1, args.jobs):
                runs.append(run(lib, Path(tmp) / f"out-{jobs}-{rep}", jobs, args.model))
    best = {j: min(r["wall_s"] for r in runs if r["jobs"] == j) for j in (1, args.jobs)}
    result = {"model": args.model, "songs": args.songs, "seconds_each": args.seconds, "cores": cores,
              "machine": platform.platform(), "runs": runs,
              "best_wall_s": {str(k): v for k, v in best.items()},
              "speedup": round(best[1] / best[args.jobs], 3),
              "note": "shared machine: see the load averages of each run"}
    print(f"speed-up --jobs {args.jobs} vs 1 on {cores} cores: {result['speedup']:.2f}x")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
