"""Microphone input: YIN pitch on generated voices, the reading ring fed block by block, a real
PortAudio InputStream on the ALSA null device, and the clear state without PortAudio or device.

Stream tests run in a fresh Python process with ``ALSA_CONFIG_PATH`` (see test_player_stream.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_player_stream import needs_portaudio, run_python

from unmix_desktop.audio.mic import Microphone, YinPitch

SR = 44100


def voice(f0: np.ndarray, sr: int = SR, harmonics: int = 6, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """A harmonic 'voice' following the per-sample f0 (Hz) array; float32 (n,)."""
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * phase) / k ** 1.2 for k in range(1, harmonics + 1)) * 0.2
    if noise:
        x = x + noise * np.random.default_rng(seed).standard_normal(x.size)
    return x.astype(np.float32)


@pytest.mark.parametrize("f0", [70.0, 110.0, 196.0, 330.0, 523.25, 880.0, 1046.5])
def test_yin_finds_the_pitch_of_a_voice(f0):
    yin = YinPitch(SR)
    x = voice(np.full(yin.frame, f0), noise=0.01)
    hz, clarity = yin(x)
    assert abs(1200 * np.log2(hz / f0)) < 10
    assert clarity > 0.8


def test_yin_silence_and_noise_are_unvoiced():
    yin = YinPitch(SR)
    assert yin(np.zeros(yin.frame, np.float32)) == (0.0, 0.0)
    noise = np.random.default_rng(1).standard_normal(yin.frame).astype(np.float32) * 0.3
    assert yin(noise)[0] == 0.0
    with pytest.raises(ValueError):
        yin(np.zeros(100))


def test_microphone_readings_follow_a_glide_block_by_block():
    mic = Microphone(open_stream=False)
    assert mic.available and mic.start() is False  # open_stream=False: never opens a stream
    n = 3 * SR
    f0 = np.geomspace(150, 600, n)  # two octaves in 3 s
    x = voice(f0, noise=0.005)
    since = 0
    got_t, got_hz = [], []
    for start in range(0, n, 512):
        mic.process(x[start:start + 512])
        since, r = mic.readings(since)
        got_t.append(r["times"])
        got_hz.append(r["hz"])
    t, hz = np.concatenate(got_t), np.concatenate(got_hz)
    assert t.size == (n - mic.frame) // 512 + 1 and np.all(np.diff(t) > 0)
    truth = f0[np.clip((t * SR).astype(int), 0, n - 1)]
    cents = 1200 * np.log2(hz / truth)
    assert np.mean(np.abs(cents) < 30) > 0.97
    assert mic.level_db > -20 and mic.latest_hz() > 500
    # Sound-to-reading delay without the device's own latency: one block + half a frame.
    assert mic.latency_s == pytest.approx((512 + 1024) / SR)
    assert mic.latency_s < 0.1


def test_ring_keeps_the_newest_readings_and_odd_block_sizes():
    mic = Microphone(open_stream=False)
    x = voice(np.full(60 * SR, 220.0))
    rng = np.random.default_rng(2)
    pos = 0
    while pos < x.size:
        size = int(rng.integers(1, 3000))
        mic.process(x[pos:pos + size])
        pos += size
    assert mic.count == (x.size - mic.frame) // 512 + 1
    count, r = mic.readings(0)
    assert count == mic.count and r["hz"].size == Microphone.CAPACITY - 1
    assert np.all(np.abs(1200 * np.log2(r["hz"] / 220.0)) < 10)
    assert np.all(np.diff(r["times"]) == pytest.approx(512 / SR))


NULL_INPUT = r"""
import json, time
import numpy as np
from unmix_desktop.audio.mic import Microphone, list_input_devices

mic = Microphone(blocksize=512)
result = {"devices": list_input_devices(), "available": mic.available, "reason": mic.unavailable_reason}
result["started"] = mic.start()
result["running"] = mic.running
end = time.monotonic() + 30  # a generous deadline for > 10 readings (about 0.15 s of audio), not a fixed 1 s
while mic.count <= 10 and time.monotonic() < end:
    time.sleep(0.01)
count, r = mic.readings(0)
result.update(count=count, hz_max=float(r["hz"].max()) if count else None, level=mic.level_db,
              latency=mic.latency_s, running_after=mic.running)
mic.stop()
result["stopped"] = not mic.running
bad = Microphone(device=57)
result["bad"] = bad.unavailable_reason
result["bad_start"] = bad.start()
print(json.dumps(result))
"""


@needs_portaudio
def test_real_input_stream_on_the_null_device():
    r = run_python(NULL_INPUT)
    assert r["available"] and r["reason"] is None and r["devices"]
    assert r["started"] and r["running"] and r["running_after"] and r["stopped"]
    assert r["count"] > 10  # the callback ran and made readings
    assert r["level"] <= 0.0  # the null device hands over uninitialised memory: kept in range
    assert r["bad"] == "input device 57 not found" and r["bad_start"] is False


NO_INPUT = r"""
import json
from unmix_desktop.audio.mic import Microphone, list_input_devices
mic = Microphone()
print(json.dumps({"devices": list_input_devices(), "available": mic.available, "reason": mic.unavailable_reason,
                  "start": mic.start()}))
"""


@needs_portaudio
def test_without_an_input_device_the_microphone_says_so():
    r = run_python(NO_INPUT, alsa_conf="/usr/share/alsa/alsa.conf")
    if r["devices"]:
        pytest.skip("this machine has a sound card")
    assert r == {"devices": [], "available": False, "reason": "no input device (microphone)", "start": False}


def test_without_portaudio_the_microphone_says_so():
    code = r"""
import json, sys
class NoPortAudio:
    def find_spec(self, name, path=None, target=None):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return None
sys.meta_path.insert(0, NoPortAudio())
from unmix_desktop.audio.mic import Microphone, list_input_devices
mic = Microphone()
print(json.dumps({"devices": list_input_devices(), "available": mic.available, "reason": mic.unavailable_reason,
                  "start": mic.start()}))
"""
    r = run_python(code)
    assert r == {"devices": [], "available": False, "reason": "no audio output: install libportaudio2", "start": False}
