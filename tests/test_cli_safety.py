"""The command line never loses, moves or overwrites a user's file, and every output-side failure
is one line with exit 2 while the batch goes on (issue 11, sections 2 and 3).

User-data cases run on real files in tmp folders; signal cases send real signals to real
``unmix`` subprocesses; permission cases run the child without root's permission override
(``setpriv``), file-system cases on a real tiny/read-only tmpfs when this process may mount one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import make_song

from unmix_desktop import outputs
from unmix_desktop.audio.io import load_audio, save_audio
from unmix_desktop.cli import main
from unmix_desktop.separation.bundle import save_bundle

ROOT = Path(__file__).resolve().parents[1]
SR = 44100
MARKER = outputs.MARKER


# -- helpers ---------------------------------------------------------------------------------
def env(**extra) -> dict:
    e = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    e.update({k: v for k, v in extra.items() if v is not None})
    for k, v in extra.items():
        if v is None:
            e.pop(k, None)
    return e


def unprivileged() -> list[str]:
    """A command prefix that makes file permissions apply to the child (root ignores them)."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: cannot make permissions apply")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def unmix(*args, prefix=(), env_extra=None, timeout=300, preexec_fn=None):
    cmd = [*prefix, sys.executable, "-m", "unmix_desktop.cli", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env(**(env_extra or {})), cwd=ROOT,
                          timeout=timeout, preexec_fn=preexec_fn)


def errors(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("unmix: error:")]


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def leftovers(folder: Path) -> list[str]:
    """The app's temporary files/folders anywhere under ``folder``."""
    return [str(p) for p in folder.rglob(".*") if outputs.is_temp_name(p.name)]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def model_dir(tmp_path, tiny_umx):
    return save_bundle(tmp_path / "tiny-model", tiny_umx, card={"name": "tiny", "description": "test model"})


@pytest.fixture
def wav(tmp_path):
    def make(name: str, seconds: float = 1.0, seed: int = 0, folder: Path | None = None) -> Path:
        path = (folder or tmp_path) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = make_song(seconds, seed=seed)["mixture"] * 0.4
        sf.write(path, data, SR, subtype="PCM_16", format="WAV")  # also for names without a suffix
        return path
    return make


# -- 2. never lose or move a user's file --------------------------------------------------------
def test_extensionless_song_separated_into_its_own_folder_is_not_renamed(tmp_path, wav, model_dir):
    track = wav("track", 1.0)
    before = track.read_bytes()
    r = unmix("separate", track, "--out", tmp_path, "--model-file", model_dir, "-q")
    assert r.returncode == 0, r.stderr
    assert track.is_file() and track.read_bytes() == before
    assert visible(tmp_path / "track (stems)") == ["accompaniment.wav", "vocals.wav"]
    assert "exists and is not a folder; writing to" in r.stderr and "track (stems)" in r.stderr
    assert not [p for p in tmp_path.iterdir() if ".old-" in p.name or outputs.is_temp_name(p.name)]


def test_an_unrelated_file_with_the_song_name_stays_where_it_is(tmp_path, wav, model_dir, capsys):
    song = wav("in/notes.wav", 0.5)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes").write_text("my notes")
    assert main(["separate", str(song), "--out", str(out), "--model-file", str(model_dir), "-q"]) == 0
    assert (out / "notes").read_text() == "my notes"
    assert visible(out) == ["notes", "notes (stems)"]
    assert "notes (stems)" in capsys.readouterr().err
    # a second run finds its own folder again instead of making a third one
    assert main(["separate", str(song), "--out", str(out), "--model-file", str(model_dir), "-q"]) == 0
    assert visible(out) == ["notes", "notes (stems)"] and (out / "notes").read_text() == "my notes"


def test_re_separating_keeps_the_users_other_files(tmp_path, wav, model_dir):
    song = wav("a.wav", 1.0)
    out = tmp_path / "o"
    assert main(["separate", str(song), "--out", str(out), "--model-file", str(model_dir), "-q"]) == 0
    folder = out / "a"
    (folder / "my mix.wav").write_bytes(b"RIFF my own export")
    (folder / "notes.txt").write_text("bar 12: too loud")
    (folder / "sub").mkdir()
    # another format: the app's .wav stems are replaced by .flac ones, nothing else changes
    assert main(["separate", str(song), "--out", str(out), "--model-file", str(model_dir), "-q",
                 "--format", "flac"]) == 0
    assert visible(folder) == ["accompaniment.flac", "my mix.wav", "notes.txt", "sub", "vocals.flac"]
    assert (folder / "my mix.wav").read_bytes() == b"RIFF my own export"
    assert (folder / "notes.txt").read_text() == "bar 12: too loud"
    assert json.loads((folder / MARKER).read_text())["files"].keys() == {"vocals.flac", "accompaniment.flac"}
    assert not leftovers(out)
    x = load_audio(song)
    assert np.abs(load_audio(folder / "vocals.flac") + load_audio(folder / "accompaniment.flac") - x).max() < 3e-4


def test_a_stem_file_the_user_changed_is_never_overwritten(tmp_path, wav, model_dir, capsys):
    song = wav("a.wav", 0.5)
    out = tmp_path / "o"
    assert main(["separate", str(song), "--out", str(out), "--model-file", str(model_dir), "-q"]) == 0
    mine = make_song(0.5, seed=3)["mixture"]
    sf.write(out / "a" / "vocals.wav", mine, SR)  # the user's own edit under the stem's name
    before = (out / "a" / "vocals.wav").read_bytes()
    assert main(["separate", str(song), "--out", str(out), "--model-file", str(model_dir), "-q"]) == 0
    assert (out / "a" / "vocals.wav").read_bytes() == before
    assert "vocals.wav there was not written by unmix" in capsys.readouterr().err
    assert visible(out / "a (stems)") == ["accompaniment.wav", "vocals.wav"]


def test_a_folder_unmix_did_not_create_is_left_alone(tmp_path, wav, model_dir, capsys):
    song = wav("a.wav", 0.5)
    (tmp_path / "o" / "a").mkdir(parents=True)
    (tmp_path / "o" / "a" / "vocals.wav").write_bytes(b"someone else's")
    assert main(["separate", str(song), "--out", str(tmp_path / "o"), "--model-file", str(model_dir), "-q"]) == 0
    assert visible(tmp_path / "o" / "a") == ["vocals.wav"]
    assert (tmp_path / "o" / "a" / "vocals.wav").read_bytes() == b"someone else's"
    assert "was not created by unmix" in capsys.readouterr().err


def test_songs_with_the_same_name_get_distinct_folders(tmp_path, wav, model_dir):
    a_wav = wav("a.wav", 1.0, seed=1)
    a_mp3 = save_audio(tmp_path / "a.mp3", make_song(1.0, seed=2)["mixture"] * 0.4)
    other = wav("x/A.wav", 0.5, seed=4)  # same name in another folder, other case
    out = tmp_path / "o"
    r = unmix("separate", a_wav, a_mp3, other, a_wav, "--out", out, "--model-file", model_dir, "-q")
    assert r.returncode == 0, r.stderr
    assert visible(out) == ["a", "a (mp3)", "A (wav)"] or visible(out) == sorted(["a", "a (mp3)", "A (wav)"])
    assert "also named 'a'; its stems go to 'a (mp3)'" in r.stderr
    assert "also named 'A'; its stems go to 'A (wav)'" in r.stderr
    assert "listed twice, separated once" in r.stderr
    for folder, src in (("a", a_wav), ("a (mp3)", a_mp3), ("A (wav)", other)):
        stems = [load_audio(out / folder / f"{n}.wav") for n in ("vocals", "accompaniment")]
        x = load_audio(src)
        assert stems[0].shape[0] == x.shape[0] and np.abs(stems[0] + stems[1] - x).max() < 3e-4, folder


# -- signals ---------------------------------------------------------------------------------
def wait_for(predicate, proc, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        if proc.poll() is not None:
            raise AssertionError(f"finished before the signal: rc {proc.returncode}")
        time.sleep(0.01)
    raise AssertionError("timed out waiting")


def start(args, stderr_path: Path) -> subprocess.Popen:
    err = open(stderr_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "unmix_desktop.cli", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=err, env=env(), cwd=ROOT, start_new_session=True)
    err.close()
    return proc


EXIT = {signal.SIGINT: (130, "unmix: interrupted"), signal.SIGTERM: (143, "unmix: stopped by SIGTERM"),
        signal.SIGHUP: (129, "unmix: stopped by SIGHUP")}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_during_separation_leaves_no_partial_folder(tmp_path, wav, model_dir, sig):
    song = wav("long.wav", 20.0)
    out = tmp_path / "o"
    proc = start(["separate", song, "--out", out, "--model-file", model_dir, "--window", "2", "-q"],
                 tmp_path / "err")
    try:
        wait_for(lambda: out.is_dir() and leftovers(out), proc)
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = (tmp_path / "err").read_text()
    code, line = EXIT[sig]
    assert proc.returncode == code, err
    assert err.strip().splitlines()[-1] == line and "Traceback" not in err
    assert os.listdir(out) == []


def test_a_signal_while_replacing_stems_keeps_the_old_ones(tmp_path, wav, model_dir):
    song = wav("long.wav", 20.0)
    folder = tmp_path / "o" / "long"
    folder.mkdir(parents=True)
    for name in ("vocals.wav", "accompaniment.wav"):
        sf.write(folder / name, np.zeros((100, 2)), SR)
    outputs.write_marker(folder, outputs.stamp(folder, ["vocals.wav", "accompaniment.wav"]))
    (folder / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    proc = start(["separate", song, "--out", tmp_path / "o", "--model-file", model_dir, "--window", "2", "-q"],
                 tmp_path / "err")
    try:
        wait_for(lambda: leftovers(folder), proc)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, (tmp_path / "err").read_text()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_later_run_removes_partials_of_a_killed_run_only(tmp_path, wav, model_dir):
    song = wav("long.wav", 20.0)
    out = tmp_path / "o"
    proc = start(["separate", song, "--out", out, "--model-file", model_dir, "--window", "2", "-q"],
                 tmp_path / "err")
    try:
        (partial,) = wait_for(lambda: out.is_dir() and [p for p in os.listdir(out) if outputs.is_temp_name(p)], proc)
        partial = out / partial
        proc.kill()  # SIGKILL: no clean-up possible
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert Path(partial).exists() and f"-{proc.pid}-" in Path(partial).name
    live = out / f".x.partial-{os.getpid()}-abc123"  # a partial of a process that still runs
    live.mkdir()
    user_dir = out / ".mine.partial-notapid"  # not the app's pattern
    user_dir.mkdir()
    small = wav("small.wav", 0.3)
    assert main(["separate", str(small), "--out", str(out), "--model-file", str(model_dir), "-q"]) == 0
    assert not Path(partial).exists()
    assert live.is_dir() and user_dir.is_dir()


def test_ctrl_c_while_mix_writes_leaves_no_part_file(tmp_path):
    stems = tmp_path / "song"
    stems.mkdir()
    x = make_song(60.0)
    for name in ("vocals", "drums"):
        sf.write(stems / f"{name}.wav", x[name], SR)
    out = tmp_path / "mixes"
    out.mkdir()
    (out / "old take.mp3").write_bytes(b"keep me")
    proc = start(["mix", stems, "--out", out / "mix.mp3"], tmp_path / "err")
    try:
        wait_for(lambda: leftovers(out), proc)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (tmp_path / "err").read_text()
    assert os.listdir(out) == ["old take.mp3"]


def test_mix_removes_stale_part_files_of_dead_processes(tmp_path, capsys):
    stems = tmp_path / "song"
    stems.mkdir()
    sf.write(stems / "vocals.wav", make_song(0.3)["vocals"], SR)
    out = tmp_path / "mixes"
    out.mkdir()
    stale = out / f".mix.part-{dead_pid()}-k2j3h4.wav"
    live = out / f".mix.part-{os.getpid()}-k2j3h4.wav"
    theirs = out / ".mix.part.wav"
    for p in (stale, live, theirs):
        p.write_bytes(b"x")
    assert main(["mix", str(stems), "--out", str(out / "mix.wav")]) == 0
    assert sorted(os.listdir(out)) == sorted(["mix.wav", live.name, theirs.name])


# -- 3. output-side failures: one line, exit 2, the batch goes on -----------------------------------
def test_mix_output_failures_are_one_line(tmp_path, capsys):
    stems = tmp_path / "song"
    stems.mkdir()
    sf.write(stems / "vocals.wav", make_song(0.3)["vocals"], SR)
    (tmp_path / "a folder.wav").mkdir()
    assert main(["mix", str(stems), "--out", str(tmp_path / "a folder.wav")]) == 2
    assert errors(capsys.readouterr().err) == [f"unmix: error: {tmp_path / 'a folder.wav'}: is a folder"]
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        r = unmix("mix", stems, "--out", ro / "m.wav", prefix=unprivileged())
    finally:
        os.chmod(ro, 0o755)
    assert r.returncode == 2 and errors(r.stderr) == [f"unmix: error: {ro}: Permission denied"]
    assert os.listdir(ro) == []


def test_out_is_a_file(tmp_path, wav, model_dir, capsys):
    song = wav("a.wav", 0.3)
    target = tmp_path / "out.txt"
    target.write_text("mine")
    assert main(["separate", str(song), "--out", str(target), "--model-file", str(model_dir)]) == 2
    assert errors(capsys.readouterr().err) == [f"unmix: error: {target}: --out is a file, not a folder"]
    assert target.read_text() == "mine"


def test_out_below_a_file_fails_each_song_in_one_line(tmp_path, wav, model_dir, capsys):
    songs = [wav("a.wav", 0.3), wav("b.wav", 0.3)]
    (tmp_path / "f").write_text("x")
    assert main(["separate", *map(str, songs), "--out", str(tmp_path / "f" / "o"), "--model-file",
                 str(model_dir), "-q"]) == 2
    err = capsys.readouterr().err
    assert errors(err) == [f"unmix: error: {tmp_path / 'f' / 'o'}: Not a directory"] * 2
    assert "2 of 2 songs failed" in err


def test_read_only_result_folder_fails_that_song_only(tmp_path, wav, model_dir):
    a, b = wav("a.wav", 0.3), wav("b.wav", 0.3)
    out = tmp_path / "o"
    assert main(["separate", str(a), "--out", str(out), "--model-file", str(model_dir), "-q"]) == 0
    before = {p.name: p.read_bytes() for p in (out / "a").iterdir()}
    os.chmod(out / "a", 0o555)
    try:
        # --force: a finished song is skipped since issue 17; this asks to write it again
        r = unmix("separate", a, b, "--out", out, "--model-file", model_dir, "-q", "--force", prefix=unprivileged())
    finally:
        os.chmod(out / "a", 0o755)
    assert r.returncode == 2
    assert errors(r.stderr) == [f"unmix: error: {out / 'a'}: Permission denied"]
    assert {p.name: p.read_bytes() for p in (out / "a").iterdir()} == before
    assert visible(out / "b") == ["accompaniment.wav", "vocals.wav"]


def test_read_only_out_folder(tmp_path, wav, model_dir):
    a = wav("a.wav", 0.3)
    out = tmp_path / "o"
    out.mkdir()
    os.chmod(out, 0o555)
    try:
        r = unmix("separate", a, "--out", out, "--model-file", model_dir, "-q", prefix=unprivileged())
    finally:
        os.chmod(out, 0o755)
    assert r.returncode == 2 and errors(r.stderr) == [f"unmix: error: {out}: Permission denied"]
    assert os.listdir(out) == []


@contextlib.contextmanager
def tmpfs(path: Path, size: str, read_only: bool = False):
    path.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    opts = f"size={size}" + (",ro" if read_only else "")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_disk_fails_that_song_and_the_batch_goes_on(tmp_path, wav, model_dir):
    big, small = wav("big.wav", 3.0), wav("small.wav", 0.2)
    with tmpfs(tmp_path / "disk", "300k") as disk:
        out = disk / "o"
        r = unmix("separate", big, small, "--out", out, "--model-file", model_dir, "-q")
        assert r.returncode == 2, r.stderr
        assert errors(r.stderr) == [f"unmix: error: {out / 'big'}: No space left on device"]
        assert visible(out) == ["small"] and visible(out / "small") == ["accompaniment.wav", "vocals.wav"]
        assert not leftovers(disk)


def test_file_size_limit_is_one_line(tmp_path, wav, model_dir):
    """The same without mounting: RLIMIT_FSIZE makes every write past 300 kB fail (EFBIG)."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))

    big, small = wav("big.wav", 3.0), wav("small.wav", 0.2)
    out = tmp_path / "o"
    r = unmix("separate", big, small, "--out", out, "--model-file", model_dir, "-q", preexec_fn=limit)
    assert r.returncode == 2, r.stderr
    (line,) = errors(r.stderr)
    assert line.startswith(f"unmix: error: {out / 'big'}: ") and "File too large" in line
    assert visible(out) == ["small"] and not leftovers(out)


def test_read_only_file_system(tmp_path, wav, model_dir):
    a, b = wav("a.wav", 0.2), wav("b.wav", 0.2)
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as ro:
        r = unmix("separate", a, b, "--out", ro, "--model-file", model_dir, "-q")
        assert r.returncode == 2
        assert errors(r.stderr) == [f"unmix: error: {ro}: Read-only file system"] * 2


def test_names_too_long_for_temporary_prefixes(tmp_path, wav, model_dir):
    name = "ü" * 60 + "x" * 130  # 250 bytes: fits a file name, but not with ".partial-..." around it
    long_wav = wav(f"{name}.wav", 0.2)
    long_mp3 = save_audio(tmp_path / f"{name}.mp3", make_song(0.2)["mixture"] * 0.4)
    out = tmp_path / "o"
    r = unmix("separate", long_wav, long_mp3, wav("short.wav", 0.2), "--out", out, "--model-file", model_dir, "-q")
    assert r.returncode == 2
    # the first works; "<name> (mp3)" itself is longer than a file name may be: one line, the batch goes on
    assert errors(r.stderr) == [f"unmix: error: {out / (name + ' (mp3)')}: File name too long"]
    assert visible(out) == sorted([name, "short"]) and not leftovers(out)
    assert visible(out / name) == ["accompaniment.wav", "vocals.wav"]


def test_song_in_an_unreadable_folder(tmp_path, wav, model_dir):
    locked = wav("locked/s.wav", 0.2)
    good = wav("good.wav", 0.2)
    os.chmod(locked.parent, 0)
    try:
        r = unmix("separate", locked, good, "--out", tmp_path / "o", "--model-file", model_dir, "-q",
                  prefix=unprivileged())
    finally:
        os.chmod(locked.parent, 0o755)
    assert r.returncode == 2
    assert errors(r.stderr) == [f"unmix: error: {locked}: permission denied (its folder cannot be read)"]
    assert visible(tmp_path / "o") == ["good"]


def tiny_checkpoint(path: Path) -> Path:
    from unmix_desktop.separation.model import OpenUnmix

    torch.manual_seed(0)
    torch.save(OpenUnmix(hidden_size=16, nb_layers=1, max_bin=128).state_dict(), path)
    return path


def test_unwritable_data_dir_and_home(tmp_path, wav, model_dir):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    song = wav("a.wav", 0.2)
    pth = tiny_checkpoint(tmp_path / "vocals-00000000.pth")
    bad_data = {"UNMIX_DATA_DIR": str(blocker / "data")}
    # listing and separating need no writable data folder
    r = unmix("models", env_extra=bad_data)
    assert r.returncode == 0, r.stderr
    r = unmix("separate", song, "--out", tmp_path / "o", "--model-file", model_dir, "-q", env_extra=bad_data)
    assert r.returncode == 0, r.stderr
    # installing a model does: one line naming the folder
    r = unmix("models", "--import", pth, "--name", "mine", env_extra=bad_data)
    (line,) = errors(r.stderr)
    assert (r.returncode == 2 and line.startswith(f"unmix: error: {blocker / 'data'}")
            and line.endswith(": Not a directory"))
    # the same with an unwritable home and no override
    home = {"HOME": str(blocker), "UNMIX_DATA_DIR": None, "XDG_DATA_HOME": None}
    r = unmix("separate", song, "--out", tmp_path / "o2", "--model-file", model_dir, "-q", env_extra=home)
    assert r.returncode == 0, r.stderr
    r = unmix("models", "--import", pth, env_extra=home)
    assert r.returncode == 2 and len(errors(r.stderr)) == 1 and f"{blocker}/" in r.stderr


# -- bad option values: one line, exit 2 -----------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["separate", "a.wav", "--out", "o", "--window", "nan"],
     "argument --window: must be a finite number > 0, got 'nan'"),
    (["separate", "a.wav", "--out", "o", "--window", "inf"],
     "argument --window: must be a finite number > 0, got 'inf'"),
    (["separate", "a.wav", "--out", "o", "--window", "-3"], "argument --window: must be a finite number > 0, got '-3'"),
    (["separate", "a.wav", "--out", "o", "--power", "nan"], "argument --power: must be a finite number > 0"),
    (["separate", "a.wav", "--out", "o", "--logit", "inf"], "argument --logit: must be a finite number"),
    (["separate", "a.wav", "--out", "o", "--niter", "-1"], "argument --niter: must be >= 0"),
    (["separate", "a.wav", "--out", "o", "--max-duration", "nan"], "argument --max-duration: must be a number > 0"),
    (["mix", "d", "--out", "m.wav", "--start", "nan"], "argument --start: must be a finite number >= 0, got 'nan'"),
    (["mix", "d", "--out", "m.wav", "--duration", "inf"], "argument --duration: must be a finite number > 0"),
    (["play", "d", "--start=-inf"], "argument --start: must be a finite number >= 0"),
    (["play", "d", "--blocksize", "0"], "argument --blocksize: must be > 0"),
])
def test_bad_numbers_are_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.count("\n") == 1 and err.startswith("unmix: error: ") and message in err, err


@pytest.mark.parametrize("device, message", [
    ("tpu", "--device tpu: unknown device (use cpu, cuda, cuda:N or mps)"),
    ("cuda:x", "--device cuda:x: expected cpu, cuda, cuda:N or mps"),
    ("cuda", "--device cuda: "),
])
def test_bad_devices_are_one_line(tmp_path, wav, model_dir, capsys, device, message):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    song = wav("a.wav", 0.2)
    assert main(["separate", str(song), "--out", str(tmp_path / "o"), "--model-file", str(model_dir),
                 "--device", device]) == 2
    err = capsys.readouterr().err
    assert errors(err) == [err.strip()] and message in err
    assert not (tmp_path / "o").exists()


def test_resolve_device():
    from unmix_desktop.devices import resolve_device

    assert resolve_device("cpu").type == "cpu" and resolve_device(" CPU ").type == "cpu"
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_four_stems_with_an_unknown_target_names_the_valid_ones(tmp_path, wav, model_dir, capsys):
    song = wav("a.wav", 0.2)
    assert main(["separate", str(song), "--out", str(tmp_path / "o"), "--model-file", str(model_dir),
                 "--stems", "4", "--targets", "guitar"]) == 2
    err = capsys.readouterr().err
    assert errors(err) == ["unmix: error: --targets guitar: not a stem of --stems 4 "
                           "(valid: vocals, drums, bass, other)"]
    assert not (tmp_path / "o").exists()
    assert main(["separate", str(song), "--out", str(tmp_path / "o"), "--model-file", str(model_dir),
                 "--targets", "guitar"]) == 2
    assert errors(capsys.readouterr().err) == [
        "unmix: error: model gives vocals, accompaniment; cannot produce guitar"]


def test_four_stems_with_targets_writes_those(tmp_path, wav, model_dir):
    song = wav("a.wav", 1.0)
    assert main(["separate", str(song), "--out", str(tmp_path / "o"), "--model-file", str(model_dir),
                 "--stems", "4", "--targets", "drums,bass", "-q"]) == 0
    assert visible(tmp_path / "o" / "a") == ["bass.wav", "drums.wav"]


@pytest.mark.parametrize("state, message", [
    (None, "file is empty"),
    ({"fc1.weight": torch.zeros(3), "input_mean": torch.zeros(3), "output_mean": torch.zeros(5)},
     "fc1.weight must be 2-D"),
    ({"fc1.weight": torch.zeros(4, 6), "input_mean": torch.zeros(0), "output_mean": torch.zeros(5)},
     "inconsistent shapes"),
    ({"fc1.weight": torch.zeros(4, 6), "input_mean": torch.zeros(3), "output_mean": torch.zeros(5)},
     "inconsistent shapes"),
    ({"fc1.weight": torch.zeros(4, 6), "input_mean": torch.zeros(3), "output_mean": torch.zeros(5),
      "lstm.weight_ih_l0": torch.zeros(7, 7)}, "does not match the open-unmix layout"),
])
def test_bad_checkpoints_are_one_line(tmp_path, capsys, monkeypatch, state, message):
    monkeypatch.setenv("UNMIX_DATA_DIR", str(tmp_path / "data"))
    pth = tmp_path / "vocals.pth"
    if state is None:
        pth.write_bytes(b"")
    else:
        torch.save(state, pth)
    assert main(["models", "--import", str(pth)]) == 2
    err = capsys.readouterr().err
    assert errors(err) == [err.strip()] and err.startswith(f"unmix: error: {pth}: ") and message in err, err
    assert not (tmp_path / "data" / "models" / "umx-imported").exists()


def test_truncated_mp3_is_reported_and_kept(tmp_path, model_dir):
    full = save_audio(tmp_path / "full.mp3", make_song(3.0)["mixture"] * 0.4)
    data = full.read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: len(data) * 47 // 100])
    r = unmix("separate", cut, "--out", tmp_path / "o", "--model-file", model_dir, "-q")
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if line.startswith("unmix: warning:")]
    assert len(warnings) == 1, r.stderr
    assert f"{cut}: truncated? its header states 3.0 s but only 1." in warnings[0]
    decoded = load_audio(tmp_path / "o" / "cut" / "vocals.wav").shape[0] / SR
    assert 1.0 < decoded < 1.6 and math.isclose(decoded, float(warnings[0].split("only ")[1].split(" s")[0]),
                                                abs_tol=0.06)
    r = unmix("separate", full, "--out", tmp_path / "o", "--model-file", model_dir, "-q")
    assert r.returncode == 0 and "unmix: warning:" not in r.stderr
