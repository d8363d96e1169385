"""The learned drums/bass/other splitter (separation/learned4.py) with a tiny real network bundle:
the four stems sum to the song, `unmix separate --stems 4 --four-stem-model` uses it, wrong models
are refused in one line. `unmix train --targets` builds such a bundle."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from unmix_desktop.audio.io import load_audio, save_audio
from unmix_desktop.errors import ModelError
from unmix_desktop.separation import learned4
from unmix_desktop.separation.bundle import save_bundle
from unmix_desktop.separation.fourstems import four_stems
from unmix_desktop.separation.model import MultiTargetUMX, OpenUnmix


@pytest.fixture
def splitter_dir(tmp_path):
    torch.manual_seed(0)
    nets = {t: OpenUnmix(hidden_size=8, nb_layers=1, max_bin=128) for t in ("drums", "bass", "other")}
    for k, net in enumerate(nets.values()):  # distinct outputs per target
        with torch.no_grad():
            net.output_scale.mul_(0.5 + k)
    return save_bundle(tmp_path / "tiny-splitter", MultiTargetUMX(nets, card={"name": "tiny-splitter"}).eval())


def test_learned_split_sums_to_the_song(splitter_dir, song):
    stems = {"vocals": song["vocals"], "accompaniment": song["mixture"] - song["vocals"]}
    out = four_stems(stems, model=str(splitter_dir))
    assert set(out) == {"vocals", "drums", "bass", "other"}
    assert np.abs(sum(out.values()) - song["mixture"]).max() < 1e-5
    assert all(np.sqrt(np.mean(out[k] ** 2)) > 1e-4 for k in ("drums", "bass", "other"))
    dsp = four_stems(stems, model="dsp")
    assert not np.allclose(dsp["drums"], out["drums"])
    assert learned4.is_dsp(None) == (learned4.DEFAULT in learned4.DSP_NAMES)


def test_a_vocals_model_is_not_a_splitter(tmp_path, tiny_umx, song):
    path = save_bundle(tmp_path / "vocals-only", tiny_umx)
    with pytest.raises(ModelError, match="not a drums/bass/other splitter"):
        learned4.split_accompaniment_learned(song["mixture"], str(path))


def test_separate_cli_with_the_learned_splitter(tmp_path, tiny_umx, splitter_dir, song):
    model = save_bundle(tmp_path / "tiny-model", tiny_umx)
    src = save_audio(tmp_path / "s.wav", song["mixture"] * (0.5 / np.abs(song["mixture"]).max()))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    base = [sys.executable, "-m", "unmix_desktop.cli", "separate", str(src), "--model-file", str(model),
            "--stems", "4", "--quiet", "--out"]
    r = subprocess.run(base + [str(tmp_path / "o"), "--four-stem-model", str(splitter_dir)], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    parts = {k: load_audio(tmp_path / "o" / "s" / f"{k}.wav") for k in ("vocals", "drums", "bass", "other")}
    assert np.abs(sum(parts.values()) - load_audio(src)).max() < 5e-4
    r = subprocess.run(base + [str(tmp_path / "o2"), "--four-stem-model", "no-such-model"], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode != 0 and "no-such-model" in r.stderr and "Traceback" not in r.stderr


def test_make_corpus_then_train_targets_gives_a_splitter(tmp_path, song):
    """The whole recipe at toy size: numpy-rendered corpus -> `unmix train --targets` -> one bundle
    with three networks that the learned split loads."""
    from test_synth import _tiny_song

    from unmix_desktop.separation.bundle import load_bundle
    from unmix_desktop.training.synth.corpus import write_corpus

    for name in ("020", "022", "023"):
        _tiny_song(tmp_path / "pop" / name)
    write_corpus(tmp_path / "pop", tmp_path / "corpus", 3, duration=2.0, renderer="numpy", produce=False)
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "unmix_desktop.cli", "train", "--root", str(tmp_path / "corpus"),
                        "--targets", "drums,bass,other", "--out", str(out), "--epochs", "1", "--hidden", "4",
                        "--layers", "1", "--max-bin", "32", "--seq-dur", "1", "--batch-size", "1", "--threads", "1",
                        "--quiet"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    model = load_bundle(out)
    assert model.targets == ["drums", "bass", "other"] and model.card["targets"] == ["drums", "bass", "other"]
    assert all((out / t / "train_log.json").is_file() for t in model.targets)
    parts = learned4.split_accompaniment_learned(song["mixture"], str(out))
    assert np.abs(sum(parts.values()) - song["mixture"]).max() < 1e-5
