"""Audio decoding/encoding and every kind of bad input."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from unmix_desktop.audio.io import audio_info, load_audio, save_audio
from unmix_desktop.errors import AudioError

SR = 44100


def tone(seconds=1.0, sr=SR, channels=2, freq=440.0):
    t = np.arange(int(seconds * sr)) / sr
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.stack([x] * channels, 1).astype(np.float32) if channels > 1 else x.astype(np.float32)


@pytest.mark.parametrize("ext,subtype,tol", [("wav", "PCM_16", 1e-4), ("flac", "PCM_24", 1e-6),
                                             ("wav", "FLOAT", 0.0)])
def test_lossless_roundtrip(tmp_path, ext, subtype, tol):
    x = tone(0.5)
    path = save_audio(tmp_path / f"a.{ext}", x, subtype=subtype)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.abs(y - x).max() <= tol + 1e-7


@pytest.mark.parametrize("ext", ["ogg", "mp3"])
def test_lossy_formats_decode_to_the_same_tone(tmp_path, ext):
    x = tone(1.0)
    path = save_audio(tmp_path / f"a.{ext}", x)
    y = load_audio(path)
    assert y.shape[1] == 2
    assert abs(y.shape[0] - x.shape[0]) < 0.06 * SR  # mp3 adds encoder padding
    spec = np.abs(np.fft.rfft(y[:, 0]))
    assert abs(np.argmax(spec) * SR / (2 * (spec.size - 1)) - 440) < 3


def test_mono_becomes_two_equal_channels_and_is_resampled(tmp_path):
    sf.write(tmp_path / "m.wav", tone(1.0, sr=16000, channels=1), 16000)
    y = load_audio(tmp_path / "m.wav")
    assert y.shape == (SR, 2)
    assert np.array_equal(y[:, 0], y[:, 1])
    assert np.sqrt(np.mean(y ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def _write_m4a(path, x, sr=SR):
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=sr, layout="stereo")
        frame_size = 1024
        for i in range(0, x.shape[0], frame_size):
            chunk = np.ascontiguousarray(x[i:i + frame_size].T)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate = sr
            frame.pts = i
            for pkt in stream.encode(frame):
                out.mux(pkt)
        for pkt in stream.encode(None):
            out.mux(pkt)


def test_m4a_length_matches_container_duration(tmp_path):
    x = tone(2.0)
    path = tmp_path / "song.m4a"
    _write_m4a(path, x)
    info = audio_info(path)
    y = load_audio(path)
    assert y.shape[1] == 2
    # AAC adds priming/padding frames; the decoder output is trimmed to the stated duration.
    assert y.shape[0] == info.frames
    assert abs(y.shape[0] - x.shape[0]) <= 2048
    assert np.sqrt(np.mean(y[SR // 2: SR] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)


def test_stem_mp4_reads_first_stream(tmp_path):
    path = tmp_path / "track.stem.mp4"
    _write_m4a(path, tone(1.0, freq=220.0))
    y = load_audio(path)
    spec = np.abs(np.fft.rfft(y[:, 0]))
    assert abs(np.argmax(spec) * SR / (2 * (spec.size - 1)) - 220) < 3


def test_not_found(tmp_path):
    with pytest.raises(AudioError, match="file not found") as e:
        load_audio(tmp_path / "missing.mp3")
    assert "missing.mp3" in str(e.value)


def test_empty_file(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        load_audio(tmp_path / "empty.wav")


def test_folder_is_refused(tmp_path):
    with pytest.raises(AudioError, match="folder"):
        load_audio(tmp_path)


@pytest.mark.parametrize("name", ["notes.mp3", "notes.wav", "notes.m4a"])
def test_not_audio(tmp_path, name):
    (tmp_path / name).write_text("this is a text file, not a song\n" * 50)
    with pytest.raises(AudioError) as e:
        load_audio(tmp_path / name)
    assert name in str(e.value)
    assert "\n" not in str(e.value)


def test_truncated_wav(tmp_path):
    path = save_audio(tmp_path / "t.wav", tone(1.0))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="truncated"):
        load_audio(path)


def test_truncated_flac(tmp_path):
    path = save_audio(tmp_path / "t.flac", np.random.default_rng(0).uniform(-0.5, 0.5, (SR, 2)).astype(np.float32))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="truncated|corrupt"):
        load_audio(path)


def test_too_long(tmp_path):
    path = save_audio(tmp_path / "long.wav", tone(3.0))
    with pytest.raises(AudioError, match="too long"):
        load_audio(path, max_duration=2.0)


def test_unsupported_codec(tmp_path):
    # A WAV header announcing a codec libsndfile cannot decode (format tag 0x0055 = MPEG in RIFF).
    import struct

    data = b"\x00" * 4000
    fmt = struct.pack("<HHIIHH", 0x0055, 2, SR, SR * 4, 4, 16)
    riff = b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE"
    riff += b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    (tmp_path / "odd.wav").write_bytes(riff)
    with pytest.raises(AudioError) as e:
        load_audio(tmp_path / "odd.wav")
    assert "odd.wav" in str(e.value)


def test_save_is_atomic_and_protects_source(tmp_path):
    src = save_audio(tmp_path / "song.wav", tone(0.2))
    before = src.read_bytes()
    with pytest.raises(AudioError, match="source"):
        save_audio(src, tone(0.2, freq=100), protect=(src,))
    assert src.read_bytes() == before
    with pytest.raises(AudioError, match="cannot write"):
        save_audio(tmp_path / "x.xyz", tone(0.1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.wav"]  # no temp files left


def test_save_clips_integer_formats(tmp_path):
    x = tone(0.1) * 4
    y = load_audio(save_audio(tmp_path / "hot.wav", x))
    assert np.abs(y).max() <= 1.0


def test_saved_files_get_normal_permissions(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = save_audio(tmp_path / "k.wav", tone(0.1))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
