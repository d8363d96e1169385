"""``unmix play`` and ``unmix mix`` on a folder of stems written by the test."""

from __future__ import annotations

import ctypes.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from unmix_desktop.audio.export import render_mix
from unmix_desktop.audio.mixer import MixState
from unmix_desktop.cli import main

ROOT = Path(__file__).resolve().parents[1]
NULL_CONF = Path(__file__).with_name("alsa_null.conf")
SR = 44100

needs_portaudio = pytest.mark.skipif(
    ctypes.util.find_library("portaudio") is None, reason="libportaudio2 is not installed"
)


@pytest.fixture
def stems_dir(tmp_path) -> Path:
    """vocals.wav, drums.flac, bass.wav: 2 s of tones, as `unmix separate` writes them."""
    folder = tmp_path / "song"
    folder.mkdir()
    t = np.arange(2 * SR) / SR
    for i, (name, suffix) in enumerate([("vocals", ".wav"), ("drums", ".flac"), ("bass", ".wav")]):
        tone = 0.25 * np.sin(2 * np.pi * 150 * (i + 1) * t)
        sf.write(folder / f"{name}{suffix}", np.stack([tone, 0.5 * tone], 1), SR, subtype="PCM_16")
    (folder / "notes.txt").write_text("not audio")
    return folder


def read_stems(folder: Path) -> dict[str, np.ndarray]:
    files = [p for p in sorted(folder.iterdir()) if p.suffix != ".txt"]
    return {p.stem: sf.read(p, dtype="float32", always_2d=True)[0] for p in files}


def test_mix_renders_the_faders_to_a_file(stems_dir, tmp_path, capsys):
    out = tmp_path / "out" / "mix.wav"
    rc = main(["mix", str(stems_dir), "--out", str(out), "--mute", "vocals", "--gain", "drums=-6", "--pan", "bass=0.5"])
    assert rc == 0
    assert "wrote" in capsys.readouterr().out
    stems = read_stems(stems_dir)
    state = MixState.from_names(stems)
    state.set_mute("vocals", True)
    state.set_gain_db("drums", -6)
    state.set_pan("bass", 0.5)
    got, sr = sf.read(out, dtype="float32", always_2d=True)
    assert sr == SR
    np.testing.assert_allclose(got, render_mix(stems, state), atol=1.5 / 32768)


def test_mix_solo_karaoke_and_section(stems_dir, tmp_path):
    stems = read_stems(stems_dir)
    solo = tmp_path / "solo.flac"
    assert main(["mix", str(stems_dir), "-o", str(solo), "--solo", "bass,drums", "--mute", "bass"]) == 0
    got = sf.read(tmp_path / "solo.flac", dtype="float32", always_2d=True)[0]
    np.testing.assert_allclose(got, stems["bass"] + stems["drums"], atol=1.5 / 32768)

    karaoke = tmp_path / "k.wav"
    assert main(["mix", str(stems_dir), "-o", str(karaoke), "--karaoke", "--start", "0.5", "--duration", "1"]) == 0
    got = sf.read(tmp_path / "k.wav", dtype="float32", always_2d=True)[0]
    assert got.shape == (SR, 2)
    np.testing.assert_allclose(got, (stems["bass"] + stems["drums"])[SR // 2 : SR // 2 + SR], atol=1.5 / 32768)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--mute", "guitar"], "unknown stem 'guitar' (stems: bass, drums, vocals)"),
        (["--gain", "drums"], "expected STEM=VALUE"),
        (["--gain", "drums=loud"], "gain of 'drums' must be a number"),
        (["--start", "5"], "past the end of the song"),
    ],
)
def test_mix_errors_are_one_line(stems_dir, tmp_path, capsys, extra, message):
    rc = main(["mix", str(stems_dir), "--out", str(tmp_path / "m.wav"), *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and err.count("\n") == 1 and err.startswith("unmix: error: ")
    assert not (tmp_path / "m.wav").exists()


def test_play_needs_a_folder(capsys):
    assert main(["play"]) == 2
    assert "play needs a STEMS_DIR" in capsys.readouterr().err


def test_mix_refuses_bad_targets(stems_dir, tmp_path, capsys):
    before = (stems_dir / "vocals.wav").read_bytes()
    assert main(["mix", str(stems_dir), "--out", str(stems_dir / "vocals.wav")]) == 2
    assert "refusing to overwrite the source song" in capsys.readouterr().err
    assert (stems_dir / "vocals.wav").read_bytes() == before
    assert main(["mix", str(stems_dir), "--out", str(tmp_path / "m.aiff")]) == 2
    assert "cannot write '.aiff' files" in capsys.readouterr().err
    assert main(["mix", str(tmp_path / "missing"), "--out", str(tmp_path / "m.wav")]) == 2
    assert "missing: folder not found" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["mix", str(empty), "--out", str(tmp_path / "m.wav")]) == 2
    assert "no stems found" in capsys.readouterr().err


MAIN_SEVERAL = r"""
import contextlib, io, json, sys
from unmix_desktop.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    results.append({"rc": rc, "out": out.getvalue(), "err": err.getvalue()})
print(json.dumps(results))
"""


def run_cli(*argvs: list[str], alsa_conf=NULL_CONF, timeout: float = 60) -> list[dict]:
    """Run ``unmix`` (cli.main) with each argument list in one fresh process with that ALSA config.

    A fresh process because PortAudio reads the ALSA configuration once; one process for several
    commands because starting the CLI imports every command module (torch included)."""
    env = dict(os.environ, ALSA_CONFIG_PATH=str(alsa_conf), PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", MAIN_SEVERAL, json.dumps([[str(a) for a in argv] for argv in argvs])],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@needs_portaudio
def test_play_to_the_end_devices_and_bad_device(stems_dir):
    played, listed, bad = run_cli(
        ["play", stems_dir, "--mute", "vocals", "--gain", "drums=-6", "--start", "0.5", "--duration", "1"],
        ["play", "--list-devices"],
        ["play", stems_dir, "--device", "42"],
    )
    assert played["rc"] == 0, played["err"]
    assert "playing song: bass, drums" in played["out"]
    assert "0:01.5 / 0:01.5" in played["out"]  # ends at start + duration
    assert "underruns: 0" in played["out"]
    assert listed["rc"] == 0 and "default" in listed["out"]
    assert bad["rc"] == 2 and bad["err"] == "unmix: error: output device 42 not found\n"


@needs_portaudio
def test_play_without_a_device_fails_in_one_line(stems_dir):
    # the plain system configuration: on a machine without a sound card there is no device
    (r,) = run_cli(["play", stems_dir, "--duration", "0.1"], alsa_conf="/usr/share/alsa/alsa.conf")
    if r["rc"] == 0:
        pytest.skip("this machine has a sound card")
    assert r["rc"] == 2 and r["err"] == "unmix: error: no output device\n"


@needs_portaudio
@pytest.mark.serial  # real time / wall-clock bound: runs alone (make test)
def test_play_stops_cleanly_on_ctrl_c(stems_dir):
    env = dict(os.environ, ALSA_CONFIG_PATH=str(NULL_CONF), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "unmix_desktop.cli", "play", str(stems_dir), "--loop"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )
    try:
        first = proc.stdout.readline()  # "playing song: ..." once the stems are loaded
        assert "looping" in first
        proc.stdout.readline()  # a position line: the stream runs
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped" in out and "underruns:" in out
    assert "Traceback" not in err
