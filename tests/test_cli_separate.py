"""`unmix separate` and `unmix models` end to end, in a subprocess like a user runs them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from unmix_desktop.audio.io import load_audio, save_audio
from unmix_desktop.separation.bundle import save_bundle


def unmix(*args, env_extra=None, cwd=None):
    import os

    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "unmix_desktop.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


@pytest.fixture
def model_dir(tmp_path, tiny_umx):
    return save_bundle(tmp_path / "tiny-model", tiny_umx, card={"name": "tiny", "description": "test model"})


def test_separate_writes_stems_that_sum_to_the_song(tmp_path, model_dir, song):
    mixture = song["mixture"] * (0.5 / np.abs(song["mixture"]).max())
    src = save_audio(tmp_path / "My Song.flac", mixture, subtype="PCM_24")
    out = tmp_path / "out"
    r = unmix("separate", src, "--out", out, "--model-file", model_dir, "--niter", "1")
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in (out / "My Song").iterdir())
    assert files == [".unmix-stems.json", "accompaniment.wav", "vocals.wav"]  # the marker: unmix made this folder
    mix = load_audio(src)
    total = load_audio(out / "My Song" / "vocals.wav") + load_audio(out / "My Song" / "accompaniment.wav")
    assert np.abs(total - mix).max() < 3e-4  # 16-bit quantisation of two files
    assert "100.0%" in r.stderr


def test_separate_continues_after_a_bad_song(tmp_path, model_dir, song):
    good = save_audio(tmp_path / "good.wav", song["mixture"])
    bad = tmp_path / "bad.mp3"
    bad.write_text("not audio at all\n" * 100)
    out = tmp_path / "out"
    r = unmix("separate", bad, tmp_path / "missing.wav", good, "--out", out, "--model-file", model_dir,
              "--format", "flac", "--targets", "vocals")
    assert r.returncode == 2
    errors = [line for line in r.stderr.splitlines() if line.startswith("unmix: error:")]
    assert len(errors) == 2 and "bad.mp3" in errors[0] and "missing.wav: file not found" in errors[1]
    assert "Traceback" not in r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["good"]  # nothing partial for the failures
    assert sorted(p.name for p in (out / "good").iterdir()) == [".unmix-stems.json", "vocals.flac"]


def test_unknown_model_is_one_line(tmp_path, song):
    src = save_audio(tmp_path / "a.wav", song["mixture"])
    r = unmix("separate", src, "--out", tmp_path / "o", "--model", "no-such-model")
    assert r.returncode == 2 and "unknown model 'no-such-model'" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o" / "a").exists()


def test_models_lists_user_bundles(tmp_path, tiny_umx):
    data = tmp_path / "data"
    save_bundle(data / "models" / "my-umx", tiny_umx, card={"description": "mine"})
    r = unmix("models", env_extra={"UNMIX_DATA_DIR": str(data)})
    assert r.returncode == 0, r.stderr
    line = next(line for line in r.stdout.splitlines() if line.startswith("my-umx"))
    assert "vocals" in line and "user" in line and "MB" in line


def test_clipping_is_reported(tmp_path, model_dir, song):
    loud = np.clip(song["mixture"] * 3, -1, 1)
    src = save_audio(tmp_path / "loud.wav", loud, subtype="FLOAT")
    r = unmix("separate", src, "--out", tmp_path / "o", "--model-file", model_dir, "-q")
    assert r.returncode == 0
    assert "clipped" in r.stderr and "--format wavf" in r.stderr
    r = unmix("separate", src, "--out", tmp_path / "o2", "--model-file", model_dir, "-q", "--format", "wavf")
    assert r.returncode == 0 and "clipped" not in r.stderr


def test_never_replaces_the_folder_holding_the_source(tmp_path, model_dir, song):
    # was: refused with exit 2; now the stems go next to it, and the output says where
    folder = tmp_path / "song"
    folder.mkdir()
    src = save_audio(folder / "song.wav", song["mixture"] * 0.3)
    before = src.read_bytes()
    r = unmix("separate", src, "--out", tmp_path, "--model-file", model_dir, "-q")
    assert r.returncode == 0, r.stderr
    assert "was not created by unmix" in r.stderr and "song (stems)" in r.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["song.wav"] and src.read_bytes() == before
    assert (tmp_path / "song (stems)" / "vocals.wav").is_file()


def test_long_song_streams_windows_to_disk(tmp_path, model_dir):
    x = (np.random.default_rng(0).standard_normal((44100 * 8, 2)) * 0.1).astype(np.float32)
    src = save_audio(tmp_path / "long.wav", x, subtype="FLOAT")
    r = unmix("separate", src, "--out", tmp_path / "o", "--model-file", model_dir, "--window", "3",
              "--format", "wavf", "-q")
    assert r.returncode == 0, r.stderr
    v = load_audio(tmp_path / "o" / "long" / "vocals.wav")
    a = load_audio(tmp_path / "o" / "long" / "accompaniment.wav")
    assert v.shape == x.shape and np.abs(v + a - x).max() < 1e-4
