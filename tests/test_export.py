"""Offline export: same samples as the live callback, karaoke / custom mix / single stems, files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from unmix_desktop.audio.export import export_karaoke, export_mix, export_stems, karaoke_state, render_mix
from unmix_desktop.audio.io import load_audio
from unmix_desktop.audio.mixer import LIMIT_CEILING, MixError, MixState
from unmix_desktop.audio.player import StemPlayer
from unmix_desktop.errors import AudioError

SR = 44100


def song(seconds: float = 1.5, seed: int = 0, level: float = 0.3) -> dict[str, np.ndarray]:
    """Four stems: tones and noise bursts, different per stem."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    stems = {}
    for i, name in enumerate(["vocals", "drums", "bass", "other"]):
        tone = np.sin(2 * np.pi * (110 * (i + 1)) * t + i)
        noise = rng.standard_normal(n) * (np.sin(2 * np.pi * (i + 1) * t) > 0.5)
        left = level * (0.7 * tone + 0.3 * noise)
        right = level * (0.7 * np.roll(tone, 17 * i) + 0.3 * noise)
        stems[name] = np.stack([left, right], axis=1).astype(np.float32)
    return stems


def live_capture(stems: dict[str, np.ndarray], state: MixState, blocksize: int) -> np.ndarray:
    """What the player's callback writes into its outdata buffers, from play to the end of the song."""
    p = StemPlayer(blocksize=blocksize, open_stream=False)
    p.load(stems)
    p.set_mix_state(state)
    p.play()
    chunks = []
    while p.playing:
        out = np.empty((blocksize, 2), np.float32)
        p.process(out)
        chunks.append(out)
    assert p.callback_error is None
    return np.concatenate(chunks)


def custom_state(names) -> MixState:
    s = MixState.from_names(names)
    s.set_gain_db("drums", -6.0)
    s.set_gain_db("bass", 4.5)
    s.set_pan("other", 0.6)
    s.set_mute("vocals", True)
    s.set_master_db(3.0)  # hot: the limiter works on the peaks
    return s


@pytest.mark.parametrize("blocksize", [256, 512, 1024, 300])
def test_export_equals_the_live_mix_sample_for_sample(blocksize):
    stems = song()
    state = custom_state(stems)
    offline = render_mix(stems, state)
    live = live_capture(stems, state, blocksize)
    n = offline.shape[0]
    assert live.shape[0] >= n and not live[n:].any()
    np.testing.assert_array_equal(live[:n], offline)
    assert np.abs(offline).max() > 0.9  # the limiter was involved
    assert np.abs(offline).max() < LIMIT_CEILING + 1e-7


def test_render_mix_is_the_gained_sum_below_the_knee():
    stems = song(level=0.1)
    state = MixState.from_names(stems)
    state.set_solo("bass", True)
    state.set_solo("drums", True)
    state.set_mute("drums", True)  # solo wins over mute
    state.set_pan("bass", -0.5)
    out = render_mix(stems, state)
    expected = stems["drums"] + stems["bass"] * np.array([1.0, 0.5], np.float32)
    np.testing.assert_allclose(out, expected, atol=1e-7)


def test_render_mix_needs_every_stem_in_the_state():
    stems = song(0.2)
    with pytest.raises(MixError, match="unknown stem 'other'"):
        render_mix(stems, MixState.from_names(["vocals", "drums", "bass"]))


def test_karaoke_is_everything_but_vocals(tmp_path):
    stems = song(level=0.1)
    path = export_karaoke(tmp_path / "karaoke.wav", stems)
    assert path == tmp_path / "karaoke.wav"
    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    assert sr == SR and sf.info(path).subtype == "PCM_16"
    expected = stems["drums"] + stems["bass"] + stems["other"]
    np.testing.assert_allclose(audio, expected, atol=1.5 / 32768)
    assert [p.name for p in tmp_path.iterdir()] == ["karaoke.wav"]  # no temporary file left
    assert not karaoke_state(stems).audible("vocals")


def test_karaoke_needs_a_vocals_stem(tmp_path):
    stems = song(0.2)
    with pytest.raises(AudioError, match="no 'vocals' stem"):
        export_karaoke(tmp_path / "k.wav", {"drums": stems["drums"]})
    with pytest.raises(AudioError, match="silent"):
        export_karaoke(tmp_path / "k.wav", {"vocals": stems["vocals"]})


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg", ".mp3"])
def test_export_mix_writes_every_format(tmp_path, suffix):
    stems = song(1.0)
    state = custom_state(stems)
    path = export_mix(tmp_path / f"mix{suffix}", stems, state, subtype=None)
    back = load_audio(path)
    expected = render_mix(stems, state)
    if suffix in {".wav", ".flac"}:
        np.testing.assert_allclose(back, expected, atol=1.5 / 32768)
    else:  # lossy: same length, clearly the same signal
        assert back.shape == expected.shape
        for c in (0, 1):
            assert np.corrcoef(back[:, c], expected[:, c])[0, 1] > 0.95
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"mix{suffix}"]


def test_export_refuses_to_overwrite_the_source_song(tmp_path):
    stems = song(0.3)
    source = tmp_path / "song.wav"
    sf.write(source, stems["vocals"], SR)
    before = source.read_bytes()
    with pytest.raises(AudioError, match="refusing to overwrite the source song"):
        export_mix(source, stems, MixState.from_names(stems), source_path=source)
    with pytest.raises(AudioError, match="refusing to overwrite the source song"):
        export_karaoke(tmp_path / "." / "song.wav", stems, source_path=str(source))
    with pytest.raises(AudioError, match="refusing"):
        export_stems(tmp_path, {"song": stems["vocals"]}, source_path=[tmp_path / "x.wav", source])
    assert source.read_bytes() == before
    with pytest.raises(AudioError, match="cannot write"):
        export_mix(tmp_path / "mix.aiff", stems, MixState.from_names(stems))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.wav"]


def test_export_stems_writes_each_stem_alone(tmp_path):
    stems = song(0.5, level=0.2)
    paths = export_stems(tmp_path / "stems", stems, fmt="flac")
    assert [p.name for p in paths] == ["vocals.flac", "drums.flac", "bass.flac", "other.flac"]
    for path in paths:
        back = load_audio(path)
        np.testing.assert_allclose(back, stems[path.stem], atol=1.5 / 32768)
    with pytest.raises(AudioError, match="cannot write 'aiff'"):
        export_stems(tmp_path / "x", stems, fmt="aiff")


def test_a_loud_stem_exported_alone_never_wraps(tmp_path):
    n = SR // 2
    loud = np.stack([np.linspace(-3, 3, n)] * 2, axis=1).astype(np.float32)
    (path,) = export_stems(tmp_path, {"loud": loud}, fmt="wav", subtype="PCM_16")
    back, _ = sf.read(path, dtype="int16")
    assert np.all(np.diff(back[:, 0].astype(np.int32)) >= 0)  # monotonic: nothing wrapped around
    assert back[0, 0] < -32000 and back[-1, 0] > 32000


def test_gain_minus_inf_exports_silence(tmp_path):
    stems = song(0.2)
    state = MixState.from_names(stems)
    for name in stems:
        state.set_gain_db(name, -math.inf)
    assert not render_mix(stems, state).any()
