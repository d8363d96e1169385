"""`unmix models --import X.th` and `unmix separate SONG --model NAME` with a random-weight 6-source
Hybrid Transformer Demucs checkpoint in the official format (made with the reference package, test-only)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("unmix_desktop.separation.demucs", reason="the Demucs package (branch demucs-core) is not merged")
pytest.importorskip("demucs.htdemucs", reason="the reference demucs package (test-only) is not installed")

ROOT = Path(__file__).resolve().parents[1]
SIX = ["drums", "bass", "other", "vocals", "guitar", "piano"]


def make_checkpoint(folder: Path, sources: list[str], sig: str = "0000beef", seed: int = 0) -> Path:
    """A tiny random HTDemucs saved as the reference does (``demucs.states.serialize_model``'s dict:
    klass, args, kwargs, state, training_args) under ``<sig>-<sha256 prefix>.th``."""
    import torch
    from demucs.htdemucs import HTDemucs
    from demucs.states import get_state

    torch.manual_seed(seed)
    model = HTDemucs(sources=sources, audio_channels=2, samplerate=44100, segment=2.0, channels=4, depth=2,
                     growth=2, nfft=512, t_layers=1, t_hidden_scale=1.0, t_heads=2, bottom_channels=0,
                     dconv_comp=2, t_dropout=0.0, freq_emb=0.0)
    args, kwargs = model._init_args_kwargs
    package = {"klass": model.__class__, "args": args, "kwargs": kwargs, "state": get_state(model, None, False),
               "training_args": {}}
    import io

    buf = io.BytesIO()
    torch.save(package, buf)
    data = buf.getvalue()
    path = folder / f"{sig}-{hashlib.sha256(data).hexdigest()[:8]}.th"
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def six_checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt"), SIX)


def song(path: Path, seconds: float = 3.0, rate: int = 44100) -> np.ndarray:
    rng = np.random.default_rng(1)
    t = np.arange(int(seconds * rate)) / rate
    x = np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.3 * np.sin(2 * np.pi * 330 * t)], 1)
    x += 0.05 * rng.standard_normal(x.shape)
    x = x.astype(np.float32)
    sf.write(path, x, rate, subtype="FLOAT")
    return x


def unmix(*args, env, timeout=300):
    return subprocess.run([sys.executable, "-m", "unmix_desktop.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout)


@pytest.fixture
def env(tmp_path):
    return dict(os.environ, UNMIX_DATA_DIR=str(tmp_path / "data"), UNMIX_CACHE_DIR=str(tmp_path / "cache"),
                UNMIX_CONFIG_DIR=str(tmp_path / "config"), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")


def test_import_list_and_separate_six_sources(six_checkpoint, tmp_path, env):
    proc = unmix("models", "--import", six_checkpoint, "--name", "six", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "six" in proc.stdout and "guitar" in proc.stdout
    folder = tmp_path / "data" / "models" / "six"
    meta = json.loads((folder / "demucs.json").read_text())
    assert meta["sources"] == SIX
    assert meta["files"][0]["sha256"] == hashlib.sha256(six_checkpoint.read_bytes()).hexdigest()
    listed = unmix("models", env=env)
    row = next(ln for ln in listed.stdout.splitlines() if ln.startswith("six "))
    assert ",".join(SIX) in row

    (tmp_path / "songs").mkdir()
    x = song(tmp_path / "songs" / "My Song.wav")
    out = tmp_path / "out"
    # a folder of songs (`unmix separate DIR`), mirrored under OUT
    proc = unmix("separate", tmp_path / "songs", "--model", "six", "--out", out, "--format", "wavf", "-q",
                 "--threads", "1", env=env)
    assert proc.returncode == 0, proc.stderr
    result = out / "songs" / "My Song"
    names = sorted(p.stem for p in result.glob("*.wav"))
    assert names == sorted([*SIX, "accompaniment"])
    stems = {n: sf.read(result / f"{n}.wav", dtype="float32")[0] for n in names}
    assert all(s.shape == x.shape for s in stems.values())
    np.testing.assert_allclose(stems["accompaniment"] + stems["vocals"], x, atol=1e-6)  # song - vocals, exact
    assert all(np.abs(s).max() > 0 for s in stems.values())
    marker = json.loads((result / ".unmix-stems.json").read_text())
    assert marker["job"]["model"] == "six"
    # the same job again is skipped
    again = unmix("separate", tmp_path / "songs", "--model", "six", "--out", out, "--format", "wavf",
                  "--threads", "1", env=env)
    assert again.returncode == 0 and "already separated" in again.stderr


def test_stems_equal_the_in_memory_separation(six_checkpoint, tmp_path, env):
    """The streamed CLI output (decoded window by window) equals separate_demucs on the whole array."""
    import torch

    from unmix_desktop.separation.demucs import load_demucs, separate_demucs

    torch.set_num_threads(1)
    x = song(tmp_path / "s.wav", seconds=4.5)
    proc = unmix("separate", tmp_path / "s.wav", "--model-file", six_checkpoint, "--out", tmp_path / "o",
                 "--format", "wavf", "-q", "--targets", "vocals,guitar,accompaniment", "--threads", "1", env=env)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.stem for p in (tmp_path / "o" / "s").glob("*.wav")) == ["accompaniment", "guitar", "vocals"]
    ref = separate_demucs(load_demucs(six_checkpoint), x, shifts=0, split=True, overlap=0.25)
    for name in ("vocals", "guitar"):
        got = sf.read(tmp_path / "o" / "s" / f"{name}.wav", dtype="float32")[0]
        assert np.abs(got - ref[name]).max() < 1e-4


def test_code_running_checkpoint_is_refused_at_import(tmp_path, env):
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    import torch

    bad = tmp_path / "badc0de0.th"
    torch.save({"klass": Evil(), "args": [], "kwargs": {}, "state": {}, "training_args": {}}, bad,
               pickle_protocol=pickle.DEFAULT_PROTOCOL)
    proc = unmix("models", "--import", bad, "--name", "evil", env=env)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("unmix: error:") and str(bad) in proc.stderr
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "data" / "models" / "evil").exists()


def test_bag_yaml_import(six_checkpoint, tmp_path, env):
    import shutil

    src = tmp_path / "bag"
    src.mkdir()
    a = shutil.copy(six_checkpoint, src)
    b = make_checkpoint(src, SIX, sig="1111cafe", seed=3)
    (src / "mybag.yaml").write_text("models: ['0000beef', '1111cafe']\n"
                                    "weights: [[1, 1, 1, 0, 1, 1], [0, 0, 0, 1, 0, 0]]\n")
    proc = unmix("models", "--import", src / "mybag.yaml", env=env)
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "data" / "models" / "mybag"
    assert sorted(p.name for p in folder.iterdir()) == sorted(["demucs.json", "mybag.yaml", Path(a).name, b.name])
    from unmix_desktop.separation import model_store

    model = model_store.load_installed(folder)
    assert model.sources == SIX and len(model.nets) == 2 and model.weights[1][3] == 1.0
    from unmix_desktop.separation.registry import is_demucs, load_model

    assert is_demucs(folder) and is_demucs(src / "mybag.yaml")
    assert load_model(folder).sources == SIX  # an installed folder given as a path (--model-file DIR)
