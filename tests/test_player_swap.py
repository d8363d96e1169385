"""StemPlayer.replace_stems: the best-quality stems replace the fast ones during playback at a block
boundary, crossfaded: no gap, no click, position / play state / loop kept (rendered with process())."""

from __future__ import annotations

import numpy as np

from unmix_desktop.audio.mixer import MixState
from unmix_desktop.audio.player import StemPlayer

SR = 44100


def _song(seconds: float = 3.0):
    t = np.arange(int(seconds * SR)) / SR
    vocals = 0.3 * np.sin(2 * np.pi * 440 * t)
    drums = 0.2 * np.sin(2 * np.pi * 97 * t)
    bass = 0.2 * np.sin(2 * np.pi * 55 * t)
    other = 0.1 * np.sin(2 * np.pi * 660 * t)
    st = lambda x: np.stack([x, x], 1).astype(np.float32)  # noqa: E731
    two = {"vocals": st(vocals), "accompaniment": st(drums + bass + other)}
    four = {"vocals": st(vocals), "drums": st(drums), "bass": st(bass), "other": st(other),
            "accompaniment": st(drums + bass + other)}
    return two, four


def _render(player, frames: int) -> np.ndarray:
    out = np.zeros((frames, 2), np.float32)
    for start in range(0, frames, 512):
        player.process(out[start:start + 512])
    return out


def test_swap_while_playing_is_seamless_and_keeps_position_and_loop():
    two, four = _song()
    ref = StemPlayer(open_stream=False, stretch_thread=False)
    ref.load(two)
    p = StemPlayer(open_stream=False, stretch_thread=False)
    p.load(two)
    for player in (ref, p):
        player.set_loop(0.5, 2.5)
        player.seek(0.6)
        player.play()
    a_ref = _render(ref, 512 * 40)
    a = _render(p, 512 * 40)
    before = p.position
    state = MixState.from_names(four)
    state.set_mute("accompaniment", True)  # the four stems alone sum to the song
    assert p.replace_stems(four, SR, state)
    assert p.position == before and p.playing and p.loop == (0.5, 2.5)
    b = _render(p, 512 * 200)  # goes past B: the loop still wraps
    b_ref = _render(ref, 512 * 200)
    # the same music goes on: the swapped output equals the unswapped one (the sums are the same song)
    assert np.abs(a - a_ref).max() < 1e-6
    assert np.abs(b - b_ref).max() < 1e-4
    assert p.loop_passes == ref.loop_passes >= 1
    assert list(p.mix_state().names) == list(four)
    assert p.mix_state().mute["accompaniment"]


def test_swap_when_paused_and_the_mix_applies_to_the_new_stems():
    two, four = _song()
    p = StemPlayer(open_stream=False, stretch_thread=False)
    p.load(two)
    p.seek(1.25)
    assert p.replace_stems(four, SR)  # default: 0 dB each
    assert p.position == 1.25 and not p.playing
    p.set_mute("accompaniment", True)
    p.set_mute("drums", True)
    p.play()
    out = _render(p, 512 * 20)
    expect = four["vocals"] + four["bass"] + four["other"]
    start = int(1.25 * SR)
    # after the start's fade-in block the output is exactly the new mix
    np.testing.assert_allclose(out[2048:], expect[start + 2048:start + 512 * 20], atol=1e-5)


def test_swap_refused_at_another_rate():
    two, four = _song(1.0)
    p = StemPlayer(open_stream=False, stretch_thread=False)
    p.load(two)
    assert not p.replace_stems(four, 48000)
    assert list(p.mix_state().names) == list(two)


def test_swap_to_different_audio_is_a_ramp_not_a_step():
    """New stems at half the level: the block of the swap ramps from the old level to the new one."""
    two, _ = _song()
    half = {k: v * 0.5 for k, v in two.items()}
    p = StemPlayer(open_stream=False, stretch_thread=False)
    p.load(two)
    p.play()
    _render(p, 512 * 10)
    start = int(round(p.position * SR))
    assert p.replace_stems(half, SR)
    out = _render(p, 512 * 4)
    mix = two["vocals"] + two["accompaniment"]
    ramp = np.arange(1, 513, dtype=np.float32) / 512
    expect = mix[start:start + 512] * (1 - 0.5 * ramp)[:, None]
    np.testing.assert_allclose(out[:512], expect, atol=1e-5)
    np.testing.assert_allclose(out[512:], 0.5 * mix[start + 512:start + 2048], atol=1e-5)


def test_levels_while_a_swap_waits_for_the_next_block():
    two, four = _song(1.0)
    p = StemPlayer(open_stream=False, stretch_thread=False)
    p.load(two)
    p.play()
    _render(p, 2048)
    assert p.replace_stems(four, SR)
    assert set(p.levels()) == set(four)  # the meters never index the old engine with the new names
    _render(p, 2048)
    assert set(p.levels()) == set(four) and max(p.levels().values()) > 0
