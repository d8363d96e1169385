"""Our ctypes binding of Rubber Band (Debian librubberband2) against the pylibrb wheel it replaced.

Why: pylibrb 0.1.2 is GPL-2.0-only and cannot ship in a GPL-3.0-or-later program (issue 21); the app now
uses :mod:`unmix_desktop.audio.rubberband`. This measures both on the same work in ONE interleaved run
(alternating rounds, so machine load hits both alike):

* ``offline``: :func:`stretch_offline`'s loop (study + process in 8192-frame blocks, R3 standard window)
  on the dev song's mixture (30 s stereo, 44.1 kHz; synthetic noise if the data is absent) at tempo
  0.75, key -2: wall and CPU seconds per second of song.
* ``realtime``: the live producer's loop (R3 real time, short window, pitch high consistency, 256-frame
  chunks, retrieve after each): CPU per second of song (= fraction of one core at real time).
* output: exact length offline, largest sample step (clicks), and the spectral distance between the
  two renders (they are different Rubber Band versions, so not sample-identical).

pylibrb must be installed for the comparison (``pip install pylibrb==0.1.2``, for this benchmark only;
the app does not depend on it). Writes benchmarks/results/bench_rubberband_binding.json.

    python benchmarks/bench_rubberband_binding.py [--rounds 3] [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unmix_desktop.audio import rubberband as ours  # noqa: E402

FINER, TOGETHER, REALTIME, SHORT, CONSISTENT = (ours.OPTION_ENGINE_FINER, ours.OPTION_CHANNELS_TOGETHER,
                                                ours.OPTION_PROCESS_REALTIME, ours.OPTION_WINDOW_SHORT,
                                                ours.OPTION_PITCH_HIGH_CONSISTENCY)
SR = 44100


def make_pylibrb():
    import pylibrb

    def options(o: int):
        r = pylibrb.Option.ENGINE_FINER
        for bit in (REALTIME, SHORT, CONSISTENT, TOGETHER):
            if o & bit:
                r = r | pylibrb.Option(bit)
        assert int(r) == o
        return r

    def new(sr, ch, o, ratio, pitch):
        return pylibrb.RubberBandStretcher(sr, ch, options(o), initial_time_ratio=ratio, initial_pitch_scale=pitch)
    return new, pylibrb.__version__


def make_ours():
    def new(sr, ch, o, ratio, pitch):
        return ours.RubberBandStretcher(sr, ch, o, initial_time_ratio=ratio, initial_pitch_scale=pitch)
    return new, "ctypes over " + ours.LIBRARY_SONAME


def offline(new, x: np.ndarray, tempo: float, pitch: float) -> np.ndarray:
    n = x.shape[1]
    s = new(SR, 2, FINER | TOGETHER, 1.0 / tempo, pitch)
    s.set_expected_input_duration(n)
    block = 8192
    s.set_max_process_size(block)
    for a in range(0, n, block):
        s.study(x[:, a:a + block], final=a + block >= n)
    parts = []
    for a in range(0, n, block):
        s.process(x[:, a:a + block], final=a + block >= n)
        while s.available() > 0:
            parts.append(s.retrieve(s.available()))
    while not s.is_done():
        avail = s.available()
        if avail <= 0:
            break
        parts.append(s.retrieve(avail))
    return np.concatenate(parts, axis=1)


def realtime(new, x: np.ndarray, tempo: float, pitch: float) -> np.ndarray:
    s = new(SR, 2, FINER | TOGETHER | REALTIME | SHORT | CONSISTENT, 1.0 / tempo, pitch)
    s.set_max_process_size(8192)
    s.process(np.zeros((2, s.get_preferred_start_pad()), np.float32))
    parts = []
    for a in range(0, x.shape[1] - 256 + 1, 256):
        s.process(np.ascontiguousarray(x[:, a:a + 256]))
        avail = s.available()
        if avail > 0:
            parts.append(s.retrieve(avail))
    return np.concatenate(parts, axis=1)


def log_spectrum(y: np.ndarray) -> np.ndarray:
    """Long-term power spectrum in dB, 50 Hz .. 16 kHz (2048-point frames)."""
    m = y.mean(axis=0)
    frames = np.lib.stride_tricks.sliding_window_view(m, 2048)[::1024] * np.hanning(2048)
    power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(axis=0)
    f = np.fft.rfftfreq(2048, 1 / SR)
    return 10 * np.log10(power[(f >= 50) & (f <= 16000)] + 1e-12)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    song = ROOT.parent / "shared" / "data" / "dev" / "waveform-playlist-demo" / "mixture.flac"
    if song.exists():
        import soundfile as sf
        audio, sr = sf.read(song, dtype="float32", always_2d=True)
        assert sr == SR
        source = str(song.relative_to(ROOT.parent))
    else:
        audio = (np.random.default_rng(0).standard_normal((int(SR * args.seconds), 2)) * 0.1).astype(np.float32)
        source = "noise"
    x = np.ascontiguousarray(audio[: int(SR * args.seconds)].T)
    seconds = x.shape[1] / SR
    tempo, pitch = 0.75, 2 ** (-2 / 12)
    bindings = {"pylibrb": make_pylibrb(), "ours": make_ours()}
    times: dict = {k: {"offline_wall": [], "offline_cpu": [], "realtime_cpu": []} for k in bindings}
    renders: dict = {}
    for _ in range(args.rounds):
        for name, (new, _version) in bindings.items():
            w0, c0 = time.perf_counter(), time.process_time()
            y = offline(new, x, tempo, pitch)
            times[name]["offline_wall"].append((time.perf_counter() - w0) / seconds)
            times[name]["offline_cpu"].append((time.process_time() - c0) / seconds)
            c0 = time.thread_time()
            r = realtime(new, x, tempo, pitch)
            times[name]["realtime_cpu"].append((time.thread_time() - c0) / seconds)
            renders[name] = (y, r)
    result = {"machine": platform.platform(), "cpus": os.cpu_count(), "source": source, "seconds": seconds,
              "tempo": tempo, "semitones": -2, "rounds": args.rounds, "bindings": {}}
    want = int(round(x.shape[1] / tempo))
    for name, (new, version) in bindings.items():
        y, r = renders[name]
        row = {"version": version, **{k: float(np.median(v)) for k, v in times[name].items()},
               "offline_frames": int(y.shape[1]), "offline_frames_wanted": want,
               "offline_max_step": float(np.abs(np.diff(y[:, :want], axis=1)).max()),
               "realtime_frames": int(r.shape[1])}
        result["bindings"][name] = row
    lsd = float(np.sqrt(np.mean((log_spectrum(renders["ours"][0]) - log_spectrum(renders["pylibrb"][0])) ** 2)))
    result["offline_long_term_spectrum_rms_db"] = lsd
    # scale: the same distance between the input and the two renders (tempo and key change the spectrum)
    result["input_vs_pylibrb_long_term_spectrum_rms_db"] = float(
        np.sqrt(np.mean((log_spectrum(x) - log_spectrum(renders["pylibrb"][0])) ** 2)))
    p, o = result["bindings"]["pylibrb"], result["bindings"]["ours"]
    result["ratio_ours_over_pylibrb"] = {k: o[k] / p[k] for k in ("offline_wall", "offline_cpu", "realtime_cpu")}
    print(f"{'binding':10s} {'offline wall':>12s} {'offline cpu':>12s} {'realtime cpu':>12s} {'frames':>9s} "
          f"{'max step':>9s}  (per second of song, median of {args.rounds})")
    for name, row in result["bindings"].items():
        print(f"{name:10s} {row['offline_wall']:12.3f} {row['offline_cpu']:12.3f} {row['realtime_cpu']:12.3f} "
              f"{row['offline_frames']:9d} {row['offline_max_step']:9.3f}  {row['version']}")
    print("ours / pylibrb:", {k: round(v, 2) for k, v in result["ratio_ours_over_pylibrb"].items()},
          f"; long-term spectrum difference {lsd:.2f} dB rms (input vs pylibrb render: "
          f"{result['input_vs_pylibrb_long_term_spectrum_rms_db']:.2f} dB)")
    out = ROOT / "benchmarks" / "results" / "bench_rubberband_binding.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
