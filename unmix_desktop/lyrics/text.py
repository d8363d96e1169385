"""Plain lyrics as the user wrote them: lines, words, verses; syllables per word; the language.

Qt-free, no network. Syllables are counted as vowel groups with a few per-language rules (a silent
final *e* in English and French); :func:`syllables` splits a word's text into that many pieces with
``pyphen``'s hyphenation dictionaries where they agree (UltraStar needs one syllable per note).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

#: Languages with tuned syllable rules and stop words; any other pyphen language still works
#: (vowel groups), but is never guessed from the text.
LANGUAGES = ("en", "es", "fr", "de", "it", "pt")

_STOP = {
    "en": "the and you i to a of it in my me is that on your be for we all love with this oh what so "
          "don't i'm just no know but when not are was can like got now up out there they she he",
    "es": "el la de que y en un una los las no me te se mi tu por con para es lo le yo si mas pero "
          "como del al cuando porque quiero amor todo nada soy eres",
    "fr": "le la les de des et un une je tu il elle on nous vous que qui dans pas ne est c'est pour "
          "sur mon ma mes moi toi au aux ce plus j'ai qu'on avec oui sans",
    "de": "der die das und ich du nicht ist ein eine zu mit mich dich mir dir in es wir ihr sie auf "
          "für von den dem wie so noch auch nur kein was",
    "it": "il lo la di che e un una non mi ti si per con sono sei io tu ma come cosa più del nel "
          "della amore anche ancora",
    "pt": "o a os as de que e um uma não eu você me te se por com para mas meu minha do da no na "
          "como tudo amor quando",
}
_STOP_SETS = {lang: set(words.split()) for lang, words in _STOP.items()}
_MARKS = {"es": "ñ¿¡", "fr": "çœèêàù", "de": "äöüß", "pt": "ãõ", "it": ""}

_VOWELS = {
    "en": "aeiouy",
    "es": "aeiouáéíóúü",
    "fr": "aeiouyàâäéèêëîïôöùûüœæ",
    "de": "aeiouyäöü",
    "it": "aeiouàèéìíòóù",
    "pt": "aeiouáâãàéêíóôõú",
}
_ANY_VOWELS = "aeiouyàáâãäåæèéêëìíîïòóôõöøùúûüœ"
WORD_CHARS = re.compile(r"[\w']+", re.UNICODE)


@dataclass(frozen=True)
class TextLine:
    """One sung line: its ``words`` (whitespace-separated, as written) and whether a blank line
    (a new verse) came before it."""

    words: tuple[str, ...]
    verse_start: bool = False

    @property
    def text(self) -> str:
        return " ".join(self.words)


def parse_plain(text: str) -> list[TextLine]:
    """Lines of plain lyrics; blank lines mark verses and are not lines themselves."""
    lines: list[TextLine] = []
    blank = True
    for row in text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff").split("\n"):
        words = tuple(row.split())
        if not words:
            blank = True
            continue
        lines.append(TextLine(words, verse_start=blank))
        blank = False
    return lines


def _letters(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFC", word.lower()) if c.isalpha() or c == "'")


def detect_language(text: str) -> str:
    """The most likely of :data:`LANGUAGES` from stop words and letters; ``"en"`` when unsure."""
    words = [_letters(w) for w in text.split()]
    scores = {lang: 0.0 for lang in LANGUAGES}
    for w in words:
        for lang in LANGUAGES:
            if w in _STOP_SETS[lang]:
                scores[lang] += 1.0
            if "'" in w and lang in ("fr", "it", "en"):
                head = w.split("'")[0]
                if lang == "fr" and head in {"j", "l", "d", "qu", "m", "t", "s", "c", "n"}:
                    scores[lang] += 0.5
        for lang, marks in _MARKS.items():
            if any(c in marks for c in w):
                scores[lang] += 0.5
    best = max(LANGUAGES, key=lambda lang: scores[lang])
    return best if scores[best] > 0 else "en"


def count_syllables(word: str, language: str = "en") -> int:
    """Sung syllables of ``word``: vowel groups, minus a silent final *e* (en, fr); at least 1."""
    w = _letters(word)
    vowels = _VOWELS.get(language, _ANY_VOWELS)
    digits = sum(c.isdigit() for c in word)
    if not w:
        return max(1, digits)
    w = re.sub(r"([qg])u(?=['a-zà-ÿœ]*[aeiouyéèêëàâîïôûü])", r"\1", w) if language != "en" or w.startswith("qu") \
        else w  # the u of qu/gu before a vowel is a spelling, not a syllable (qu'on, guerra, quand)
    w = w.replace("'", "")
    groups = [m for m in re.finditer(f"[{vowels}]+", w)]
    n = len(groups)
    silent_e = w.endswith("e") and not w.endswith(("le", "ee", "ye")) and groups[-1].end() == len(w)
    if n > 1 and language == "en" and silent_e:
        n -= 1
    if n > 1 and language == "fr":
        for tail in ("es", "e", "ent"):
            if w.endswith(tail) and groups[-1].start() == len(w) - len(tail):
                if tail != "ent" or len(w) > 4:
                    n -= 1
                break
    return max(1, n)


_PYPHEN: dict[str, object] = {}


def _hyphenator(language: str):
    if language not in _PYPHEN:
        try:
            import pyphen

            _PYPHEN[language] = pyphen.Pyphen(lang=language) if language in pyphen.LANGUAGES or any(
                k.split("_")[0] == language for k in pyphen.LANGUAGES) else None
        except ImportError:  # pragma: no cover - pyphen is a dependency
            _PYPHEN[language] = None
    return _PYPHEN[language]


def syllables(word: str, language: str = "en") -> list[str]:
    """``word`` cut into :func:`count_syllables` pieces whose concatenation is ``word``.

    Cuts come from the hyphenation dictionary first, then before vowel groups that have no cut yet
    (hyphenation never cuts one letter off a word's edge, which singing does)."""
    n = count_syllables(word, language)
    if n <= 1 or len(word) <= 1:
        return [word]
    cuts: set[int] = set()
    hyph = _hyphenator(language)
    if hyph is not None:
        cuts.update(int(p) for p in hyph.positions(word))  # type: ignore[attr-defined]
    if len(cuts) < n - 1:
        vowels = _VOWELS.get(language, _ANY_VOWELS)
        low = word.lower()
        starts = [m.start() for m in re.finditer(f"[{vowels}]+", low)][1:]
        for s in starts:
            # cut before the consonant preceding the vowel group (ma-ma), else at the group
            cut = s - 1 if s >= 2 and low[s - 1] not in vowels and low[s - 2] not in "'" else s
            if all(abs(cut - c) > 0 for c in cuts) and 0 < cut < len(word):
                cuts.add(cut)
            if len(cuts) >= n - 1:
                break
    ordered = sorted(c for c in cuts if 0 < c < len(word))[: n - 1]
    pieces, prev = [], 0
    for c in ordered:
        pieces.append(word[prev:c])
        prev = c
    pieces.append(word[prev:])
    return [p for p in pieces if p] or [word]
