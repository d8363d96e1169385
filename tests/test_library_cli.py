"""`unmix separate` at library scale (issue 17, sections 2 and 3): folders searched recursively and
mirrored under --out, finished songs skipped (--force redoes them), one line per failed song while
the others finish, --jobs, and stems written at the song's own sample rate (--rate forces one).

Real subprocesses, real files in tmp folders, a tiny test-built model bundle.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import make_song

from unmix_desktop import outputs
from unmix_desktop.audio.io import audio_files, load_audio
from unmix_desktop.audio.stream import resample_blocks, target_frames
from unmix_desktop.separation.bundle import save_bundle

ROOT = Path(__file__).resolve().parents[1]
STEMS = ["accompaniment.wav", "vocals.wav"]


def unmix(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "unmix_desktop.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=timeout)


def errors(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("unmix: error:")]


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (the marker left out: it records modification times)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != outputs.MARKER}


def leftovers(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob(".*") if outputs.is_temp_name(p.name)]


_PARTIAL_DIR = re.compile(r"^\..*\.partial-(\d+)-[A-Za-z0-9_]+$")


def writer_pids(folder: Path) -> set[int]:
    """The pids in the names of the ``.<song>.partial-<pid>-<random>`` folders under ``folder`` now. Only
    those: the temporary files inside them (``.<stem>.part-<pid>-<random>.wav``) and songs renamed or
    removed while we look are part of the same picture (the program keeps running)."""
    pids = set()
    try:
        for p in folder.rglob(".*"):
            m = _PARTIAL_DIR.match(p.name)
            if m:
                pids.add(int(m.group(1)))
    except FileNotFoundError:  # a folder renamed into place during the walk: look again next time
        return set()
    return pids


@pytest.fixture
def model_dir(tmp_path, tiny_umx):
    return save_bundle(tmp_path / "tiny-model", tiny_umx, card={"name": "tiny", "description": "test model"})


def write_song(path: Path, seconds: float = 1.0, seed: int = 0, rate: int = 44100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = make_song(seconds, sr=rate, seed=seed)["mixture"] * 0.4
    sf.write(path, data, rate, subtype="PCM_16")
    return path


@pytest.fixture
def library(tmp_path) -> Path:
    """music/{a.wav, notes.txt, rock/b.flac, rock/live/c.wav, .hidden/d.wav}"""
    lib = tmp_path / "music"
    write_song(lib / "a.wav", 0.6, seed=1)
    write_song(lib / "rock" / "b.flac", 0.5, seed=2)
    write_song(lib / "rock" / "live" / "c.wav", 0.7, seed=3)
    write_song(lib / ".hidden" / "d.wav", 0.3, seed=4)
    (lib / "notes.txt").write_text("not a song")
    return lib


def test_audio_files_lists_a_folder_recursively_in_a_stable_order(library):
    names = [str(p.relative_to(library)) for p in audio_files(library, recursive=True)]
    assert names == ["a.wav", "rock/b.flac", "rock/live/c.wav"]
    assert [p.name for p in audio_files(library)] == ["a.wav"]
    assert [p.name for p in audio_files(library, recursive=True, skip=lambda d: d.name == "live")] == ["a.wav",
                                                                                                      "b.flac"]


def test_a_folder_is_mirrored_and_finished_songs_are_skipped(tmp_path, library, model_dir):
    out = tmp_path / "out"
    r = unmix("separate", library, "--out", out, "--model-file", model_dir)
    assert r.returncode == 0, r.stderr
    assert not errors(r.stderr)
    assert visible(out) == ["music"]
    assert visible(out / "music") == ["a", "rock"]
    assert visible(out / "music" / "rock") == ["b", "live"]
    for rel, src in (("a", "a.wav"), ("rock/b", "rock/b.flac"), ("rock/live/c", "rock/live/c.wav")):
        assert visible(out / "music" / rel) == STEMS, rel
        mix = load_audio(library / src)
        total = load_audio(out / "music" / rel / "vocals.wav") + load_audio(out / "music" / rel / "accompaniment.wav")
        assert total.shape == mix.shape and np.abs(total - mix).max() < 3e-4, rel
        job = json.loads((out / "music" / rel / outputs.MARKER).read_text())["job"]
        assert job["source"]["name"] == Path(src).name and job["model"] == str(Path(model_dir).resolve())
    assert r.stderr.strip().splitlines()[-1] == "unmix: 3 songs: 3 done, 0 skipped, 0 failed"
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}

    # the same run again: nothing to do
    r = unmix("separate", library, "--out", out, "--model-file", model_dir)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("already separated") == 3
    assert r.stderr.strip().splitlines()[-1] == "unmix: 3 songs: 0 done, 3 skipped, 0 failed"
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")} == before

    # a changed song, or other settings, are separated again
    write_song(library / "rock" / "b.flac", 0.5, seed=9)
    r = unmix("separate", library, "--out", out, "--model-file", model_dir, "-q")
    assert r.returncode == 0, r.stderr
    changed = [p for p in before if p.stat().st_mtime_ns != before[p]]
    assert sorted(str(p.relative_to(out)) for p in changed) == ["music/rock/b/accompaniment.wav",
                                                                 "music/rock/b/vocals.wav"]
    r = unmix("separate", library, "--out", out, "--model-file", model_dir, "--niter", "0")
    assert r.returncode == 0 and r.stderr.strip().splitlines()[-1].endswith("3 done, 0 skipped, 0 failed")

    # --force redoes finished songs
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    r = unmix("separate", library, "--out", out, "--model-file", model_dir, "--niter", "0", "--force")
    assert r.returncode == 0 and "3 done, 0 skipped" in r.stderr
    assert all(p.stat().st_mtime_ns != before[p] for p in before)
    assert visible(out / "music" / "rock" / "live" / "c") == STEMS and not leftovers(out)


def test_a_stem_the_user_changed_is_not_taken_for_finished(tmp_path, library, model_dir):
    out = tmp_path / "out"
    assert unmix("separate", library / "a.wav", "--out", out, "--model-file", model_dir, "-q").returncode == 0
    (out / "a" / "vocals.wav").write_bytes(b"my edit")
    r = unmix("separate", library / "a.wav", "--out", out, "--model-file", model_dir, "-q")
    # not skipped: the user's file is kept and the stems go to another folder
    assert r.returncode == 0, r.stderr
    assert (out / "a" / "vocals.wav").read_bytes() == b"my edit"
    assert visible(out / "a (stems)") == STEMS


def test_the_output_folder_inside_the_library_is_not_searched(tmp_path, library, model_dir):
    out = library / "stems"
    r = unmix("separate", library, "--out", out, "--model-file", model_dir, "-q")
    assert r.returncode == 0, r.stderr
    r = unmix("separate", library, "--out", out, "--model-file", model_dir)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "unmix: 3 songs: 0 done, 3 skipped, 0 failed"


def test_a_corrupt_song_in_the_middle_fails_in_one_line_and_the_others_finish(tmp_path, model_dir):
    lib = tmp_path / "lib"
    write_song(lib / "1.wav", 0.5, seed=1)
    (lib / "2.mp3").write_bytes(b"\xff\xfb\x90" + os.urandom(3000))  # an MP3 that is not one
    write_song(lib / "3.wav", 0.5, seed=3)
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    for jobs in ("1", "2"):
        r = unmix("separate", lib, empty, "--out", out / jobs, "--model-file", model_dir, "-q", "--jobs", jobs)
        assert r.returncode == 2, r.stderr
        lines = errors(r.stderr)
        assert len(lines) == 2, r.stderr
        # the empty folder is found before any song is separated; the corrupt song when it is decoded
        assert lines[0] == f"unmix: error: {empty}: no audio files in this folder"
        assert lines[1].startswith(f"unmix: error: {lib / '2.mp3'}: ")
        assert r.stderr.strip().splitlines()[-1] == "unmix: 2 of 4 songs failed (2 done, 0 skipped)"
        assert visible(out / jobs / "lib") == ["1", "3"] and not leftovers(out / jobs)


def test_jobs_2_writes_the_same_files_as_jobs_1(tmp_path, model_dir):
    lib = tmp_path / "lib"
    for i in range(4):
        write_song(lib / f"d{i % 2}" / f"s{i}.wav", 0.6, seed=i)
    write_song(lib / "d0" / "s48.wav", 0.6, seed=7, rate=48000)
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = unmix("separate", lib, "--out", one, "--model-file", model_dir, "--jobs", "1", "-q")
    r2 = unmix("separate", lib, "--out", two, "--model-file", model_dir, "--jobs", "2")
    assert r1.returncode == 0 and r2.returncode == 0, r1.stderr + r2.stderr
    assert not errors(r2.stderr)
    assert r2.stderr.strip().splitlines()[-1] == "unmix: 5 songs: 5 done, 0 skipped, 0 failed"
    assert len(tree(one)) == 10 and tree(one) == tree(two)
    assert not leftovers(two)
    # the parallel run's markers also let a later run skip every song
    r = unmix("separate", lib, "--out", two, "--model-file", model_dir, "--jobs", "2")
    assert r.returncode == 0 and r.stderr.strip().splitlines()[-1].endswith("0 done, 5 skipped, 0 failed")


def test_jobs_beyond_the_cores_are_capped(tmp_path, model_dir):
    write_song(tmp_path / "a.wav", 0.3)
    write_song(tmp_path / "b.wav", 0.3, seed=1)
    n = len(os.sched_getaffinity(0))
    r = unmix("separate", tmp_path / "a.wav", tmp_path / "b.wav", "--out", tmp_path / "o", "--model-file",
              model_dir, "--jobs", str(n + 3), "-q")
    assert r.returncode == 0, r.stderr
    assert f"--jobs {n + 3}: this machine has {n} cores; running {n} at once" in r.stderr
    assert visible(tmp_path / "o") == ["a", "b"]


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_a_48k_song_gives_48k_stems_of_the_same_length(tmp_path, model_dir, fmt):
    n = 48000 + 12345  # not a whole number of anything
    rng = np.random.default_rng(0)
    mix = (make_song(2.0, sr=48000, seed=5)["mixture"][:n] * 0.4 + 0.01 * rng.standard_normal((n, 2)))
    src = tmp_path / "song48.wav"
    sf.write(src, mix.astype(np.float32), 48000, subtype="FLOAT")
    out = tmp_path / "out"
    r = unmix("separate", src, "--out", out, "--model-file", model_dir, "--format", fmt, "--window", "0.5", "-q")
    assert r.returncode == 0, r.stderr
    stems = {}
    for name in ("vocals", "accompaniment"):
        info = sf.info(out / "song48" / f"{name}.{fmt}")
        assert info.samplerate == 48000 and info.frames == n and info.channels == 2
        stems[name], _ = sf.read(out / "song48" / f"{name}.{fmt}", dtype="float32")
    # stems still sum to the song (band-limited to the model's 22.05 kHz: compare below 20 kHz)
    err = stems["vocals"] + stems["accompaniment"] - mix
    spec_err = np.abs(np.fft.rfft(err[:, 0]))
    spec_mix = np.abs(np.fft.rfft(mix[:, 0]))
    band = np.fft.rfftfreq(n, 1 / 48000) < 20000
    assert np.sum(spec_err[band] ** 2) < 1e-5 * np.sum(spec_mix[band] ** 2)
    # the skip record knows the rate: asking for 44.1 kHz separates again, at 44.1 kHz
    r = unmix("separate", src, "--out", out, "--model-file", model_dir, "--format", fmt, "--window", "0.5",
              "--rate", "44100")
    assert r.returncode == 0 and "already separated" not in r.stderr, r.stderr
    info = sf.info(out / "song48" / f"vocals.{fmt}")
    assert info.samplerate == 44100 and info.frames == target_frames(n, 48000, 44100) == round(n * 44100 / 48000)


def test_rate_forces_one_rate_for_a_44k_song(tmp_path, model_dir):
    src = write_song(tmp_path / "s.wav", 0.8)
    r = unmix("separate", src, "--out", tmp_path / "o", "--model-file", model_dir, "--rate", "48000", "-q")
    assert r.returncode == 0, r.stderr
    info = sf.info(tmp_path / "o" / "s" / "vocals.wav")
    assert info.samplerate == 48000 and info.frames == round(int(0.8 * 44100) * 48000 / 44100)
    r = unmix("separate", src, "--out", tmp_path / "o2", "--model-file", model_dir, "-q")
    assert sf.info(tmp_path / "o2" / "s" / "vocals.wav").samplerate == 44100


@pytest.mark.parametrize("value", ["0", "1000", "44.1k", "9999999"])
def test_bad_rates_are_one_line(tmp_path, value):
    r = unmix("separate", tmp_path / "x.wav", "--out", tmp_path / "o", "--rate", value)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--rate" in r.stderr


def test_resample_blocks_matches_a_whole_resample_to_the_sample():
    import soxr

    rng = np.random.default_rng(1)
    n = 44100 * 2 + 77
    x = rng.standard_normal((n, 2)).astype(np.float32) * 0.1
    sizes = [5000, 1, 30000, 0, 12345]
    blocks, pos = [], 0
    while pos < n:
        m = sizes[len(blocks) % len(sizes)]
        blocks.append((pos, {"a": x[pos:pos + m], "b": -x[pos:pos + m]}))
        pos += m
    want = round(n * 48000 / 44100)
    out = list(resample_blocks(iter(blocks), 44100, 48000, lambda: want))
    a = np.concatenate([b["a"] for _, b in out])
    b = np.concatenate([b["b"] for _, b in out])
    assert a.shape == (want, 2) and np.array_equal(a, -b)
    assert [o for o, _ in out] == list(np.cumsum([0] + [blk["a"].shape[0] for _, blk in out[:-1]]))
    whole = soxr.resample(x, 44100, 48000, quality="HQ")
    m = min(whole.shape[0], want) - 200
    assert np.abs(a[200:m] - whole[200:m]).max() < 1e-4


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_signal_to_a_jobs_run_stops_every_child_and_leaves_no_temporary_files(tmp_path, model_dir, sig):
    import signal
    import time

    lib = tmp_path / "lib"
    for i in range(3):
        write_song(lib / f"s{i}.wav", 20.0, seed=i)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    with open(tmp_path / "err", "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "unmix_desktop.cli", "separate", str(lib), "--out", str(out),
                                 "--model-file", str(model_dir), "--window", "2", "--jobs", "2", "-q"],
                                stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        # Both children are writing: two partial folders with two pids at the same time. (Counting every
        # temporary name raced the program: a child's `.part-` stem file inside its folder counted too.)
        while len(children := writer_pids(out) if out.is_dir() else set()) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "err").read_text()
            time.sleep(0.02)
        assert len(children) == 2 and proc.pid not in children
        proc.send_signal(getattr(signal, sig))  # to the parent only: it passes the signal on
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = (tmp_path / "err").read_text()
    code, line = {"SIGTERM": (143, "unmix: stopped by SIGTERM"), "SIGINT": (130, "unmix: interrupted")}[sig]
    assert proc.returncode == code, err
    assert err.strip().splitlines() == [line], err  # the children's own lines are not repeated
    assert not leftovers(out)
    for pid in children:
        assert not outputs.pid_alive(pid)
    assert [p for p in out.rglob("*") if p.is_file()] == []


def test_an_unreadable_sub_folder_is_one_warning_and_the_rest_is_separated(tmp_path, library, model_dir):
    import shutil

    if os.geteuid() == 0 and not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: cannot make permissions apply")
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    locked = library / "rock" / "live"
    os.chmod(locked, 0)
    try:
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
        r = subprocess.run([*prefix, sys.executable, "-m", "unmix_desktop.cli", "separate", str(library), "--out",
                            str(tmp_path / "out"), "--model-file", str(model_dir), "-q"],
                           capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    finally:
        os.chmod(locked, 0o755)
    assert r.returncode == 0, r.stderr
    assert not errors(r.stderr)
    assert [line for line in r.stderr.splitlines() if line.startswith("unmix: warning:")] == [
        f"unmix: warning: {locked}: Permission denied; its songs are left out"]
    assert visible(tmp_path / "out" / "music") == ["a", "rock"]
    assert visible(tmp_path / "out" / "music" / "rock") == ["b"]
