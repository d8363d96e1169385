"""Mixing math of the live player, driven by calling its callback with numpy buffers (no device)."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from unmix_desktop.audio.mixer import LIMIT_THRESHOLD, XFADE_FRAMES, MixEngine, MixError, MixState, crossfade_curves
from unmix_desktop.audio.player import StemPlayer

SR = 44100
N = 512


class Status:
    def __init__(self, underflow: bool = False):
        self.output_underflow = underflow


OK = Status()


def dc(value: float, frames: int) -> np.ndarray:
    return np.full((frames, 2), value, np.float32)


def ramp_signal(frames: int, scale: float = 1e-6) -> np.ndarray:
    """x[i] = i * scale on both channels: the value tells which frame was played."""
    x = (np.arange(frames, dtype=np.float64) * scale).astype(np.float32)
    return np.stack([x, x], axis=1)


def make_player(stems: dict[str, np.ndarray], blocksize: int = N) -> StemPlayer:
    p = StemPlayer(blocksize=blocksize, open_stream=False)
    p.load(stems)
    return p


def block(p: StemPlayer, frames: int = N, status: Status = OK) -> np.ndarray:
    out = np.full((frames, 2), np.nan, np.float32)  # the callback must write every sample
    p._callback(out, frames, None, status)
    assert p.callback_error is None
    return out


def blocks(p: StemPlayer, count: int, frames: int = N) -> np.ndarray:
    return np.concatenate([block(p, frames) for _ in range(count)])


# MixState ----------------------------------------------------------------------------------------
def test_gains_follow_mute_solo_pan_and_master():
    s = MixState.from_names(["vocals", "drums", "bass", "other"])
    np.testing.assert_array_equal(s.gains(), np.ones((4, 2), np.float32))
    s.set_mute("vocals", True)
    s.set_gain_db("drums", -6.0)
    s.set_pan("bass", 0.5)  # balance: right turns the left channel down
    s.set_pan("other", -1.0)
    g = s.gains()
    assert g[0].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(g[1], [10 ** (-6 / 20)] * 2, rtol=1e-6)
    np.testing.assert_allclose(g[2], [0.5, 1.0])
    np.testing.assert_allclose(g[3], [1.0, 0.0])

    s.set_master_db(-20.0)
    np.testing.assert_allclose(s.gains()[2], [0.05, 0.1], rtol=1e-6)
    s.set_master_db(0.0)

    # any number of solos; solo wins over mute
    s.set_solo("vocals", True)
    s.set_solo("bass", True)
    assert [s.audible(n) for n in s.names] == [True, False, True, False]
    g = s.gains()
    assert g[0].tolist() == [1.0, 1.0] and g[1].tolist() == [0.0, 0.0] and g[3].tolist() == [0.0, 0.0]
    s.set_solo("vocals", False)
    s.set_solo("bass", False)
    assert [s.audible(n) for n in s.names] == [False, True, True, True]


def test_gain_range_and_bad_values():
    s = MixState.from_names(["a"])
    s.set_gain_db("a", 12.0)
    assert s.gain_db["a"] == 6.0
    np.testing.assert_allclose(s.gains()[0], [10 ** (6 / 20)] * 2, rtol=1e-6)
    s.set_gain_db("a", -math.inf)
    assert s.gains()[0].tolist() == [0.0, 0.0]
    s.set_pan("a", 3)
    assert s.pan["a"] == 1.0
    with pytest.raises(MixError, match="unknown stem 'b'"):
        s.set_mute("b", True)
    with pytest.raises(MixError, match="must be a number"):
        s.set_gain_db("a", float("nan"))
    with pytest.raises(MixError, match="must be a number"):
        s.set_pan("a", "left")
    copy = s.copy()
    copy.set_mute("a", True)
    assert not s.mute["a"]


# callback math ------------------------------------------------------------------------------------
def test_callback_output_is_the_gained_sum():
    rng = np.random.default_rng(1)
    stems = {n: (0.1 * rng.standard_normal((3000, 2))).astype(np.float32) for n in ("vocals", "drums", "bass")}
    p = make_player(stems)
    p.set_gain_db("drums", -6)
    p.set_pan("bass", -0.25)
    p.set_mute("vocals", True)
    p.play()
    out = blocks(p, 6)  # 3072 frames: the song ends inside the last block
    g = p.mix_state().gains()
    expected = sum(stems[n] * g[i] for i, n in enumerate(stems))
    np.testing.assert_allclose(out[:3000], expected, atol=1e-7)
    assert not out[3000:].any()
    assert not p.playing and p.position == 3000 / SR == p.duration


def test_position_is_sample_exact_and_playback_ends():
    p = make_player({"a": dc(0.25, 10 * N + 100)})
    assert p.position == 0.0 and p.duration == (10 * N + 100) / SR
    block(p)
    assert p.position == 0.0  # paused: nothing advances, silence
    p.play()
    assert p.playing
    for i in range(1, 11):
        out = block(p)
        assert p.position == i * N / SR
        assert np.all(out == 0.25)
    out = block(p)
    assert np.all(out[:100] == 0.25) and not out[100:].any()
    assert p.position == p.duration and not p.playing
    assert not block(p).any()
    p.play()  # play at the end starts over
    block(p)
    assert p.position == N / SR


def test_other_block_sizes_and_odd_frames():
    p = make_player({"a": ramp_signal(5000)}, blocksize=256)
    p.play()
    out = np.concatenate([block(p, f) for f in (256, 100, 1024, 7, 3613, 300)])
    np.testing.assert_array_equal(out[:5000], ramp_signal(5000))
    assert p.position == 5000 / SR


def test_gain_change_is_ramped_over_one_block():
    p = make_player({"a": dc(0.5, 20 * N)})
    p.play()
    assert np.all(blocks(p, 2) == 0.5)
    p.set_gain_db("a", -math.inf)
    out = block(p)
    t = np.arange(1, N + 1) / N
    np.testing.assert_allclose(out[:, 0], 0.5 * (1 - t), atol=1e-7)
    assert not block(p).any()
    p.set_gain_db("a", 0.0)
    out = np.concatenate([np.full((1, 2), 0.0, np.float32), block(p), block(p)])
    np.testing.assert_allclose(out[1 : N + 1, 1], 0.5 * t, atol=1e-7)
    # no discontinuity: the largest step is the ramp slope
    assert np.abs(np.diff(out, axis=0)).max() <= 0.5 / N + 1e-6


@pytest.mark.parametrize("change", ["mute", "solo_other", "pan", "master"])
def test_every_control_is_ramped(change):
    p = make_player({"a": dc(0.5, 20 * N), "b": dc(0.0, 20 * N)})
    p.play()
    before = block(p)
    if change == "mute":
        p.set_mute("a", True)
    elif change == "solo_other":
        p.set_solo("b", True)
    elif change == "pan":
        p.set_pan("a", 1.0)
    else:
        p.set_master_db(-math.inf)
    out = np.concatenate([before, block(p), block(p)])
    assert np.abs(np.diff(out, axis=0)).max() <= 0.5 / N + 1e-6
    assert not out[2 * N :, 0].any()  # the left channel is off at the end in every case


def test_seek_crossfades_and_lands_on_the_frame():
    sig = ramp_signal(80 * N)
    p = make_player({"a": sig})
    p.play()
    blocks(p, 4)
    old = 4 * N
    p.seek(20000 / SR)
    assert p.position == 20000 / SR  # the UI sees the target at once
    out = block(p)
    fade_in, fade_out = crossfade_curves(XFADE_FRAMES)
    L = XFADE_FRAMES
    expected = sig[20000 : 20000 + N].copy()
    expected[:L] = sig[20000 : 20000 + L] * fade_in[:, None] + sig[old : old + L] * fade_out[:, None]
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert p.position == (20000 + N) / SR
    np.testing.assert_array_equal(block(p), sig[20000 + N : 20000 + 2 * N])


def test_seek_while_paused_then_play_fades_in():
    sig = dc(0.5, 40 * N)
    p = make_player({"a": sig})
    p.seek(1000 / SR)
    block(p)
    assert p.position == 1000 / SR and not p.playing
    p.play()
    out = block(p)
    np.testing.assert_allclose(out[:, 0], 0.5 * np.arange(1, N + 1) / N, atol=1e-7)  # fade in
    assert p.position == (1000 + N) / SR


def test_pause_fades_out_and_resume_fades_in():
    p = make_player({"a": dc(0.5, 40 * N)})
    p.play()
    blocks(p, 3)
    p.pause()
    assert not p.playing  # the UI sees the request at once
    out = np.concatenate([blocks(p, 3), np.zeros((0, 2), np.float32)])
    t = np.arange(1, N + 1) / N
    np.testing.assert_allclose(out[:N, 0], 0.5 * (1 - t), atol=1e-7)
    assert not out[N:].any()
    assert p.position == 4 * N / SR  # the fade-out block was played
    p.play()
    out = block(p)
    np.testing.assert_allclose(out[:, 0], 0.5 * t, atol=1e-7)


def test_stop_fades_out_and_returns_to_start():
    p = make_player({"a": dc(0.5, 40 * N)})
    p.play()
    blocks(p, 3)
    p.stop()
    out = block(p)
    np.testing.assert_allclose(out[:, 0], 0.5 * (1 - np.arange(1, N + 1) / N), atol=1e-7)
    assert p.position == 0.0 and not p.playing
    assert not block(p).any()



def _ui_inside_the_block_that_ends(monkeypatch, p: StemPlayer, ui) -> None:
    """Run ``ui(p)`` while the callback is in the block that plays into the end of the song (the UI thread
    runs while the audio thread is in numpy, which releases the GIL), then finish that block."""
    render_block = MixEngine._render_block
    done = []

    def inside(engine, out, target):
        if not done and engine.playing and engine.pos + out.shape[0] >= engine.n_frames:
            done.append(True)
            ui(p)
        return render_block(engine, out, target)

    monkeypatch.setattr(MixEngine, "_render_block", inside)
    block(p)
    monkeypatch.undo()
    assert done


def test_a_seek_asked_while_playing_plays_on_when_the_song_ends_before_the_callback_takes_it(monkeypatch):
    """Issue 21 (the soak test stopped at 0:00): the UI saw the song playing and asked for a seek; the block
    being rendered then played into the end and stopped the engine; the seek landed on a stopped player.
    A seek keeps the play state it was asked in: playback goes on from its target."""
    p = make_player({"a": dc(0.5, 10 * N + 100)})
    p.play()
    blocks(p, 10)
    seen = {}

    def ui(player):  # e.g. "]" at the end while playing, then back to A
        seen["playing"] = player.playing
        player.seek(2 * N / SR)

    _ui_inside_the_block_that_ends(monkeypatch, p, ui)
    assert seen["playing"] and p.playing and p.position == 2 * N / SR  # the seek is still pending
    out = block(p)
    assert p.playing and p.position == 3 * N / SR
    np.testing.assert_allclose(out[:, 0], 0.5 * np.arange(1, N + 1) / N, atol=1e-7)  # fades in from the stop
    assert np.all(block(p) == 0.5)


@pytest.mark.parametrize("then", ["pause", "stop", "seek to the end"])
def test_the_play_state_of_a_seek_yields_to_newer_requests_and_the_end(monkeypatch, then):
    p = make_player({"a": dc(0.5, 10 * N + 100)})
    p.play()
    blocks(p, 10)

    def ui(player):
        player.seek(2 * N / SR)
        if then == "pause":
            player.pause()
        elif then == "stop":
            player.stop()
        else:
            player.seek(player.duration)

    _ui_inside_the_block_that_ends(monkeypatch, p, ui)
    assert not p.playing or then == "seek to the end"
    assert not block(p).any() and not p.playing
    assert p.position == {"pause": 2 * N / SR, "stop": 0.0, "seek to the end": p.duration}[then]
    p.seek(N / SR)  # asked while stopped: stays stopped
    assert not block(p).any() and not p.playing and p.position == N / SR


def _reference_loop(sig: np.ndarray, a: int, b: int, total: int) -> np.ndarray:
    """Straightforward per-sample model of A-B looping with a crossfade after each jump."""
    fade_in, fade_out = crossfade_curves(XFADE_FRAMES)
    out = np.zeros((total, 2), np.float64)
    pos, tail, left = 0, 0, 0
    for i in range(total):
        x = sig[pos].astype(np.float64) if pos < len(sig) else 0.0
        if left:
            j = XFADE_FRAMES - left
            y = sig[tail].astype(np.float64) if tail < len(sig) else 0.0
            x = x * fade_in[j] + y * fade_out[j]
            tail += 1
            left -= 1
        out[i] = x
        pos += 1
        if pos == b:
            tail, left, pos = pos, XFADE_FRAMES, a
    return out


def test_ab_loop_crossfades_and_keeps_sample_exact_position():
    sig = ramp_signal(30 * N)
    p = make_player({"a": sig})
    a, b = 3000, 5000  # not block aligned
    p.set_loop(a / SR, b / SR)
    assert p.loop == (a / SR, b / SR)
    p.play()
    out = blocks(p, 25)
    np.testing.assert_allclose(out, _reference_loop(sig, a, b, 25 * N), atol=1e-6)
    played = 25 * N
    assert p.position == (a + (played - b) % (b - a)) / SR
    p.clear_loop()
    out = blocks(p, 40)
    assert p.position == p.duration and not p.playing


def test_limiter_keeps_a_hot_mix_below_full_scale_and_counts():
    stems = {n: dc(0.6, 4 * N) for n in "abc"}  # 1.8 at unity, 3.59 with +6 dB master
    p = make_player(stems)
    p.set_master_db(6.0)
    p.play()
    out = block(p)
    assert np.all(out < 1.0) and np.all(out > LIMIT_THRESHOLD)
    assert p.clipped == 2 * N
    p.set_master_db(-math.inf)
    down = block(p)
    assert np.all(down < 1.0)
    over = int(np.count_nonzero(1.8 * 10 ** (6 / 20) * (1 - np.arange(1, N + 1) / N) > 1.0))  # pre-limiter
    assert p.clipped == 2 * N + 2 * over
    p.set_master_db(-20.0)
    ramp_up = block(p)
    np.testing.assert_allclose(ramp_up[-1], 1.8 * 0.1, rtol=1e-6)
    quiet = block(p)
    np.testing.assert_allclose(quiet, 1.8 * 0.1, rtol=1e-6)  # below the knee: untouched
    assert p.clipped == 2 * N + 2 * over


def test_limiter_is_continuous_and_odd():
    x = np.linspace(-4, 4, 4001, dtype=np.float32)
    e = MixEngine([np.stack([x, -x], 1)], max_block=8192)
    e.start()
    out = np.empty((4001, 2), np.float32)
    e.render(out)
    y = out[:, 0]
    assert np.all(np.abs(y) < 1.0)
    assert np.all(np.diff(y) >= 0)  # monotonic
    np.testing.assert_array_equal(out[:, 1], -y)
    inside = np.abs(x) <= LIMIT_THRESHOLD
    np.testing.assert_array_equal(y[inside], x[inside])
    assert e.clipped == 2 * int(np.count_nonzero(np.abs(x) > 1.0))


def test_underruns_are_counted():
    p = make_player({"a": dc(0.1, 10 * N)})
    p.play()
    block(p)
    block(p, status=Status(underflow=True))
    block(p)
    block(p, status=Status(underflow=True))
    assert p.underruns == 2


def test_levels_are_post_fader_peaks_that_fall():
    p = make_player({"a": dc(0.5, 100 * N), "b": dc(-0.25, 100 * N)})
    p.set_gain_db("a", -6.0)
    p.play()
    block(p)
    lv = p.levels()
    assert lv["a"] == pytest.approx(0.5 * 10 ** (-6 / 20), rel=1e-5) and lv["b"] == pytest.approx(0.25)
    p.set_mute("b", True)
    blocks(p, 40)
    lv2 = p.levels()
    assert lv2["a"] == pytest.approx(lv["a"], rel=1e-5)
    # the mute ramp block still peaks at ~0.25, then 39 blocks of falling at 24 dB/s
    assert lv2["b"] == pytest.approx(0.25 * (1 - 1 / N) * 10 ** (-24 * 39 * N / SR / 20), rel=1e-3)
    assert set(lv2) == {"a", "b"}


def test_stems_of_different_lengths_are_padded():
    p = make_player({"long": dc(0.25, 3 * N), "short": dc(0.5, N + 10)})
    p.play()
    out = blocks(p, 3)
    assert np.all(out[: N + 10] == 0.75) and np.all(out[N + 10 :] == 0.25)
    assert p.duration == 3 * N / SR


def test_callback_allocates_no_audio_buffers():
    """1000 callbacks with a parameter change, a seek and a loop jump in between: no array allocations.

    tracemalloc sees numpy's data buffers; one (2048, 2) float32 block is 16 KiB. What remains is
    numpy's small fixed-size objects (views, scalars, reduction iterators), freed at once."""
    rng = np.random.default_rng(0)
    stems = {f"s{i}": (0.1 * rng.standard_normal((SR * 4, 2))).astype(np.float32) for i in range(4)}
    frames = 2048
    p = make_player(stems, blocksize=frames)
    p.set_loop(0.5, 3.5)
    p.set_master_db(6.0)  # hot enough for the limiter to work
    p.play()
    out = np.zeros((frames, 2), np.float32)
    for _ in range(5):  # warm up
        p._callback(out, frames, None, OK)
    targets = [MixState.from_names(stems).gains() * (1 + 0.01 * i) for i in range(8)]
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for i in range(1000):
            if i % 7 == 0:
                p._target = targets[i % 8]  # what set_gain_db publishes: a prepared array
            if i == 500:
                p._seek = (p._seek[0] + 1, SR, True)
            p._callback(out, frames, None, OK)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert p.callback_error is None and p.playing and p.clipped > 0
    assert current - base < 2048
    assert peak - base < 4096


def test_load_replaces_the_song_and_ignores_a_stale_target():
    p = make_player({"a": dc(0.5, 10 * N)})
    p.play()
    block(p)
    stale = p._target
    p.load({"x": dc(0.25, 4 * N), "y": dc(0.25, 4 * N)})
    assert not p.playing and p.position == 0.0 and p.names == ("x", "y") and p.duration == 4 * N / SR
    p._target = stale  # what a callback can see for an instant while load() runs
    assert not block(p).any()
    p.set_gain_db("x", -math.inf)
    p.play()
    assert np.all(block(p) == 0.25)


def test_player_api_of_the_architecture_document():
    p = StemPlayer(open_stream=False)
    for name in ("available", "unavailable_reason", "load", "play", "pause", "stop", "seek", "position", "duration",
                 "playing", "set_gain_db", "set_mute", "set_solo", "set_pan", "set_master_db", "set_loop",
                 "clear_loop", "levels", "underruns", "clipped", "mix_state", "close"):
        assert hasattr(p, name), name
    assert p.available and p.unavailable_reason is None and p.levels() == {} and p.duration == 0.0
    state = p.mix_state()
    assert isinstance(state, MixState) and state.names == ()
    p.close()
