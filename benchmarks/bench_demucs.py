"""Hybrid Transformer Demucs on CPU: our inference against the reference package, and stream memory.

Speed (default): one random-weight checkpoint in the official format with the published htdemucs's
architecture (random weights cost exactly what the real ones do), the same mix, the same thread count;
each repeat runs the reference (``demucs.api.Separator(shifts=0, split=True, overlap=0.25)
.separate_tensor``, i.e. its normalisation around ``apply_model``) and then ours
(:func:`unmix_desktop.separation.demucs.separate_demucs`), interleaved, each in its own worker process
(our engine sets glibc malloc options for its process; the reference's process keeps the defaults);
medians of ``--repeat`` runs, the max abs difference of every run, the load average before and after
(the machine is shared).
``--shifts`` also times ours with shifts=N (the reference's test-time augmentation).
The mix is the first ``--seconds`` of the dev song (looped when longer than the song).

Memory (``--memory 5 20``): peak RSS of a fresh process streaming ``stream_demucs`` over a generated
song of that many minutes (never held whole: a generated source read twice, for the mean/std and to
separate), blocks dropped as they come. ``--memory-config`` picks the network size; ``null`` replaces
the network by a trivial one to measure the engine alone (20 minutes of the full network take hours on a
loaded 2-core machine): add the full network's one-segment working set (``--memory-config default`` on
a short length, which is the same for any length) to read the whole.

    python benchmarks/bench_demucs.py [--seconds 60] [--repeat 3] [--threads 2] [--shifts 1 2] [--batch N]
    python benchmarks/bench_demucs.py --memory 5 20 [--memory-config tiny]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import types
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEV = ROOT.parent / "shared" / "data" / "dev" / "waveform-playlist-demo" / "mixture.flac"
SR = 44100
CONFIGS = {
    "default": {},  # the published htdemucs / htdemucs_ft models' architecture
    "small": {"channels": 8, "t_layers": 2, "t_heads": 2},
    "tiny": {"channels": 4, "t_layers": 1, "t_heads": 1, "dconv_comp": 4},
}


def reference_api():
    for name in ("sphn", "lameenc"):  # imported at module level by demucs.api/audio, used for files only
        try:
            __import__(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)
    import demucs.api

    return demucs.api


def make_checkpoint(folder: Path, config: str, sources=("drums", "bass", "other", "vocals")) -> Path:
    reference_api()
    from demucs.htdemucs import HTDemucs
    from demucs.states import get_state, save_with_checksum

    torch.manual_seed(0)
    net = HTDemucs(sources=list(sources), segment=Fraction(39, 5), **CONFIGS[config])
    args, kwargs = net._init_args_kwargs
    save_with_checksum({"klass": HTDemucs, "args": args, "kwargs": kwargs, "state": get_state(net, None, True),
                        "training_args": {}}, folder / "b0b0b0b0.th")
    return next(folder.glob("b0b0b0b0-*.th"))


def load_mix(seconds: float) -> np.ndarray:
    from unmix_desktop.audio.io import load_audio

    song = load_audio(DEV)
    n = int(seconds * SR)
    reps = -(-n // song.shape[0])
    return np.ascontiguousarray(np.concatenate([song] * reps)[:n].astype(np.float32))


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


def speed_worker(kind: str, checkpoint: str, seconds: float, threads: int, batch: int, outdir: str) -> None:
    """One side of the speed benchmark in its own process: loads the model and the mix, prints "ready", then
    separates the mix once per line read from stdin, saving the stems to ``outdir/kind.npy`` and printing
    the seconds it took."""
    torch.set_num_threads(threads)
    mix = load_mix(seconds)
    if kind == "reference":
        api = reference_api()
        path = Path(checkpoint)
        sep = api.Separator(model=path.name.split("-")[0], repo=path.parent, shifts=0, split=True, overlap=0.25,
                            progress=False)
        wav = torch.from_numpy(np.ascontiguousarray(mix.T))
        names = list(sep.model.sources)

        def run():
            _, ref = sep.separate_tensor(wav, SR)
            return np.stack([ref[k].numpy().T for k in names])
    else:
        from unmix_desktop.separation.demucs import load_demucs, separate_demucs

        model = load_demucs(checkpoint)
        names = list(model.sources)

        def run():
            ours = separate_demucs(model, mix, threads=threads, batch=batch)
            return np.stack([ours[k] for k in names])
    print(json.dumps({"ready": names}), flush=True)
    for line in sys.stdin:
        if line.startswith("shifts"):
            from unmix_desktop.separation.demucs import separate_demucs

            t0 = time.perf_counter()
            separate_demucs(model, mix, shifts=int(line.split()[1]), threads=threads, batch=batch)
            print(json.dumps({"seconds": time.perf_counter() - t0}), flush=True)
            continue
        t0 = time.perf_counter()
        out = run()
        dt = time.perf_counter() - t0
        np.save(Path(outdir) / f"{kind}.npy", out)
        print(json.dumps({"seconds": dt, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}),
              flush=True)


def bench_speed(args) -> dict:
    """Each implementation in its own process (as a user runs it: our Demucs engine sets glibc's malloc
    options for its process, the reference runs with the defaults), the runs interleaved."""
    with tempfile.TemporaryDirectory() as tmp:
        path = make_checkpoint(Path(tmp), args.config)
        workers = {}
        for kind in ("reference", "ours"):
            workers[kind] = subprocess.Popen(
                [sys.executable, __file__, "--speed-worker", kind, str(path), str(args.seconds), str(args.threads),
                 str(args.batch), tmp], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for w in workers.values():
            assert w.stdin is not None and w.stdout is not None
            json.loads(w.stdout.readline())

        def ask(kind: str, line: str = "run") -> dict:
            w = workers[kind]
            assert w.stdin is not None and w.stdout is not None
            w.stdin.write(line + "\n")
            w.stdin.flush()
            reply = w.stdout.readline()
            if not reply:
                raise RuntimeError(f"the {kind} worker stopped (exit {w.wait()})")
            return json.loads(reply)

        runs = []
        for i in range(args.repeat):
            la0 = loadavg()
            ref = ask("reference")
            ours = ask("ours")
            err = float(np.abs(np.load(Path(tmp) / "ours.npy") - np.load(Path(tmp) / "reference.npy")).max())
            t_ref, t_ours = ref["seconds"], ours["seconds"]
            runs.append({"reference_s": t_ref, "ours_s": t_ours, "ratio": t_ours / t_ref, "max_abs_diff": err,
                         "reference_peak_rss_mb": round(ref["rss_mb"], 1), "ours_peak_rss_mb": round(ours["rss_mb"], 1),
                         "loadavg_before": la0, "loadavg_after": loadavg()})
            print(f"run {i}: reference {t_ref:.1f} s, ours {t_ours:.1f} s, ratio {t_ours / t_ref:.3f}, "
                  f"max |diff| {err:.2e}, load {la0} -> {loadavg()}", flush=True)
        shifts = {}
        for n in args.shifts:
            shifts[str(n)] = ask("ours", f"shifts {n}")["seconds"]
            print(f"ours shifts={n}: {shifts[str(n)]:.1f} s", flush=True)
        for w in workers.values():
            assert w.stdin is not None
            w.stdin.close()
            w.wait()
    ref_med = statistics.median(r["reference_s"] for r in runs)
    ours_med = statistics.median(r["ours_s"] for r in runs)
    return {
        "config": args.config, "audio_s": args.seconds, "threads": args.threads, "repeat": args.repeat,
        "batch": args.batch, "song": str(DEV.relative_to(ROOT.parent)),
        "reference": "demucs 4.1.0 Separator.separate_tensor (apply_model, shifts=0, split, overlap=0.25)",
        "processes": "one worker process each (ours sets glibc malloc options, the reference has the defaults)",
        "reference_median_s": ref_med, "ours_median_s": ours_med, "ratio_ours_over_reference": ours_med / ref_med,
        "rtf_reference": ref_med / args.seconds, "rtf_ours": ours_med / args.seconds,
        "max_abs_diff": max(r["max_abs_diff"] for r in runs), "ours_shifts_s": shifts, "runs": runs,
    }


class GeneratedSource:
    """A generated stereo song of ``frames`` samples (tones + noise), produced block by block."""

    def __init__(self, frames: int):
        self.frames = frames
        self.pos = 0

    def read(self, n: int) -> np.ndarray:
        n = min(n, self.frames - self.pos)
        t = (self.pos + np.arange(n)) / SR
        rng = np.random.default_rng(self.pos)
        left = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(n)
        right = 0.2 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(n)
        self.pos += n
        return np.stack([left, right], 1).astype(np.float32)


class NullNet(torch.nn.Module):
    """Stands in for the network to measure the streaming engine alone: each source = mix / 4."""

    sources = ["drums", "bass", "other", "vocals"]
    samplerate = SR
    audio_channels = 2
    segment = Fraction(39, 5)

    def forward(self, mix):
        return mix[:, None].expand(-1, 4, -1, -1) * 0.25


def stream_child(minutes: float, checkpoint: str, threads: int) -> None:
    from unmix_desktop.separation.demucs import DemucsModel, load_demucs, stream_demucs

    torch.set_num_threads(threads)
    if checkpoint == "null":
        model = DemucsModel([NullNet()], None, {"name": "null"})
    else:
        model = load_demucs(checkpoint)
    frames = int(minutes * 60 * SR)
    t0 = time.perf_counter()
    total = 0
    for _, blocks in stream_demucs(model, lambda: GeneratedSource(frames)):
        total += blocks[model.sources[0]].shape[0]
    assert total == frames
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"minutes": minutes, "peak_rss_mb": round(peak_mb, 1),
                      "seconds": round(time.perf_counter() - t0, 1)}))


def bench_memory(args) -> list[dict]:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        path = "null" if args.memory_config == "null" else make_checkpoint(Path(tmp), args.memory_config)
        for minutes in args.memory:
            proc = subprocess.run([sys.executable, __file__, "--stream-child", str(minutes), str(path),
                                   str(args.threads)], capture_output=True, text=True, check=True)
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            row["config"] = args.memory_config
            print(row, flush=True)
            out.append(row)
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--speed-worker":
        speed_worker(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--stream-child":
        stream_child(float(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="default")
    ap.add_argument("--shifts", type=int, nargs="*", default=[])
    ap.add_argument("--batch", type=int, default=None, help="our segments per network call (default: the engine's)")
    ap.add_argument("--memory", type=float, nargs="*", default=None, help="minutes of audio to stream")
    ap.add_argument("--memory-config", choices=sorted(CONFIGS) + ["null"], default="tiny",
                    help="network size for --memory; null = no network (the engine alone)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.batch is None:
        from unmix_desktop.separation.demucs.apply import DEFAULT_BATCH

        args.batch = DEFAULT_BATCH
    info = {"machine": platform.machine(), "cpus": os.cpu_count(), "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if args.memory:
        result = {"stream_memory": bench_memory(args), **info}
        out = args.out or ROOT / "benchmarks" / "results" / "bench_demucs_memory.json"
    else:
        result = {"speed": bench_speed(args), **info}
        s = result["speed"]
        print(f"median: reference {s['reference_median_s']:.1f} s, ours {s['ours_median_s']:.1f} s, "
              f"ratio {s['ratio_ours_over_reference']:.3f}, RTF ours {s['rtf_ours']:.2f} / reference "
              f"{s['rtf_reference']:.2f} ({args.threads} threads)")
        out = args.out or ROOT / "benchmarks" / "results" / "bench_demucs.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
