"""Where lyrics come from: an ``.lrc`` (or ``.txt``) file next to the song with the same name, a
file the user opens by hand, or the song's tags (read with mutagen):

* ID3 (mp3, wav, aiff): ``SYLT`` (synced, millisecond timestamps), ``USLT`` (unsynced; LRC text
  inside is parsed as LRC), ``TXXX:LYRICS``;
* Vorbis comments (flac, ogg, opus): ``LYRICS``, ``UNSYNCEDLYRICS``, ``SYNCEDLYRICS``;
* MP4 (m4a, mp4): ``©lyr``.

Nothing here raises for a bad file: unreadable files give ``None`` or lyrics with ``problems``.
"""

from __future__ import annotations

import os
from pathlib import Path

from .lrc import parse_lrc
from .model import Line, Lyrics, Word

LYRICS_SUFFIXES = (".lrc", ".LRC", ".Lrc", ".txt", ".TXT")
MAX_LYRICS_BYTES = 4 * 1024 * 1024


def decode_text(data: bytes) -> tuple[str, str | None]:
    """Text of a lyrics file: UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252.

    Returns ``(text, problem)``; ``problem`` says when a fallback encoding was guessed."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace"), None
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        pass
    if b"\x00" in data[:4096]:
        return data.decode("utf-8", errors="replace"), "not a text file (binary data)"
    return data.decode("cp1252", errors="replace"), "not UTF-8; read as Windows-1252"


def _from_text(text: str, source: str) -> Lyrics:
    """LRC text is parsed as such; anything else becomes plain lyrics (ID tags left out)."""
    return parse_lrc(text, source)


def load_lyrics_file(path: str | os.PathLike) -> Lyrics:
    """Read an ``.lrc`` or plain-text lyrics file; problems (unreadable, binary...) are reported in
    the result, never raised."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_LYRICS_BYTES:
            return Lyrics(source=str(path), problems=[f"{path}: too large for a lyrics file ({size} bytes)"])
        data = path.read_bytes()
    except OSError as exc:
        return Lyrics(source=str(path), problems=[f"{path}: {exc.strerror or exc}"])
    from .ultrastar import looks_like_ultrastar

    if looks_like_ultrastar(data):  # an UltraStar chart: its syllables, timed by its notes
        from .ultrastar import decode, parse

        chart = parse(decode(data)[0], path)
        lyrics = chart.lyrics() if chart.bpm > 0 else Lyrics(source=str(path))
        lyrics.problems[:0] = [f"{path}: {p}" for p in chart.problems]
        return lyrics
    text, problem = decode_text(data)
    if problem == "not a text file (binary data)":
        return Lyrics(source=str(path), problems=[f"{path}: {problem}"])
    lyrics = _from_text(text, str(path))
    if problem:
        lyrics.problems.insert(0, f"{path}: {problem}")
    return lyrics


def lyrics_file_for(song: str | os.PathLike) -> Path | None:
    """The ``.lrc`` (preferred) or ``.txt`` beside ``song`` with the same name, if any."""
    song = Path(song)
    stem = song.name
    for suffix in (".stem.mp4", ".stem.m4a"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    else:
        stem = song.stem
    for suffix in LYRICS_SUFFIXES:
        candidate = song.with_name(stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def find_lyrics(song: str | os.PathLike) -> Lyrics | None:
    """Lyrics for ``song``: the ``.lrc`` beside it, else its tags (synced preferred); ``None`` if none."""
    path = lyrics_file_for(song)
    if path is not None:
        lyrics = load_lyrics_file(path)
        if not lyrics.empty:
            return lyrics
        tagged = read_tag_lyrics(song)
        if tagged is not None:
            tagged.problems[:0] = lyrics.problems
            return tagged
        return lyrics if lyrics.problems else None
    return read_tag_lyrics(song)


# -- tags ----------------------------------------------------------------------------------
def _sylt_lyrics(frame, source: str) -> Lyrics:
    """An ID3 SYLT frame: ``frame.text`` is [(text, time)]; ``format`` 2 = milliseconds, 1 = MPEG frames."""
    lyrics = Lyrics(source=source)
    if getattr(frame, "format", 2) != 2:
        lyrics.problems.append(f"{source}: SYLT uses MPEG-frame timestamps (not supported); shown unsynced")
        lyrics.plain = "".join(text for text, _ in frame.text)
        return lyrics
    entries = sorted(((t / 1000.0, text) for text, t in frame.text), key=lambda e: e[0])
    # Either one entry per line, or words/syllables with a line break starting each new line.
    wordwise = any(text[:1] in ("\n", "\r") for _, text in entries[1:])
    groups: list[list[tuple[float, str]]] = []
    for t, text in entries:
        if not wordwise or not groups or text[:1] in ("\n", "\r"):
            groups.append([])
        groups[-1].append((t, text.lstrip("\r\n")))
    for i, group in enumerate(groups):
        start = group[0][0]
        next_start = groups[i + 1][0][0] if i + 1 < len(groups) else None
        text = "".join(w for _, w in group) if wordwise else group[0][1]
        end = next_start if next_start is not None else start + 4.0
        words: tuple[Word, ...] = ()
        if wordwise and len(group) > 1:
            words = tuple(Word(t, group[j + 1][0] if j + 1 < len(group) else end, w) for j, (t, w) in enumerate(group))
        lyrics.lines.append(Line(start, end, text.strip(), words))
    return lyrics


def read_tag_lyrics(song: str | os.PathLike) -> Lyrics | None:
    """Lyrics stored in the song's tags, synced preferred; ``None`` when there are none (or the file
    cannot be read as tagged audio)."""
    import mutagen
    from mutagen.mp4 import MP4Tags

    song = Path(song)
    try:
        audio = mutagen.File(str(song))
    except Exception:  # noqa: BLE001 - mutagen raises many types on bad files
        return None
    if audio is None or audio.tags is None:
        return None
    tags = audio.tags
    found: list[Lyrics] = []
    try:
        if hasattr(tags, "getall"):  # ID3
            for frame in tags.getall("SYLT"):
                found.append(_sylt_lyrics(frame, f"{song} [ID3 SYLT]"))
            for frame in tags.getall("USLT"):
                found.append(_from_text(frame.text, f"{song} [ID3 USLT]"))
            for frame in tags.getall("TXXX"):
                if frame.desc.lower() in ("lyrics", "unsyncedlyrics", "syncedlyrics"):
                    found.append(_from_text("\n".join(frame.text), f"{song} [ID3 TXXX:{frame.desc}]"))
        elif isinstance(tags, MP4Tags):
            if "\xa9lyr" in tags:
                found.append(_from_text("\n".join(tags["\xa9lyr"]), f"{song} [MP4 \u00a9lyr]"))
        else:  # Vorbis comments (FLAC, Ogg): keys are case-insensitive
            for key in ("syncedlyrics", "lyrics", "unsyncedlyrics"):
                values = tags[key] if key in tags else None
                if values:
                    found.append(_from_text("\n".join(values), f"{song} [{key.upper()}]"))
    except Exception as exc:  # noqa: BLE001 - a damaged tag must not stop playback
        return Lyrics(source=str(song), problems=[f"{song}: unreadable lyrics tag ({exc})"])
    found = [f for f in found if not f.empty]
    if not found:
        return None
    found.sort(key=lambda f: (not f.synced, not f.has_word_times))
    return found[0]


def lyrics_for_song(song: str | os.PathLike, chosen_file: str | os.PathLike | None = None) -> Lyrics | None:
    """The lyrics the app shows for ``song``: the file the user opened by hand (``chosen_file``,
    saved in the session as ``LyricsSettings.path``) when given, else :func:`find_lyrics`."""
    if chosen_file:
        return load_lyrics_file(chosen_file)
    return find_lyrics(song)
