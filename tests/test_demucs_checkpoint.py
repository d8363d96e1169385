"""Loading Demucs checkpoints safely: a .th that would run code is refused with one line and runs
nothing; damaged, renamed, mismatched or incomplete files and bags are refused naming the file; the
registry of named models matches the reference package's own files."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from demucs_reference import SMALL, make_checkpoint, reference

from unmix_desktop.errors import ModelError
from unmix_desktop.separation.demucs import KNOWN_MODELS, ROOT_URL, load_demucs, url_for


class _Evil:
    """Unpickling this calls builtins.open(target, "w"): it creates a file."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def _one_line(exc: ModelError, path: Path) -> str:
    text = str(exc)
    assert "\n" not in text and text.startswith(f"{path}: ")
    return text


def test_code_running_pickle_is_refused_and_runs_nothing(tmp_path):
    target = tmp_path / "pwned.txt"
    evil = tmp_path / "deadbeef-00000000.th"
    torch.save({"klass": _Evil(target), "args": [], "kwargs": {}, "state": {}, "training_args": {}}, evil)
    evil_named = tmp_path / "evil.th"
    shutil.copy(evil, evil_named)
    with pytest.raises(ModelError) as info:
        load_demucs(evil_named)
    text = _one_line(info.value, evil_named)
    assert "not a safe Demucs checkpoint" in text and "io.open" in text
    assert not target.exists()
    # the same file through an unrestricted torch.load does run the code: the test means something
    torch.load(evil_named, weights_only=False)
    assert target.exists()


def test_cli_style_refusal_in_a_subprocess(tmp_path):
    """A pickled os.system call: refused in a fresh process too, and the command never runs."""
    target = tmp_path / "ran.txt"
    evil = tmp_path / "evil.th"
    script = textwrap.dedent(f"""
        import os, torch
        class E:
            def __reduce__(self):
                return (os.system, ("touch {target}",))
        torch.save({{"klass": E(), "args": [], "kwargs": {{}}, "state": {{}}}}, {str(evil)!r})
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    code = ("import sys\nfrom unmix_desktop.separation.demucs import load_demucs\n"
            "from unmix_desktop.errors import ModelError\n"
            f"try:\n    load_demucs({str(evil)!r})\nexcept ModelError as e:\n    print(e)\n    sys.exit(2)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout.strip().count("\n") == 0
    assert "posix.system" in proc.stdout or "os.system" in proc.stdout
    assert not target.exists()


def test_valid_checkpoint_card_and_checksum(tmp_path):
    path = make_checkpoint(tmp_path, "c0ffee00", **SMALL)
    model = load_demucs(path)
    assert model.card["name"] == "c0ffee00" and model.card["sources"] == model.sources
    assert model.card["files"] == [path.name] and model.card["segment_s"] == pytest.approx(2.0)
    # one flipped byte: the SHA-256 in the name no longer matches
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum mismatch") as info:
        load_demucs(path)
    _one_line(info.value, path)


@pytest.mark.parametrize("case", ["truncated", "text", "not_a_dict", "no_klass", "wrong_state", "missing"])
def test_bad_files_are_one_line_errors(tmp_path, case):
    good = make_checkpoint(tmp_path / "src", "c0ffee00", **SMALL)
    path = tmp_path / "model.th"
    if case == "truncated":
        path.write_bytes(good.read_bytes()[:5000])
    elif case == "text":
        path.write_text("hello\n")
    elif case == "not_a_dict":
        torch.save([1, 2, 3], path)
    elif case == "no_klass":
        torch.save({"args": [], "kwargs": {}, "state": {}}, path)
    elif case == "wrong_state":
        pkg = torch.load(good, weights_only=False)
        pkg["state"] = {k: v for k, v in list(pkg["state"].items())[:-3]}
        torch.save(pkg, path)
    with pytest.raises(ModelError) as info:
        load_demucs(path)
    _one_line(info.value, path)


def test_bag_errors(tmp_path):
    make_checkpoint(tmp_path, "0000aaaa", **SMALL)
    bag = tmp_path / "bag.yaml"
    bag.write_text("models: ['0000aaaa', '9999ffff']\n")
    with pytest.raises(ModelError, match="9999ffff not found"):
        load_demucs(bag)
    bag.write_text("models: ['0000aaaa']\nweights: [[1, 1]]\n")
    with pytest.raises(ModelError, match="weights"):
        load_demucs(bag)
    bag.write_text("models: ['0000aaaa']\nweights: [[1, 0, 1, 1]]\n")
    with pytest.raises(ModelError, match="zero total weight"):
        load_demucs(bag)
    bag.write_text("{not yaml")
    with pytest.raises(ModelError, match="invalid YAML"):
        load_demucs(bag)
    bag.write_text("models: ['0000aaaa']\n")
    assert load_demucs(bag).card["name"] == "bag"


def test_known_models_match_the_reference_files():
    reference()
    import yaml
    from demucs.pretrained import REMOTE_ROOT, _parse_remote_files
    from demucs.pretrained import ROOT_URL as REF_ROOT

    assert ROOT_URL == REF_ROOT
    urls = _parse_remote_files(REMOTE_ROOT / "files.txt")
    for name, info in KNOWN_MODELS.items():
        bag = yaml.safe_load((REMOTE_ROOT / f"{name}.yaml").read_text())
        assert [f.split("-")[0] for f in info["files"]] == bag["models"]
        if info["bag"] is not None:
            assert info["bag"] == bag
        else:
            assert bag == {"models": bag["models"]}
        for f in info["files"]:
            assert url_for(f) == urls[f.split("-")[0]]
    assert KNOWN_MODELS["htdemucs_6s"]["sources"][-2:] == ["guitar", "piano"]


def test_pickle_protocol_variants_of_refusal(tmp_path):
    """A raw (non-zip) pickle with a GLOBAL of subprocess.Popen is refused as well."""
    path = tmp_path / "raw.th"
    path.write_bytes(b"\x80\x02csubprocess\nPopen\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.")
    with pytest.raises(ModelError) as info:
        load_demucs(path)
    _one_line(info.value, path)
    assert pickle  # the module is used to describe the format above
