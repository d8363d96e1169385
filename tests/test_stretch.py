"""Tempo and key: Rubber Band R3 offline (export) and real time (player), measured on sines and clicks.

The player is driven without a device (``open_stream=False``). Most tests use
``stretch_thread=False``: the callback runs the producer itself, so the output is deterministic;
one test runs the real producer thread with a paced callback.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from unmix_desktop.audio.export import export_mix, render_mix
from unmix_desktop.audio.mixer import MixState
from unmix_desktop.audio.player import StemPlayer
from unmix_desktop.audio.stretch import AudioRing, StretchError, pitch_scale, semitone_cents, stretch_offline

SR = 44100
BLOCK = 512


class Status:
    output_underflow = False


def sine(freq: float, seconds: float, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(seconds * SR))) / SR
    x = (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x, x], axis=1)


def clicks(period: float, seconds: float, first: float = 0.25) -> np.ndarray:
    """Short decaying 2 kHz bursts every ``period`` seconds."""
    out = np.zeros((int(seconds * SR), 2), np.float32)
    burst = (0.8 * np.sin(2 * np.pi * 2000 * np.arange(441) / SR) * np.exp(-np.arange(441) / 80)).astype(np.float32)
    t = first
    while t < seconds - 0.02:
        i = int(round(t * SR))
        out[i:i + 441, 0] += burst
        out[i:i + 441, 1] += burst
        t += period
    return out


def frequency(x: np.ndarray) -> float:
    """Frequency of the strongest partial in the middle half (zero-padded FFT, parabolic peak)."""
    m = x[len(x) // 4: 3 * len(x) // 4, 0].astype(np.float64)
    spec = np.abs(np.fft.rfft(m * np.hanning(len(m)), 8 * len(m)))
    k = int(np.argmax(spec))
    a, b, c = np.log(spec[k - 1:k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * SR / (8 * len(m))


def cents(f: float, ref: float) -> float:
    return 1200.0 * math.log2(f / ref)


def onsets(x: np.ndarray, threshold: float = 0.2) -> np.ndarray:
    """Times (s) where the envelope first rises above ``threshold`` of its peak, 50 ms apart at least."""
    env = np.abs(x[:, 0])
    above = np.flatnonzero(env > threshold * env.max())
    starts = [above[0]] + [b for a, b in zip(above[:-1], above[1:]) if b - a > 0.05 * SR]
    return np.array(starts) / SR


def period_of(times: np.ndarray) -> float:
    return float(np.polyfit(np.arange(len(times)), times, 1)[0])


def play_all(p: StemPlayer, max_blocks: int = 5000, block: int = BLOCK) -> np.ndarray:
    out = np.zeros((block, 2), np.float32)
    parts = []
    for _ in range(max_blocks):
        p._callback(out, block, None, Status())
        parts.append(out.copy())
        if not p.playing:
            break
    assert p.callback_error is None
    return np.concatenate(parts)


def sync_player(stems) -> StemPlayer:
    p = StemPlayer(open_stream=False, stretch_thread=False)
    p.load(stems)
    return p


# offline (export) ---------------------------------------------------------------------------------
def test_offline_tempo_and_key_give_the_length_and_pitch():
    y = stretch_offline(sine(440.0, 10.0), tempo=0.8, semitones=-2)
    assert y.shape == (551250, 2) and y.dtype == np.float32  # 12.5 s
    assert abs(cents(frequency(y), 392.0)) < 5  # 440 Hz two semitones down is 392.0 Hz


def test_offline_key_alone_keeps_the_length():
    y = stretch_offline(sine(440.0, 10.0), semitones=3, cents=-50)
    assert y.shape[0] == 10 * SR
    assert abs(cents(frequency(y), 440.0 * 2 ** (2.5 / 12))) < 5


def test_offline_tempo_alone_keeps_the_pitch_and_stretches_a_click_train():
    y = stretch_offline(sine(440.0, 6.0), tempo=0.75)
    assert y.shape[0] == 8 * SR
    assert abs(cents(frequency(y), 440.0)) < 5
    c = stretch_offline(clicks(0.5, 10.0), tempo=0.75)
    times = onsets(c)
    assert len(times) == 20
    assert abs(period_of(times) / (0.5 / 0.75) - 1) < 0.01  # 0.667 s apart
    c = stretch_offline(clicks(0.5, 10.0), tempo=1.6)
    assert abs(period_of(onsets(c)) / (0.5 / 1.6) - 1) < 0.01


def test_bypass_is_the_input_itself_and_ranges_are_checked():
    x = sine(440.0, 0.5)
    assert stretch_offline(x, 1.0, 0, 0) is x
    for bad in (0.2, 2.5, float("nan"), "fast"):
        with pytest.raises(StretchError):
            stretch_offline(x, tempo=bad)
    with pytest.raises(StretchError):
        stretch_offline(x, semitones=13)
    with pytest.raises(StretchError):
        stretch_offline(x, semitones=0, cents=150)
    assert pitch_scale(-2) == pytest.approx(392.0 / 440.0, rel=1e-3)
    assert semitone_cents(-1.5) == (-1.0, -50.0)


def test_export_equals_the_offline_path(tmp_path):
    stems = {"vocals": sine(440.0, 3.0), "drums": clicks(0.4, 3.0)}
    state = MixState.from_names(stems)
    state.set_gain_db("drums", -6)
    plain = render_mix(stems, state)
    stretched = render_mix(stems, state, tempo=0.8, semitones=-2)
    np.testing.assert_array_equal(stretched, stretch_offline(plain, 0.8, -2))
    assert np.array_equal(render_mix(stems, state, tempo=1.0, semitones=0), plain)
    path = export_mix(tmp_path / "mix.wav", stems, state, tempo=0.8, semitones=-2, subtype="FLOAT")
    written, sr = sf.read(path, dtype="float32")
    assert sr == SR and np.array_equal(written, stretched)


def test_cli_mix_with_tempo_and_key(tmp_path):
    folder = tmp_path / "stems"
    folder.mkdir()
    sf.write(folder / "vocals.wav", sine(440.0, 4.0), SR, subtype="FLOAT")
    sf.write(folder / "accompaniment.wav", 0.5 * sine(220.0, 4.0), SR, subtype="FLOAT")
    out = tmp_path / "slow.wav"
    r = subprocess.run([sys.executable, "-m", "unmix_desktop.cli", "mix", str(folder), "--tempo", "0.8",
                        "--key", "-2", "--mute", "accompaniment", "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "(5.0 s)" in r.stdout
    y, sr = sf.read(out, dtype="float32")
    assert y.shape[0] == 5 * SR and abs(cents(frequency(y), 392.0)) < 5
    bad = subprocess.run([sys.executable, "-m", "unmix_desktop.cli", "mix", str(folder), "--tempo", "3",
                          "--out", str(tmp_path / "x.wav")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip() == "unmix: error: tempo 3.0 is outside 0.25..2"
    assert not (tmp_path / "x.wav").exists()


# live player ---------------------------------------------------------------------------------------
def test_player_tempo_and_key_length_pitch_and_song_time():
    p = sync_player({"a": sine(440.0, 10.0)})
    p.set_tempo(0.8)
    p.set_key(-2)
    assert p.tempo == 0.8 and p.key == (-2.0, 0.0)
    p.play()
    y = play_all(p)
    sounding = np.flatnonzero(np.abs(y[:, 0]) > 1e-3)
    assert abs((sounding[-1] - sounding[0]) / SR - 12.5) < 0.03
    assert abs(cents(frequency(y[sounding[0]:sounding[-1]]), 392.0)) < 5
    assert p.position == 10.0 and p.stretch_underruns == 0  # song time, not played time


def test_player_tempo_alone_stretches_a_click_train_and_reports_song_time():
    p = sync_player({"click": clicks(0.5, 8.0)})
    p.set_tempo(0.75)
    p.play()
    out = np.zeros((BLOCK, 2), np.float32)
    parts, positions = [], []
    while p.playing and len(parts) < 3000:
        p._callback(out, BLOCK, None, Status())
        parts.append(out.copy())
        positions.append(p.position)
    y = np.concatenate(parts)
    assert abs(period_of(onsets(y)) / (0.5 / 0.75) - 1) < 0.01
    # the position advances at 0.75 s of song per second played
    k = int(4.0 * SR / BLOCK)
    rate = (positions[2 * k] - positions[k]) / (k * BLOCK / SR)
    assert abs(rate - 0.75) < 0.01


def test_player_key_alone_keeps_the_length():
    p = sync_player({"a": sine(440.0, 6.0)})
    p.set_key(4, 0)
    p.play()
    y = play_all(p)
    sounding = np.flatnonzero(np.abs(y[:, 0]) > 1e-3)
    assert abs((sounding[-1] - sounding[0]) / SR - 6.0) < 0.03
    assert abs(cents(frequency(y[sounding[0]:sounding[-1]]), 440.0 * 2 ** (4 / 12))) < 5


def test_bypass_is_bit_identical():
    stems = {"a": sine(440.0, 2.0), "b": clicks(0.3, 2.0)}
    p = sync_player(stems)
    p.set_tempo(0.7)
    p.set_key(3, 20)
    p.set_tempo(1.0)  # back to the original before playing
    p.set_key(0)
    p.set_gain_db("b", -3)
    p.play()
    y = play_all(p)
    assert not p.stretching
    assert np.array_equal(y[: 2 * SR], render_mix(stems, p.mix_state(), blocksize=BLOCK))


def test_changes_mid_play_crossfade_without_clicks_or_gaps():
    """Bypass -> stretched -> other tempo/key -> faders -> bypass -> stretched, on a 440 Hz sine:
    no sample step larger than the sine's own slope and no quiet block."""
    p = sync_player({"a": sine(440.0, 12.0, 0.3), "b": sine(440.0, 12.0, 0.15)})
    p.play()
    out = np.zeros((BLOCK, 2), np.float32)
    parts, modes = [], []
    events = {40: lambda: p.set_tempo(0.75), 120: lambda: p.set_key(-2), 200: lambda: p.set_tempo(1.3),
              260: lambda: p.set_gain_db("b", -60), 330: lambda: (p.set_tempo(1.0), p.set_key(0)),
              420: lambda: p.set_key(0, 50), 500: lambda: p.seek(2.0)}
    for i in range(600):
        if i in events:
            events[i]()
        p._callback(out, BLOCK, None, Status())
        parts.append(out.copy())
        modes.append(p.stretching)
    y = np.concatenate(parts)
    slope = 2 * np.pi * 440 / SR * 0.45
    assert np.abs(np.diff(y[:, 0])).max() < 1.1 * slope
    level = np.abs(y[:, 0]).reshape(-1, BLOCK).max(axis=1)
    assert level[2:].min() > 0.15  # every block sounds (the -60 dB stem leaves 0.3; a gap would be 0)
    assert not modes[39] and modes[41] and not modes[340] and modes[430]
    assert p.stretch_underruns == 0 and p.callback_error is None


def test_seek_and_loop_while_stretched_stay_in_song_time():
    p = sync_player({"a": sine(330.0, 6.0)})
    p.set_tempo(0.5)
    p.set_loop(1.0, 2.0)
    p.seek(1.5)
    p.play()
    out = np.zeros((BLOCK, 2), np.float32)
    inside, steps = [], []
    last = None
    for i in range(1200):  # 14 s played: about 3.5 passes of a 1 s loop at half speed
        p._callback(out, BLOCK, None, Status())
        if i > 20:
            inside.append(0.99 <= p.position <= 2.01)
        if last is not None:
            steps.append(abs(out[0, 0] - last))
        steps.append(float(np.abs(np.diff(out[:, 0])).max()))
        last = out[-1, 0]
    assert all(inside)
    assert p.loop_passes >= 3
    # 1.15: Rubber Band 3.1 (Debian) starts the stretched output with one step 1 % above 1.1x the slope
    assert max(steps) < 1.15 * 2 * np.pi * 330 / SR * 0.3
    p.clear_loop()
    p.seek(5.0)
    assert p.position == 5.0  # a pending seek shows its target
    for _ in range(40):
        p._callback(out, BLOCK, None, Status())
    assert 5.0 < p.position < 5.5


def test_pause_and_resume_while_stretched():
    p = sync_player({"a": sine(440.0, 4.0)})
    p.set_tempo(0.8)
    p.play()
    play_blocks = [np.zeros((BLOCK, 2), np.float32) for _ in range(60)]
    for b in play_blocks:
        p._callback(b, BLOCK, None, Status())
    p.pause()
    out = np.zeros((BLOCK, 2), np.float32)
    for _ in range(30):
        p._callback(out, BLOCK, None, Status())
    assert not p.playing and not out.any()
    paused_at = p.position
    assert 0.5 < paused_at < 0.75
    p.play()
    y = play_all(p)
    assert p.position == 4.0 and p.stretch_underruns == 0
    assert abs(len(y) / SR - (4.0 - paused_at) / 0.8) < 0.3


def test_count_in_plays_first_then_the_song():
    from unmix_desktop.analysis.practice import count_in

    bar = count_in(120.0, 4, tempo=1.0)
    assert bar.shape[0] == 2 * SR  # four beats at 120 BPM
    song = {"a": np.full((SR, 2), 0.25, np.float32)}
    p = sync_player(song)
    p.play(count_in=bar)
    y = play_all(p)
    np.testing.assert_array_equal(y[: bar.shape[0]], bar)
    assert np.all(y[bar.shape[0]: bar.shape[0] + SR] == 0.25)
    assert p.position == 1.0


@pytest.mark.serial  # real time / wall-clock bound: runs alone (make test)
def test_the_real_producer_thread_keeps_up():
    """The producer in its own thread, the callback paced to the wall clock: no underrun."""
    p = StemPlayer(open_stream=False)
    p.load({"a": sine(440.0, 8.0), "b": clicks(0.5, 8.0)})
    p.play()
    out = np.zeros((BLOCK, 2), np.float32)
    t0 = time.perf_counter()
    for i in range(300):
        if i == 20:
            p.set_tempo(0.75)
            p.set_key(-2)
        if i == 150:
            p.set_tempo(1.25)
        p._callback(out, BLOCK, None, Status())
        delay = t0 + (i + 1) * BLOCK / SR - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    p.close()
    assert p.callback_error is None and p.stretch_underruns == 0 and p.producer_cpu_s > 0


def test_ring_wraps():
    ring = AudioRing(8)
    out = np.zeros((8, 2), np.float32)
    for k in range(5):
        ring.write(np.full((5, 2), k, np.float32), np.arange(5.0) + 10 * k)
        assert ring.read_into(out, 5) == 10 * k + 5
        assert np.all(out[:5] == k)
    assert ring.fill == 0 and ring.read_into(out, 0) == -1.0


def test_standard_window_option():
    p = StemPlayer(open_stream=False, stretch_thread=False, stretch_window="standard")
    p.load({"a": sine(440.0, 5.0)})
    p.set_tempo(1.25)
    p.set_key(-2)
    p.play()
    y = play_all(p)
    sounding = np.flatnonzero(np.abs(y[:, 0]) > 1e-3)
    assert abs((sounding[-1] - sounding[0]) / SR - 4.0) < 0.03
    assert abs(cents(frequency(y[sounding[0]:sounding[-1]]), 392.0)) < 5
    with pytest.raises(StretchError):
        StemPlayer(open_stream=False, stretch_window="long")


def test_the_stretch_callback_does_not_allocate():
    """While stretching, the callback only copies from the ring: no audio buffer is allocated."""
    import tracemalloc

    p = StemPlayer(open_stream=False)
    p.load({"a": sine(440.0, 5.0)})
    p.set_tempo(0.8)
    p.play()
    out = np.zeros((BLOCK, 2), np.float32)
    deadline = time.monotonic() + 5
    while p._ring.fill < 1500 and time.monotonic() < deadline:
        p._callback(out, BLOCK, None, Status())
        time.sleep(0.012)
    assert p.stretching
    p._producer.stop_thread()  # from here the ring is fed by the test, not by the producer
    audio = np.full((28000, 2), 0.1, np.float32)
    p._ring.write(audio, np.arange(28000, dtype=np.float64))
    for _ in range(3):
        p._callback(out, BLOCK, None, Status())
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(40):
            p._callback(out, BLOCK, None, Status())
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert p.callback_error is None and np.all(out == 0.1)
    assert current - base < 2048 and peak - base < 4096  # a 512-frame block alone would be 4096 bytes


def test_loop_trainer_drives_the_player_tempo_at_each_wrap():
    from unmix_desktop.analysis.practice import LoopTrainer

    p = sync_player({"a": sine(330.0, 4.0)})
    trainer = LoopTrainer(0.7, 0.1, 1.0)
    p.set_loop(1.0, 1.5)
    p.seek(1.0)
    p.set_tempo(trainer.tempo)
    trainer.update(p.loop_passes)
    p.play()
    out = np.zeros((BLOCK, 2), np.float32)
    wraps, tempos = [], [p.tempo]
    for i in range(1000):
        p._callback(out, BLOCK, None, Status())
        new = trainer.update(p.loop_passes)
        if new is not None:
            wraps.append(i)
            if new != p.tempo:
                p.set_tempo(new)
                tempos.append(new)
        if len(wraps) == 5:
            break
    assert tempos == [0.7, 0.8, 0.9, 1.0] and trainer.done
    # each pass lasts 0.5 s of song played at that pass's tempo
    seconds = np.diff(wraps) * BLOCK / SR
    np.testing.assert_allclose(seconds[:3], [0.5 / 0.8, 0.5 / 0.9, 0.5 / 1.0], atol=0.03)
    assert not p.stretching  # at 1.0 the stage is bypassed again
