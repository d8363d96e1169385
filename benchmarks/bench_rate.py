"""Stems at the song's own rate: does a 48 kHz song separate as well as the same song at 44.1 kHz?

The dev song (``../shared/data/dev/waveform-playlist-demo``: mixture and true vocals /
accompaniment, 44.1 kHz) is also resampled to 48 kHz with soxr (HQ), its true stems likewise.
Both mixtures are separated by ``unmix separate`` (in-process, the command line's own code path:
the 48 kHz song is decoded to 44.1 kHz for the model and its stems are resampled back to 48 kHz
as they stream; ``--format wavf`` so nothing is quantised) and scored with BSSEval v4
(:mod:`unmix_desktop.evaluation`, 1-s frames at each rate) against the true stems of their rate.
Prints and writes benchmarks/results/bench_rate.json: SDR/SIR/SAR per target at both rates, the
differences, the lengths / rates of the written stems, and how close the 48 kHz stems, resampled
to 44.1 kHz, are to the 44.1 kHz path's stems (SNR in dB).

    python benchmarks/bench_rate.py [--model spleeter-2stems] [--seconds 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import soundfile as sf  # noqa: E402
import soxr  # noqa: E402

from unmix_desktop.cli import main as unmix  # noqa: E402
from unmix_desktop.evaluation.bsseval import bsseval  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "dev" / "waveform-playlist-demo"
TARGETS = ("vocals", "accompaniment")


def read(path: Path, seconds: float) -> tuple[np.ndarray, int]:
    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    return audio[: int(seconds * sr)], sr


def separate(mix: np.ndarray, sr: int, folder: Path, args) -> tuple[dict[str, np.ndarray], int, float]:
    src = folder / f"song{sr}.wav"
    sf.write(src, mix, sr, subtype="FLOAT")
    out = folder / "out"
    t = time.perf_counter()
    code = unmix(["separate", str(src), "--out", str(out), "--model", args.model, "--format", "wavf",
                  "--threads", str(args.threads), "--targets", ",".join(TARGETS), "-q"])
    elapsed = time.perf_counter() - t
    if code:
        raise SystemExit(f"unmix separate failed ({code})")
    stems, rates = {}, set()
    for name in TARGETS:
        stems[name], rate = sf.read(out / src.stem / f"{name}.wav", dtype="float32", always_2d=True)
        rates.add(rate)
    (rate,) = rates
    return stems, rate, elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="spleeter-2stems")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_rate.json"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    mix44, sr = read(DEV / "mixture.flac", args.seconds)
    assert sr == 44100, sr
    refs44 = {t: read(DEV / f"{t}.flac", args.seconds)[0] for t in TARGETS}
    mix48 = soxr.resample(mix44, 44100, 48000, quality="HQ").astype(np.float32)
    refs48 = {t: soxr.resample(x, 44100, 48000, quality="HQ").astype(np.float32) for t, x in refs44.items()}
    result = {"song": DEV.name, "seconds": args.seconds, "model": args.model, "threads": args.threads,
              "metric": "BSSEval v4 (unmix_desktop.evaluation.bsseval, track projection), median of 1-s frames",
              "machine": platform.platform(), "load_average": os.getloadavg()}
    scores, written = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for rate, mix, refs in ((44100, mix44, refs44), (48000, mix48, refs48)):
            folder = Path(tmp) / str(rate)
            folder.mkdir()
            stems, written_rate, elapsed = separate(mix, rate, folder, args)
            lengths = {t: int(s.shape[0]) for t, s in stems.items()}
            med = bsseval(refs, stems, win=rate, hop=rate, targets=list(TARGETS)).medians
            scores[rate] = med
            written[rate] = stems
            result[str(rate)] = {"input_frames": int(mix.shape[0]), "stem_rate": int(written_rate),
                                 "stem_frames": lengths,
                                 "same_length": all(n == mix.shape[0] for n in lengths.values()),
                                 "separate_s": round(elapsed, 2),
                                 "scores": {t: {m: round(v, 4) for m, v in ms.items()} for t, ms in med.items()}}
            print(f"{rate} Hz: stems at {written_rate} Hz, {lengths} frames (input {mix.shape[0]}), "
                  f"{elapsed:.1f} s; " + ", ".join(f"{t} SDR {med[t]['SDR']:.3f} dB" for t in TARGETS))
    diff = {t: {m: round(scores[48000][t][m] - scores[44100][t][m], 4) for m in scores[44100][t]} for t in TARGETS}
    result["difference_48k_minus_44k"] = diff
    snr = {}
    for t in TARGETS:  # the two paths' stems, compared at 44.1 kHz
        back = soxr.resample(written[48000][t], 48000, 44100, quality="HQ")[: written[44100][t].shape[0]]
        ref = written[44100][t][: back.shape[0]]
        snr[t] = round(float(10 * np.log10(np.sum(ref ** 2) / max(np.sum((back - ref) ** 2), 1e-30))), 2)
    result["stems_48k_vs_44k_snr_db"] = snr
    print("48 kHz stems (back at 44.1 kHz) vs the 44.1 kHz path's stems: SNR " +
          ", ".join(f"{t} {v:.1f} dB" for t, v in snr.items()))
    result["sdr_within_0.1_dB"] = all(abs(d["SDR"]) <= 0.1 for d in diff.values())
    result["load_average_after"] = os.getloadavg()
    for t in TARGETS:
        print(f"{t}: SDR 48 kHz - 44.1 kHz = {diff[t]['SDR']:+.4f} dB")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
