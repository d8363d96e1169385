"""Streaming decode (audio/stream.py): the same samples and errors as load_audio, the same windows as
spans(), and a separation from a file source equal to the in-memory one."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from conftest import make_song

from unmix_desktop.audio.io import load_audio, save_audio
from unmix_desktop.audio.stream import ArraySource, iter_windows, open_audio
from unmix_desktop.errors import AudioError
from unmix_desktop.separation.separator import Separator
from unmix_desktop.separation.settings import SeparationSettings
from unmix_desktop.separation.windows import spans

SR = 44100


class Trickle:
    """A source that returns at most ``chunk`` frames per read (like a decoder's odd frame sizes)."""

    def __init__(self, audio: np.ndarray, chunk: int):
        self.inner, self.chunk = ArraySource(audio), chunk
        self.frames = None  # unknown length

    def read(self, frames: int) -> np.ndarray:
        parts, left = [], frames
        while left > 0:
            got = self.inner.read(min(left, self.chunk))
            if not got.shape[0]:
                break
            parts.append(got)
            left -= got.shape[0]
        return np.concatenate(parts) if parts else np.zeros((0, 2), np.float32)


def read_all(source, step: int = 30_000) -> np.ndarray:
    parts = []
    while True:
        got = source.read(step)
        parts.append(got)
        if got.shape[0] < step:
            return np.concatenate(parts)


@pytest.mark.parametrize("win,overlap", [(1000, 100), (1000, 500), (4096, 0), (300, 149)])
def test_iter_windows_match_spans(win, overlap):
    for n in [0, 1, 299, win - 1, win, win + 1, win + overlap - 1, win + overlap, win + overlap + 1,
              2 * win - overlap, 2 * win, 3 * win + 7, 10 * win + 2 * overlap - 1, 10 * win + 2 * overlap]:
        audio = np.arange(2 * n, dtype=np.float32).reshape(n, 2)
        got = list(iter_windows(Trickle(audio, 77), win, overlap))
        want = spans(n, win, overlap)
        assert [(w.start, w.end) for w in got] == want, n
        for i, w in enumerate(got):
            np.testing.assert_array_equal(w.audio, audio[w.start:w.end])
            assert w.fade_in == (want[i - 1][1] - w.start if i else 0)
            assert w.done == (want[i + 1][0] if i + 1 < len(want) else n)
            assert w.fade_out == w.end - w.done
        assert got[-1].last


@pytest.mark.parametrize("name,rate,channels,tol", [
    ("a.wav", 44100, 2, 0.0), ("a.flac", 44100, 2, 0.0), ("mono48k.wav", 48000, 1, 1e-4),
    ("b.ogg", 44100, 2, 0.0), ("c.mp3", 44100, 2, 1e-5), ("d.m4a", 44100, 2, 0.0), ("e.m4a", 48000, 2, 1e-4),
])
def test_open_audio_reads_what_load_audio_reads(tmp_path, name, rate, channels, tol):
    seconds = 7.3  # several libsndfile blocks and FFmpeg frames, not a multiple of either
    t = np.arange(int(seconds * rate)) / rate
    sig = np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.2 * np.sin(2 * np.pi * 331 * t)], 1)[:, :channels]
    path = tmp_path / name
    if path.suffix == ".m4a":
        import av

        with av.open(str(path), "w") as out:
            st = out.add_stream("aac", rate=rate, layout="stereo")
            frame_len = 1024
            for i in range(0, len(t), frame_len):
                block = np.ascontiguousarray(sig[i:i + frame_len].T, dtype=np.float32)
                frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = rate, i
                for pkt in st.encode(frame):
                    out.mux(pkt)
            for pkt in st.encode(None):
                out.mux(pkt)
    elif path.suffix in (".ogg", ".mp3"):
        save_audio(path, sig.astype(np.float32))
    else:
        sf.write(path, sig.astype(np.float32), rate, subtype="FLOAT" if path.suffix == ".wav" else "PCM_24")
    whole = load_audio(path)
    with open_audio(path) as source:
        assert source.frames is not None and abs(source.frames - whole.shape[0]) <= 2
        streamed = read_all(source, 12_345)
    assert streamed.dtype == np.float32 and streamed.shape[1] == 2
    assert abs(streamed.shape[0] - whole.shape[0]) <= (2 if rate != SR else 0)
    n = min(streamed.shape[0], whole.shape[0])
    assert np.max(np.abs(streamed[:n] - whole[:n])) <= tol


def test_open_audio_errors_are_one_line_audio_errors(tmp_path):
    with pytest.raises(AudioError, match="file not found"):
        open_audio(tmp_path / "missing.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="file is empty"):
        open_audio(tmp_path / "empty.wav")
    (tmp_path / "text.wav").write_text("not audio at all " * 50)
    with pytest.raises(AudioError):
        open_audio(tmp_path / "text.wav")
    song = make_song(3.0)["mixture"]
    save_audio(tmp_path / "long.wav", song)
    with pytest.raises(AudioError, match="too long"):
        open_audio(tmp_path / "long.wav", max_duration=1.0)
    # a cut-off WAV is seen from its header at once
    data = (tmp_path / "long.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="truncated"):
        open_audio(tmp_path / "cut.wav")
    # a cut-off FLAC only when the decoder reaches the end: reading raises, with the file's name
    save_audio(tmp_path / "cut.flac", song)
    flac = (tmp_path / "cut.flac").read_bytes()
    (tmp_path / "cut.flac").write_bytes(flac[: len(flac) // 2])
    source = open_audio(tmp_path / "cut.flac")
    with pytest.raises(AudioError, match="cut.flac.*truncated|truncated|corrupt"):
        read_all(source)


@pytest.mark.parametrize("seconds", [3.0, 5.3])
def test_separating_a_file_source_equals_the_in_memory_path(tmp_path, tiny_umx, seconds):
    """2-s windows so the song has several windows (5.3 s: the last one is merged into the previous)."""
    path = tmp_path / "song.flac"
    sf.write(path, make_song(seconds, seed=4)["mixture"], SR, subtype="PCM_24")
    settings = SeparationSettings(window_s=2.0, overlap_s=0.5, niter=1)
    sep = Separator(tiny_umx, settings, device="cpu", threads=1)
    audio = load_audio(path)
    whole = sep.separate(audio)
    fractions: list[float] = []
    out = {name: [] for name in sep.output_targets}
    offset = 0
    with open_audio(path) as source:
        for off, blocks in sep.stream(source, progress=fractions.append):
            assert off == offset
            for name, block in blocks.items():
                out[name].append(block.copy())
            offset += next(iter(blocks.values())).shape[0]
    assert offset == audio.shape[0]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    for name in sep.output_targets:
        streamed = np.concatenate(out[name])
        assert streamed.shape == whole[name].shape
        assert np.max(np.abs(streamed - whole[name])) <= 1e-4, name
    np.testing.assert_allclose(sum(np.concatenate(v) for v in out.values()), audio, atol=1e-4)
