"""Shared fixtures. Tests never touch the user's real settings, cache or model folders."""

from __future__ import annotations

import os
import tempfile

# Before anything imports Qt or platformdirs users.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
_TMP_HOME = tempfile.mkdtemp(prefix="unmix-test-")
for _var, _sub in (("UNMIX_DATA_DIR", "data"), ("UNMIX_CACHE_DIR", "cache"), ("UNMIX_CONFIG_DIR", "config")):
    os.environ[_var] = os.path.join(_TMP_HOME, _sub)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

SR = 44100


def make_song(seconds: float = 3.0, sr: int = SR, seed: int = 0) -> dict[str, np.ndarray]:
    """A generated 'song': a vibrato 'voice' (harmonics), a bass line, and noise-burst drums.

    Returns float32 (n, 2) stems 'vocals', 'bass', 'drums' and their sum 'mixture'.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f0 = 330 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voice = sum(np.sin(k * phase) / k for k in range(1, 6)) * 0.2 * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t) ** 2)
    bass = 0.3 * np.sin(2 * np.pi * 55 * t) * (1 + 0.5 * np.sign(np.sin(2 * np.pi * 2 * t)))
    drums = np.zeros(n)
    for start in range(0, n, sr // 2):
        burst = rng.standard_normal(min(2000, n - start)) * np.exp(-np.arange(min(2000, n - start)) / 300)
        drums[start:start + burst.size] += 0.4 * burst
    stems = {
        "vocals": np.stack([voice * 0.9, voice * 1.1], 1),
        "bass": np.stack([bass, bass], 1),
        "drums": np.stack([drums * 1.2, drums * 0.8], 1),
    }
    stems = {k: v.astype(np.float32) for k, v in stems.items()}
    stems["mixture"] = sum(stems.values()).astype(np.float32)
    return stems


@pytest.fixture
def song():
    return make_song()


@pytest.fixture
def tiny_umx():
    """A tiny randomly initialised 1-target open-unmix model (real network, small sizes)."""
    from unmix_desktop.separation.model import MultiTargetUMX, OpenUnmix

    torch.manual_seed(0)
    return MultiTargetUMX({"vocals": OpenUnmix(hidden_size=16, nb_layers=1, max_bin=128)},
                          card={"name": "tiny"}).eval()


@pytest.fixture
def song_path(tmp_path):
    """A 4-s generated song saved as float WAV, for the window tests."""
    from unmix_desktop.audio.io import save_audio

    path = tmp_path / "My Song.wav"
    save_audio(path, make_song(4.0)["mixture"], subtype="FLOAT")
    return path


@pytest.fixture
def harness(qtbot, tmp_path, tiny_umx):
    """The real window over a tiny model in a temp cache (tests/test_ui.py: Harness), closed after."""
    from test_ui import Harness

    h = Harness(qtbot, tmp_path, tiny_umx)
    yield h
    h.window.close()


@pytest.hookimpl(tryfirst=True)  # before -m selects: `-m serial` must see the soak test as serial too
def pytest_collection_modifyitems(config, items):
    """The soak test is real-time playback: serial like the other tests marked so. Serial tests also share
    one xdist group, so a plain `pytest -n N --dist loadgroup` at least never runs two of them at once;
    `make test` runs them alone, after the parallel phase."""
    for item in items:
        if item.get_closest_marker("soak") and not item.get_closest_marker("serial"):
            item.add_marker(pytest.mark.serial)
        if item.get_closest_marker("serial"):
            item.add_marker(pytest.mark.xdist_group("serial"))
