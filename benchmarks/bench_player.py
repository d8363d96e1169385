"""Time of the player's audio callback per block, as a fraction of the block's duration.

2, 4 and 8 stems of 20 s of noise, blocks of 256, 512 and 1024 frames at 44.1 kHz. The player is
driven without a device (``open_stream=False``) by calling its callback with a preallocated
buffer, exactly as PortAudio would. Two cases:

* ``steady``: faders set, nothing changes (the usual case);
* ``ramping``: a fader moves before every block (each block ramps every stem's gain: worst case).

The mix is hot enough that the limiter works on part of the blocks. Garbage collection stays on,
as in the application. Wall time includes preemption by other processes (on a busy machine the
99th percentile shows the scheduler's time slices); the thread's CPU time is the callback's own
cost. Prints a table and writes benchmarks/results/bench_player.json.

    python benchmarks/bench_player.py [--blocks 2000]

Target: 4 stems at 512 frames, median <= 10 % of the block duration.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from unmix_desktop.audio.player import StemPlayer  # noqa: E402

SR = 44100


class Status:
    output_underflow = False


def measure(n_stems: int, blocksize: int, n_blocks: int, ramping: bool) -> dict:
    rng = np.random.default_rng(n_stems)
    stems = {f"stem{i}": (0.2 * rng.standard_normal((20 * SR, 2))).astype(np.float32) for i in range(n_stems)}
    p = StemPlayer(blocksize=blocksize, open_stream=False)
    p.load(stems)
    for i, name in enumerate(stems):
        p.set_gain_db(name, -3.0 * i)
        p.set_pan(name, (i % 3 - 1) * 0.4)
    p.set_loop(1.0, 19.0)
    p.play()
    out = np.zeros((blocksize, 2), np.float32)
    status = Status()
    callback = p._callback
    for _ in range(50):  # warm up
        callback(out, blocksize, None, status)
    names = list(stems)
    times = np.empty(n_blocks, np.float64)
    cpu = np.empty(n_blocks, np.float64)
    for b in range(n_blocks):
        if ramping:
            p.set_gain_db(names[b % n_stems], -6.0 * (b % 4))  # UI thread's work, not timed
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        callback(out, blocksize, None, status)
        times[b] = time.perf_counter_ns() - t0
        cpu[b] = time.thread_time_ns() - c0
    assert p.callback_error is None, p.callback_error
    block_ns = blocksize / SR * 1e9
    frac = times / block_ns
    cpu_frac = cpu / block_ns
    return {
        "stems": n_stems,
        "blocksize": blocksize,
        "case": "ramping" if ramping else "steady",
        "block_ms": round(block_ns / 1e6, 3),
        "median_us": round(float(np.median(times)) / 1e3, 1),
        "p99_us": round(float(np.percentile(times, 99)) / 1e3, 1),
        "median_frac": round(float(np.median(frac)), 4),
        "p99_frac": round(float(np.percentile(frac, 99)), 4),
        "max_frac": round(float(frac.max()), 4),
        "cpu_median_frac": round(float(np.median(cpu_frac)), 4),
        "cpu_p99_frac": round(float(np.percentile(cpu_frac, 99)), 4),
        "clipped_samples": p.clipped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=2000, help="timed blocks per configuration")
    args = parser.parse_args()
    rows = []
    print("wall: perf_counter around the callback (includes preemption by other processes);")
    print("cpu: this thread's CPU time (the callback's own cost). Columns are fractions of the block.")
    print(f"{'stems':>5} {'block':>5} {'case':>8} {'median us':>10} {'p99 us':>8} {'median':>8} {'p99':>8}"
          f" {'max':>8} {'cpu med':>8} {'cpu p99':>8}")
    for ramping in (False, True):
        for n_stems in (2, 4, 8):
            for blocksize in (256, 512, 1024):
                r = measure(n_stems, blocksize, args.blocks, ramping)
                rows.append(r)
                print(
                    f"{r['stems']:>5} {r['blocksize']:>5} {r['case']:>8} {r['median_us']:>10.1f} {r['p99_us']:>8.1f}"
                    f" {r['median_frac']:>8.2%} {r['p99_frac']:>8.2%} {r['max_frac']:>8.2%}"
                    f" {r['cpu_median_frac']:>8.2%} {r['cpu_p99_frac']:>8.2%}"
                )
    target = next(r for r in rows if r["stems"] == 4 and r["blocksize"] == 512 and r["case"] == "steady")
    print(f"target 4 stems @ 512: median {target['median_frac']:.2%}, p99 {target['p99_frac']:.2%} wall"
          f" ({target['cpu_p99_frac']:.2%} cpu) of the block (goal <= 10 %)")
    result = {
        "benchmark": "bench_player",
        "unit": "callback time / block duration",
        "sample_rate": SR,
        "blocks_per_config": args.blocks,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "processor": platform.processor(),
        "rows": rows,
        "target_4_stems_512": {k: target[k] for k in ("median_frac", "p99_frac", "cpu_median_frac", "cpu_p99_frac")}
        | {"goal": 0.10},
        "load_average": list(os.getloadavg()),
    }
    out = ROOT / "benchmarks" / "results" / "bench_player.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
