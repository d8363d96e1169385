"""Stem buffers that fill while a song is being separated (no Qt, no torch).

:class:`GrowingStems` preallocates one float32 ``(capacity, 2)`` array of silence per stem, at the
length the decoder states for the song, and a separation's block stream
(:meth:`~unmix_desktop.separation.separator.Separator.stream`: final, contiguous, in order) writes
into them with :meth:`GrowingStems.write`. After each block it publishes :attr:`ready`, the number
of leading frames whose samples are final, by assigning a plain ``int`` (an atomic reference swap
in CPython): the audio callback (:class:`~unmix_desktop.audio.mixer.MixEngine`) reads it without a
lock and never plays past it. The samples below ``ready`` are never written again.

One writer (the separation thread), any number of readers. A song longer than stated is cut at
the capacity (the readers hold the arrays); one shorter ends in silence. :meth:`finish` marks the
whole buffer ready (then ``complete`` is true).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

#: Extra frames allocated past the stated length (decoders may state a few frames short).
SLACK_FRAMES = 4096


class GrowingStems:
    """``{name: (capacity, 2) float32}`` filled front to back; ``ready`` frames are final."""

    def __init__(self, names: Iterable[str], frames: int, slack: int = SLACK_FRAMES):
        self.names = tuple(names)
        self.frames = max(int(frames), 0)          # the stated length of the song
        self.capacity = self.frames + max(int(slack), 0)
        self.stems: dict[str, np.ndarray] = {n: np.zeros((self.capacity, 2), np.float32) for n in self.names}
        self.ready = 0              # published by the writer, read lock-free by the audio thread
        self.complete = False
        self.written = 0            # frames the separation delivered (may pass ``frames``)

    @property
    def fraction(self) -> float:
        """How much of the song is ready, 0..1."""
        return 1.0 if self.complete or not self.frames else min(self.ready / self.frames, 1.0)

    def write(self, offset: int, blocks: Mapping[str, np.ndarray]) -> None:
        """Copy final blocks ``{name: (k, 2)}`` starting at frame ``offset``, then publish ``ready``."""
        end = offset
        for name, block in blocks.items():
            dest = self.stems.get(name)
            if dest is None:
                continue
            k = max(min(block.shape[0], self.capacity - offset), 0)
            if k:
                dest[offset:offset + k] = block[:k]
            end = max(end, offset + block.shape[0])
        self.written = max(self.written, end)
        # only the part every stem has: the blocks of one offset all have the same length
        self.ready = min(end, self.capacity)

    def finish(self) -> None:
        """The separation is over: everything is final (the rest stays silence)."""
        self.ready = self.capacity
        self.complete = True

    def result(self) -> dict[str, np.ndarray]:
        """The stems cut to the delivered length (views of the buffers, no copy)."""
        n = min(self.written or self.frames, self.capacity)
        return {name: a[:n] for name, a in self.stems.items()}
