"""`unmix separate --cluster` on a real Ray cluster of this machine, on loopback addresses only.

The cluster: a head node (no CPUs for work, 127.0.0.2) and two worker nodes (127.0.0.3, .4), each
started with `ray start --block` in its own process session, so a test can kill a whole node. Ray
treats 127.0.0.1 as "use the machine's network address", so the nodes take other loopback
addresses (127.0.0.0/8): no traffic leaves loopback. Both worker nodes run in a mount namespace in
which the folder ``private/`` is an empty tmpfs (a worker whose view of the paths differs from the
driver's), and with a data folder of their own (no user models). Skipped with the reason when Ray
is not installed or the cluster cannot start here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from unmix_desktop.audio.io import save_audio

pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("ray")]

ROOT = Path(__file__).resolve().parents[1]
HEAD_IP = "127.0.0.2"


def options_for(**extra) -> dict:
    """The separate command's stem-shaping options with their defaults (for a worker made by hand)."""
    from unmix_desktop.cli import build_parser
    from unmix_desktop.cluster.driver import WORKER_OPTIONS

    args = build_parser().parse_args(["separate", "x.wav", "--out", "o"])
    opts = {k: getattr(args, k) for k in WORKER_OPTIONS}
    opts.update(extra)
    return opts


def _ray_bin() -> Path:
    return Path(sys.executable).with_name("ray")


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def session_pids(sid: int) -> list[int]:
    """Processes of a process session (a node started with start_new_session: all its processes)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # stat fields after the name: state ppid pgrp session ...
            pids.append(int(entry))
    return pids


def titles(pids=None) -> dict[int, str]:
    """Process titles (Ray names its workers ``ray::SongWorker.separate`` while they work)."""
    out = {}
    for entry in (map(str, pids) if pids is not None else os.listdir("/proc")):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                out[int(entry)] = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
    return out


def wait_for(condition, timeout: float, what: str, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Node:
    def __init__(self, name: str, argv: list[str], env: dict, log: Path):
        self.name, self.log = name, log
        self.proc = subprocess.Popen(argv, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} ended: {self.log.read_text()[-2000:]}")
        return "block forever" in self.log.read_text(errors="replace")

    def kill(self, sig=signal.SIGKILL) -> None:
        for pid in session_pids(self.proc.pid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)


class Cluster:
    def __init__(self, base: Path):
        self.base = base
        self.private = base / "private"  # the worker nodes see an empty folder here
        self.shared = base / "shared"
        self.private.mkdir()
        self.shared.mkdir()
        self.temp = Path(tempfile.mkdtemp(prefix="ur", dir="/tmp"))  # short: Ray's socket paths
        self.port = _free_port(HEAD_IP)
        self.address = f"{HEAD_IP}:{self.port}"
        self.nodes: list[Node] = []
        self.env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=str(ROOT),
                        UNMIX_CLUSTER_START_TIMEOUT="120")
        self.env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)

    def start_head(self) -> None:
        argv = [str(_ray_bin()), "start", "--head", "--block", "--node-ip-address", HEAD_IP, "--port",
                str(self.port), "--num-cpus", "0", "--include-dashboard", "false", "--disable-usage-stats",
                "--temp-dir", str(self.temp)]
        self._start("head", argv, self.env)

    def add_node(self, ip: str, blind: bool = True, data: Path | None = None) -> Node:
        env = dict(self.env)
        if data is not None:
            env.update(UNMIX_DATA_DIR=str(data / "data"), UNMIX_CACHE_DIR=str(data / "cache"))
        argv = [str(_ray_bin()), "start", "--block", "--address", self.address, "--node-ip-address", ip,
                "--num-cpus", "1", "--disable-usage-stats"]
        if blind:
            argv = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                    'mount -t tmpfs -o size=1m unmix-test "$0" && exec "$@"', str(self.private), *argv]
        return self._start(f"node {ip}", argv, env)

    def _start(self, name: str, argv: list[str], env: dict) -> Node:
        node = Node(name, argv, env, self.base / f"{name.replace(' ', '-')}.log")
        self.nodes.append(node)
        wait_for(node.ready, 120, f"the Ray {name} to start")
        return node

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        shutil.rmtree(self.temp, ignore_errors=True)


@pytest.fixture(scope="session")   # (module scope was rebuilt mid-module when pytest-xdist handed the
def cluster(tmp_path_factory):       # group's tests over in two batches: ~16 s and 3 Ray nodes again)
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'unmix-desktop[cluster]')")
    if not shutil.which("unshare") or os.geteuid() != 0:
        pytest.skip("the cluster tests need root and unshare (a worker node with its own view of the folders)")
    base = tmp_path_factory.mktemp("cluster")
    c = Cluster(base)
    try:
        c.start_head()
        data = base / "worker-home"  # the workers' own data folder: no user models there
        c.add_node("127.0.0.3", data=data)
        c.add_node("127.0.0.4", data=data)
    except AssertionError as exc:
        c.stop()
        pytest.skip(f"a Ray cluster cannot start here: {str(exc)[:300]}")
    yield c
    c.stop()


def _unmix(args, env, timeout=400):
    return subprocess.run([sys.executable, "-m", "unmix_desktop.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout)


def _songs(folder: Path, count: int, seconds: float, nested: bool = True) -> list[Path]:
    from conftest import make_song

    paths = []
    for i in range(count):
        path = folder / ("sub" if nested and i % 2 else "") / f"song {i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        paths.append(save_audio(path, make_song(seconds, seed=i)["mixture"] * 0.5))
    return paths


def _stems(out: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(out)): sf.read(p, dtype="float32")[0] for p in sorted(out.rglob("*.wav"))}


def _temp_names(out: Path) -> list[str]:
    from unmix_desktop import outputs

    return [str(p) for p in out.rglob("*") if outputs.is_temp_name(p.name)]


def _driver_env(tmp_path: Path) -> dict:
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=str(ROOT))
    env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
    return env


def test_a_cluster_run_equals_the_local_run_and_a_rerun_skips(cluster, tmp_path):
    songs = cluster.shared / "equal" / "lib"
    _songs(songs, 3, 3.0)
    env = _driver_env(tmp_path)
    local, remote = cluster.shared / "equal" / "local", cluster.shared / "equal" / "remote"
    r = _unmix(["separate", songs, "--out", local, "--threads", "1", "-q"], env)
    assert r.returncode == 0, r.stderr
    r = _unmix(["separate", songs, "--out", remote, "--cluster", cluster.address], env)
    assert r.returncode == 0, r.stderr
    assert "unmix: 3 songs: 3 done, 0 skipped, 0 failed" in r.stderr
    a, b = _stems(local), _stems(remote)
    assert sorted(a) == sorted(b) and len(a) == 6  # mirrored layout: lib/song 0/..., lib/sub/song 1/...
    assert "lib/sub/song 1/vocals.wav" in b
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) <= 1e-4
    report = json.loads((remote / "unmix-cluster-report.json").read_text())
    assert report["done"] == 3 and report["failed"] == 0 and report["cluster"]["workers"] == 2
    assert {r["status"] for r in report["results"]} == {"done"}
    workers = {r["worker"].split("/")[-1].split(":")[0] for r in report["results"]}
    assert workers <= {"127.0.0.3", "127.0.0.4"}
    assert all(r["seconds"] > 0 and r["attempts"] == 1 for r in report["results"])
    # the markers record the job like a local run's: a rerun (local or on the cluster) skips every song
    r = _unmix(["separate", songs, "--out", remote, "--cluster", cluster.address], env)
    assert r.returncode == 0 and "3 songs: 0 done, 3 skipped" in r.stderr, r.stderr
    r = _unmix(["separate", songs, "--out", remote], env)
    assert r.returncode == 0 and "3 songs: 0 done, 3 skipped" in r.stderr, r.stderr
    assert not _temp_names(remote)


def test_ship_audio_serves_workers_that_cannot_see_the_files_with_the_drivers_model(cluster, tmp_path, tiny_umx):
    from unmix_desktop.separation.bundle import save_bundle

    songs = cluster.private / "lib"
    _songs(songs, 3, 2.0, nested=False)
    out = cluster.private / "out"
    env = _driver_env(tmp_path)
    data = tmp_path / "driver-data"
    env["UNMIX_DATA_DIR"] = str(data)
    save_bundle(data / "models" / "tiny-user", tiny_umx, card={"name": "tiny-user"})  # on the driver only
    # without --ship-audio the workers look for files they cannot see: one line per song, nothing written
    r = _unmix(["separate", songs, "--out", out, "--model", "tiny-user", "--cluster", cluster.address], env)
    assert r.returncode == 2
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("unmix: error:")]
    assert len(errors) == 3 and all("file not found" in e for e in errors), r.stderr
    assert "Traceback" not in r.stderr
    # with it, the bytes go through the object store and the driver writes the stems
    r = _unmix(["separate", songs, "--out", out, "--model", "tiny-user", "--cluster", cluster.address,
                "--ship-audio", "--format", "wavf"], env)
    assert r.returncode == 0, r.stderr
    report = json.loads((out / "unmix-cluster-report.json").read_text())
    assert [r["status"] for r in report["results"]] == ["done"] * 3
    assert {r["model_source"] for r in report["results"]} == {"driver"}  # the workers had no such model
    local = tmp_path / "local"
    r = _unmix(["separate", songs, "--out", local, "--model", "tiny-user", "--threads", "1", "-q", "--format",
                "wavf"], env)
    assert r.returncode == 0, r.stderr
    a, b = _stems(local), _stems(out)
    assert sorted(a) == sorted(b) and len(a) == 6
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) <= 1e-4
    assert not _temp_names(out)


def _working(pids=None) -> list[int]:
    return [pid for pid, title in titles(pids).items() if title.startswith("ray::SongWorker.separate")]


def test_a_node_killed_mid_run_has_its_songs_done_elsewhere_once(cluster, tmp_path):
    songs = cluster.shared / "kill" / "lib"
    _songs(songs, 4, 15.0, nested=False)
    out = cluster.shared / "kill" / "out"
    victim = cluster.add_node("127.0.0.5", blind=False)  # a third worker node, killed mid-song below
    env = _driver_env(tmp_path)
    driver = subprocess.Popen([sys.executable, "-m", "unmix_desktop.cli", "separate", songs, "--out", out,
                               "--cluster", cluster.address], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: _working(session_pids(victim.proc.pid)), 240, "a song on the third node")
        victim.kill()  # the raylet and every worker of that node, at once
        _, err = driver.communicate(timeout=400)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == 0, err
    report = json.loads((out / "unmix-cluster-report.json").read_text())
    assert [r["status"] for r in report["results"]] == ["done"] * 4
    retried = [r for r in report["results"] if r["attempts"] == 2]
    assert retried, report["results"]  # the song of the dead node ran again ...
    assert all("127.0.0.5" not in r["worker"] for r in retried)  # ... elsewhere
    for r in report["results"]:  # each song done once: one complete result folder with its job
        folder = Path(r["result"])
        marker = json.loads((folder / ".unmix-stems.json").read_text())
        assert marker.get("job") and sorted(p.name for p in folder.iterdir()) == \
            [".unmix-stems.json", "accompaniment.wav", "vocals.wav"]
    assert not _temp_names(out), "half-written files left behind"


def test_sigterm_to_the_driver_stops_every_task_and_leaves_no_partial_files(cluster, tmp_path):
    songs = cluster.shared / "term" / "lib"
    _songs(songs, 3, 15.0, nested=False)
    out = cluster.shared / "term" / "out"
    env = _driver_env(tmp_path)
    driver = subprocess.Popen([sys.executable, "-m", "unmix_desktop.cli", "separate", songs, "--out", out,
                               "--cluster", cluster.address], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_for(_working, 240, "a worker separating a song")
        driver.send_signal(signal.SIGTERM)
        _, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == 143, err
    assert "unmix: stopped by SIGTERM" in err and "Traceback" not in err
    # no worker of the run goes on: Ray's idle pool processes may stay, our actors may not
    wait_for(lambda: not [t for t in titles().values() if t.startswith("ray::SongWorker")], 60,
             "the run's workers to end")
    assert not _temp_names(out), "half-written files left behind"
    for folder in out.rglob("*"):  # songs finished before the signal are complete
        if folder.is_dir() and (folder / ".unmix-stems.json").exists():
            assert sorted(p.name for p in folder.iterdir()) == [".unmix-stems.json", "accompaniment.wav",
                                                                "vocals.wav"]
