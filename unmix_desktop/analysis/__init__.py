"""Musical analysis of songs and stems (beats, metronome, practice helpers); no Qt."""
