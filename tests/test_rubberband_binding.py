"""Our ctypes binding of Rubber Band's C API (unmix_desktop/audio/rubberband.py; issue 21, a licence we can
ship): it drives the system library's R3 engine, no GPL-2.0-only binding is loaded, the offline path gives
the whole render (Rubber Band 3.1 lost output with 65536-frame blocks), and without the library every
tempo/key entry point says so in one line while everything else keeps working."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from unmix_desktop.audio import rubberband
from unmix_desktop.audio.stretch import StretchError, stretch_offline

SR = 44100


def sine(freq: float, seconds: float, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x, x], axis=1)


@pytest.fixture
def no_rubberband(monkeypatch, tmp_path):
    """The library cannot be loaded (as on a system without librubberband2); restored after."""
    monkeypatch.setenv(rubberband.ENV_LIBRARY, str(tmp_path / "librubberband-missing.so.2"))
    monkeypatch.setattr(rubberband, "_loaded", False)
    monkeypatch.setattr(rubberband, "_lib", None)
    monkeypatch.setattr(rubberband, "_reason", None)
    yield
    rubberband._loaded = False  # the next user loads the real library again


def test_the_system_library_has_the_r3_engine_and_no_pylibrb_is_loaded():
    code = ("import sys, numpy as np\n"
            "from unmix_desktop.audio import rubberband as rb, stretch\n"
            "y = stretch.stretch_offline(np.zeros((4410, 2), np.float32), tempo=0.5)\n"
            "s = rb.RubberBandStretcher(44100, 2, rb.OPTION_ENGINE_FINER | rb.OPTION_PROCESS_REALTIME)\n"
            "print(rb.unavailable_reason(), s.engine_version, y.shape, 'pylibrb' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["None", "3", "(8820,", "2)", "False"]


def test_offline_render_is_whole_and_click_free_at_tempo_and_key():
    """Tempo 0.8 and key -2 together: with 65536-frame blocks Rubber Band 3.1 printed RingBuffer
    warnings, dropped output (steps in the sine) and ended ~0.3 s early (then zero-padded)."""
    x = sine(440.0, 8.0)
    y = stretch_offline(x, tempo=0.8, semitones=-2)
    assert y.shape == (441000, 2)
    slope = 2 * np.pi * 392.0 / SR * 0.3
    assert np.abs(np.diff(y[SR // 2:-SR // 2, 0])).max() < 1.2 * slope
    tail = np.abs(y[-40 * 512 - 2048:-2048, 0]).reshape(-1, 512).max(axis=1)
    assert tail.min() > 0.2  # the last half second is the song, not padding


def test_retrieve_and_process_check_the_layout():
    s = rubberband.RubberBandStretcher(SR, 2, rubberband.OPTION_ENGINE_FINER | rubberband.OPTION_PROCESS_REALTIME,
                                       initial_time_ratio=2.0)
    with pytest.raises(ValueError, match="float32"):
        s.process(np.zeros((2, 256), np.float64))
    with pytest.raises(ValueError, match="contiguous rows"):
        s.process(np.zeros((256, 2), np.float32).T)
    s.process(np.zeros((2, s.get_preferred_start_pad()), np.float32))
    x = np.ascontiguousarray(sine(440.0, 1.0).T)
    got = 0
    for a in range(0, x.shape[1], 256):
        s.process(x[:, a:a + 256])  # a column slice: rows stay contiguous
        n = s.available()
        if n > 0:
            got += s.retrieve(n).shape[1]
    assert s.time_ratio == 2.0 and abs(got - 2 * x.shape[1]) < 4 * 2048 + s.get_start_delay()
    s.close()
    s.close()  # twice is harmless


def test_without_the_library_tempo_and_key_say_so_in_one_line(no_rubberband, tmp_path):
    reason = rubberband.unavailable_reason()
    assert reason.endswith("librubberband-missing.so.2: not a loadable Rubber Band library (UNMIX_RUBBERBAND_LIB)")
    with pytest.raises(StretchError, match=r"^tempo/key change unavailable: .*librubberband-missing"):
        stretch_offline(sine(440.0, 1.0), tempo=0.8)
    assert stretch_offline(x := sine(440.0, 1.0), tempo=1.0) is x  # bypass needs no library


def test_cli_mix_without_the_library_is_one_line_exit_2(tmp_path):
    folder = tmp_path / "stems"
    folder.mkdir()
    sf.write(folder / "vocals.wav", sine(440.0, 1.0), SR, subtype="FLOAT")
    out = tmp_path / "slow.wav"
    env = {**__import__("os").environ, rubberband.ENV_LIBRARY: "/nonexistent/librubberband.so.2"}
    r = subprocess.run([sys.executable, "-m", "unmix_desktop.cli", "mix", str(folder), "--tempo", "0.8",
                        "--out", str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip() == ("unmix: error: --tempo/--key unavailable: /nonexistent/librubberband.so.2: "
                                "not a loadable Rubber Band library (UNMIX_RUBBERBAND_LIB)")
    assert not out.exists()
    plain = subprocess.run([sys.executable, "-m", "unmix_desktop.cli", "mix", str(folder), "--out", str(out)],
                           capture_output=True, text=True, env=env, timeout=120)
    assert plain.returncode == 0, plain.stderr  # no tempo/key: no library needed


def test_the_window_disables_tempo_and_key_and_says_why(no_rubberband, harness):
    bar = harness.window.song_page.transport.practice
    assert bar.stretch_unavailable is not None and "not a loadable Rubber Band library" in bar.stretch_unavailable
    for w in (bar.tempo_spin, bar.key_spin, bar.cents_spin):
        assert not w.isEnabled()
        assert w.toolTip().startswith("Tempo/key change unavailable: ")
