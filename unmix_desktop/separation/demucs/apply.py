"""Running a Demucs model over a song: the reference's ``Separator.separate_tensor`` + ``apply_model``.

Numbers follow ``demucs/api.py`` and ``demucs/apply.py`` (demucs 4.1.0):

* the stereo mix is normalised by the mean and (unbiased) standard deviation of its mono average over
  the whole song, ``x = (mix - mean) / (std + 1e-8)``; the estimates are scaled back the same way;
* ``split``: segments of ``int(samplerate * segment)`` samples (7.8 s for HTDemucs) every
  ``int((1 - overlap) * segment_length)`` samples; a segment that runs past the end is centred on what
  is left and filled with the song before it (and zeros after the end), exactly like the reference's
  ``TensorChunk.padded``; outputs are cross-faded with triangular weights (``transition_power`` 1)
  normalised by their sum;
* ``shifts = N``: N passes over the song shifted by a random ``randint(0, 0.5 s)`` (drawn from Python's
  global :mod:`random` like the reference), averaged; ``random.seed(s)`` before both gives the same
  offsets, and the global random state advances exactly as the reference's does (it also draws an
  unused positional-embedding shift per segment);
* a bag: every model's estimate weighted per source by the yaml's weights, divided by their sum.

The engine runs under :func:`~unmix_desktop.separation.allocator.tuned_allocator` (glibc keeps the
segments' big buffers instead of mapping and faulting them in again for every segment; the memory is
trimmed back when the run ends).

Everything is one streaming engine (:func:`stream_demucs`): every (model, shift) pair is a *lane* with
its own segment grid; segments are run in the order of the input they need, and audio is final once
no lane has a segment left that covers it. Memory is a few segments whatever the song's length;
:func:`separate_demucs` is the same engine over an array, so both give the same numbers.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch

from ...errors import Cancelled
from ..allocator import tuned_allocator
from .model import DemucsModel, segment_length

ProgressFn = Callable[[float], None]
READ_BLOCK = 1 << 16
#: segments per network call (every normalisation in the network is per item, so batching is exact, within
#: float rounding). 2 on 2 loaded CPU cores: about 0.6-0.7x the time per segment of one by one in interleaved
#: runs (bigger matrix products, per-op overhead shared), for about 0.7 GB more peak memory (1.1 -> 1.9 GB
#: with the published htdemucs configuration; benchmarks/results/bench_demucs_30s_batch2.json)
DEFAULT_BATCH = 2


def mix_stats(source) -> tuple[float, float, int]:
    """``(mean, std, frames)`` of the mono average of a whole mix (array or source read to its end),
    as the reference's ``ref = wav.mean(0); ref.mean(), ref.std() + 1e-8`` (std unbiased)."""
    if isinstance(source, np.ndarray):
        mono = source.astype(np.float64).mean(axis=1)
        n = mono.shape[0]
        mean = float(mono.mean()) if n else 0.0
        std = float(mono.std(ddof=1)) if n > 1 else 0.0
        return mean, std + 1e-8, n
    total = 0.0
    total_sq = 0.0
    n = 0
    shift = None  # subtract the first block's mean to keep the sums well conditioned
    while True:
        block = source.read(READ_BLOCK)
        if block is None or block.shape[0] == 0:
            break
        mono = block.astype(np.float64).mean(axis=1)
        if shift is None:
            shift = float(mono.mean())
        d = mono - shift
        total += float(d.sum())
        total_sq += float((d * d).sum())
        n += mono.shape[0]
    if n == 0:
        return 0.0, 1e-8, 0
    mean_d = total / n
    var = (total_sq - n * mean_d * mean_d) / (n - 1) if n > 1 else 0.0
    return shift + mean_d, math.sqrt(max(var, 0.0)) + 1e-8, n


@dataclass
class _Lane:
    """One (network, shift) pass: a segment grid over the (shifted) song and its overlap-add."""

    net_index: int
    net: torch.nn.Module
    seg: int
    stride: int
    origin: int  # song position of this lane's virtual input sample 0 (offset - max_shift, or 0)
    length: int  # virtual input length
    n_chunks: int
    pos_shifts: list[int]
    weight: torch.Tensor
    next_chunk: int = 0
    acc: torch.Tensor | None = None  # (S, 2, span) from `base`
    wsum: torch.Tensor | None = None  # (span,)
    base: int = 0
    done_chunks: list = field(default_factory=list)

    def chunk(self, k: int) -> tuple[int, int, int, int]:
        """(song position of the input window start, song position of the output start, output length,
        offset of the output in the window)."""
        c = k * self.stride
        length = min(self.length - c, self.seg)
        delta = self.seg - length
        return self.origin + c - delta // 2, self.origin + c, length, delta // 2

    def frontier(self, n: int) -> int:
        """Song position before which this lane's output is final."""
        if self.next_chunk >= self.n_chunks:
            return n
        return min(max(self.origin + self.next_chunk * self.stride, 0), n)

    def input_start(self) -> int:
        if self.next_chunk >= self.n_chunks:
            return 1 << 62
        return self.chunk(self.next_chunk)[0]


class _InputBuffer:
    """The normalised song from ``start`` on, read from a source as needed; zeros outside [0, n)."""

    def __init__(self, source, n: int, mean: float, std: float):
        self.source = source
        self.n = n
        self.mean = np.float32(mean)
        self.std = np.float32(std)
        self.start = 0
        self.data = np.zeros((0, 2), dtype=np.float32)
        self.read_to = 0
        self.exhausted = False

    def _fill(self, end: int) -> None:
        end = min(end, self.n)
        pieces = [self.data]
        while self.read_to < end:
            if self.exhausted:
                block = np.zeros((end - self.read_to, 2), dtype=np.float32)
            else:
                block = self.source.read(max(READ_BLOCK, end - self.read_to))
                if block is None or block.shape[0] == 0:
                    self.exhausted = True
                    continue
                block = np.asarray(block, dtype=np.float32)
                block = block[:self.n - self.read_to]
            pieces.append((block - self.mean) / self.std)
            self.read_to += block.shape[0]
        if len(pieces) > 1:
            self.data = np.concatenate(pieces)

    def window(self, a: int, length: int) -> np.ndarray:
        """``(2, length)`` normalised input for song positions [a, a + length)."""
        self._fill(a + length)
        out = np.zeros((2, length), dtype=np.float32)
        lo, hi = max(a, 0), min(a + length, self.n)
        if hi > lo:
            out[:, lo - a:hi - a] = self.data[lo - self.start:hi - self.start].T
        return out

    def trim(self, keep_from: int) -> None:
        keep_from = max(0, min(keep_from, self.read_to))
        if keep_from > self.start:
            self.data = self.data[keep_from - self.start:]
            self.start = keep_from


@contextmanager
def _threads(n: int | None):
    if not n:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _run(net, batch: np.ndarray, pos_shift: int, device) -> torch.Tensor:
    x = torch.from_numpy(batch).to(device)
    out = net(x, pos_shift=pos_shift) if getattr(net, "accepts_pos_shift", False) else net(x)
    return out.to("cpu", torch.float32)


def _plan_lanes(model: DemucsModel, n: int, shifts: int, overlap: float) -> list[_Lane]:
    """The lanes in the reference's order, drawing the shifts (and per-segment positional shifts) from the
    global random state exactly as ``apply_model`` does."""
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    lanes = []
    max_shift = model.max_shift
    for i, net in enumerate(model.nets):
        seg = segment_length(net)
        stride = int((1 - overlap) * seg)
        if stride <= 0:
            raise ValueError("overlap too large for the segment length")
        tri = torch.cat([torch.arange(1, seg // 2 + 1), torch.arange(seg - seg // 2, 0, -1)])
        weight = (tri / tri.max()) ** 1.0
        draws_pos = getattr(net, "crosstransformer", None) is not None and \
            getattr(net.crosstransformer, "emb", "") == "sin"
        rand_pos = cast(Any, net).crosstransformer.sin_random_shift if draws_pos else 0
        passes = [(0, n)] if not shifts else []
        for _ in range(shifts):
            offset = random.randint(0, max_shift)
            passes.append((offset - max_shift, n + max_shift - offset))
            k = math.ceil(passes[-1][1] / stride)
            pos = [random.randrange(rand_pos + 1) for _ in range(k)] if draws_pos else [0] * k
            lanes.append(_Lane(i, net, seg, stride, passes[-1][0], passes[-1][1], k, pos, weight))
        if not shifts:
            k = math.ceil(n / stride)
            pos = [random.randrange(rand_pos + 1) for _ in range(k)] if draws_pos else [0] * k
            lanes.append(_Lane(i, net, seg, stride, 0, n, k, pos, weight))
    return lanes


def stream_demucs(model: DemucsModel, source, *, shifts: int = 0, overlap: float = 0.25,
                  progress: ProgressFn | None = None, cancel: threading.Event | None = None,
                  device=None, threads: int | None = None, stats: tuple[float, float] | None = None,
                  batch: int = DEFAULT_BATCH) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Separate a song piece by piece: yields ``(offset, {source: (k, 2) float32})``, final, contiguous
    blocks in order covering the whole song, while holding only a few segments in memory.

    ``source`` is an ``(n, 2)`` float32 array, an object with ``frames`` and ``read(n)`` (e.g.
    :func:`~unmix_desktop.audio.stream.open_audio`), or a zero-argument callable that opens one. The
    reference normalises by statistics of the whole song, so a source is read twice: a first pass for
    them (by calling the callable again, or by reopening ``source.path`` at ``source.rate`` when it
    is a file reader), unless ``stats=(mean, std)`` is given.
    """
    factory = source if callable(source) and not hasattr(source, "read") else None
    if isinstance(source, np.ndarray) or isinstance(source, list):
        audio = np.asarray(source, dtype=np.float32)
        if audio.ndim != 2 or audio.shape[1] != 2:
            raise ValueError(f"expected (n, 2) audio, got {audio.shape}")
        from ...audio.stream import ArraySource

        mean, std, n = mix_stats(audio)
        if stats is not None:
            mean, std = stats
        src = ArraySource(audio)
    else:
        if factory is not None:
            src = factory()
        else:
            src = source
        if stats is not None:
            mean, std = stats
            n = src.frames
            if n is None:
                raise ValueError("the source does not state its length; pass an array or a callable")
        else:
            if factory is not None:
                first = factory()
            elif hasattr(src, "path") and hasattr(src, "rate"):
                from ...audio.stream import open_audio

                first = open_audio(src.path, src.rate)
            else:
                raise ValueError("stream_demucs needs the whole song's mean and std: pass an array, a "
                                 "callable that opens the source, a file reader, or stats=(mean, std)")
            try:
                mean, std, n = mix_stats(first)
            finally:
                close = getattr(first, "close", None)
                if close:
                    close()
    yield from _engine(model, src, int(n), float(mean), float(std), shifts=shifts, overlap=overlap,
                       progress=progress, cancel=cancel, device=device, threads=threads, batch=batch)


def _engine(model, src, n, mean, std, *, shifts, overlap, progress, cancel, device, threads, batch):
    device = torch.device(device) if device is not None else torch.device("cpu")
    model.to(device)
    names = model.sources
    S = len(names)
    if progress:
        progress(0.0)
    if n == 0:
        if progress:
            progress(1.0)
        return
    lanes = _plan_lanes(model, n, shifts, overlap)
    totals = torch.tensor([sum(w[k] for w in model.weights) for k in range(S)], dtype=torch.float32)
    weights = [torch.tensor(w, dtype=torch.float32) for w in model.weights]
    per_net = max(1, shifts)
    buf = _InputBuffer(src, n, mean, std)
    total_chunks = sum(lane.n_chunks for lane in lanes)
    done = 0
    emitted = 0
    # glibc keeps the big tensors' pages from one segment to the next; memory trimmed at the end (allocator.py)
    with _threads(threads), torch.inference_mode(), tuned_allocator():
        while emitted < n:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            active = [lane for lane in lanes if lane.next_chunk < lane.n_chunks]
            if active:
                lane = min(active, key=lambda la: la.input_start())
                ks = list(range(lane.next_chunk, min(lane.next_chunk + max(1, batch), lane.n_chunks)))
                if len(set(lane.pos_shifts[k] for k in ks)) > 1:
                    ks = ks[:1]
                specs = [lane.chunk(k) for k in ks]
                x = np.stack([buf.window(a, lane.seg) for a, _, _, _ in specs])
                y = _run(lane.net, x, lane.pos_shifts[ks[0]], device)  # (B, S, 2, seg)
                for (a, o, length, trim), out in zip(specs, y):
                    _accumulate(lane, out[..., trim:trim + length], o, length)
                lane.next_chunk = ks[-1] + 1
                done += len(ks)
                buf.trim(min(la.input_start() for la in lanes))
            frontier = min(lane.frontier(n) for lane in lanes)
            if frontier > emitted:
                est = torch.zeros(S, 2, frontier - emitted)
                for i in range(len(model.nets)):
                    part: float | torch.Tensor = 0.0
                    for lane in lanes:
                        if lane.net_index == i:
                            part = part + _take(lane, emitted, frontier)
                    part = part / per_net if shifts else part
                    est += part * weights[i][:, None, None]
                est /= totals[:, None, None]
                est = est * cast(Any, np.float32(std)) + cast(Any, np.float32(mean))
                block = est.permute(0, 2, 1).contiguous().numpy()
                yield emitted, {name: block[k] for k, name in enumerate(names)}
                emitted = frontier
            if progress:
                progress(1.0 if emitted >= n else min(done / total_chunks, 0.99))


def _accumulate(lane: _Lane, out: torch.Tensor, o: int, length: int) -> None:
    """Add a segment's weighted output at song position ``o`` (parts before the song start dropped)."""
    w = lane.weight[:length].to(torch.float32)
    if lane.acc is None:
        lane.base = max(o, 0)
        lane.acc = torch.zeros(out.shape[0], out.shape[1], 0)
        lane.wsum = torch.zeros(0)
    assert lane.acc is not None and lane.wsum is not None
    lo = max(o, lane.base)
    hi = o + length
    if hi <= lo:
        return
    need = hi - lane.base
    if need > lane.acc.shape[-1]:
        grow = need - lane.acc.shape[-1]
        lane.acc = torch.cat([lane.acc, torch.zeros(*lane.acc.shape[:2], grow)], dim=-1)
        lane.wsum = torch.cat([lane.wsum, torch.zeros(grow)])
    sl = slice(lo - lane.base, hi - lane.base)
    lane.acc[..., sl] += w[lo - o:] * out[..., lo - o:]
    lane.wsum[sl] += w[lo - o:]


def _take(lane: _Lane, start: int, end: int) -> torch.Tensor:
    """Final output of ``lane`` for song positions [start, end), then forget it."""
    assert lane.acc is not None and lane.wsum is not None, "no output accumulated yet"
    sl = slice(start - lane.base, end - lane.base)
    part = lane.acc[..., sl] / lane.wsum[sl]
    lane.acc = lane.acc[..., end - lane.base:]
    lane.wsum = lane.wsum[end - lane.base:]
    lane.base = end
    return part


def separate_demucs(model: DemucsModel, mix: np.ndarray, *, shifts: int = 0, split: bool = True,
                    overlap: float = 0.25, progress: ProgressFn | None = None,
                    cancel: threading.Event | None = None, device=None, threads: int | None = None,
                    batch: int = DEFAULT_BATCH) -> dict[str, np.ndarray]:
    """Separate ``mix`` ((n, 2) float32 at ``model.samplerate``) into ``{source: (n, 2) float32}`` in
    ``model.sources`` order, with the reference's processing (see the module's doc).

    ``split=False`` runs each network once over the whole mix, which an HTDemucs only allows up to its
    segment length (as in the reference); longer mixes raise ValueError.
    """
    mix = np.asarray(mix, dtype=np.float32)
    if mix.ndim != 2 or mix.shape[1] != 2:
        raise ValueError(f"expected (n, 2) audio, got {mix.shape}")
    n = mix.shape[0]
    if not split:
        for net in model.nets:
            if n > segment_length(net):
                raise ValueError(f"split=False: the mix ({n} samples) is longer than the model's segment "
                                 f"({segment_length(net)} samples)")
        # one segment covering the whole mix is what the reference's unsplit call computes
        overlap = 0.0
    out = {name: np.zeros((n, 2), dtype=np.float32) for name in model.sources}
    for offset, blocks in stream_demucs(model, mix, shifts=shifts, overlap=overlap, progress=progress,
                                        cancel=cancel, device=device, threads=threads, batch=batch):
        for name, block in blocks.items():
            out[name][offset:offset + block.shape[0]] = block
    return out
