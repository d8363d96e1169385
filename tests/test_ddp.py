"""`unmix train` under torchrun with 2 CPU processes (gloo): the loss goes down, rank 0 alone writes
the bundle and checkpoints, and a 2-process checkpoint resumes in 1 process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

SR = 44100


def _tracks(root, n_tracks=4, seconds=2.0, seed=0):
    """Tiny track folders: 'drums' = clicks of noise, 'other' = steady chords (different spectra)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    for split, count in (("train", n_tracks), ("valid", 2)):
        for k in range(count):
            folder = root / split / f"t{k}"
            folder.mkdir(parents=True)
            drums = np.zeros(n)
            for start in rng.integers(0, n - 2000, 12):
                drums[start:start + 2000] += rng.standard_normal(2000) * np.exp(-np.arange(2000) / 300)
            f0 = float(rng.uniform(150, 400))
            other = sum(np.sin(2 * np.pi * f0 * r * t) for r in (1, 1.25, 1.5)) / 3
            sf.write(folder / "drums.wav", np.stack([drums, drums], 1).astype(np.float32) * 0.3, SR)
            sf.write(folder / "other.wav", np.stack([other, other], 1).astype(np.float32) * 0.3, SR)


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([os.getcwd(), env.get("PYTHONPATH", "")])
    return env


def _train_cmd(root, out, epochs):
    return ["-m", "unmix_desktop.cli", "train", "--root", str(root), "--out", str(out), "--target", "drums",
            "--interferers", "other", "--epochs", str(epochs), "--hidden", "8", "--layers", "1",
            "--max-bin", "64", "--seq-dur", "1", "--batch-size", "2", "--samples-per-track", "4",
            "--lr", "0.01", "--threads", "1", "--quiet"]


def test_two_process_ddp_lowers_loss_and_resumes_in_one(tmp_path):
    pytest.importorskip("torch.distributed")
    import torch.distributed as td

    if not td.is_available() or not td.is_gloo_available():
        pytest.skip("this torch build has no gloo backend")
    root, out = tmp_path / "data", tmp_path / "run"
    _tracks(root)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd += _train_cmd(root, out, 4)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = json.loads((out / "train_log.json").read_text())
    assert log["machine"]["world_size"] == 2 and log["machine"]["backend"] == "gloo"
    losses = [h["train_loss"] for h in log["history"]]
    assert len(losses) == 4
    assert losses[-1] < losses[0] * 0.9, losses
    assert (out / "model.safetensors").is_file() and (out / "checkpoint" / "last.json").is_file()
    state = json.loads((out / "checkpoint" / "last.json").read_text())
    assert state["world_size"] == 2 and state["epoch"] == 4
    # resume the 2-process run in a single process, 1 more epoch
    proc = subprocess.run([sys.executable] + _train_cmd(root, out, 5) + ["--resume"], capture_output=True,
                          text=True, env=_env(), timeout=200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = json.loads((out / "checkpoint" / "last.json").read_text())
    assert state["epoch"] == 5 and state["world_size"] == 1
    log = json.loads((out / "train_log.json").read_text())
    assert [h["epoch"] for h in log["history"]] == [1, 2, 3, 4, 5]
    assert log["history"][-1]["train_loss"] < losses[0]


def test_sharded_batches_partition_the_epoch(tmp_path):
    """Rank r of N yields batches r, r+N, ... of the single-process epoch, identical tensors."""
    import torch

    from unmix_desktop.training.augment import Augmentation
    from unmix_desktop.training.datasets import make_datasets
    from unmix_desktop.training.spectral import SpectralBatches, SpectralTrackCache

    _tracks(tmp_path, n_tracks=4, seconds=1.5)
    train, _ = make_datasets("trackfolder_fix", tmp_path, "drums", ["other"], 1.0, Augmentation(), 2, 0)
    train.preload()
    cache = SpectralTrackCache(train, 64)
    aug = Augmentation(eq_db=3.0)
    whole = SpectralBatches(cache, aug, 0.5, 2, 2, seed=3)
    whole.set_epoch(2)
    ref = list(whole)
    assert len(ref) == 4
    for rank in range(2):
        part = SpectralBatches(cache, aug, 0.5, 2, 2, seed=3).shard(rank, 2)
        part.set_epoch(2)
        got = list(part)
        assert len(got) == 2
        for k, (x, y) in enumerate(got):
            rx, ry = ref[k * 2 + rank]
            assert torch.equal(x, rx) and torch.equal(y, ry)
