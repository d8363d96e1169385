"""The player on a real PortAudio stream (ALSA "null" device), and without audio at all.

PortAudio reads the ALSA configuration once, when sounddevice initialises it, so every test here
runs its player in a fresh Python process with ``ALSA_CONFIG_PATH=tests/alsa_null.conf`` (the
system configuration plus ``pcm.!default {type null}``); nothing under /etc is touched.

The null PCM has no clock: it takes samples as fast as they come. The 3-second test paces its
callback to the wall clock (it sleeps after each block, like a device that waits for the next
period) so the UI thread's parameter changes land during playback as they would on a sound card.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NULL_CONF = Path(__file__).with_name("alsa_null.conf")

needs_portaudio = pytest.mark.skipif(
    ctypes.util.find_library("portaudio") is None, reason="libportaudio2 is not installed"
)


def run_python(code: str, alsa_conf: Path | str | None = NULL_CONF, timeout: float = 60) -> dict:
    env = dict(os.environ)
    env.pop("ALSA_CONFIG_PATH", None)
    if alsa_conf is not None:
        env["ALSA_CONFIG_PATH"] = str(alsa_conf)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


PLAY_3S = r"""
import json, time
import numpy as np
from unmix_desktop.audio.player import StemPlayer, list_output_devices
from unmix_desktop.audio.export import render_mix

SR, BLOCK, SECONDS = 44100, 512, 3.0
n = int(SECONDS * SR)
t = np.arange(n) / SR
names = ["vocals", "drums", "bass", "other"]
stems = {name: np.stack([0.2 * np.sin(2 * np.pi * 55 * (i + 1) * t)] * 2, 1).astype(np.float32)
         for i, name in enumerate(names)}

capture = np.zeros((n + 64 * BLOCK, 2), np.float32)   # what the stream was given, while playing


class PacedPlayer(StemPlayer):
    # Records the played blocks and sleeps to the wall clock, like a clocked device would.
    def _callback(self, outdata, frames, time_info, status):
        before = self._engine.pos
        super()._callback(outdata, frames, time_info, status)
        advanced = self._engine.pos - before
        if advanced > 0:
            self.played_blocks += 1
            capture[before:before + frames] = outdata
        self.rendered += frames
        delay = self.t0 + self.rendered / SR - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


p = PacedPlayer(blocksize=BLOCK)
p.played_blocks, p.rendered, p.t0 = 0, 0, time.perf_counter()
result = {"devices": list_output_devices(), "available": p.available, "reason": p.unavailable_reason}
p.load(stems)
start = time.perf_counter()
p.play()
changes, rng, step = 0, np.random.default_rng(0), 0
while p.playing and time.perf_counter() - start < 10:
    time.sleep(0.03)
    step += 1
    name = names[step % 4]
    kind = step % 5
    if kind == 0:
        p.set_gain_db(name, float(rng.uniform(-24, 0)))
    elif kind == 1:
        p.set_mute(name, not p.mix_state().mute[name])
    elif kind == 2:
        p.set_solo(name, not p.mix_state().solo[name])
    elif kind == 3:
        p.set_pan(name, float(rng.uniform(-1, 1)))
    else:
        p.set_master_db(float(rng.uniform(-6, 0)))
    changes += 1
    p.levels()
wall = time.perf_counter() - start
played = capture[:n]
result.update(
    wall=wall, changes=changes, position=p.position, duration=p.duration, underruns=p.underruns,
    played_blocks=p.played_blocks, callback_error=p.callback_error,
    max_step=float(np.abs(np.diff(played, axis=0)).max()), peak=float(np.abs(played).max()),
    silent_blocks=int(sum(not played[i:i + BLOCK].any() for i in range(0, n, BLOCK))),
    latency=p.latency,
)

# Second song: constant faders, unpaced. The real stream's output equals the offline render.
plain = StemPlayer(blocksize=BLOCK)
plain.load(stems)
plain.set_gain_db("drums", -6)
plain.set_pan("bass", 0.4)
plain.set_master_db(6.0)
plain.set_gain_db("bass", 6.0)
got = np.zeros((n + 64 * BLOCK, 2), np.float32)
plain_pos = [0]
orig = plain._callback
def tap(outdata, frames, time_info, status):
    before = plain._engine.pos
    orig(outdata, frames, time_info, status)
    if plain._engine.pos > before:
        got[before:before + frames] = outdata
plain._callback = tap
plain.play()
deadline = time.perf_counter() + 20
while plain.playing and time.perf_counter() < deadline:
    time.sleep(0.005)
plain.close()
p.close()
offline = render_mix(stems, plain.mix_state())
result.update(equal=bool(np.array_equal(got[:n], offline)), plain_underruns=plain.underruns,
              plain_clipped=plain.clipped, plain_position=plain.position)
print(json.dumps(result))
"""


@needs_portaudio
@pytest.mark.serial  # real time / wall-clock bound: runs alone (make test)
def test_real_stream_plays_3_seconds_with_parameter_changes():
    r = run_python(PLAY_3S)
    assert r["available"] and r["reason"] is None
    assert r["devices"] == [[0, "default, ALSA"]]
    assert r["callback_error"] is None
    # the whole song was played, sample exact, in real time
    assert r["position"] == r["duration"] == 3.0
    assert r["played_blocks"] == -(-3 * 44100 // 512)  # 259 callbacks with audio
    assert 2.9 < r["wall"] < 6.0
    assert r["underruns"] == 0
    # the UI changed the mix all along, and no change clicked: the largest sample-to-sample step
    # stays near the sines' own slope (an unramped mute of one 0.2 sine would jump up to 0.2)
    assert r["changes"] >= 40
    assert r["max_step"] < 0.05
    assert 0.0 < r["peak"] < 1.0
    # a real stream gives the same samples as the offline export
    assert r["equal"] and r["plain_position"] == 3.0 and r["plain_underruns"] == 0 and r["plain_clipped"] > 0


SEEK_LOOP = r"""
import json, time
import numpy as np
from unmix_desktop.audio.player import StemPlayer

SR = 44100
stems = {"a": (0.1 * np.random.default_rng(0).standard_normal((4 * SR, 2))).astype(np.float32)}
p = StemPlayer(blocksize=256)
p.load(stems)
p.set_loop(1.0, 1.5)
p.seek(1.2)
p.play()
inside = []
t0 = time.perf_counter()
while time.perf_counter() - t0 < 0.3:
    inside.append(1.0 <= p.position <= 1.5 + 256 / SR)
    time.sleep(0.002)
p.configure(blocksize=1024, latency="high")  # reopens the stream and keeps playing
time.sleep(0.05)
reconfigured = p.playing and p._stream.blocksize == 1024 and 1.0 <= p.position <= 1.6
p.clear_loop()
p.pause()
end = time.perf_counter() + 10  # until the callback has taken the pause and faded out (not a fixed 50 ms)
while (p._transport_seen != p._transport[0] or p._engine.playing) and time.perf_counter() < end:
    time.sleep(0.005)
paused_at = p.position
time.sleep(0.05)
still = p.position == paused_at and not p.playing
p.stop()
time.sleep(0.05)
stopped = p.position
p.close()
print(json.dumps({"inside": all(inside), "n": len(inside), "still": still, "stopped": stopped,
                  "reconfigured": reconfigured,
                  "error": p.callback_error, "callbacks": p.callbacks}))
"""


@needs_portaudio
@pytest.mark.serial  # real time / wall-clock bound: runs alone (make test)
def test_real_stream_loop_reconfigure_pause_and_stop():
    r = run_python(SEEK_LOOP)
    assert r["error"] is None and r["callbacks"] > 100
    assert r["inside"] and r["n"] > 10
    assert r["reconfigured"]
    assert r["still"]
    assert r["stopped"] == 0.0


NO_PORTAUDIO = r"""
import json, sys
import numpy as np

class NoPortAudio:
    # Makes "import sounddevice" fail the way it does when libportaudio2 is missing.
    def find_spec(self, name, path=None, target=None):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return None

sys.meta_path.insert(0, NoPortAudio())
from unmix_desktop.audio import player
from unmix_desktop.audio.export import render_mix
from unmix_desktop.audio.mixer import MixState

p = player.StemPlayer()
stems = {"a": np.full((1000, 2), 0.25, np.float32)}
p.load(stems)
p.set_gain_db("a", -6)
p.seek(0.01)
try:
    p.play()
    raised = None
except player.PlayerError as exc:
    raised = str(exc)
mix = render_mix(stems, p.mix_state())
print(json.dumps({"available": p.available, "reason": p.unavailable_reason, "raised": raised,
                  "devices": player.list_output_devices(), "position": p.position, "playing": p.playing,
                  "mix_ok": bool(np.allclose(mix, 0.25 * 10 ** (-6 / 20)))}))
"""


def test_without_portaudio_the_player_reports_it_and_the_rest_works():
    r = run_python(NO_PORTAUDIO)
    assert r["available"] is False
    assert r["reason"] == "no audio output: install libportaudio2"
    assert r["raised"] == "no audio output: install libportaudio2"
    assert r["devices"] == [] and r["playing"] is False
    assert r["position"] == 441 / 44100
    assert r["mix_ok"]


NO_DEVICE = r"""
import json
from unmix_desktop.audio.player import StemPlayer, list_output_devices
p = StemPlayer()
print(json.dumps({"devices": list_output_devices(), "available": p.available, "reason": p.unavailable_reason}))
"""


@needs_portaudio
def test_without_an_output_device_the_player_says_so():
    # the plain system configuration: on a machine without a sound card there is no device
    r = run_python(NO_DEVICE, alsa_conf="/usr/share/alsa/alsa.conf")
    if r["devices"]:
        pytest.skip("this machine has a sound card")
    assert r["available"] is False and r["reason"] == "no output device"


BAD_DEVICE = r"""
import json
from unmix_desktop.audio.player import StemPlayer, list_output_devices
p = StemPlayer(device=57)
q = StemPlayer(device=0, blocksize=1024, latency="high")
(index, name), = list_output_devices()
by_name = StemPlayer(device=name)
print(json.dumps({"reason": p.unavailable_reason, "ok": q.available, "blocksize": q.blocksize, "name": name,
                  "by_name": by_name.available, "missing": StemPlayer(device="USB headset").unavailable_reason}))
"""


@needs_portaudio
def test_device_choice():
    r = run_python(BAD_DEVICE)
    assert r["reason"] == "output device 57 not found"
    assert r["ok"] and r["blocksize"] == 1024
    assert r["name"] == "default, ALSA" and r["by_name"]  # the listed name selects the device
    assert r["missing"] == "output device 'USB headset' not found"


STRETCH_STREAM = r"""
import json, time
import numpy as np
from unmix_desktop.audio.player import StemPlayer

SR, BLOCK, SECONDS = 44100, 512, 4.0
n = int(SECONDS * SR)
t = np.arange(n) / SR
names = ["vocals", "drums", "bass", "other"]
stems = {name: np.stack([0.12 * np.sin(2 * np.pi * 110 * (i + 1) * t)] * 2, 1).astype(np.float32)
         for i, name in enumerate(names)}
captured = []


class PacedPlayer(StemPlayer):
    # Sleeps to the wall clock after each block, like a clocked device; keeps what it played.
    def _callback(self, outdata, frames, time_info, status):
        super()._callback(outdata, frames, time_info, status)
        if self.rendered >= 0:
            captured.append(outdata.copy())
        self.rendered += frames
        delay = self.t0 + self.rendered / SR - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


p = PacedPlayer(blocksize=BLOCK)
p.rendered, p.t0 = 0, time.perf_counter()
p.load(stems)
time.sleep(0.3)  # the producer thread builds its stretcher
p.rendered, p.t0 = 0, time.perf_counter()
p.play()
start = time.perf_counter()
plan = [(0.3, lambda: p.set_tempo(0.75)), (0.8, lambda: p.set_key(-2)), (1.3, lambda: p.set_gain_db("drums", -12)),
        (1.6, lambda: p.set_tempo(1.25)), (2.0, lambda: p.set_key(1, 30)), (2.4, lambda: p.set_pan("bass", 0.5)),
        (2.8, lambda: (p.set_tempo(1.0), p.set_key(0))), (3.2, lambda: p.set_tempo(0.8))]
done, stretched = 0, False
while p.playing and time.perf_counter() - start < 15:
    now = time.perf_counter() - start
    while done < len(plan) and now >= plan[done][0]:
        plan[done][1]()
        done += 1
    stretched = stretched or p.stretching
    time.sleep(0.01)
wall = time.perf_counter() - start
p.close()
y = np.concatenate(captured)[:, 0]
level = np.abs(y).reshape(-1, BLOCK).max(axis=1)
body = level[5:np.flatnonzero(level > 0.01)[-1] - 5]
print(json.dumps({"underruns": p.underruns, "stretch_underruns": p.stretch_underruns, "error": p.callback_error,
                  "changes": done, "position": p.position, "wall": wall, "stretched": stretched,
                  "max_step": float(np.abs(np.diff(y)).max()), "quiet_blocks": int((body < 0.05).sum())}))
"""


@needs_portaudio
@pytest.mark.serial  # real time / wall-clock bound: runs alone (make test)
def test_real_stream_with_tempo_and_key_changes_mid_play():
    r = run_python(STRETCH_STREAM, timeout=90)
    assert r["error"] is None and r["changes"] == 8 and r["stretched"]
    assert r["underruns"] == 0 and r["stretch_underruns"] == 0
    assert r["position"] == 4.0  # the whole song, in song time
    assert 3.5 < r["wall"] < 8.0  # 4 s of song at 0.75..1.25
    # no click and no gap: the largest step stays near the sines' own slope (4 sines of 0.12 up to 440 Hz)
    assert r["max_step"] < 0.1 and r["quiet_blocks"] == 0
