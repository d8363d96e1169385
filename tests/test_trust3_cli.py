"""Issue 21 section 1, the smaller command-line cases: Ctrl-C during start-up, broken links in a
folder input, a newline in a file name, the --out folder of a run whose only song fails."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli_safety import ROOT, errors, unmix, visible
from test_cli_safety import model_dir as model_dir  # the fixtures
from test_cli_safety import wav as wav

#: Put on PYTHONPATH ahead of the project: sends this process SIGINT the moment something starts
#: importing ``MODULE`` (a real signal, delivered while the import runs: no timing involved).
SITECUSTOMIZE = '''
import importlib.abc, os, signal, sys
class _Interrupt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == os.environ["UNMIX_TEST_INTERRUPT_IMPORT"]:
            sys.meta_path.remove(self)
            open(os.environ["UNMIX_TEST_INTERRUPT_MARK"], "w").write(name)
            os.kill(os.getpid(), signal.SIGINT)
        return None
sys.meta_path.insert(0, _Interrupt())
'''


def _as_from_a_terminal() -> None:
    """In the child before exec: SIGINT as a terminal's foreground job has it (default action, not blocked).
    Both are inherited across exec, and a pytest-xdist worker's are not guaranteed: with SIGINT ignored or
    blocked at start-up, Python installs no KeyboardInterrupt handler and the signal never arrives (the
    child exits 0 without a word; seen once in ~10 clean-clone runs)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@pytest.mark.parametrize("module, argv", [
    ("torch", ["separate", "x.wav", "--out", "o"]),
    ("numpy", ["models"]),
    ("argparse", ["models"]),
])
def test_ctrl_c_during_start_up_is_one_line_and_130(tmp_path, module, argv):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    mark = tmp_path / "interrupted"
    env = dict(os.environ, PYTHONPATH=f"{hook}{os.pathsep}{ROOT}", UNMIX_TEST_INTERRUPT_IMPORT=module,
               UNMIX_TEST_INTERRUPT_MARK=str(mark))
    r = subprocess.run([sys.executable, "-m", "unmix_desktop.cli", *argv], capture_output=True, text=True,
                       env=env, cwd=tmp_path, timeout=300, preexec_fn=_as_from_a_terminal)
    assert mark.read_text() == module  # the signal was sent while that import ran
    assert r.returncode == 130, r.stderr
    assert r.stderr.strip().splitlines() == ["unmix: interrupted"], r.stderr


def test_a_broken_link_in_a_folder_is_named(tmp_path, wav, model_dir):
    music = tmp_path / "music"
    wav("music/good.wav", 0.2)
    (music / "gone.wav").symlink_to(tmp_path / "deleted.wav")
    (music / "sub").mkdir()
    (music / "sub" / "also gone.flac").symlink_to("../nowhere.flac")
    out = tmp_path / "o"
    r = unmix("separate", music, "--out", out, "--model-file", model_dir, "-q")
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if line.startswith("unmix: warning:")]
    assert warnings == [
        f"unmix: warning: {music / 'gone.wav'}: broken link (its target {tmp_path / 'deleted.wav'} is missing); "
        "skipped",
        f"unmix: warning: {music / 'sub' / 'also gone.flac'}: broken link (its target ../nowhere.flac is missing); "
        "skipped"]
    assert visible(out / "music") == ["good"]


def test_the_window_queue_names_broken_links_too(tmp_path, wav):
    from unmix_desktop.library.queue import collect_audio_files

    wav("music/good.wav", 0.2)
    (tmp_path / "music" / "gone.wav").symlink_to(tmp_path / "deleted.wav")
    files, problems = collect_audio_files([tmp_path / "music"])
    assert [f.name for f in files] == ["good.wav"]
    assert problems == [f"{tmp_path / 'music' / 'gone.wav'}: broken link (its target {tmp_path / 'deleted.wav'} "
                        "is missing); skipped"]


def test_a_newline_in_a_file_name_does_not_split_the_progress_lines(tmp_path, wav, model_dir):
    song = wav("two\nlines.wav", 0.2)
    bad = tmp_path / "bad\nname.wav"
    bad.write_bytes(b"not audio at all" * 100)
    out = tmp_path / "o"
    r = unmix("separate", song, bad, "--out", out, "--model-file", model_dir)
    assert r.returncode == 2
    lines = [part for line in r.stderr.splitlines() for part in line.split("\r") if part.strip()]
    assert not [line for line in lines if line.startswith(("lines", "name"))], lines
    assert any(line.startswith("two\\nlines.wav: 2 stems -> ") for line in lines), lines
    (line,) = errors(r.stderr)
    assert line.startswith(f"unmix: error: {tmp_path}/bad\\nname.wav: ")
    assert visible(out) == ["two\nlines"]


def test_out_folder_is_removed_when_its_only_song_fails(tmp_path, model_dir):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF" + b"\0" * 100)
    out = tmp_path / "new" / "o"
    r = unmix("separate", bad, "--out", out, "--model-file", model_dir, "-q")
    assert r.returncode == 2 and len(errors(r.stderr)) == 1
    assert not out.exists() and not (tmp_path / "new").exists()
    # a folder that was there before is never removed, even empty
    out.mkdir(parents=True)
    r = unmix("separate", bad, "--out", out, "--model-file", model_dir, "-q")
    assert r.returncode == 2 and out.is_dir()


def test_out_folder_with_other_files_is_kept(tmp_path, model_dir, wav):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF" + b"\0" * 100)
    out = tmp_path / "o"
    r = unmix("separate", bad, wav("ok.wav", 0.2), "--out", out, "--model-file", model_dir, "-q")
    assert r.returncode == 2 and visible(out) == ["ok"]
    assert Path(out).is_dir()


def test_out_folder_is_removed_when_its_only_song_fails_mid_decode(tmp_path, model_dir):
    """A FLAC whose second half is damaged opens, then fails while it is decoded: --out (and the
    folders the run made inside it) are removed again."""
    import numpy as np
    import soundfile as sf

    song = tmp_path / "bad.flac"
    sf.write(song, (np.random.default_rng(0).standard_normal((44100 * 20, 2)) * 0.1).astype(np.float32), 44100)
    data = bytearray(song.read_bytes())
    for i in range(len(data) // 2, len(data), 7):
        data[i] ^= 0xFF
    song.write_bytes(bytes(data))
    out = tmp_path / "o" / "x"
    r = unmix("separate", song, "--out", out, "--model-file", model_dir, "-q")
    assert r.returncode == 2 and len(errors(r.stderr)) == 1, r.stderr
    assert not (tmp_path / "o").exists()
