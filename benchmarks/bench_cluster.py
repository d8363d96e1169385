"""`unmix separate --cluster` on a real Ray cluster of this machine (loopback only): throughput with
1 and 2 worker nodes, the scheduling overhead per song, and the driver's memory with 1,000 tiny songs.

    .venv/bin/python benchmarks/bench_cluster.py [--songs 8] [--seconds 30] [--tiny 1000]

Writes benchmarks/results/bench_cluster.json. The cluster is the tests' (tests/test_cluster.py):
a head node with no CPUs for work on 127.0.0.2 and worker nodes of 1 CPU each on 127.0.0.3, .4.
On this 2-core machine two worker nodes share the two cores with the driver and Ray itself, so
the 2-node figure is an upper bound of what a second machine adds here, not a scaling curve.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def rss_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process in MiB."""
    cur = peak = 0.0
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                cur = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return cur, peak


def run_driver(args: list[str], env: dict) -> dict:
    """Run one `unmix separate` and sample its memory every 0.2 s."""
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "unmix_desktop.cli", "separate", *map(str, args)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples: list[float] = []
    peak = [0.0]

    def sample() -> None:
        while proc.poll() is None:
            try:
                cur, hwm = rss_mib(proc.pid)
            except OSError:
                break
            samples.append(cur)
            peak[0] = max(peak[0], hwm)
            time.sleep(0.2)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    _, err = proc.communicate()
    t.join()
    if proc.returncode != 0:
        raise SystemExit(f"unmix separate failed ({proc.returncode}): {err[-2000:]}")
    return {"wall_s": round(time.monotonic() - start, 2), "rss_samples_mib": samples, "rss_peak_mib": peak[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--songs", type=int, default=8, help="songs for the throughput runs")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each of those songs")
    ap.add_argument("--tiny", type=int, default=1000, help="tiny songs for the overhead and memory run")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_cluster.json"))
    opts = ap.parse_args()

    import torch
    from conftest import make_song
    from test_cluster import Cluster

    from unmix_desktop.audio.io import save_audio
    from unmix_desktop.separation.bundle import save_bundle
    from unmix_desktop.separation.model import MultiTargetUMX, OpenUnmix

    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    cluster = Cluster(work)
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=str(ROOT))
    env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
    data = work / "driver-data"
    env.update(UNMIX_DATA_DIR=str(data), UNMIX_CACHE_DIR=str(work / "driver-cache"))
    results: dict = {"machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                                 "load_before": os.getloadavg()}, "runs": {}}
    songs = work / "shared" / "songs"
    for i in range(opts.songs):
        save_audio(songs / f"song {i}.wav", make_song(opts.seconds, seed=i)["mixture"] * 0.5)
    tiny = work / "shared" / "tiny"
    torch.manual_seed(0)
    model = MultiTargetUMX({"vocals": OpenUnmix(hidden_size=16, nb_layers=1, max_bin=128)}, card={"name": "tiny"})
    save_bundle(data / "models" / "tiny-bench", model.eval(), card={"name": "tiny-bench"})
    clip = make_song(0.25, seed=1)["mixture"] * 0.5
    for i in range(opts.tiny):
        save_audio(tiny / f"{i // 100:02d}" / f"t{i:04d}.wav", clip)
    audio_min = opts.songs * opts.seconds / 60
    try:
        cluster.start_head()
        cluster.add_node("127.0.0.3", blind=False)
        # baseline: the same songs in one local process, one thread (what one worker does)
        local = run_driver([songs, "--out", work / "local", "--threads", "1", "-q"], env)
        results["runs"]["local_1_thread"] = {**local, "songs": opts.songs, "audio_min": audio_min}
        one = run_driver([songs, "--out", work / "one", "--cluster", cluster.address, "-q"], env)
        report = json.loads((work / "one" / "unmix-cluster-report.json").read_text())
        results["runs"]["cluster_1_node"] = {**one, "report": {k: report[k] for k in (
            "wall_seconds", "songs_per_minute", "audio_hours_per_hour")},
            "worker_seconds": [r["seconds"] for r in report["results"]]}
        cluster.add_node("127.0.0.4", blind=False)
        two = run_driver([songs, "--out", work / "two", "--cluster", cluster.address, "-q"], env)
        report = json.loads((work / "two" / "unmix-cluster-report.json").read_text())
        results["runs"]["cluster_2_nodes"] = {**two, "report": {k: report[k] for k in (
            "wall_seconds", "songs_per_minute", "audio_hours_per_hour")},
            "worker_seconds": [r["seconds"] for r in report["results"]]}
        # scheduling overhead and the driver's memory: many tiny songs with a tiny model (sent by the driver)
        t_local = run_driver([tiny, "--out", work / "tiny-local", "--model", "tiny-bench", "--threads", "1", "-q"],
                             env)
        t_cluster = run_driver([tiny, "--out", work / "tiny-cluster", "--model", "tiny-bench", "--cluster",
                                cluster.address, "-q"], env)
        report = json.loads((work / "tiny-cluster" / "unmix-cluster-report.json").read_text())
        worker_s = [r["seconds"] for r in report["results"]]
        workers = report["cluster"]["workers"]
        per_song = report["wall_seconds"] * workers / opts.tiny  # worker-seconds the run cost per song
        results["runs"]["tiny"] = {
            "songs": opts.tiny, "workers": workers,
            "local_wall_s": t_local["wall_s"], "cluster_wall_s": t_cluster["wall_s"],
            "cluster_report_wall_s": report["wall_seconds"],
            "mean_worker_seconds_per_song": sum(worker_s) / len(worker_s),
            "worker_seconds_per_song_incl_scheduling": per_song,
            "scheduling_overhead_per_song_s": per_song - sum(worker_s) / len(worker_s),
            "driver_rss_peak_mib": t_cluster["rss_peak_mib"],
            "driver_rss_first_last_mib": [t_cluster["rss_samples_mib"][len(t_cluster["rss_samples_mib"]) // 10],
                                          t_cluster["rss_samples_mib"][-1]] if t_cluster["rss_samples_mib"] else [],
        }
    finally:
        cluster.stop()
    for run in results["runs"].values():
        run.pop("rss_samples_mib", None)
    results["machine"]["load_after"] = os.getloadavg()
    Path(opts.out).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.out).write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
