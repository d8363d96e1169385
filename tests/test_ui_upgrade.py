"""Fast first, best later in the real window (offscreen Qt, real StemPlayer rendered by the test): a song
plays from the fast model; the best-quality model (a random 6-source Hybrid Transformer Demucs, installed
in the user models folder) separates it in the background; the stems switch in place with the position,
play state, faders, mutes, loop and markers kept; guitar and piano get strips; the result is cached per
model. And Preferences' "Best quality" row downloads a model from a loopback server with a progress bar."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("pytestqt")
pytest.importorskip("unmix_desktop.separation.demucs", reason="the Demucs package (branch demucs-core) is not merged")
pytest.importorskip("demucs.htdemucs", reason="the reference demucs package (test-only) is not installed")

from test_demucs_cli import SIX, make_checkpoint
from test_ui import WAIT_MS, _render

from unmix_desktop import cache as cache_mod
from unmix_desktop.audio.player import StemPlayer
from unmix_desktop.ui.main_window import MainWindow
from unmix_desktop.ui.settings import AppSettings

SR = 44100


@pytest.fixture
def six_installed(tmp_path, monkeypatch):
    """A random 6-source checkpoint installed as the user model "six" (real files, recorded SHA-256)."""
    import torch

    from unmix_desktop.paths import user_models_dir
    from unmix_desktop.separation import model_store

    torch.set_num_threads(1)
    monkeypatch.setenv("UNMIX_DATA_DIR", str(tmp_path / "data"))
    folder = model_store.import_model([make_checkpoint(tmp_path, SIX)], "six", root=user_models_dir())
    return folder


def _window(qtbot, tmp_path, tiny_umx, best: str | None):
    from unmix_desktop.separation.registry import load_model

    settings = AppSettings(tmp_path / "config" / "unmix-desktop.ini")
    settings.best_model = best
    loads = []

    def loader(name):
        loads.append(name)
        return tiny_umx if name == "tiny" else load_model(name)

    w = MainWindow(settings=settings, model_loader=loader, models=[("tiny", "tiny test model")], default_model="tiny",
                   player_factory=lambda device: StemPlayer(device=device, open_stream=False, stretch_thread=False),
                   stem_cache=cache_mod.StemCache(tmp_path / "cache"), open_url=lambda url: None)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w, loads


def test_switch_to_best_stems_during_playback_keeps_position_and_session(qtbot, tmp_path, tiny_umx, song_path,
                                                                         six_installed):
    w, loads = _window(qtbot, tmp_path, tiny_umx, best="six")
    with qtbot.waitSignal(w.upgrade_ctl.started, timeout=WAIT_MS) as started:
        with qtbot.waitSignal(w.song_ready, timeout=WAIT_MS):
            w.open_song(song_path)
    assert started.args == ["six"]
    assert w.song.model_name == "tiny" and list(w.song.stems) == ["vocals", "accompaniment"]
    s = w.session
    s.set_gain_db("vocals", -6.0)
    s.set_mute("accompaniment", True)
    s.set_loop_a(0.5)
    s.set_loop_b(3.5)
    s.set("markers", [{"t": 1.0, "label": "verse"}])
    w.seek(1.2)
    w.player.play()
    _render(w.player, 512 * 20)
    before = w.player.position
    assert before == pytest.approx(1.2 + 512 * 20 / SR, abs=1e-6)
    with qtbot.waitSignal(w.practice_ctl.beats_ready, timeout=WAIT_MS * 4) as beats:  # again, from the drums
        with qtbot.waitSignal(w.upgrade_ctl.upgraded, timeout=WAIT_MS * 4):
            pass
        assert w.practice_ctl.task is not None
    assert beats.args[0] is w.practice_ctl.grid
    # the best stems are shown in place: same song, same position, still playing, the session carried over
    assert w.song.model_name == "six"
    assert list(w.song.stems) == ["vocals", "drums", "bass", "other", "guitar", "piano", "accompaniment"]
    assert w.player.playing and w.player.position == pytest.approx(before, abs=1e-6)
    s = w.session
    assert s.get("vocals.gain_db") == -6.0
    assert all(s.get(f"{n}.mute") for n in ("accompaniment", "drums", "bass", "other", "guitar", "piano"))
    assert s.loop == (0.5, 3.5) and w.player.loop == pytest.approx((0.5, 3.5))
    assert s.get("markers") == [{"t": 1.0, "label": "verse"}]
    # playback goes on from there (the swap happens at the next block, crossfaded)
    out = _render(w.player, 512 * 8)
    assert w.player.position == pytest.approx(before + 512 * 8 / SR, abs=1e-6)
    assert np.isfinite(out).all()
    mix = w.player.mix_state()
    assert mix.mute["guitar"] and mix.gain_db["vocals"] == -6.0
    with qtbot.waitSignal(w.song_ready, timeout=WAIT_MS):
        pass
    assert {"guitar", "piano"} <= set(w.song_page.tracks.lanes)
    # cached per model: opening the song again gives the fast result from the cache, then the best one
    # from the cache too (no second Demucs run)
    assert loads.count("six") == 1
    with qtbot.waitSignal(w.upgrade_ctl.upgraded, timeout=WAIT_MS):
        w.open_song(song_path)
    with qtbot.waitSignal(w.song_ready, timeout=WAIT_MS):
        pass
    assert w.song.model_name == "six" and w.song.from_cache
    w.close()


def test_preferences_download_with_progress_then_upgrade(qtbot, tmp_path, tiny_umx, song_path, monkeypatch):
    """The "Best quality" row: choose 6 stems, Download (loopback server via $UNMIX_MODEL_BASE_URL), the bar
    moves, the model is installed, OK upgrades the open song."""
    import torch
    from test_model_store import Server

    torch.set_num_threads(1)
    monkeypatch.setenv("UNMIX_DATA_DIR", str(tmp_path / "data"))
    ckpt = make_checkpoint(tmp_path, SIX)
    server = Server()
    try:
        # serve the random checkpoint under the official 6-source name, and tell the catalogue its prefix
        from unmix_desktop.separation import model_store

        real = model_store.known_models()["htdemucs_6s"]["files"][0]
        fake_name = ckpt.name.replace("0000beef", real.split("-")[0])
        server.files["/" + fake_name] = ckpt.read_bytes()
        catalogue = {"htdemucs_6s": {**model_store.known_models()["htdemucs_6s"], "files": [fake_name]}}
        monkeypatch.setattr(model_store, "known_models", lambda: catalogue)
        monkeypatch.setenv(model_store.ENV_BASE_URL, server.url)
        w, _ = _window(qtbot, tmp_path, tiny_umx, best=None)
        with qtbot.waitSignal(w.song_ready, timeout=WAIT_MS):
            w.open_song(song_path)
        dialog = w.prefs_ctl.show_preferences()
        row = dialog.best_row
        assert row is not None and row.value() is None
        row.combo.setCurrentIndex(row.combo.findData("htdemucs_6s"))
        assert row.button.isVisible() and "download" in row.info.text()
        values = []
        row.bar.valueChanged.connect(values.append)
        done = threading.Event()
        task = row.start_download()
        task.finished.connect(done.set)
        qtbot.waitUntil(done.is_set, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: row.task is None, timeout=WAIT_MS)
        assert values and values[-1] == 1000
        assert "installed" in row.info.text() and not row.button.isVisible()
        with qtbot.waitSignal(w.upgrade_ctl.started, timeout=WAIT_MS):
            dialog.accept()
        assert w.settings.best_model == "htdemucs_6s"
        with qtbot.waitSignal(w.upgrade_ctl.upgraded, timeout=WAIT_MS * 4):
            pass
        with qtbot.waitSignal(w.song_ready, timeout=WAIT_MS):  # the new lanes drawn (swap and show: one turn)
            pass
        assert "guitar" in w.song.stems
        w.close()
    finally:
        server.close()


def test_the_queue_caches_the_best_stems_too(qtbot, tmp_path, tiny_umx, song_path, six_installed):
    """With "best quality" chosen, the batch queue separates each song with the fast and the best model into
    the cache: opening the song later swaps to the best stems from the cache (no Demucs run)."""
    from unmix_desktop.separation.settings import SeparationSettings

    w, loads = _window(qtbot, tmp_path, tiny_umx, best="six")
    runner = w.library_ctl.runner
    with qtbot.waitSignal(runner.drained, timeout=WAIT_MS * 4):
        runner.add_paths([song_path])
    digest = cache_mod.file_hash(song_path)
    for model, settings in (("tiny", w.separation_settings()), ("six", SeparationSettings())):
        assert w.stem_cache.has(cache_mod.make_key(digest, model, settings.key(), "")), model
    assert loads.count("six") == 1
    with qtbot.waitSignal(w.upgrade_ctl.upgraded, timeout=WAIT_MS):
        w.open_song(song_path)
    with qtbot.waitSignal(w.song_ready, timeout=WAIT_MS):
        pass
    assert w.song.model_name == "six" and w.song.from_cache and loads.count("six") == 1
    w.close()
