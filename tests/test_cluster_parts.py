"""The parts of `unmix separate --cluster` that need no running cluster: progress and report,
the model sent to workers, clean-up of a dead worker's leftovers, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from unmix_desktop import outputs
from unmix_desktop.cluster.stats import RunStats, SongRecord, report_dict, write_report
from unmix_desktop.cluster.worker import SongWorker, pack_model, unpack_model
from unmix_desktop.errors import ModelError

ROOT = Path(__file__).resolve().parents[1]


def test_progress_counts_throughput_and_eta():
    stats = RunStats(total=10, start=0.0, audio_total=10 * 240.0)
    assert stats.eta(now=5.0) is None  # nothing done yet: no guess
    assert "ETA --:--" in stats.line(now=5.0)
    stats.done, stats.audio_done, stats.running = 2, 480.0, 3
    # 2 songs (8 audio minutes) in 60 s: 2 songs/min, 8 audio hours per hour, 1920 s of audio left at 8x
    assert stats.songs_per_minute(now=60.0) == pytest.approx(2.0)
    assert stats.audio_hours_per_hour(now=60.0) == pytest.approx(8.0)
    assert stats.eta(now=60.0) == pytest.approx(240.0)
    line = stats.line(now=60.0)
    assert "2/10 done, 3 running, 0 failed" in line and "2.0 songs/min" in line and "ETA 4:00" in line
    stats.failed = 8 - 0  # every other song failed: nothing left to wait for
    assert stats.eta(now=60.0) == 0.0
    unknown = RunStats(total=4, start=0.0, done=1)  # lengths unknown: by songs
    assert unknown.eta(now=30.0) == pytest.approx(90.0)


def test_report_lists_every_song_and_is_written_atomically(tmp_path):
    stats = RunStats(total=2, start=0.0, done=1, failed=1, audio_done=60.0)
    records = [SongRecord("a.wav", "out/a", status="done", worker="h/127.0.0.3:12", seconds=3.5, attempts=2),
               SongRecord("b.wav", "out/b", status="failed", error="unmix: error: b.wav: cannot decode")]
    path = tmp_path / "report.json"
    write_report(path, report_dict(stats, records, {"address": "x", "workers": 2}))
    data = json.loads(path.read_text())
    assert data["done"] == 1 and data["failed"] == 1 and data["cluster"]["workers"] == 2
    assert [r["status"] for r in data["results"]] == ["done", "failed"]
    assert data["results"][0]["attempts"] == 2 and data["results"][0]["worker"] == "h/127.0.0.3:12"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left


def test_a_model_sent_to_a_worker_is_verified_before_use(tmp_path, tiny_umx):
    from unmix_desktop.separation.bundle import save_bundle

    bundle = save_bundle(tmp_path / "models" / "tiny-user", tiny_umx, card={"name": "tiny-user"})
    pack = pack_model(bundle)
    assert pack["name"] == "tiny-user" and set(pack["files"]) >= {"model.json", "model.safetensors"}
    where = unpack_model(pack, tmp_path / "worker-cache")
    assert where.parent.name == "worker-cache" and (where / "model.safetensors").read_bytes() == \
        (bundle / "model.safetensors").read_bytes()
    assert unpack_model(pack, tmp_path / "worker-cache") == where  # once per machine

    damaged = dict(pack, files=dict(pack["files"]))
    data = bytearray(damaged["files"]["model.safetensors"])
    data[-5] ^= 0xFF
    damaged["files"]["model.safetensors"] = bytes(data)
    with pytest.raises(ModelError, match="damaged in transfer"):
        unpack_model(damaged, tmp_path / "other-cache")
    assert not (tmp_path / "other-cache").exists()  # nothing written

    escaping = dict(pack, files={"../evil": b"x"}, sha256={"../evil": pack["sha256"]["model.json"]})
    with pytest.raises(ModelError, match="unsafe file name"):
        unpack_model(escaping, tmp_path / "third-cache")

    # a worker given that pack separates with it (no Ray needed: the worker class on its own)
    from test_cluster import options_for

    worker = SongWorker(options_for(model_file=str(where)), threads=1)
    assert worker.names == ["vocals", "accompaniment"]


def test_leftovers_of_gone_workers_are_removed_by_pid_and_nothing_else(tmp_path):
    (tmp_path / ".song.partial-4242-abc").mkdir()
    (tmp_path / ".song.partial-4242-abc" / "vocals.wav").write_bytes(b"x")
    (tmp_path / ".vocals.part-4242-xyz.wav").write_bytes(b"x")
    (tmp_path / ".other.partial-777-abc").mkdir()  # another process's: not ours to judge
    (tmp_path / "user.txt").write_text("mine")
    removed = outputs.remove_leftovers(tmp_path, {4242})
    assert sorted(p.name for p in removed) == [".song.partial-4242-abc", ".vocals.part-4242-xyz.wav"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.partial-777-abc", "user.txt"]


def _unmix(args, env=None, cwd=None, timeout=180):
    return subprocess.run([sys.executable, "-m", "unmix_desktop.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=timeout)


def test_a_cluster_that_does_not_answer_is_one_line_at_once(tmp_path, song_path):
    import socket

    with socket.socket() as s:  # a port on loopback that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = _unmix(["separate", song_path, "--out", tmp_path / "out", "--cluster", f"127.0.0.1:{port}"])
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines == [f"unmix: error: cannot reach the Ray cluster at 127.0.0.1:{port}: Connection refused "
                     "(is the head node started? `ray start --head`, see docs/SCALING.md)"]
    assert not (tmp_path / "out").exists()
    r = _unmix(["separate", song_path, "--out", tmp_path / "out", "--cluster", "nonsense"])
    assert r.returncode == 2 and "expected auto, HOST:PORT or ray://HOST:PORT" in r.stderr


def test_without_ray_cluster_says_how_to_get_it(tmp_path, song_path):
    hide = tmp_path / "no-ray"
    (hide / "ray").mkdir(parents=True)
    # what Python raises when the package is not installed
    (hide / "ray" / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'ray'\", name='ray')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(hide), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    r = _unmix(["separate", song_path, "--out", tmp_path / "out", "--cluster", "auto"], env=env)
    assert r.returncode == 2
    assert r.stderr.strip() == ("unmix: error: --cluster needs Ray, which is not installed: pip install "
                                "'unmix-desktop[cluster]' (or pip install 'ray==2.60.0'); see docs/SCALING.md (ray)")
    # the local run needs no Ray at all
    r = _unmix(["separate", song_path, "--out", tmp_path / "out", "-q"], env=env)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("value, ok", [("0", True), ("0.5", True), ("2", True), ("1.5", False), ("-1", False),
                                       ("nan", False)])
def test_gpus_per_task_is_checked_when_parsed(tmp_path, value, ok):
    from unmix_desktop.cli import build_parser

    parser = build_parser()
    if ok:
        args = parser.parse_args(["separate", "x.wav", "--out", str(tmp_path), "--cluster", "auto",
                                  "--gpus-per-task", value])
        assert args.gpus_per_task == float(value)
    else:
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(["separate", "x.wav", "--out", str(tmp_path), "--gpus-per-task", value])
        assert exc.value.code == 2
