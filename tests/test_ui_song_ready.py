"""A song's opening in the real window (offscreen Qt), with the event orderings that lost results
before: each test forces one ordering of the worker results that a loaded machine produces now and
then, and checks that the song still becomes ready (spectrograms, ``song_ready`` and what hangs on it).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from conftest import make_song
from test_ui import WAIT_MS, Harness

from unmix_desktop.audio.growing import GrowingStems
from unmix_desktop.audio.io import save_audio


def test_spectrograms_started_between_the_last_window_and_its_result_still_make_the_song_ready(
        qtbot, tmp_path, tiny_umx):
    """The separation's writer marks the growing stems complete on its thread; the "done" result
    reaches the UI thread a little later. A spectrogram job that starts in between (the lanes'
    built-timer fires there) is computed for the partial song object. Before the fix the finished
    result then replaced ``window.song``, the job's outcome was dropped as stale, nothing started a
    new one, and ``song_ready`` never came: no chords, no karaoke jobs (seen as a 60-s timeout of the
    chord lane's test in a loaded run)."""
    path = tmp_path / "Opening.wav"
    save_audio(path, make_song(3.0)["mixture"], subtype="FLOAT")
    h = Harness(qtbot, tmp_path, tiny_umx)
    w = h.window
    h.drop(path)
    h.wait_song()
    whole = w.song
    # the same song again, as play-while-separating shows it: a partial result over growing buffers
    g = GrowingStems(list(whole.stems), whole.mixture.shape[0], slack=0)
    half = whole.mixture.shape[0] // 2
    g.write(0, {n: a[:half] for n, a in whole.stems.items()})
    partial = replace(whole, stems=g.stems, from_cache=False)
    w.song = None   # (a new opening of this path, not the same song shown again)
    w.show_song(partial, g)
    assert w.live
    qtbot.waitUntil(lambda: w.song_page.tracks.is_built, timeout=WAIT_MS)
    assert w.spec_ctl.task is None   # a song still being separated gets its spectrograms when it is done
    # the writer finishes; before its result is delivered, the built-timer's start runs
    g.write(half, {n: a[half:] for n, a in whole.stems.items()})
    g.finish()
    assert not w.live
    w.spec_ctl.start()
    assert w.spec_ctl.task is not None
    # then the result arrives
    result = replace(whole, stems=g.result(), from_cache=False)
    with qtbot.waitSignal(w.song_ready, timeout=WAIT_MS):
        w._on_sep_done(result)
    assert w.song is result and not w.live
    assert w.song_page.tracks.spectrograms_ready
    assert all(np.isfinite(s.image).all() for s in w.spectrograms.values()
               if getattr(s, "image", None) is not None)
    w.close()
