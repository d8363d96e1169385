"""Musical analysis of songs and stems (beats, metronome, practice helpers, melody); no Qt."""
