"""One synthetic excerpt from a POP909 song and a seed, and a whole corpus on disk.

``make_excerpt(song, seed, duration, renderer)`` -> ``{vocals, drums, bass, other}`` float32
``(n, 2)`` at 44.1 kHz and a description; the stems sum to the mixture (see production.master).
Everything random is drawn from ``numpy.random.default_rng([seed, song number])``: the same
seed, song and renderer give the same audio.

Corpus layout (readable by ``unmix train --dataset trackfolder_fix``)::

    OUT/{train,valid,test}/<song>_<k>/{vocals,drums,bass,other}.flac   (16-bit stereo 44.1 kHz)
    OUT/corpus.json                                                     settings, counts, render speed

Songs are split by number (``n % 20 == 0`` valid, ``n % 20 == 1`` test, the rest train), so the
held-out splits share no song material with training.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from ...audio.io import SAMPLE_RATE
from . import bass as bass_gen
from . import grooves, parts
from .pop909 import Song, read_song, song_folders
from .production import master, produce_stem
from .render import DRUM_KITS, Part
from .theory import Note, scale_for, transpose

SR = SAMPLE_RATE
STEMS = ("vocals", "drums", "bass", "other")
VOICE_PROGRAMS = (52, 53, 54, 85, 91)        # choir aahs, voice oohs, synth voice, lead voice, pad choir
BRIDGE_PROGRAMS = (73, 71, 65, 66, 40, 56, 80, 81, 11, 22, 104, 68)
PIANO_PROGRAMS = (0, 1, 2, 4, 5, 6, 7)
BASS_PROGRAMS = (32, 33, 34, 35, 36, 37, 38, 39, 43)


def split_of(song_name: str) -> str:
    n = int(song_name) if song_name.isdigit() else sum(map(ord, song_name))
    return "valid" if n % 20 == 0 else "test" if n % 20 == 1 else "train"


def _window(notes: list[Note], t0: float, t1: float) -> list[Note]:
    return [Note(n.start - t0, n.end - t0, n.pitch, n.velocity) for n in notes if n.end > t0 and n.start < t1]


def excerpt_draws(song: Song, seed: int, duration: float):
    """The excerpt's first random draws: ``(rng, bpm, factor, key_shift, t0)`` -- the tempo mapped into
    70..180 BPM, the key shift and the start downbeat; ``rng`` goes on with the rest of the excerpt.
    ``benchmarks/bench_chords.py`` replays them to know an excerpt's reference chords."""
    num = int(song.name) if song.name.isdigit() else 0
    rng = np.random.default_rng([int(seed), num])
    bpm0 = 60.0 / song.beat_period
    bpm = float(rng.uniform(70, 180))
    factor = bpm0 / bpm
    key_shift = int(rng.integers(-5, 7))
    downs = song.downbeats if len(song.downbeats) else song.beats[::4]
    span = duration / factor
    starts = [d for d in downs if d + span < song.beats[-1]] or [float(song.beats[0])]
    t0 = float(rng.choice(starts))
    return rng, bpm, factor, key_shift, t0


def make_excerpt(song: Song, seed: int, duration: float, renderer, produce: bool = True) -> tuple[dict, dict]:
    """Render one excerpt; returns (stems, description)."""
    rng, bpm, factor, key_shift, t0 = excerpt_draws(song, seed, duration)
    s = song.stretched(factor, offset=t0)
    pre = 1.0  # pre-roll (s) so notes already sounding at the excerpt start ring in
    beats = s.beats[(s.beats >= -pre - 1e-6) & (s.beats <= duration + 2)]
    if len(beats) < 2:
        beats = np.arange(-pre, duration + 2, 60.0 / bpm)
    down_idx = int(np.argmin(np.abs(beats - 0.0)))
    chords = [c for c in s.chords if c.end > -pre and c.start < duration]
    from .theory import Chord
    chords = [Chord(c.start, c.end, (c.root + key_shift) % 12 if c.root >= 0 else -1, c.intervals,
                    (c.bass + key_shift) % 12 if c.bass >= 0 else -1) for c in chords]
    scale = scale_for(chords)
    n = int(round(duration * SR))
    n_pre = int(round(pre * SR))

    def win(notes):
        return [Note(x.start + pre, x.end + pre, x.pitch, x.velocity) for x in notes
                if x.end > -pre and x.start < duration]

    shifted_beats = beats
    desc: dict = {"song": song.name, "seed": int(seed), "bpm": round(bpm, 1), "key_shift": key_shift,
                  "start_s": round(t0, 2)}
    # drums
    g = grooves.random_settings(rng)
    drum_notes, _ = grooves.generate(shifted_beats, down_idx, rng, g)
    kit = int(rng.choice(DRUM_KITS))
    desc["drums"] = {"style": g.style, "swing": round(g.swing, 2), "kit": kit}
    # bass
    pattern = str(rng.choice(bass_gen.PATTERNS))
    bass_notes, _ = bass_gen.generate(chords, shifted_beats, down_idx, rng, scale, pattern)
    bass_prog = int(rng.choice(BASS_PROGRAMS))
    desc["bass"] = {"pattern": pattern, "program": bass_prog}
    # other: piano (song), bridge (song), 1-3 generated parts
    other_parts = []
    piano = transpose(s.tracks.get("PIANO", []), key_shift, 21, 108)
    if piano and rng.random() < 0.8:
        other_parts.append(Part(win(piano), int(rng.choice(PIANO_PROGRAMS)), pan=float(rng.uniform(-0.4, 0.4)),
                                volume=int(rng.integers(75, 115))))
    bridge = transpose(s.tracks.get("BRIDGE", []), key_shift, 36, 100)
    if bridge and rng.random() < 0.7:
        other_parts.append(Part(win(bridge), int(rng.choice(BRIDGE_PROGRAMS)), pan=float(rng.uniform(-0.7, 0.7)),
                                volume=int(rng.integers(65, 105))))
    kinds = list(rng.choice(parts.KINDS, size=int(rng.integers(1, 4)), replace=False))
    for kind in kinds:
        notes = parts.generate(kind, chords, shifted_beats, down_idx, rng)
        other_parts.append(Part(win(notes), int(rng.choice(parts.PROGRAMS[kind])), pan=float(rng.uniform(-0.8, 0.8)),
                                volume=int(rng.integers(60, 110))))
    desc["other"] = {"parts": [str(k) for k in kinds], "programs": [p.program for p in other_parts]}
    melody = transpose(s.tracks.get("MELODY", []), key_shift, 48, 84)
    voice = int(rng.choice(VOICE_PROGRAMS))
    desc["vocals"] = {"program": voice}
    plan = {
        "vocals": [Part(win(melody), voice, pan=float(rng.uniform(-0.1, 0.1)), volume=110)],
        "drums": [Part(win(drum_notes), kit, drums=True, volume=int(rng.integers(90, 120)))],
        "bass": [Part(win(bass_notes), bass_prog, pan=float(rng.uniform(-0.1, 0.1)),
                      volume=int(rng.integers(90, 120)))],
        "other": other_parts,
    }
    stems = {}
    levels_db = {"vocals": rng.uniform(-3, 3), "drums": rng.uniform(-6, 2), "bass": rng.uniform(-6, 2),
                 "other": rng.uniform(-6, 2)}
    for name in STEMS:
        audio = renderer.render(plan[name], n + n_pre)[n_pre:]
        if produce:
            audio = produce_stem(audio, name, rng)
        rms = float(np.sqrt(np.mean(audio ** 2)))
        if rms > 1e-6:
            audio = audio / rms * 0.1 * 10 ** (levels_db[name] / 20)
        stems[name] = audio.astype(np.float32)
    if produce:
        stems = master(stems, rng)
    else:
        peak = max(float(np.max(np.abs(sum(stems.values())))), 1e-6)
        stems = {k: v / peak * 0.9 for k, v in stems.items()}
    return stems, desc


def _write_stems(folder: Path, stems: dict[str, np.ndarray]) -> None:
    import soundfile as sf

    tmp = folder.with_name(folder.name + ".part")
    tmp.mkdir(parents=True, exist_ok=True)
    for name, audio in stems.items():
        sf.write(str(tmp / f"{name}.flac"), np.clip(audio, -1, 1), SR, subtype="PCM_16")
    os.replace(tmp, folder)


def _job(args) -> tuple[str, float, float]:
    song_dir, out_dir, seed, duration, renderer_kind, produce = args
    from .render import make_renderer

    global _RENDERER
    if _RENDERER is None or getattr(_RENDERER, "_kind", None) != renderer_kind:
        _RENDERER = make_renderer(renderer_kind, SR, seed=seed)
        _RENDERER._kind = renderer_kind
    t0 = time.process_time()
    song = read_song(song_dir)
    stems, desc = make_excerpt(song, seed, duration, _RENDERER, produce)
    cpu = time.process_time() - t0
    _write_stems(Path(out_dir), stems)
    (Path(out_dir) / "excerpt.json").write_text(json.dumps(desc) + "\n")
    return str(out_dir), duration, cpu


_RENDERER = None


def write_corpus(pop909: str | Path, out: str | Path, excerpts: int, duration: float = 15.0, seed: int = 0,
                 renderer: str = "auto", workers: int = 1, produce: bool = True, songs: int | None = None,
                 progress=None) -> dict:
    """Render ``excerpts`` excerpts (spread over the songs; held-out splits by song number) into
    ``out``; existing excerpt folders are kept (resumable). Returns the summary written to corpus.json."""
    folders = song_folders(pop909)
    if songs:
        folders = folders[:songs]
    if not folders:
        raise FileNotFoundError(f"{pop909}: no POP909 song folders (NNN/NNN.mid)")
    out = Path(out)
    jobs = []
    for k in range(excerpts):
        folder = folders[k % len(folders)]
        rep = k // len(folders)
        dest = out / split_of(folder.name) / f"{folder.name}_{rep}"
        if not dest.is_dir():
            jobs.append((str(folder), str(dest), seed * 1000 + rep, duration, renderer, produce))
    t_wall = time.perf_counter()
    audio_s = cpu_s = 0.0
    if workers > 1 and jobs:
        from multiprocessing import get_context

        with get_context("spawn").Pool(workers) as pool:
            for i, (_, dur, cpu) in enumerate(pool.imap_unordered(_job, jobs)):
                audio_s, cpu_s = audio_s + dur, cpu_s + cpu
                if progress:
                    progress(i + 1, len(jobs))
    else:
        for i, job in enumerate(jobs):
            _, dur, cpu = _job(job)
            audio_s, cpu_s = audio_s + dur, cpu_s + cpu
            if progress:
                progress(i + 1, len(jobs))
    wall = time.perf_counter() - t_wall
    counts = {s: len([p for p in (out / s).iterdir() if p.is_dir() and not p.name.endswith(".part")])
              if (out / s).is_dir() else 0 for s in ("train", "valid", "test")}
    summary = {"source": str(pop909), "excerpts": counts, "duration_s": duration, "seed": seed,
               "renderer": renderer, "produce": produce, "rendered_now": len(jobs),
               "audio_s_rendered_now": round(audio_s, 1), "cpu_s": round(cpu_s, 1), "wall_s": round(wall, 1),
               "audio_s_per_cpu_s": round(audio_s / cpu_s, 2) if cpu_s else None}
    out.mkdir(parents=True, exist_ok=True)
    (out / "corpus.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
