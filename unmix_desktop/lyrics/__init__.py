"""Song lyrics: ``.lrc`` files and tags (parsing, no Qt) and a follower that maps song time to
the line and word being sung. Times are song seconds (float) everywhere, so tempo changes,
seeks and loops need nothing special: the follower is a pure function of song time."""

from .follower import FollowState, LyricsFollower, LyricsSettings
from .lrc import parse_lrc
from .model import Line, Lyrics, Word
from .sources import find_lyrics, load_lyrics_file, lyrics_for_song, read_tag_lyrics

__all__ = ["FollowState", "Line", "Lyrics", "LyricsFollower", "LyricsSettings", "Word", "find_lyrics",
           "load_lyrics_file", "lyrics_for_song", "parse_lrc", "read_tag_lyrics"]
