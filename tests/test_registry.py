"""One broken user model does not take the others down (issue 11, section 4), and `models --import`
never writes outside the user models folder. Real bundle folders in a temp data dir, real CLI runs."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from unmix_desktop import cli
from unmix_desktop.audio.io import load_audio, save_audio
from unmix_desktop.errors import ModelError
from unmix_desktop.separation.bundle import load_bundle, save_bundle, validate_model_name
from unmix_desktop.separation.model import OpenUnmix
from unmix_desktop.separation.registry import list_models, load_model, scan_models


def _meta_edit(edit):
    def damage(folder: Path) -> None:
        meta = json.loads((folder / "model.json").read_text())
        edit(meta)
        (folder / "model.json").write_text(json.dumps(meta))
    return damage


def _write(name: str, data: bytes):
    return lambda folder: (folder / name).write_bytes(data)


def _truncate_weights(folder: Path) -> None:
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])


def _flip_weight_bit(folder: Path) -> None:
    path = folder / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-50] ^= 0x40  # inside the tensor data: only the recorded SHA-256 can tell
    path.write_bytes(bytes(data))


#: folder name -> (how it is damaged, a word the reason must contain)
BROKEN = {
    "json-list": (_write("model.json", b"[1,2,3]"), "a JSON list"),
    "json-null": (_write("model.json", b"null"), "a JSON null"),
    "json-invalid": (_write("model.json", b'{"format": "unmix-bundle",'), "not valid JSON"),
    "json-binary": (_write("model.json", b"\xff\xfe\x00garbage"), "not valid JSON"),
    "no-targets": (_meta_edit(lambda m: m.pop("targets")), "'targets'"),
    "empty-targets": (_meta_edit(lambda m: m.update(targets=[])), "'targets'"),
    "targets-not-list": (_meta_edit(lambda m: m.update(targets="vocals")), "'targets'"),
    "no-config": (_meta_edit(lambda m: m.pop("config")), "'config'"),
    "huge-config": (_meta_edit(lambda m: m["config"]["vocals"].update(hidden_size=10 ** 9)), "hidden_size"),
    "bad-rate": (_meta_edit(lambda m: m.update(sample_rate="fast")), "sample_rate"),
    "no-weights": (lambda folder: (folder / "model.safetensors").unlink(), "missing"),
    "garbage-weights": (_write("model.safetensors", b"garbage"), "cannot read weights"),
    "empty-weights": (_write("model.safetensors", b""), "cannot read weights"),
    "truncated-weights": (_truncate_weights, "truncated"),
    "no-model-json": (lambda folder: (folder / "model.json").unlink(), "no model.json"),
}


@pytest.fixture
def data_dir(tmp_path, tiny_umx, monkeypatch):
    """A user data dir with one good model ('good') and one folder per kind of damage."""
    data = tmp_path / "data"
    models = data / "models"
    save_bundle(models / "good", tiny_umx, card={"description": "fine"})
    for name, (damage, _) in BROKEN.items():
        damage(save_bundle(models / name, tiny_umx))
    (models / ".download-tmp123").mkdir()  # the app's own temporary folder: not a model, no warning
    (models / "README.txt").write_text("my notes")  # a plain file: not a model folder, no warning
    monkeypatch.setenv("UNMIX_DATA_DIR", str(data))
    return data


def unmix(*args, env_extra=None, cwd=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "unmix_desktop.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=600)


def test_scan_skips_each_broken_folder_with_its_reason(data_dir):
    models, broken = scan_models()
    names = [m.name for m in models]
    assert "good" in names and "umx-mir1k" in names
    assert not set(names) & set(BROKEN)
    reasons = {b.name: b for b in broken}
    assert sorted(reasons) == sorted(BROKEN)
    for name, (_, word) in BROKEN.items():
        assert reasons[name].location == str(data_dir / "models" / name)
        assert str(data_dir / "models" / name) in reasons[name].reason and word in reasons[name].reason, \
            reasons[name].reason
        assert "\n" not in reasons[name].reason
    assert [m.name for m in list_models()] == names


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_asking_for_a_broken_model_names_the_folder(data_dir, name):
    with pytest.raises(ModelError) as info:
        load_model(name)
    message = str(info.value)
    assert f"model '{name}'" in message and str(data_dir / "models" / name) in message and "\n" not in message
    assert BROKEN[name][1] in message
    with pytest.raises(ModelError, match=name):  # and loading the folder by path says the same
        load_bundle(data_dir / "models" / name)
    assert load_model("good").targets == ["vocals"]  # the good one still loads


def test_flipped_bit_in_weights_is_caught_by_the_recorded_hash(tmp_path, tiny_umx):
    folder = save_bundle(tmp_path / "m", tiny_umx)
    meta = json.loads((folder / "model.json").read_text())
    assert meta["weights"]["size"] == (folder / "model.safetensors").stat().st_size
    _flip_weight_bit(folder)
    with pytest.raises(ModelError, match="SHA-256 does not match"):
        load_bundle(folder)


def test_models_command_lists_the_good_ones_and_warns_once_per_broken_folder(data_dir):
    r = unmix("models")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    listed = {line.split()[0] for line in r.stdout.splitlines() if line.strip()}
    assert {"good", "umx-mir1k"} <= listed and not listed & set(BROKEN)
    warnings = r.stderr.strip().splitlines()
    assert len(warnings) == len(BROKEN), r.stderr
    for name, (_, word) in BROKEN.items():
        [line] = [w for w in warnings if f"'{name}'" in w]
        assert line.startswith("unmix: warning: skipping model") and str(data_dir / "models" / name) in line
        assert word in line


def test_separate_with_the_default_model_ignores_broken_folders(data_dir, tmp_path, song):
    src = save_audio(tmp_path / "song.wav", song["mixture"][: 44100 * 2] * 0.5)
    out = tmp_path / "out"
    r = unmix("separate", src, "--out", out, "-q", "--format", "wavf")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    stems = sorted(p.name for p in (out / "song").iterdir() if not p.name.startswith("."))
    assert stems == ["accompaniment.wav", "vocals.wav"]
    assert load_audio(out / "song" / "vocals.wav").shape == (44100 * 2, 2)


@pytest.mark.parametrize("name", ["json-list", "no-targets", "no-weights"])
def test_separate_with_a_broken_model_is_one_line(data_dir, tmp_path, song, name):
    src = save_audio(tmp_path / "song.wav", song["mixture"][:44100])
    r = unmix("separate", src, "--out", tmp_path / "out", "--model", name)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("unmix: error:") and str(data_dir / "models" / name) in lines[0]
    assert not (tmp_path / "out" / "song").exists()


# --- `unmix models --import --name`: a plain name, inside the models folder ---------------------

@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    buf = io.BytesIO()
    torch.save(OpenUnmix(hidden_size=8, nb_layers=1, max_bin=64).state_dict(), buf)
    path = tmp_path / "ckpt" / "vocals.pth"
    path.parent.mkdir()
    path.write_bytes(buf.getvalue())
    return path


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


BAD_NAMES = ["../../x", "../x", "..", ".", "", "   ", "a/b", "a\\b", ".hidden", "x\ny", "é" * 60, "{abs}"]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_import_refuses_a_name_that_is_not_a_plain_folder_name(tmp_path, checkpoint, monkeypatch, capsys, bad):
    data = tmp_path / "deep" / "data"
    monkeypatch.setenv("UNMIX_DATA_DIR", str(data))
    bad = bad.replace("{abs}", str(tmp_path / "abs-model"))
    before = _tree(tmp_path)
    assert cli.main(["models", "--import", str(checkpoint), "--name", bad]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("unmix: error: invalid model name"), err
    after = _tree(tmp_path)
    assert set(after) - set(before) <= {"deep/data/models"}, set(after) - set(before)  # nothing else written
    assert not (data / "models").exists() or not list((data / "models").iterdir())


@pytest.mark.parametrize("bad", ["../../x", "{abs}"])
def test_import_path_name_in_a_subprocess(tmp_path, checkpoint, bad):
    data = tmp_path / "deep" / "data"
    bad = bad.replace("{abs}", str(tmp_path / "abs-model"))
    before = _tree(tmp_path)
    r = unmix("models", "--import", checkpoint, "--name", bad, env_extra={"UNMIX_DATA_DIR": str(data)})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "invalid model name" in r.stderr
    assert set(_tree(tmp_path)) - set(before) <= {"deep", "deep/data", "deep/data/models"}
    assert not (tmp_path / "x").exists() and not (tmp_path / "abs-model").exists()


def test_import_refuses_an_installed_or_built_in_name(tmp_path, checkpoint, monkeypatch, capsys):
    data = tmp_path / "data"
    monkeypatch.setenv("UNMIX_DATA_DIR", str(data))
    assert cli.main(["models", "--import", str(checkpoint), "--name", "mine"]) == 0
    folder = data / "models" / "mine"
    stamp = {p.name: p.read_bytes() for p in folder.iterdir()}
    capsys.readouterr()
    assert cli.main(["models", "--import", str(checkpoint), "--name", "mine"]) == 2
    assert "already installed" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == stamp  # untouched
    assert cli.main(["models", "--import", str(checkpoint), "--name", "umx-mir1k"]) == 2
    assert "built-in model" in capsys.readouterr().err
    assert sorted(p.name for p in (data / "models").iterdir()) == ["mine"]
    assert load_model("mine").targets == ["vocals"]


def test_validate_model_name_accepts_ordinary_names():
    for name in ("umx-imported", "My Model 2", "модель", "a.b", "x" * 100):
        assert validate_model_name(name) == name
    with pytest.raises(ModelError):
        validate_model_name("x" * 101)


def test_an_unusable_user_models_folder_leaves_the_built_in_models(tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    r = unmix("models", env_extra={"UNMIX_DATA_DIR": str(blocker / "data")})
    assert r.returncode == 0 and "umx-mir1k" in r.stdout
    [line] = r.stderr.strip().splitlines()
    assert line.startswith("unmix: warning: skipping user models: ") and str(blocker / "data") in line
    assert blocker.read_text() == "not a folder"


def test_the_drums_bass_other_splitter_is_never_the_main_model():
    """umx-synth4 splits the accompaniment (``--four-stem-model``); the window's model list and the
    default model leave it out."""
    from unmix_desktop.separation.registry import default_model_name, list_models
    from unmix_desktop.ui.model_info import registry_models

    splitters = [m.name for m in list_models() if m.splitter]
    assert "umx-synth4" in splitters
    assert default_model_name() not in splitters
    assert not set(splitters) & {name for name, _ in registry_models()}
