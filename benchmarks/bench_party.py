"""Load on the party's phone remote while a song plays in real time.

The real app is started as ``unmix-desktop SONG --model tiny --party --host 127.0.0.1 --pin PIN`` (a
fresh process, offscreen Qt, a tiny open-unmix bundle in a temporary data folder so the separation
takes seconds). Its audio goes through a real PortAudio stream into ALSA's ``file`` plugin writing a
FIFO that ``../shared/tools/paced_sink.py`` reads at a sound card's pace (as tests/test_soak.py),
so the player runs in real time. A small driver inside the app loops the whole song once it is
ready and logs the player's position, underruns and the process's memory every half second.

Then, on 127.0.0.1 only: ``--ws`` WebSockets stay open (phones watching the rotation) and requests
arrive at ``--rate`` per second (open loop: on a fixed schedule, whether or not earlier ones are
answered) for ``--seconds``: 40 % ``GET /api/state`` (answered on the UI thread), 30 % searches,
10 % the page, 20 % song requests and withdrawals by 10 joined guests (each one a change pushed to
every WebSocket). Reported: latency p50/p90/p99/max per kind and overall, statuses, the rate
reached, WebSocket messages received, the player's underruns (dropouts) during the load and before
it (same length, the baseline), the sink's consumed audio against the wall clock, and the app's
RSS before and after.

    python benchmarks/bench_party.py [--seconds 30] [--rate 200] [--ws 50] [--json benchmarks/results/bench_party.json]

Every number on a shared, loaded machine is noisy; the baseline (the same song playing, no load,
just before) is measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_soak import write_alsa_conf  # the one ALSA file-plugin config of the real-time checks

ROOT = Path(__file__).resolve().parents[1]
SR = 44100
FRAME_BYTES = 8
PIN = "2580"
PACED_SINK = Path(os.environ.get("UNMIX_PACED_SINK", ROOT.parent / "shared" / "tools" / "paced_sink.py"))

DRIVER = textwrap.dedent("""
    import json, sys, time
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    from unmix_desktop.ui import app as app_mod
    from unmix_desktop.ui.main_window import MainWindow

    song, log_path, pin = sys.argv[1], sys.argv[2], sys.argv[3]
    qapp = QApplication(["unmix-desktop"])
    log = open(log_path, "a", buffering=1)
    state = {"window": None, "playing": False}

    def rss_kib():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def record(event, **extra):
        w = state["window"]
        p = w.player if w is not None else None
        row = {"t": time.time(), "event": event, "rss_kib": rss_kib()}
        if p is not None:
            row.update(position=p.position, playing=p.playing, underruns=p.underruns,
                       callback_error=p.callback_error, available=p.available)
        row.update(extra)
        log.write(json.dumps(row) + "\\n")

    def start():
        w = state["window"]
        t = w.transport_ctl
        w.seek(0.0); t.set_loop_a(); w.seek(w.song.duration); t.set_loop_b(); w.seek(0.0)
        if not w.player.playing:
            w.toggle_play()
        state["playing"] = True
        record("play", duration=w.song.duration)

    def tick():
        if state["window"] is None:
            for widget in qapp.topLevelWidgets():
                if isinstance(widget, MainWindow):
                    state["window"] = widget
                    widget.song_ready.connect(lambda: QTimer.singleShot(200, start))
                    widget.separation_failed.connect(lambda m: (record("failed", message=m), qapp.exit(3)))
            return
        if state["playing"]:
            record("tick")

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(500)
    code = app_mod.main([song, "--model", "tiny", "--party", "--host", "127.0.0.1", "--pin", pin])
    record("exit", code=code)
    sys.exit(code)
""")


def prepare(tmp: Path, song_seconds: float = 20.0) -> tuple[dict, Path, Path]:
    """A tiny model bundle, a generated song (tagged), the ALSA FIFO config; returns env, song, fifo."""
    import mutagen.flac
    import torch

    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import make_song

    from unmix_desktop.audio.io import save_audio
    from unmix_desktop.separation.bundle import save_bundle
    from unmix_desktop.separation.model import MultiTargetUMX, OpenUnmix

    env = dict(os.environ)
    for var, sub in (("UNMIX_DATA_DIR", "data"), ("UNMIX_CACHE_DIR", "cache"), ("UNMIX_CONFIG_DIR", "config")):
        env[var] = str(tmp / sub)
    torch.manual_seed(0)
    model = MultiTargetUMX({"vocals": OpenUnmix(hidden_size=16, nb_layers=1, max_bin=128)}, card={"name": "tiny"})
    save_bundle(tmp / "data" / "models" / "tiny", model, card={"name": "tiny", "description": "party load"})
    song = tmp / "party song.flac"
    save_audio(song, make_song(song_seconds, seed=5)["mixture"])
    tags = mutagen.flac.FLAC(song)
    tags["title"], tags["artist"] = "Load Song", "The Benchers"
    tags.save()
    fifo = tmp / "sink.fifo"
    os.mkfifo(fifo)
    conf = tmp / "alsa_fifo.conf"
    write_alsa_conf(conf, fifo)
    env.update(ALSA_CONFIG_PATH=str(conf), QT_QPA_PLATFORM="offscreen", PYTHONFAULTHANDLER="1",
               PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
    return env, song, fifo


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    v = sorted(values)

    def q(p: float) -> float:
        return round(1000 * v[min(len(v) - 1, int(round(p * (len(v) - 1))))], 2)

    return {"n": len(v), "p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99), "max_ms": round(1000 * v[-1], 2)}


async def load(base: str, token: str, seconds: float, rate: float, n_ws: int) -> dict:
    """Open ``n_ws`` WebSockets, then ``rate`` requests/s for ``seconds`` (open loop)."""
    import aiohttp

    hdr = {"X-Party-Token": token}
    timeout = aiohttp.ClientTimeout(total=30)
    results: dict[str, list] = {}
    statuses: dict[str, int] = {}
    ws_messages = [0]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256), timeout=timeout) as http:
        sockets = [await http.ws_connect(f"{base.replace('http', 'ws', 1)}/ws?t={token}") for _ in range(n_ws)]

        async def reader(ws):
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    ws_messages[0] += 1

        readers = [asyncio.ensure_future(reader(ws)) for ws in sockets]
        songs = (await (await http.get(f"{base}/api/search?q=", headers=hdr)).json())["songs"]
        if not songs:
            raise RuntimeError("the app's catalogue is empty: the separated song did not reach it")
        guests = []
        for i in range(10):
            r = await http.post(f"{base}/api/join", json={"name": f"Guest {i}"}, headers=hdr)
            guests.append(await r.json())
        pending: list[tuple[dict, int]] = []

        async def one(kind: str, n: int) -> None:
            t0 = time.perf_counter()
            try:
                if kind == "state":
                    r = await http.get(f"{base}/api/state", headers=hdr)
                elif kind == "search":
                    r = await http.get(f"{base}/api/search", params={"q": ["load", "bench", "song", ""][n % 4]},
                                       headers=hdr)
                elif kind == "page":
                    r = await http.get(f"{base}/?t={token}")
                elif kind == "request":
                    g = guests[n % len(guests)]
                    r = await http.post(f"{base}/api/request", headers=hdr,
                                        json={"singer_id": g["singer_id"], "secret": g["secret"],
                                              "song_id": songs[0]["id"]})
                    if r.status == 200:
                        pending.append((g, (await r.json())["request_id"]))
                else:  # withdraw (or a request again when nothing waits)
                    if not pending:
                        return await one("request", n)
                    g, rid = pending.pop(0)
                    r = await http.post(f"{base}/api/withdraw", headers=hdr,
                                        json={"singer_id": g["singer_id"], "secret": g["secret"], "request_id": rid})
                await r.read()
                key = f"{kind}:{r.status}"
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                key = f"{kind}:{type(exc).__name__}"
            statuses[key] = statuses.get(key, 0) + 1
            results.setdefault(kind, []).append(time.perf_counter() - t0)

        plan = ["state", "state", "search", "state", "page", "search", "request", "state", "search", "withdraw"]
        total = int(seconds * rate)
        tasks = []
        t_start = time.perf_counter()
        late = 0.0
        for n in range(total):
            due = t_start + n / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            else:
                late = max(late, -wait)
            tasks.append(asyncio.ensure_future(one(plan[n % len(plan)], n)))
        sent_s = time.perf_counter() - t_start
        await asyncio.gather(*tasks)
        done_s = time.perf_counter() - t_start
        alive = (await http.get(f"{base}/api/state", headers=hdr)).status
        for ws in sockets:
            await ws.close()
        for t in readers:
            t.cancel()
    every = [x for v in results.values() for x in v]
    return {"requests": total, "sent_in_s": round(sent_s, 2), "all_answered_in_s": round(done_s, 2),
            "rate_reached": round(total / sent_s, 1), "scheduler_late_max_ms": round(1000 * late, 1),
            "latency": percentiles(every), "by_kind": {k: percentiles(v) for k, v in sorted(results.items())},
            "statuses": dict(sorted(statuses.items())), "ws_open": n_ws, "ws_messages": ws_messages[0],
            "state_after": alive}


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def sink_seconds(log: Path) -> list[tuple[float, int]]:
    rows = []
    for line in log.read_text().splitlines() if log.exists() else []:
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            rows.append((float(parts[0]), int(parts[1])))
    return rows


def run(seconds: float, rate: float, n_ws: int, baseline_s: float | None = None, start_timeout: float = 300.0,
        tmp: Path | None = None) -> dict:
    if not PACED_SINK.is_file():
        raise FileNotFoundError(f"{PACED_SINK}: the paced audio sink is missing (../shared/tools/paced_sink.py)")
    baseline_s = seconds if baseline_s is None else baseline_s
    tmp = Path(tmp or tempfile.mkdtemp(prefix="bench-party-"))
    env, song, fifo = prepare(tmp)
    sink_log = tmp / "sink.log"
    sink = subprocess.Popen([sys.executable, str(PACED_SINK), str(fifo), str(sink_log)])
    log_path = tmp / "driver.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(song), str(log_path), PIN], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline().strip()
        if not first.startswith("Party remote: http://127.0.0.1:"):
            raise RuntimeError(f"unexpected first line {first!r}; stderr: {proc.stderr.read()[-2000:]}")
        url = first.split(": ", 1)[1]
        base, token = url.split("/?t=")
        deadline = time.time() + start_timeout
        while not any(r["event"] == "play" for r in read_log(log_path)):
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"the song did not start; stderr: {proc.stderr.read()[-2000:]}")
            time.sleep(0.5)
        time.sleep(3.0)  # settle: the spectrograms and the catalogue refresh after song_ready
        t_base = time.time()
        time.sleep(baseline_s)
        t_load = time.time()
        result = asyncio.run(load(base, token, seconds, rate, n_ws))
        t_end = time.time()
        time.sleep(1.0)
        rows = [r for r in read_log(log_path) if r["event"] == "tick"]
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        sink.terminate()
        sink.wait(10)

    def at(t: float) -> dict:
        return min(rows, key=lambda r: abs(r["t"] - t))

    def consumed(t0: float, t1: float) -> float:
        s = sink_seconds(sink_log)
        a = min(s, key=lambda r: abs(r[0] - t0))
        b = min(s, key=lambda r: abs(r[0] - t1))
        return (b[1] - a[1]) / FRAME_BYTES / SR / max(b[0] - a[0], 1e-9)

    before, start, end = at(t_base), at(t_load), at(t_end)
    during = [r for r in rows if t_load <= r["t"] <= t_end]
    result.update({
        "seconds": seconds, "rate": rate,
        "underruns_baseline": start["underruns"] - before["underruns"], "baseline_s": round(t_load - t_base, 1),
        "underruns_during_load": end["underruns"] - start["underruns"], "load_s": round(t_end - t_load, 1),
        "playing_throughout": all(r["playing"] for r in during) and bool(during),
        "callback_errors": sorted({r["callback_error"] for r in during if r.get("callback_error")}),
        "sink_realtime_ratio_baseline": round(consumed(t_base, t_load), 3),
        "sink_realtime_ratio_load": round(consumed(t_load, t_end), 3),
        "rss_mib_before": round(start["rss_kib"] / 1024, 1), "rss_mib_after": round(end["rss_kib"] / 1024, 1),
        "rss_mib_baseline_start": round(before["rss_kib"] / 1024, 1),
    })
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--ws", type=int, default=50)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "bench_party.json"))
    args = ap.parse_args()
    result = run(args.seconds, args.rate, args.ws)
    result["machine"] = f"{os.cpu_count()} CPUs (shared, loaded: wall times are noisy)"
    text = json.dumps(result, indent=1)
    print(text)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
