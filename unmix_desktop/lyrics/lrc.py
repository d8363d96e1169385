"""LRC lyrics: ``[mm:ss.xx]line`` (several tags per line allowed), ID tags (``[ar:...]``,
``[offset:+/-ms]``...) and the enhanced format's word times ``<mm:ss.xx>word``.

``[offset:N]`` follows the LRC convention: a positive N (milliseconds) shows the lyrics sooner,
so every time becomes ``tag - N/1000``. Text without any time tag is plain (unsynced) lyrics.
Anything malformed is skipped and reported in :attr:`Lyrics.problems`; parsing never raises.
"""

from __future__ import annotations

import re

from .model import Line, Lyrics, Word

# [mm:ss], [mm:ss.x], [mm:ss.xx], [mm:ss.xxx], [mm:ss:xx] (a common variant), [h:mm:ss.xx]
_TIME = r"(\d+:\d+(?::\d+)?(?:\.\d{1,3})?)"
TIME_TAG = re.compile(r"\[\s*" + _TIME + r"\s*\]")
WORD_TAG = re.compile(r"<\s*" + _TIME + r"\s*>")
ID_TAG = re.compile(r"^\[([A-Za-z#][\w#-]*)\s*:(.*)\]\s*$")
ANY_TAG = re.compile(r"^\[[^\]]*\]")
LOOKS_TIMED = re.compile(r"\[\s*\d+:\d")
#: A line with no word times and no blank line after it is taken to last this long at most
#: (plus ``SECONDS_PER_WORD`` per word) before a long gap; used for countdowns, never to hide text.
MIN_LINE_S = 2.0
SECONDS_PER_WORD = 0.45


def _seconds(stamp: str) -> float | None:
    """Seconds of ``mm:ss[.fff]``, ``mm:ss:cc`` or ``h:mm:ss.fff``; ``None`` when invalid."""
    main, _, frac = stamp.partition(".")
    fields = [int(f) for f in main.split(":")]
    if len(fields) == 3 and not frac:  # mm:ss:cc
        fields, frac = fields[:2], main.split(":")[2]
    if len(fields) == 3:
        hours, minutes, secs = fields
        if minutes >= 60:
            return None
    else:
        hours, (minutes, secs) = 0, fields
    if secs >= 60 or len(frac) > 3:
        return None
    return hours * 3600 + minutes * 60 + secs + (int(frac) / 10 ** len(frac) if frac else 0.0)


def looks_like_lrc(text: str) -> bool:
    return any(TIME_TAG.match(row.strip()) for row in text.splitlines()[:400])


def _estimated_end(start: float, text: str, next_start: float | None) -> float:
    guess = start + max(MIN_LINE_S, SECONDS_PER_WORD * len(text.split()) + 1.0)
    return guess if next_start is None else min(guess, next_start)


def _parse_words(body: str, number: int, problems: list[str]) -> tuple[str, list[tuple[float, str]], float | None]:
    """Split an enhanced-LRC line body into (plain text, [(start, word)], trailing end time)."""
    pieces = WORD_TAG.split(body)
    # re.split with one group: [text, stamp, text, stamp, text, ...]
    lead, rest = pieces[0], pieces[1:]
    words: list[tuple[float, str]] = []
    text_parts = [lead]
    end: float | None = None
    bad = False
    for i in range(0, len(rest), 2):
        t, chunk = _seconds(rest[i]), rest[i + 1]
        text_parts.append(chunk)
        if t is None:
            bad = True
        elif chunk.strip():
            words.append((t, chunk))
        else:
            end = t
    if bad:
        problems.append(f"line {number}: bad word time, word timing of this line ignored")
        words = []
    return " ".join("".join(text_parts).split()), words, end


def parse_lrc(text: str, source: str = "") -> Lyrics:
    """Parse LRC ``text``; times in song seconds with ``[offset:]`` applied."""
    lyrics = Lyrics(source=source)
    problems = lyrics.problems
    offset_ms = 0
    raw: list[tuple[float, int, str, list[tuple[float, str]], float | None]] = []
    plain_rows: list[str] = []
    tag_problems: list[str] = []
    timed_rows = 0
    for number, row in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        row = row.strip().lstrip("\ufeff")
        if not row:
            plain_rows.append("")
            continue
        tags: list[float] = []
        pos = 0
        bad_tag = False
        while True:
            m = TIME_TAG.match(row, pos)
            if not m:
                break
            t = _seconds(m.group(1))
            if t is None:
                bad_tag = True
            else:
                tags.append(t)
            pos = m.end()
            while pos < len(row) and row[pos] == " ":
                pos += 1
        if tags or bad_tag:
            timed_rows += 1
            if bad_tag:
                problems.append(f"line {number}: bad time tag in {row[:60]!r}")
            body = row[pos:]
            if "<" in body and WORD_TAG.search(body):
                body_text, words, end = _parse_words(body, number, problems)
            else:
                body_text, words, end = body, [], None
            for t in tags:
                raw.append((t, number, body_text.strip(), words if len(tags) == 1 else
                            [(w + (t - tags[0]), s) for w, s in words], end if len(tags) == 1 or end is None
                            else end + (t - tags[0])))
            continue
        m = ID_TAG.match(row)
        if m:
            key, value = m.group(1).strip().lower(), m.group(2).strip()
            if key == "offset":
                try:
                    offset_ms = int(float(value))
                except ValueError:
                    problems.append(f"line {number}: offset {value!r} is not a number of milliseconds")
            else:
                lyrics.metadata[key] = value
            continue
        if LOOKS_TIMED.match(row) or ANY_TAG.match(row):
            # A problem in synced lyrics; in plain lyrics "[Chorus]" is just text.
            tag_problems.append(f"line {number}: unreadable tag in {row[:60]!r}")
            plain_rows.append(row)
            continue
        plain_rows.append(row)
        if timed_rows:
            problems.append(f"line {number}: text without a time tag skipped: {row[:60]!r}")

    if not raw:
        lyrics.plain = "\n".join(plain_rows).strip("\n")
        return lyrics
    problems[:0] = tag_problems
    problems.sort(key=lambda p: int(p.split()[1].rstrip(":")) if p.startswith("line ") else 0)
    shift = offset_ms / 1000.0
    raw.sort(key=lambda r: (r[0], r[1]))
    starts = [max(0.0, r[0] - shift) for r in raw]
    for i, (t, _number, body, words, end) in enumerate(raw):
        start = starts[i]
        next_start = starts[i + 1] if i + 1 < len(raw) else None
        timed_words: list[Word] = []
        if words:
            ws = [max(0.0, w - shift) for w, _ in words]
            word_end = None if end is None else max(0.0, end - shift)
            for j, (w_start, (_, w_text)) in enumerate(zip(ws, words)):
                if j + 1 < len(ws):
                    w_end = ws[j + 1]
                elif word_end is not None:
                    w_end = word_end
                else:
                    w_end = _estimated_end(w_start, w_text, next_start)
                w_end = max(w_end, w_start)
                timed_words.append(Word(w_start, w_end, w_text))
            if any(b.start < a.start for a, b in zip(timed_words, timed_words[1:])):
                problems.append(f"line {_number}: word times out of order, word timing of this line ignored")
                timed_words = []
        if timed_words:
            line_end = max(timed_words[-1].end, start)
            if next_start is not None:
                line_end = min(line_end, max(next_start, start))
        elif not body:
            line_end = start if next_start is None else next_start
        else:
            line_end = _estimated_end(start, body, next_start)
        lyrics.lines.append(Line(start, line_end, body, tuple(timed_words)))
    if offset_ms:
        lyrics.metadata["offset"] = str(offset_ms)
    return lyrics
