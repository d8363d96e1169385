"""Training data sets of the open-unmix tutorial, as torch ``Dataset`` classes.

Four layouts (names as in open-unmix's ``data.py``)::

    FixedSourcesTrackFolderDataset     ROOT/<split>/<track>/{vocals,accompaniment}.ogg   (MIR-1K)
        every track has the target and the same interferer files; the mixture is their sum.
    SourceFolderDataset                ROOT/<split>/<source>/*.wav
        one folder of unrelated files per source; each sample mixes random files of each source.
    VariableSourcesTrackFolderDataset  ROOT/<split>/<track>/{vocals.wav, any others...}
        the target plus whatever other files a track holds (a variable number of interferers).
    AlignedDataset                     ROOT/<split>/<track>/{mixture.wav, vocals.wav}
        a given mixture and target, aligned.

Files are decoded once into an in-memory :class:`AudioCache` (int16, at the data's own rate: MIR-1K's
133 min of 16 kHz mono take ~250 MB), so epochs never touch the disk. An item is built at that rate
(excerpt -> augmentation -> mix), then resampled (soxr) to ``out_rate`` (44.1 kHz): the model
always sees the 44.1 kHz / 4096-point STFT grid it runs on in the app, and 16 kHz data covers its
first ``band_bins(16000)`` = 744 bins (0–8 kHz).

``ds[i]`` returns ``(mixture, target)``, float32 tensors ``(2, n)`` at ``out_rate``. Items are
reproducible: each uses ``numpy.random.default_rng([seed, epoch, index])`` (call
``set_epoch(e)`` each epoch; ``frozen`` data sets ignore the epoch, e.g. validation).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..audio.io import (
    AUDIO_EXTENSIONS,
    SAMPLE_RATE,
    SOUNDFILE_EXTENSIONS,
    audio_files,
    load_audio,
    resample,
)
from ..errors import AudioError, UnmixError
from .augment import Augmentation, choose_start

OUT_RATE = SAMPLE_RATE
MIXTURE_NAMES = ("mixture", "mix")
_INT16 = 32767.0


class AudioCache:
    """Decoded audio kept in memory as int16 ``(n, channels)`` at one sample rate.

    ``sample_rate=None`` adopts the rate of the first file loaded; files at other rates are
    resampled to it. Mono stays mono (stereo synthesis is an augmentation).
    """

    def __init__(self, sample_rate: int | None = None) -> None:
        self.sample_rate = sample_rate
        self._data: dict[str, np.ndarray] = {}

    def clear(self) -> None:
        self._data.clear()

    def __contains__(self, path: str | os.PathLike) -> bool:
        return os.fspath(path) in self._data

    def __len__(self) -> int:
        return len(self._data)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._data.values())

    @property
    def seconds(self) -> float:
        return sum(a.shape[0] for a in self._data.values()) / float(self.sample_rate or 1)

    def _decode(self, path: Path) -> np.ndarray:
        if not path.is_file():
            raise AudioError(path, "file not found")
        if path.suffix.lower() in SOUNDFILE_EXTENSIONS:
            import soundfile as sf

            try:
                audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
            except Exception as exc:
                raise AudioError(path, f"corrupt or unreadable ({str(exc).strip()[:120]})") from exc
            if self.sample_rate is None:
                self.sample_rate = int(sr)
            if sr != self.sample_rate:
                audio = resample(audio, int(sr), self.sample_rate)
        else:  # m4a/mp4/...: through audio.io (PyAV), stereo at the cache rate
            audio = load_audio(path, sample_rate=self.sample_rate or OUT_RATE)
            if self.sample_rate is None:
                self.sample_rate = OUT_RATE
        if audio.shape[0] == 0:
            raise AudioError(path, "contains no audio samples")
        if audio.shape[1] > 2:
            audio = np.stack([audio[:, 0::2].mean(1), audio[:, 1::2].mean(1)], axis=1)
        return np.clip(np.round(audio * _INT16), -32768, 32767).astype(np.int16)

    def get(self, path: str | os.PathLike) -> np.ndarray:
        """The whole file, int16 ``(n, c)`` (decoded on first use)."""
        key = os.fspath(path)
        data = self._data.get(key)
        if data is None:
            data = self._decode(Path(key))
            self._data[key] = data
        return data

    def frames(self, path: str | os.PathLike) -> int:
        return self.get(path).shape[0]

    def excerpt(self, path: str | os.PathLike, start: int, length: int | None) -> np.ndarray:
        """float32 ``(length, c)`` from ``start``; zero-padded past the end. ``length=None``: to the end."""
        data = self.get(path)
        if length is None:
            length = data.shape[0] - start
        out = np.zeros((length, data.shape[1]), dtype=np.float32)
        part = data[start:start + length]
        out[: part.shape[0]] = part.astype(np.float32) / _INT16
        return out

    def preload(self, paths: Iterable[str | os.PathLike], progress: Callable[[int, int], None] | None = None) -> None:
        paths = list(dict.fromkeys(os.fspath(p) for p in paths))
        for i, p in enumerate(paths):
            self.get(p)
            if progress:
                progress(i + 1, len(paths))


def band_bins(sample_rate: int, n_fft: int = 4096, out_rate: int = OUT_RATE) -> int:
    """How many bins of the ``out_rate``/``n_fft`` grid lie at or below ``sample_rate``'s Nyquist
    frequency: 744 for 16 kHz data (bin 743 = 7999 Hz), 2049 (all) for 44.1 kHz data."""
    nyquist = min(sample_rate, out_rate) / 2.0
    return min(n_fft // 2 + 1, int(np.floor(nyquist * n_fft / out_rate)) + 1)


def _audio_files(folder: Path) -> dict[str, Path]:
    """name (file stem, lower case) -> path of the audio files directly in ``folder``."""
    out: dict[str, Path] = {}
    for p in audio_files(folder):
        out.setdefault(p.name[: -len(p.suffix)].lower(), p)
    return out


def _stem(name: str) -> str:
    """'vocals.wav' or 'vocals' -> 'vocals'."""
    name = name.strip().lower()
    suffix = Path(name).suffix
    return name[: -len(suffix)] if suffix in AUDIO_EXTENSIONS else name


def _split_dir(root: str | os.PathLike, split: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise AudioError(root, "training data folder not found")
    folder = root / split
    if not folder.is_dir():
        raise AudioError(folder, f"no '{split}' folder in the training data")
    return folder


class _MixingDataset(Dataset):
    """Shared machinery: excerpt length, per-item RNG, augmentation, mixing, resampling."""

    def __init__(self, seq_duration: float | None = 6.0, augmentation: Augmentation | None = None,
                 samples_per_track: int = 1, seed: int = 42, out_rate: int = OUT_RATE,
                 cache: AudioCache | None = None, frozen: bool = False) -> None:
        self.seq_duration = seq_duration
        self.augmentation = augmentation if augmentation is not None else Augmentation.none()
        self.samples_per_track = max(1, int(samples_per_track))
        self.seed = int(seed)
        self.out_rate = int(out_rate)
        self.cache = cache if cache is not None else AudioCache()
        self.frozen = frozen
        self.epoch = 0

    # -- bookkeeping ---------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, 0 if self.frozen else self.epoch, int(index)])

    @property
    def sample_rate(self) -> int:
        if self.cache.sample_rate is None:
            self.cache.get(next(iter(self.files())))
        return int(self.cache.sample_rate)

    def excerpt_length(self) -> int | None:
        """Samples per excerpt at the data rate; ``None`` = whole tracks."""
        if not self.seq_duration:
            return None
        return int(round(self.seq_duration * self.sample_rate))

    def files(self) -> list[Path]:  # pragma: no cover - abstract
        raise NotImplementedError

    def preload(self, progress: Callable[[int, int], None] | None = None) -> None:
        self.cache.preload(self.files(), progress)

    # -- building an item ----------------------------------------------------------------
    def _to_out_rate(self, *signals: np.ndarray) -> list[torch.Tensor]:
        sr = self.sample_rate
        out = []
        for s in signals:
            if sr != self.out_rate:
                s = resample(np.ascontiguousarray(s), sr, self.out_rate)
            out.append(torch.from_numpy(np.ascontiguousarray(s.T, dtype=np.float32)))
        return out

    def mix(self, target: np.ndarray, interferers: Sequence[np.ndarray],
            rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment each source, sum them, apply the mixture level, resample -> (mixture, target)."""
        aug = self.augmentation
        sr = self.sample_rate
        y = aug.source(target, sr, rng)
        mixture = y.copy()
        for other in interferers:
            mixture += aug.source(other, sr, rng)
        level = aug.level(rng)
        if level != 1.0:
            mixture *= np.float32(level)
            y *= np.float32(level)
        x_t, y_t = self._to_out_rate(mixture, y)
        return x_t, y_t


class _TrackFolderBase(_MixingDataset):
    """Track folders: ``tracks`` is a list of ``{source name: path}``; ``target`` names the target."""

    target: str
    tracks: list[dict[str, Path]]

    def __len__(self) -> int:
        return len(self.tracks) * (self.samples_per_track if self.seq_duration else 1)

    def files(self) -> list[Path]:
        return [p for track in self.tracks for p in track.values()]

    def track_names(self) -> list[str]:
        return [next(iter(t.values())).parent.name for t in self.tracks]

    def _interferer_names(self, track: dict[str, Path]) -> list[str]:
        return [k for k in track if k != self.target]

    def _excerpts(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray]]:
        aug = self.augmentation
        track = self.tracks[index % len(self.tracks)]
        length = self.excerpt_length()
        names = self._interferer_names(track)
        if length is None:  # whole track, every source cut to the shortest
            n = min(self.cache.frames(p) for p in track.values())
            return (self.cache.excerpt(track[self.target], 0, n),
                    [self.cache.excerpt(track[k], 0, n) for k in names])
        # Silence-aware start on the target, the same start for the track's own interferers.
        start = choose_start(self.cache.get(track[self.target]), length, rng, aug.silence_db, scale=1 / _INT16)
        target = self.cache.excerpt(track[self.target], start, length)
        interferers = []
        for k in names:
            if aug.mix_prob > 0 and len(self.tracks) > 1 and rng.random() < aug.mix_prob:
                # cross-track mixing: this interferer comes from a random other track
                other = self._random_track_with(k, rng, exclude=index % len(self.tracks))
                if other is not None:
                    s = choose_start(self.cache.get(other), length, rng, aug.silence_db, scale=1 / _INT16)
                    interferers.append(self.cache.excerpt(other, s, length))
                    continue
            interferers.append(self.cache.excerpt(track[k], start, length))
        return target, interferers

    def _random_track_with(self, name: str, rng: np.random.Generator, exclude: int) -> Path | None:
        for _ in range(8):
            j = int(rng.integers(0, len(self.tracks)))
            if j != exclude and name in self.tracks[j]:
                return self.tracks[j][name]
        return None

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if index < 0 or index >= len(self):
            raise IndexError(index)
        rng = self.rng(index)
        target, interferers = self._excerpts(index, rng)
        return self.mix(target, interferers, rng)


class FixedSourcesTrackFolderDataset(_TrackFolderBase):
    """``ROOT/<split>/<track>/{target, interferers...}``: every track holds the same files.

    ``target_file`` / ``interferer_files`` are file names with or without extension
    (``"vocals"`` matches ``vocals.ogg``). Interferers default to every other audio file of the
    first track (except a mixture). Tracks lacking a file are skipped.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", target_file: str = "vocals",
                 interferer_files: Sequence[str] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        self.split = split
        self.target = _stem(target_file)
        folder = _split_dir(root, split)
        candidates = [(p, _audio_files(p)) for p in sorted(folder.iterdir()) if p.is_dir()]
        candidates = [(p, f) for p, f in candidates if f]
        if not candidates:
            raise AudioError(folder, "no track folders with audio files")
        if interferer_files is None:
            first = next((f for _, f in candidates if self.target in f), candidates[0][1])
            interferer_files = [k for k in first if k != self.target and k not in MIXTURE_NAMES]
        self.interferers = [_stem(k) for k in interferer_files]
        if not self.interferers:
            raise UnmixError(f"{folder}: no interferer files next to '{self.target}'")
        wanted = [self.target, *self.interferers]
        self.tracks = [{k: f[k] for k in wanted} for _, f in candidates if all(k in f for k in wanted)]
        if not self.tracks:
            raise AudioError(folder, f"no track folder holds all of {', '.join(wanted)}")


class VariableSourcesTrackFolderDataset(_TrackFolderBase):
    """``ROOT/<split>/<track>/{target, any others}``: the mixture is the target plus whatever other
    audio files the track holds. Tracks without the target are skipped, or, with
    ``silence_missing_targets``, used with a silent target."""

    def __init__(self, root: str | os.PathLike, split: str = "train", target_file: str = "vocals",
                 silence_missing_targets: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        self.split = split
        self.target = _stem(target_file)
        self.silence_missing_targets = silence_missing_targets
        folder = _split_dir(root, split)
        self.tracks = []
        for p in sorted(folder.iterdir()):
            if not p.is_dir():
                continue
            files = {k: v for k, v in _audio_files(p).items() if k not in MIXTURE_NAMES}
            if self.target in files and len(files) > 1:
                self.tracks.append(files)
            elif self.target not in files and silence_missing_targets and files:
                self.tracks.append(files)
        if not self.tracks:
            raise AudioError(folder, f"no track folder holds '{self.target}' and another source")

    def _excerpts(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray]]:
        track = self.tracks[index % len(self.tracks)]
        if self.target in track:
            return super()._excerpts(index, rng)
        # silent target: every file is an interferer, aligned from one random start
        length = self.excerpt_length()
        paths = list(track.values())
        n = min(self.cache.frames(p) for p in paths)
        if length is None:
            interferers = [self.cache.excerpt(p, 0, n) for p in paths]
            length = n
        else:
            start = choose_start(self.cache.get(paths[0]), length, rng, self.augmentation.silence_db, scale=1 / _INT16)
            interferers = [self.cache.excerpt(p, start, length) for p in paths]
        target = np.zeros((length, interferers[0].shape[1]), dtype=np.float32)
        return target, interferers


class SourceFolderDataset(_MixingDataset):
    """``ROOT/<split>/<source dir>/*``: one folder per source of unrelated files; every sample
    draws a random file (and excerpt) of the target and of each interferer folder and mixes them.
    ``nb_samples`` items per epoch."""

    def __init__(self, root: str | os.PathLike, split: str = "train", target_dir: str = "vocals",
                 interferer_dirs: Sequence[str] = ("accompaniment",), nb_samples: int = 1000, **kwargs) -> None:
        super().__init__(**kwargs)
        if not self.seq_duration:
            raise UnmixError("SourceFolderDataset needs a sequence duration (random excerpts)")
        folder = _split_dir(root, split)
        self.root = Path(root)
        self.split = split
        self.target = target_dir
        self.sources: dict[str, list[Path]] = {}
        for name in (target_dir, *interferer_dirs):
            d = folder / name
            files = sorted(_audio_files(d).values()) if d.is_dir() else []
            if not files:
                raise AudioError(d, "no audio files in this source folder")
            self.sources[name] = files
        self.nb_samples = int(nb_samples)

    def __len__(self) -> int:
        return self.nb_samples

    def files(self) -> list[Path]:
        return [p for files in self.sources.values() for p in files]

    def _draw(self, name: str, rng: np.random.Generator, length: int) -> np.ndarray:
        files = self.sources[name]
        path = files[int(rng.integers(0, len(files)))]
        start = choose_start(self.cache.get(path), length, rng, self.augmentation.silence_db, scale=1 / _INT16)
        return self.cache.excerpt(path, start, length)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if index < 0 or index >= len(self):
            raise IndexError(index)
        rng = self.rng(index)
        length = self.excerpt_length()
        target = self._draw(self.target, rng, length)
        interferers = [self._draw(k, rng, length) for k in self.sources if k != self.target]
        return self.mix(target, interferers, rng)


class AlignedDataset(_MixingDataset):
    """``ROOT/<split>/<track>/{input_file, output_file}``: a given mixture and its aligned target.
    Only mixture-level augmentations apply (level, channel swap, the same for both)."""

    def __init__(self, root: str | os.PathLike, split: str = "train", input_file: str = "mixture",
                 output_file: str = "vocals", **kwargs) -> None:
        super().__init__(**kwargs)
        folder = _split_dir(root, split)
        self.root = Path(root)
        self.split = split
        self.input, self.target = _stem(input_file), _stem(output_file)
        self.tracks = []
        for p in sorted(folder.iterdir()):
            if p.is_dir():
                f = _audio_files(p)
                if self.input in f and self.target in f:
                    self.tracks.append({self.input: f[self.input], self.target: f[self.target]})
        if not self.tracks:
            raise AudioError(folder, f"no track folder holds both '{self.input}' and '{self.target}'")

    def __len__(self) -> int:
        return len(self.tracks) * (self.samples_per_track if self.seq_duration else 1)

    def files(self) -> list[Path]:
        return [p for t in self.tracks for p in t.values()]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if index < 0 or index >= len(self):
            raise IndexError(index)
        rng = self.rng(index)
        track = self.tracks[index % len(self.tracks)]
        length = self.excerpt_length()
        n = min(self.cache.frames(p) for p in track.values())
        if length is None:
            start, length = 0, n
        else:
            start = int(rng.integers(0, max(1, n - length + 1)))
        from .augment import to_stereo

        x = to_stereo(self.cache.excerpt(track[self.input], start, length))
        y = to_stereo(self.cache.excerpt(track[self.target], start, length))
        aug = self.augmentation
        if aug.channel_swap and rng.random() < 0.5:
            x, y = x[:, ::-1], y[:, ::-1]
        level = aug.level(rng)
        if level != 1.0:
            x, y = x * np.float32(level), y * np.float32(level)
        x_t, y_t = self._to_out_rate(x, y)
        return x_t, y_t


DATASETS = {
    "trackfolder_fix": FixedSourcesTrackFolderDataset,
    "trackfolder_var": VariableSourcesTrackFolderDataset,
    "sourcefolder": SourceFolderDataset,
    "aligned": AlignedDataset,
}


def make_datasets(kind: str, root: str | os.PathLike, target: str = "vocals",
                  interferers: Sequence[str] | None = None, seq_duration: float = 6.0,
                  augmentation: Augmentation | None = None, samples_per_track: int = 1, seed: int = 42,
                  nb_samples: int = 1000, nb_valid_samples: int = 100, valid_split: str = "valid",
                  input_file: str = "mixture", out_rate: int = OUT_RATE,
                  ) -> tuple[_MixingDataset, _MixingDataset]:
    """Training set (random augmented excerpts) and validation set (whole tracks, no
    augmentation; fixed excerpts for ``sourcefolder``), sharing one :class:`AudioCache`."""
    if kind not in DATASETS:
        raise UnmixError(f"unknown dataset type '{kind}' (choose from {', '.join(DATASETS)})")
    cache = AudioCache()
    common = dict(seed=seed, out_rate=out_rate, cache=cache)
    train_kw = dict(common, seq_duration=seq_duration, augmentation=augmentation,
                    samples_per_track=samples_per_track)
    valid_kw = dict(common, seq_duration=None, augmentation=Augmentation.none(), frozen=True)
    if kind == "trackfolder_fix":
        train = FixedSourcesTrackFolderDataset(root, "train", target, interferers, **train_kw)
        valid = FixedSourcesTrackFolderDataset(root, valid_split, target, train.interferers, **valid_kw)
    elif kind == "trackfolder_var":
        train = VariableSourcesTrackFolderDataset(root, "train", target, **train_kw)
        valid = VariableSourcesTrackFolderDataset(root, valid_split, target, **valid_kw)
    elif kind == "sourcefolder":
        train = SourceFolderDataset(root, "train", target, tuple(interferers or ("accompaniment",)),
                                    nb_samples=nb_samples, **train_kw)
        valid_kw.update(seq_duration=seq_duration)
        valid = SourceFolderDataset(root, valid_split, target, tuple(interferers or ("accompaniment",)),
                                    nb_samples=nb_valid_samples, **valid_kw)
    else:
        train = AlignedDataset(root, "train", input_file, target, **train_kw)
        valid = AlignedDataset(root, valid_split, input_file, target, **valid_kw)
    return train, valid
