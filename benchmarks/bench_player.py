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

    python benchmarks/bench_player.py [--blocks 2000] [--stretch-seconds 6] [--skip-mixer]

Target: 4 stems at 512 frames, median <= 10 % of the block duration.

Tempo/key stage (Rubber Band R3, real time), 2/4/8 stems at tempo 0.75 and key -2, blocks of 512:

* ``stretch_cpu``: the real player, producer thread running, callback paced to the wall clock
  for ``--stretch-seconds``: CPU of the callback thread and of the producer thread per block, as
  a fraction of the block duration (= of one core), and underruns. Target: callback + producer
  <= 25 % of one core. Both R3 window choices ("standard", "short").
* ``latency``: from the call (set_gain_db / set_key / set_tempo) to the first output sample
  that carries the change, in ms of output, with the producer run synchronously with the ring
  kept as full as the thread keeps it (deterministic; a device adds its own output latency):
  fader mute of a 440 Hz sine (level falls below half), key -2 -> +2 (the frequency crosses the
  middle), tempo T -> 1.5 on a sweep whose frequency encodes song time (the heard song time
  leaves the old tempo's line by 20 ms), and tempo 1.0 -> T from bypass; T = 0.75 and 0.5, both
  window choices. Goal <= 150 ms.
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
from unmix_desktop.audio.stretch import LEAD_FRAMES, RING_TARGETS, SWITCH_FADE  # noqa: E402

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


def measure_stretch_cpu(n_stems: int, seconds: float, blocksize: int = 512, window: str = "standard") -> dict:
    """Callback and producer CPU per block with the producer thread, paced to the wall clock."""
    rng = np.random.default_rng(n_stems)
    stems = {f"stem{i}": (0.1 * rng.standard_normal((30 * SR, 2))).astype(np.float32) for i in range(n_stems)}
    p = StemPlayer(blocksize=blocksize, open_stream=False, stretch_window=window)
    p.load(stems)
    time.sleep(0.3)  # the producer builds its stretcher
    p.set_tempo(0.75)
    p.set_key(-2)
    p.play()
    out = np.zeros((blocksize, 2), np.float32)
    status = Status()
    n_blocks = int(seconds * SR / blocksize)
    warm = 40
    cb = np.empty(n_blocks, np.float64)
    t0 = time.perf_counter()
    producer0 = 0
    for b in range(warm + n_blocks):
        if b == warm:
            producer0 = p._producer.cpu_ns
            t0 = time.perf_counter() - warm * blocksize / SR
        c0 = time.thread_time_ns()
        p._callback(out, blocksize, None, status)
        if b >= warm:
            cb[b - warm] = time.thread_time_ns() - c0
        delay = t0 + (b + 1) * blocksize / SR - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    producer = (p._producer.cpu_ns - producer0) / n_blocks
    p.close()
    assert p.callback_error is None, p.callback_error
    block_ns = blocksize / SR * 1e9
    return {
        "stems": n_stems, "window": window, "blocksize": blocksize, "tempo": 0.75, "key": -2, "blocks": n_blocks,
        "callback_cpu_mean_frac": round(float(cb.mean() / block_ns), 4),
        "callback_cpu_p99_frac": round(float(np.percentile(cb, 99) / block_ns), 4),
        "producer_cpu_per_block_frac": round(producer / block_ns, 4),
        "total_cpu_frac": round(float((cb.mean() + producer) / block_ns), 4),
        "stretch_underruns": p.stretch_underruns,
    }


def _sync_player(stems: dict, window: str) -> StemPlayer:
    p = StemPlayer(blocksize=512, open_stream=False, stretch_thread=False, stretch_window=window)
    p.load(stems)
    return p


def _run(p: StemPlayer, blocks: int, at: int, change) -> np.ndarray:
    out = np.zeros((512, 2), np.float32)
    parts = []
    for b in range(blocks):
        if b == at:
            change()
        p._callback(out, 512, None, Status())
        parts.append(out[:, 0].copy())
    return np.concatenate(parts)


def _freqs(y: np.ndarray, hop: int = 128, win: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """(frame centre in samples, frequency of the strongest partial) every ``hop`` samples."""
    w = np.hanning(win)
    centres, freqs = [], []
    for start in range(0, len(y) - win, hop):
        spec = np.abs(np.fft.rfft(y[start:start + win] * w, 4 * win))
        k = int(np.argmax(spec[1:-1])) + 1
        a, b, c = np.log(spec[k - 1:k + 2] + 1e-12)
        den = a - 2 * b + c
        freqs.append((k + (0.5 * (a - c) / den if den else 0.0)) * SR / (4 * win))
        centres.append(start + win // 2)
    return np.array(centres), np.array(freqs)


def measure_latency(window: str, tempo: float = 0.75) -> dict:
    at = 200  # the change comes before block 200 (well into steady stretching)
    t_change = at * 512
    res = {}
    # fader: mute a 440 Hz sine while stretched
    t = np.arange(20 * SR) / SR
    tone = np.stack([0.3 * np.sin(2 * np.pi * 440 * t)] * 2, 1).astype(np.float32)
    p = _sync_player({"a": tone}, window)
    p.set_tempo(tempo)
    p.set_key(-2)
    p.play()
    y = _run(p, 400, at, lambda: p.set_gain_db("a", -np.inf))
    env = np.abs(y)
    before = env[t_change - 4096:t_change].max()
    frame = np.maximum.reduceat(env, np.arange(0, len(env), 64))  # 64-sample peak envelope
    quiet = np.flatnonzero((frame < 0.5 * before) & (np.arange(len(frame)) * 64 >= t_change))
    res["fader_ms"] = round((quiet[0] * 64 - t_change) / SR * 1000, 1)
    # key -2 -> +2 on the same sine (392 Hz -> 493.9 Hz)
    p = _sync_player({"a": tone}, window)
    p.set_tempo(tempo)
    p.set_key(-2)
    p.play()
    y = _run(p, 400, at, lambda: p.set_key(2))
    c, f = _freqs(y)
    mid = 440.0
    cross = np.flatnonzero((f > mid) & (c >= t_change))
    res["key_ms"] = round((c[cross[0]] - t_change) / SR * 1000, 1)
    # tempo 0.5 -> 1.5: a sweep whose frequency tells the song time (one octave per 8 s)
    sweep_f = 200.0 * 2.0 ** (t / 8.0)
    sweep = np.sin(2 * np.pi * np.cumsum(sweep_f) / SR)
    sweep = np.stack([0.3 * sweep] * 2, 1).astype(np.float32)

    def heard_song_time(y):
        c, f = _freqs(y)
        return c, 8.0 * np.log2(np.maximum(f, 1.0) / 200.0)

    for name, start, new in (("tempo_ms", tempo, 1.5), ("bypass_to_stretch_ms", 1.0, tempo)):
        p = _sync_player({"a": sweep}, window)
        p.set_tempo(start)
        p.play()
        y = _run(p, 400, at, lambda: p.set_tempo(new))
        c, s = heard_song_time(y)
        ref = (c > t_change - 40000) & (c < t_change)
        slope, icpt = np.polyfit(c[ref], s[ref], 1)
        off = np.flatnonzero((np.abs(s - (slope * c + icpt)) > 0.02) & (c >= t_change))
        res[name] = round((c[off[0]] - t_change) / SR * 1000, 1)
    res = {"window": window, "tempo": tempo} | res
    res["ring_target_ms"] = round(RING_TARGETS[window] / SR * 1000, 1)
    res["lead_ms"] = round((LEAD_FRAMES - SWITCH_FADE) / SR * 1000, 1)
    res["goal_ms"] = 150
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=2000, help="timed blocks per configuration")
    parser.add_argument("--stretch-seconds", type=float, default=6.0, help="paced seconds per stretch configuration")
    parser.add_argument("--skip-mixer", action="store_true", help="only the tempo/key stage")
    args = parser.parse_args()
    out = ROOT / "benchmarks" / "results" / "bench_player.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    stretch_rows = []
    print("tempo 0.75, key -2, 512-frame blocks, producer thread, paced callback (fractions of one core):")
    print(f"{'window':>8} {'stems':>5} {'callback':>9} {'cb p99':>8} {'producer':>9} {'total':>7} {'underruns':>9}")
    for window, n_stems in [(w, n) for w in ("standard", "short") for n in (2, 4, 8)]:
        r = measure_stretch_cpu(n_stems, args.stretch_seconds, window=window)
        stretch_rows.append(r)
        print(f"{window:>8} {n_stems:>5} {r['callback_cpu_mean_frac']:>9.2%} {r['callback_cpu_p99_frac']:>8.2%}"
              f" {r['producer_cpu_per_block_frac']:>9.2%} {r['total_cpu_frac']:>7.2%} {r['stretch_underruns']:>9}")
    latency = []
    print("control latency (ms of output, without the device's own latency):")
    for window in ("standard", "short"):
        for tempo in (0.75, 0.5):
            r = measure_latency(window, tempo)
            latency.append(r)
            print("  " + ", ".join(f"{k} {v}" for k, v in r.items()))
    stretch = {"stretch_cpu": stretch_rows, "stretch_cpu_goal": 0.25, "latency": latency}
    if args.skip_mixer:
        result = {k: v for k, v in previous.items() if k not in stretch} | stretch
        result["load_average"] = list(os.getloadavg())
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out.relative_to(ROOT)}")
        return
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
    } | stretch
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
