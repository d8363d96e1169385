"""Time from "open" to the first sound, playing while separating (issue 15).

Generated songs of 1, 4 and 10 minutes (FLAC, tests/conftest.make_song tiled), the default model
(``spleeter-2stems`` when installed), no cache. Two measurements per song:

* ``inproc``: the window's path in one process, model already loaded (as the window preloads it):
  :meth:`Pipeline.run` with ``live=`` in a thread (hash, decode, first window), the player loads the
  growing buffers and plays; the test drives :meth:`StemPlayer.process` (``open_stream=False``) in
  512-frame blocks until the first non-zero block. Columns: decode, first window (the separation
  time before sound: the target is <= 3 s for any length), total to sound. ``full`` is the time
  the whole separation took (= the time to sound before this change), measured for songs up to ``--full-upto`` minutes.
* ``cli``: ``unmix play SONG --no-cache --duration 1`` in a fresh process on a real-time sink: ALSA's
  file plugin writes into a FIFO that /work/wt/shared/tools/paced_sink.py (or ``--sink``) reads at
  44.1 kHz; time from the process start to the sink's first non-zero byte. Includes Python and
  torch start-up, loading the model and decoding.

Prints a table and writes benchmarks/results/bench_first_sound.json.

    python benchmarks/bench_first_sound.py [--minutes 1 4 10] [--full-upto 4] [--no-cli]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import make_song  # noqa: E402

from unmix_desktop.audio.io import save_audio  # noqa: E402
from unmix_desktop.audio.player import StemPlayer  # noqa: E402
from unmix_desktop.separation.pipeline import (  # noqa: E402
    ModelProvider,
    Pipeline,
    SongRequest,
    worker_threads,
)
from unmix_desktop.separation.registry import default_model_name  # noqa: E402

SINK = Path("/work/wt/shared/tools/paced_sink.py")


def make_file(folder: Path, minutes: float) -> Path:
    path = folder / f"song-{minutes:g}min.flac"
    if not path.exists():
        unit = make_song(30.0, seed=1)["mixture"]
        reps = int(np.ceil(minutes * 2))
        save_audio(path, np.tile(unit, (reps, 1))[: int(minutes * 60 * 44100)] * 0.8)
    return path


def inproc(path: Path, model: str, provider: ModelProvider, full: bool) -> dict:
    marks: dict[str, float] = {}
    got = threading.Event()
    box: dict = {}
    cancel = threading.Event()
    t0 = time.perf_counter()

    def report(stage: str, fraction: float) -> None:
        if stage not in marks:
            marks[stage] = time.perf_counter() - t0

    def live(partial, growing) -> None:
        marks["first_window"] = time.perf_counter() - t0
        box["growing"] = growing
        got.set()

    def job() -> None:
        try:
            box["result"] = Pipeline(provider, None, threads=worker_threads()).run(
                SongRequest(path, model, use_cache=False), report, cancel, live=live)
        except Exception as exc:  # noqa: BLE001 - any failure is reported in the table
            box["error"] = repr(exc)
        finally:
            marks["end"] = time.perf_counter() - t0
            got.set()

    thread = threading.Thread(target=job)
    thread.start()
    got.wait()
    growing = box["growing"]
    player = StemPlayer(open_stream=False, stretch_thread=False)
    player.load(growing.stems, ready=growing)
    player.play()
    out = np.zeros((512, 2), np.float32)
    while True:
        player.process(out)
        if out.any():
            break
    t_sound = time.perf_counter() - t0
    if not full:
        cancel.set()
    thread.join()
    row = {"decode_s": marks.get("model", 0) - marks.get("decode", 0),
           "first_window_s": marks["first_window"] - marks.get("separate", marks["first_window"]),
           "to_sound_s": t_sound}
    if full and "result" in box:
        row["full_separation_s"] = marks["end"]
    return row


def cli(path: Path, model: str, tmp: Path, sink: Path) -> dict:
    fifo = tmp / "sink.fifo"
    log = tmp / "sink.log"
    if fifo.exists():
        fifo.unlink()
    os.mkfifo(fifo)
    log.write_text("")
    conf = tmp / "asound.conf"
    conf.write_text('</usr/share/alsa/alsa.conf>\npcm.nullsink { type null }\n'
                    f'pcm.!default {{ type file slave.pcm "nullsink" file "{fifo}" format "raw" }}\n')
    reader = subprocess.Popen([sys.executable, str(sink), str(fifo), str(log)])
    env = dict(os.environ, ALSA_CONFIG_PATH=str(conf), PYTHONPATH=str(ROOT),
               UNMIX_CACHE_DIR=str(tmp / "cache"))
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "unmix_desktop.cli", "play", str(path), "--model", model,
                        "--no-cache", "--duration", "1"], env=env, capture_output=True, text=True, timeout=900)
    time.sleep(0.3)
    reader.terminate()
    reader.wait()
    sound = [float(line.split()[0]) for line in log.read_text().splitlines() if line.endswith(" sound")]
    return {"cli_to_sound_s": (sound[0] - t0) if sound else None, "cli_rc": r.returncode,
            "cli_stderr": r.stderr.strip()[-300:] if r.returncode else ""}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 4, 10])
    ap.add_argument("--full-upto", type=float, default=4.0, metavar="MIN",
                    help="songs up to MIN minutes also finish separating (the old time to sound; default 4)")
    ap.add_argument("--no-cli", action="store_true")
    ap.add_argument("--sink", type=Path, default=SINK)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()

    model = args.model or default_model_name()
    provider = ModelProvider()
    t = time.perf_counter()
    provider.get(model)
    load_s = time.perf_counter() - t
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-first-sound-") as tmp:
        tmp = Path(tmp)
        for minutes in args.minutes:
            path = make_file(tmp, minutes)
            row = {"minutes": minutes, **inproc(path, model, provider, minutes <= args.full_upto)}
            if not args.no_cli and args.sink.exists():
                row.update(cli(path, model, tmp, args.sink))
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\nmodel {model} (loaded in {load_s:.2f} s), torch threads {worker_threads()}, {os.cpu_count()} cores")
    print(f"{'song':>6} {'decode s':>9} {'1st window s':>13} {'to sound s':>11} {'full sep s':>11} "
          f"{'CLI to sound s':>15}")
    for r in rows:
        full = r.get("full_separation_s")
        cli_s = r.get("cli_to_sound_s")
        print(f"{r['minutes']:>4g} m {r['decode_s']:>9.2f} {r['first_window_s']:>13.2f} {r['to_sound_s']:>11.2f} "
              f"{full if full is None else round(full, 2)!s:>11} {cli_s if cli_s is None else round(cli_s, 2)!s:>15}")
    out = ROOT / "benchmarks" / "results" / "bench_first_sound.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": model, "model_load_s": load_s, "threads": worker_threads(),
                               "cores": os.cpu_count(), "machine": platform.processor() or platform.machine(),
                               "rows": rows}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
