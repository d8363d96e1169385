"""A synthetic multitrack corpus for drums / bass / other (and vocals), Slakh-style.

Musical material from POP909 (melody, bridge, piano, chords, beats); drums from a groove
generator, bass lines from the chords, chord-voiced guitar/pad/strings/organ parts; rendered with
FluidSynth (General MIDI soundfont) or, without one, a small numpy synthesiser; per-stem
production and bus processing applied as gain curves so the stems still sum to the mixture.

Modules: ``theory`` (chords, scales), ``pop909`` (reading a song), ``grooves`` (drums), ``bass``,
``parts`` (chord-voiced accompaniment), ``render`` (FluidSynth / numpy), ``production`` (EQ,
compression, reverb, saturation, bus), ``corpus`` (one excerpt from a seed; writing a corpus).
Note lists are ``list[Note]`` with times in seconds; audio is float32 ``(n, 2)`` at 44.1 kHz.
"""

from .theory import Note

__all__ = ["Note"]
