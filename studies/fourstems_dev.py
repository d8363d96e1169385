"""Four stems by HPSS + low band (separation/fourstems.py), measured on the dev song.

The dev song (shared/data/dev/waveform-playlist-demo, 30 s, 44.1 kHz stereo) has the stems
bass_drums, guitar, piano_synth (and vocals). The split of the accompaniment is scored with
BSSEval v4 (1-s frames, median; evaluation/bsseval.py) as two groups:
    drums + bass  vs  bass_drums        other  vs  guitar + piano_synth
with (1) the TRUE accompaniment as input (upper bound of the method) and (2) the accompaniment
separated by Spleeter 2-stems (what the app does). For context on the same input: a trivial split
(half of the accompaniment in each group) and the oracle ideal ratio mask between the two groups
(IRM2 from the true stems: the best any mask on this STFT can do). A small sensitivity sweep of
the parameters follows (reported, defaults not tuned to this single song), then time and peak
memory for a 10-minute input, each in a fresh process (peak RSS from os.wait4).

    python studies/fourstems_dev.py [--no-spleeter] [--no-sweep] [--no-memory] [--minutes 10]

Prints a table and writes studies/results/fourstems_dev.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from unmix_desktop.audio.io import load_audio  # noqa: E402
from unmix_desktop.evaluation import bsseval, oracle  # noqa: E402
from unmix_desktop.separation.fourstems import DEFAULTS, DESCRIPTION, split_accompaniment  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "dev" / "waveform-playlist-demo"
OUT = ROOT / "studies" / "results" / "fourstems_dev.json"
SR = 44100
warnings.filterwarnings("ignore", category=DeprecationWarning)


def score(refs: dict, split: dict) -> dict:
    est = {"bass_drums": split["drums"] + split["bass"], "melodic": split["other"]}
    med = bsseval(refs, est).medians
    return {g: {k: round(v, 2) for k, v in m.items()} for g, m in med.items()}


def evaluate_input(name: str, acc: np.ndarray, refs: dict) -> dict:
    t0 = time.perf_counter()
    split = split_accompaniment(acc)
    dt = time.perf_counter() - t0
    res = {"split_s": round(dt, 2), "hpss": score(refs, split)}
    res["max_sum_error"] = float(np.abs(split["drums"] + split["bass"] + split["other"] - acc).max())
    res["trivial_half"] = score(refs, {"drums": acc / 2, "bass": 0 * acc, "other": acc / 2})
    return res


MEMORY_CHILD = r"""
import gc, json, sys, time, numpy as np, torch
torch.set_num_threads(1)
sys.path.insert(0, sys.argv[1])
from unmix_desktop.separation.fourstems import split_accompaniment

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # MB

minutes = float(sys.argv[2])
n = int(minutes * 60 * 44100)
rng = np.random.default_rng(0)
acc = np.empty((n, 2), dtype=np.float32)
for s in range(0, n, 44100 * 10):  # generated block by block: no big temporaries
    e = min(n, s + 44100 * 10)
    t = np.arange(s, e) / 44100
    acc[s:e, 0] = 0.2 * np.sin(2 * np.pi * 110 * t) + 0.05 * rng.standard_normal(e - s)
    acc[s:e, 1] = 0.2 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(e - s)
split_accompaniment(acc[: 44100 * 5])  # warm up imports and allocator
gc.collect()
rss_before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as fh:  # reset the peak (VmHWM) to the current RSS
    fh.write("5")
t0 = time.perf_counter()
out = split_accompaniment(acc)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "rss_before_mb": rss_before, "peak_mb": status("VmHWM")}))
"""


def memory_run(minutes: float) -> dict:
    """Time and peak memory of split_accompaniment on a generated input, in a fresh process:
    the peak is VmHWM after resetting it (``/proc/self/clear_refs``) once the input exists."""
    cmd = [sys.executable, "-c", MEMORY_CHILD, str(ROOT), str(minutes)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    n = int(minutes * 60 * SR)
    outputs = 3 * n * 2 * 4 / 2**20
    growth = r["peak_mb"] - r["rss_before_mb"]
    return {
        "minutes": minutes,
        "seconds": round(r["seconds"], 1),
        "rss_before_mb": round(r["rss_before_mb"], 1),
        "peak_rss_mb": round(r["peak_mb"], 1),
        "input_mb": round(n * 2 * 4 / 2**20, 1),
        "outputs_mb": round(outputs, 1),
        "peak_growth_mb": round(growth, 1),
        "working_mb_beyond_outputs": round(growth - outputs, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-spleeter", action="store_true")
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--minutes", type=float, default=10.0)
    args = ap.parse_args()
    torch.set_num_threads(1)

    stems = {k: load_audio(DEV / f"{k}.flac") for k in ("mixture", "vocals", "accompaniment", "bass_drums",
                                                         "guitar", "piano_synth")}
    refs = {"bass_drums": stems["bass_drums"], "melodic": stems["guitar"] + stems["piano_synth"]}
    report: dict = {
        "description": DESCRIPTION,
        "defaults": DEFAULTS,
        "song": str(DEV.relative_to(ROOT.parent)),
        "groups": {"bass_drums": "drums + bass vs bass_drums.flac",
                   "melodic": "other vs guitar.flac + piano_synth.flac"},
        "metric": "BSSEval v4 (evaluation/bsseval.py, projection='track'), dB, median over 1-s frames",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": 1},
    }
    oracle_split = oracle("irm2", refs, stems["accompaniment"])
    report["oracle_irm2_two_groups"] = score(refs, {"drums": oracle_split["bass_drums"], "bass": 0 * oracle_split[
        "bass_drums"], "other": oracle_split["melodic"]})
    report["true_accompaniment"] = evaluate_input("true", stems["accompaniment"], refs)

    if not args.no_spleeter:
        try:
            from unmix_desktop.separation.registry import load_model
            from unmix_desktop.separation.separator import SeparationSettings, Separator

            model = load_model("spleeter-2stems")
            settings = SeparationSettings()
            t0 = time.perf_counter()
            sep = Separator(model, settings, device="cpu").separate(stems["mixture"])
            torch.set_num_threads(1)
            sep_s = time.perf_counter() - t0
            acc_sdr = bsseval({"vocals": stems["vocals"], "accompaniment": stems["accompaniment"]},
                              {"vocals": sep["vocals"], "accompaniment": sep["accompaniment"]}).medians
            res = evaluate_input("spleeter", sep["accompaniment"], refs)
            res["separation"] = {"model": "spleeter-2stems", "settings": settings.to_dict(),
                                 "seconds": round(sep_s, 1),
                                 "scores": {k: {m: round(x, 2) for m, x in v.items()} for k, v in acc_sdr.items()}}
            res["four_stems_sum_error_vs_mixture"] = float(np.abs(
                sep["vocals"] + sum(split_accompaniment(sep["accompaniment"]).values()) - stems["mixture"]).max())
            report["spleeter_accompaniment"] = res
        except Exception as exc:  # noqa: BLE001 - report and go on
            report["spleeter_accompaniment"] = {"error": f"{type(exc).__name__}: {exc}"}

    if not args.no_sweep:
        sweep = []
        for hk, pk in ((17, 17), (31, 31), (9, 9)):
            for cutoff in (150.0, 200.0, 300.0):
                split = split_accompaniment(stems["accompaniment"], harmonic_kernel=hk, percussive_kernel=pk,
                                            bass_cutoff=cutoff)
                s = score(refs, split)
                sweep.append({"harmonic_kernel": hk, "percussive_kernel": pk, "bass_cutoff": cutoff,
                              "bass_drums_SDR": s["bass_drums"]["SDR"], "melodic_SDR": s["melodic"]["SDR"]})
                print(f"sweep kernels {hk:2d}/{pk:2d} cutoff {cutoff:5.0f} Hz: drums+bass SDR "
                      f"{s['bass_drums']['SDR']:6.2f}  other SDR {s['melodic']['SDR']:6.2f}", flush=True)
        report["sweep_true_accompaniment"] = sweep

    if not args.no_memory:
        report["memory"] = memory_run(args.minutes)

    print(f"\n{DESCRIPTION}\nBSSEval v4 SDR / SIR / SAR (dB), dev song, 30 s")
    rows = [("oracle IRM2 (2 groups, true stems)", report["oracle_irm2_two_groups"])]
    for key, label in (("true_accompaniment", "true accompaniment"),
                       ("spleeter_accompaniment", "Spleeter accompaniment")):
        if key in report and "hpss" in report[key]:
            rows.append((f"HPSS split of {label}", report[key]["hpss"]))
            rows.append((f"half/half of {label}", report[key]["trivial_half"]))
    print(f"{'input / method':<42} {'drums+bass vs bass_drums':>26} {'other vs guitar+piano':>24}")
    for label, s in rows:
        a, b = s["bass_drums"], s["melodic"]
        print(f"{label:<42} {a['SDR']:7.2f} {a['SIR']:7.2f} {a['SAR']:7.2f}   "
              f"{b['SDR']:7.2f} {b['SIR']:7.2f} {b['SAR']:7.2f}")
    if "spleeter_accompaniment" in report and "separation" in report["spleeter_accompaniment"]:
        sc = report["spleeter_accompaniment"]["separation"]["scores"]
        print(f"(Spleeter 2-stems itself: vocals SDR {sc['vocals']['SDR']:.2f}, accompaniment SDR "
              f"{sc['accompaniment']['SDR']:.2f})")
    if "memory" in report:
        m = report["memory"]
        print(f"{m['minutes']:.0f}-min input: {m['seconds']:.1f} s (1 thread); "
              f"memory grew by {m['peak_growth_mb']:.0f} MB "
              f"at peak = the 3 output stems ({m['outputs_mb']:.0f} MB) + {m['working_mb_beyond_outputs']:.0f} MB "
              f"working memory")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    if OUT.exists():  # a partial run (--no-...) keeps the sections it did not recompute
        try:
            report = {**json.loads(OUT.read_text()), **report}
        except ValueError:
            pass
    OUT.write_text(json.dumps(report, indent=1))
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
