"""Play while separating: the engine's ready-frames logic, the growing buffers, the pipeline's live
stream, ``unmix play SONG`` on the ALSA null device, and the window with a slow real model."""

from __future__ import annotations

import numpy as np
import pytest

from unmix_desktop.audio.growing import GrowingStems
from unmix_desktop.audio.mixer import XFADE_FRAMES, MixEngine
from unmix_desktop.audio.player import StemPlayer

SR = 44100


def tone(n: int, freq: float = 220.0, level: float = 0.5) -> np.ndarray:
    t = np.arange(n) / SR
    x = (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x, x], axis=1)


def fill(g: GrowingStems, source: dict[str, np.ndarray], upto: int) -> None:
    g.write(g.ready, {k: v[g.ready:upto] for k, v in source.items()})


# ---------------------------------------------------------------------------------------------
# the engine
# ---------------------------------------------------------------------------------------------

def test_growing_stems_publish_ready_and_result():
    src = {"vocals": tone(10000), "accompaniment": tone(10000, 330)}
    g = GrowingStems(src, 10000, slack=0)
    assert g.ready == 0 and g.fraction == 0.0 and not g.complete
    fill(g, src, 4000)
    assert g.ready == 4000
    np.testing.assert_array_equal(g.stems["vocals"][:4000], src["vocals"][:4000])
    assert not g.stems["vocals"][4000:].any()  # the rest is silence until written
    fill(g, src, 10000)
    g.finish()
    assert g.complete and g.fraction == 1.0
    out = g.result()
    assert out["vocals"].shape == (10000, 2)
    assert np.shares_memory(out["vocals"], g.stems["vocals"])  # no copy


def test_position_never_passes_ready_and_resumes_by_itself():
    n = 20 * 4096
    src = {"a": tone(n), "b": tone(n, 330)}
    g = GrowingStems(src, n, slack=0)
    eng = MixEngine([g.stems["a"], g.stems["b"]], ready=g, max_block=512)
    fill(g, src, 3000)
    eng.start()
    out = np.zeros((512, 2), np.float32)
    heard = []
    for _ in range(20):
        eng.render(out)
        assert eng.pos <= g.ready
        heard.append(out.copy())
    assert eng.waiting and eng.pos == 3000 and eng.playing and not eng.finished
    # waiting is silence, the position holds
    assert not np.any(heard[-1])
    fill(g, src, 9000)
    eng.render(out)
    assert not eng.waiting and eng.pos == 3000 + 512
    assert np.abs(out).max() > 0.1  # sound again, without anyone asking
    fill(g, src, n)
    g.finish()
    for _ in range(400):
        eng.render(out)
        if eng.finished:
            break
    assert eng.finished and eng.pos == n


def test_no_click_at_the_wait_boundary():
    """Into the wait: a ramp down to zero; out of it: a ramp up from zero (a constant signal shows it)."""
    n = 50000
    dc = np.full((n, 2), 0.5, np.float32)
    g = GrowingStems(["a"], n, slack=0)
    eng = MixEngine([g.stems["a"]], ready=g, max_block=1024)
    ready = 5000
    g.write(0, {"a": dc[:ready]})
    eng.start()
    out = np.zeros((1024, 2), np.float32)
    stream = []
    for _ in range(8):
        eng.render(out)
        stream.append(out[:, 0].copy())
    g.write(ready, {"a": dc[ready:20000]})
    for _ in range(4):
        eng.render(out)
        stream.append(out[:, 0].copy())
    y = np.concatenate(stream)
    # largest sample-to-sample step: a cut from 0.5 to 0 would be 0.5; a ramp over 256 samples ~0.002
    assert np.max(np.abs(np.diff(y))) < 0.5 / XFADE_FRAMES * 1.5
    assert y[ready - XFADE_FRAMES // 2] < 0.5  # the fade-out happened before the boundary
    assert y[:ready - XFADE_FRAMES].min() == pytest.approx(0.5)
    silent = y[ready:8 * 1024]
    assert not silent.any()


def test_block_ending_exactly_at_ready_still_fades_out():
    n = 8192
    dc = np.full((n, 2), 0.5, np.float32)
    g = GrowingStems(["a"], n, slack=0)
    eng = MixEngine([g.stems["a"]], ready=g, max_block=1024)
    g.write(0, {"a": dc[:2048]})
    eng.start()
    out = np.zeros((1024, 2), np.float32)
    eng.render(out)
    eng.render(out)  # ends exactly at ready
    assert eng.waiting and eng.pos == 2048
    assert out[-1, 0] < 0.01 and out[0, 0] == pytest.approx(0.5)


def test_seek_into_the_unready_part_waits_then_plays_from_there():
    n = 100000
    src = {"a": tone(n)}
    g = GrowingStems(src, n, slack=0)
    eng = MixEngine([g.stems["a"]], ready=g, max_block=512)
    fill(g, src, 10000)
    eng.start()
    out = np.zeros((512, 2), np.float32)
    eng.render(out)
    eng.seek(60000)  # past the ready part
    for _ in range(3):
        eng.render(out)
    assert eng.waiting and eng.pos == 60000
    assert not out.any()
    fill(g, src, 70000)
    eng.render(out)
    assert not eng.waiting and eng.pos == 60512 and np.abs(out).max() > 0.1


def test_player_waiting_and_faders_while_filling():
    n = 5 * SR
    src = {"vocals": tone(n), "accompaniment": tone(n, 330)}
    g = GrowingStems(src, n, slack=0)
    p = StemPlayer(open_stream=False, stretch_thread=False)
    p.load(g.stems, ready=g)
    fill(g, src, SR)
    assert p.ready_seconds == pytest.approx(1.0)
    p.play()
    out = np.zeros((512, 2), np.float32)
    for _ in range(100):
        p.process(out)
    assert p.waiting and p.position == pytest.approx(1.0)
    fill(g, src, 2 * SR)
    p.set_mute("accompaniment", True)
    p.set_gain_db("vocals", -6.0)
    for _ in range(3):
        p.process(out)
    assert not p.waiting
    expect = 0.5 * 10 ** (-6 / 20)
    assert np.abs(out).max() == pytest.approx(expect, rel=0.05)  # only the quieter vocals
    g.finish()
    assert p.ready_seconds == pytest.approx(p.duration)
    p.close()


# ---------------------------------------------------------------------------------------------
# the pipeline's live buffers
# ---------------------------------------------------------------------------------------------

def test_pipeline_live_result_is_the_buffers_and_equals_plain_run(tmp_path, tiny_umx):
    from conftest import make_song

    from unmix_desktop.audio.io import save_audio
    from unmix_desktop.cache import StemCache
    from unmix_desktop.separation.pipeline import Pipeline, SongRequest
    from unmix_desktop.separation.settings import SeparationSettings

    path = tmp_path / "song.wav"
    save_audio(path, make_song(6.0)["mixture"], subtype="FLOAT")
    settings = SeparationSettings(window_s=2.0, overlap_s=0.5)
    cache = StemCache(tmp_path / "cache")
    seen = []

    def live(partial, growing):
        seen.append((partial, growing, growing.ready))

    pipe = Pipeline(lambda name: tiny_umx, cache, threads=1)
    result = pipe.run(SongRequest(path, "tiny", settings), live=live)
    assert len(seen) == 1
    partial, growing, ready_then = seen[0]
    assert 0 < ready_then < growing.frames and growing.complete and not result.from_cache
    assert list(partial.stems) == list(result.stems) == ["vocals", "accompaniment"]
    assert partial.content_hash == result.content_hash
    for name, stem in result.stems.items():
        assert np.shares_memory(stem, growing.stems[name])  # what played is what is cached
    plain = Pipeline(lambda name: tiny_umx, None, threads=1).run(SongRequest(path, "tiny", settings))
    for name in plain.stems:
        np.testing.assert_allclose(result.stems[name], plain.stems[name], atol=1e-6)
    # cached: no live call, at once
    seen.clear()
    again = pipe.run(SongRequest(path, "tiny", settings), live=live)
    assert again.from_cache and seen == []


# ---------------------------------------------------------------------------------------------
# `unmix play SONG` on the ALSA null device
# ---------------------------------------------------------------------------------------------

def test_cli_play_song_file_mute_vocals(tmp_path, tiny_umx):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from conftest import make_song

    from unmix_desktop.audio.io import save_audio
    from unmix_desktop.separation.bundle import save_bundle

    song = tmp_path / "song.wav"
    save_audio(song, make_song(15.0)["mixture"], subtype="FLOAT")  # two windows of 11.5 s
    bundle = save_bundle(tmp_path / "tiny", tiny_umx, card={"name": "tiny", "description": "t"})
    env = dict(os.environ)
    env["ALSA_CONFIG_PATH"] = str(Path(__file__).with_name("alsa_null.conf"))
    env["UNMIX_CACHE_DIR"] = str(tmp_path / "cache")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1])] + sys.path)
    cmd = [sys.executable, "-m", "unmix_desktop.cli", "play", str(song), "--model", str(bundle),
           "--mute", "vocals"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "separating while playing" in r.stdout and ": accompaniment" in r.stdout
    assert "0:15.0 / 0:15.0" in r.stdout  # played to the end
    assert "Traceback" not in r.stderr
    # the separation finished while it played: cached, the second time plays at once
    r2 = subprocess.run(cmd + ["--duration", "1"], capture_output=True, text=True, env=env, timeout=120)
    assert r2.returncode == 0, r2.stderr
    assert "from the cache" in r2.stdout
    bad = subprocess.run([sys.executable, "-m", "unmix_desktop.cli", "play", str(tmp_path / "none.mp3")],
                         capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "none.mp3: file not found" in bad.stderr and "Traceback" not in bad.stderr


# ---------------------------------------------------------------------------------------------
# the window, with a slow real model
# ---------------------------------------------------------------------------------------------

def _slow_model(inner, delay: float):
    """A real (tiny) network that takes ``delay`` seconds per window, so separation takes a while."""
    import time

    from unmix_desktop.separation.base import SpectrogramModel

    class Slow(SpectrogramModel):
        def __init__(self):
            super().__init__()
            self.inner = inner
            self.targets = list(inner.targets)
            self.card = {"name": "slow", "description": "tiny network, slowed down"}

        def forward(self, mag):
            time.sleep(delay)
            return self.inner(mag)

    return Slow().eval()


def test_window_plays_while_separating_waits_at_unready_part_and_resumes(qtbot, tmp_path, tiny_umx):
    pytest.importorskip("pytestqt")
    from conftest import make_song
    from test_ui import WAIT_MS, Harness, _render

    from unmix_desktop.audio.io import save_audio

    path = tmp_path / "Long Song.wav"
    save_audio(path, np.tile(make_song(4.0)["mixture"], (4, 1)), subtype="FLOAT")  # 16 s
    # 2-s windows advancing 1.5 s, 0.6 s each: ~6 s to separate the whole song
    h = Harness(qtbot, tmp_path, _slow_model(tiny_umx, 0.6), window_s=2.0, overlap_s=0.5)
    w = h.window
    h.drop(path)
    qtbot.waitUntil(lambda: w.page == "song" and w.player.playing, timeout=WAIT_MS)
    # playing before the separation ended
    assert w.live and w.sep_task is not None and not w.growing.complete
    ready = w.player.ready_seconds
    assert 0 < ready < 8.0
    out = _render(w.player, 8192)
    assert np.abs(out).max() > 0.01
    assert w.player.position <= w.player.ready_seconds + 1e-9

    # faders work while separating: the vocals go silent
    w.session.set_mute("vocals", True)
    _render(w.player, 4096)
    w.player._engine.levels[:] = 0.0
    _render(w.player, 2048)
    assert w.player.levels()["vocals"] == 0.0 and w.player.levels()["accompaniment"] > 0.0
    w.session.set_mute("vocals", False)

    # a seek past the ready part waits there, with a clear indication
    target = w.player.ready_seconds + 5.0
    assert target < 15.0
    w.seek(target)
    out = _render(w.player, 4096)
    assert w.player.waiting and w.player.position == pytest.approx(target, abs=1e-4)
    assert not out[-2048:].any()
    w._tick()
    assert w.song_page.tracks.ready is not None and w.song_page.tracks.ready < target
    assert "waiting for separation" in w.status_label.text()
    qtbot.waitUntil(lambda: w.song_page.tracks.is_built, timeout=WAIT_MS)
    lane = w.song_page.tracks.lanes["vocals"]
    w._tick()
    assert lane.unready is not None and lane.unready.isVisible()
    # ... and goes on by itself once the separation gets there
    qtbot.waitUntil(lambda: w.player.ready_seconds > target + 0.5, timeout=WAIT_MS)
    out = _render(w.player, 4096)
    assert not w.player.waiting and w.player.position > target and np.abs(out).max() > 0.01

    # the end of the separation: spectrograms, nothing shaded, still playing, cached
    with qtbot.waitSignal(w.song_ready, timeout=WAIT_MS):
        pass
    assert not w.live and w.player.playing and w.song.separation_seconds > 0
    w._tick()
    assert w.song_page.tracks.ready is None
    assert len(h.cache.entries()) == 1
    position = w.player.position
    _render(w.player, 2048)
    assert w.player.position > position
    w.close()
