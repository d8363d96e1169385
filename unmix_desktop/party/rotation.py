"""The singer rotation of a karaoke night (no Qt, no network): who sings what, in a fair order.

* **Singers** (name, optional colour) each hold a list of **requests** (a song by its library id,
  optionally with a key shift). A request that failed (separation error, missing file) stays in the
  list with its reason and is never picked again.
* **Fair order**: the singers stand in one ``order``; a *round* walks it from the top, and every
  singer sings at most once per round (``done`` holds who sang or was skipped in this round). A
  singer who joins mid-round is put at the end of the order, so sings at the end of this round.
  When nobody left in the round can sing, a new round starts. Reordering (drag) changes the order;
  *skip* passes a singer's turn in this round; *hold* passes over them, keeping their place, until
  released. Singers with no waiting request are passed over the same way.
* **Performance**: :meth:`Rotation.start_next` takes the next singer's first waiting request and makes
  it ``current``; :meth:`finish_current` ends it (``sung`` or ``skipped``) into the history;
  :meth:`fail_current` marks the request failed and gives the singer their turn back.
* **Preferences** per singer name (key shift, tempo, vocal guide level = how much of the original
  vocal stays in) are remembered across evenings: :meth:`new_evening` clears singers, order and
  history, never the preferences.
* **Persisted** after every change with an atomic write (or, with ``defer_save``, by the owner
  soon after a burst of changes: the window saves at most every 200 ms and on close); a file that
  does not validate on load is set aside (renamed ``*.bad-<time>``, never deleted) and the rotation
  starts empty with ``load_error`` saying why.

All methods run on one thread (the owner's); ``on_change`` is called after every change.
"""

from __future__ import annotations

import json
import os
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..atomic import atomic_write_json

ROTATION_VERSION = 1
NAME_MAX = 32
MAX_SINGERS = 200
MAX_REQUESTS_PER_SINGER = 20
HISTORY_MAX = 1000
KEY_RANGE = (-12, 12)
TEMPO_RANGE = (0.5, 1.5)
GUIDE_RANGE = (0.0, 1.0)
COLOUR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
SONG_ID_RE = re.compile(r"^[0-9a-zA-Z_-]{1,128}$")
PALETTE = ("#f0a04b", "#57b6e8", "#8fd16a", "#e8719a", "#b68cf0", "#f2d35b", "#5fd1c1", "#f07a5a")


class RotationError(ValueError):
    """A command that cannot be done (unknown singer, bad name ...): its message is for the user."""


def clean_name(name: object) -> str:
    """A singer's name: 1..32 printable characters (letters, digits, spaces, simple punctuation);
    surrounding and repeated spaces squeezed. Raises :class:`RotationError`."""
    if not isinstance(name, str):
        raise RotationError("a name must be text")
    if any(unicodedata.category(ch)[0] == "C" for ch in name):
        raise RotationError("a name may not hold control or formatting characters")
    text = " ".join(unicodedata.normalize("NFC", name).split())
    if not text:
        raise RotationError("a name cannot be empty")
    if len(text) > NAME_MAX:
        raise RotationError(f"a name has at most {NAME_MAX} characters")
    for ch in text:
        cat = unicodedata.category(ch)
        if cat[0] not in "LNPZ" and cat not in ("Sk", "So", "Sm", "Sc"):
            raise RotationError("a name may only hold letters, digits, spaces and punctuation")
        if cat in ("Zl", "Zp") or ch in "<>\"'`\\":
            raise RotationError("a name may not hold < > \" ' ` or \\")
    return text


def check_key(key: object) -> int | None:
    if key is None:
        return None
    if isinstance(key, bool) or not isinstance(key, int) or not KEY_RANGE[0] <= key <= KEY_RANGE[1]:
        raise RotationError(f"the key shift is a whole number of semitones from {KEY_RANGE[0]} to {KEY_RANGE[1]}")
    return key


def _check_number(value: object, lo: float, hi: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= float(value) <= hi:
        raise RotationError(f"the {what} is a number from {lo:g} to {hi:g}")
    return float(value)


def check_song_id(song_id: object) -> str:
    if not isinstance(song_id, str) or not SONG_ID_RE.match(song_id):
        raise RotationError("a song is named by its library id")
    return song_id


@dataclass
class Preferences:
    key: int = 0                 # semitones
    tempo: float = 1.0           # playback speed ratio
    guide: float = 0.0           # share of the original vocal left in (0 = none, 1 = all)

    def validated(self) -> Preferences:
        check_key(self.key)
        _check_number(self.tempo, *TEMPO_RANGE, "tempo")
        _check_number(self.guide, *GUIDE_RANGE, "vocal guide level")
        return self


@dataclass
class Request:
    id: int
    song_id: str
    title: str = ""
    artist: str = ""
    key: int | None = None       # the key asked for with this song (None: the singer's preference)
    state: str = "waiting"       # waiting | failed
    error: str | None = None
    added: float = field(default_factory=time.time)


@dataclass
class Singer:
    id: int
    name: str
    colour: str = ""
    held: bool = False
    requests: list[Request] = field(default_factory=list)
    joined: float = field(default_factory=time.time)

    def waiting(self) -> list[Request]:
        return [r for r in self.requests if r.state == "waiting"]


@dataclass
class Performance:
    singer_id: int
    request: Request
    started: float = field(default_factory=time.time)


def _key(name: str) -> str:
    return name.casefold()


class Rotation:
    def __init__(self, path: str | os.PathLike | None = None, on_change: Callable[[], None] | None = None):
        self.path = Path(path) if path is not None else None
        self.on_change = on_change
        self.singers: dict[int, Singer] = {}
        self.order: list[int] = []
        self.done: set[int] = set()
        self.round = 1
        self.current: Performance | None = None
        self.history: list[dict] = []
        self.preferences: dict[str, Preferences] = {}
        self.load_error: str | None = None
        self.defer_save: Callable[[], None] | None = None   # set: called instead of saving at once
        self._next_id = 1
        self.version = 0
        if self.path is not None and self.path.exists():
            self._load()

    # --------------------------------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        return {
            "version": ROTATION_VERSION,
            "next_id": self._next_id,
            "round": self.round,
            "order": list(self.order),
            "done": sorted(self.done),
            "singers": [asdict(self.singers[i]) for i in self.order],
            "current": asdict(self.current) if self.current else None,
            "history": self.history[-HISTORY_MAX:],
            "preferences": {k: asdict(v) for k, v in sorted(self.preferences.items())},
        }

    def save(self) -> None:
        if self.path is not None:
            atomic_write_json(self.path, self.to_dict())

    def _load(self) -> None:
        assert self.path is not None
        path: Path = self.path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            self._from_dict(data)
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            reason = exc.args[0] if isinstance(exc, RotationError) and exc.args else f"{type(exc).__name__}: {exc}"
            aside = path.with_name(f"{path.name}.bad-{time.strftime('%Y%m%d-%H%M%S')}")
            try:
                os.replace(path, aside)
                where = f"set aside as {aside.name}"
            except OSError:
                where = "left in place"
            path, error = self.path, f"{self.path}: not a valid rotation ({reason}); {where}, starting an empty one"
            Rotation.__init__(self, None, self.on_change)  # a clean, empty state (keeps on_change)
            self.path = path if where.startswith("set") else None  # never overwrite a file left in place
            self.load_error = error

    def _from_dict(self, data: dict) -> None:
        if not isinstance(data, dict) or data.get("version") != ROTATION_VERSION:
            raise RotationError("unknown version")
        singers: dict[int, Singer] = {}
        seen_requests: set[int] = set()
        for raw in data["singers"]:
            reqs = []
            for r in raw["requests"]:
                req = Request(int(r["id"]), check_song_id(r["song_id"]), str(r.get("title", ""))[:200],
                              str(r.get("artist", ""))[:200], check_key(r.get("key")),
                              r.get("state", "waiting"), r.get("error"), float(r.get("added", 0)))
                if req.state not in ("waiting", "failed") or req.id in seen_requests:
                    raise RotationError(f"bad request {req.id}")
                seen_requests.add(req.id)
                reqs.append(req)
            colour = str(raw.get("colour", ""))
            if colour and not COLOUR_RE.match(colour):
                raise RotationError(f"bad colour {colour!r}")
            singer = Singer(int(raw["id"]), clean_name(raw["name"]), colour, bool(raw.get("held", False)), reqs,
                            float(raw.get("joined", 0)))
            if singer.id in singers:
                raise RotationError(f"singer {singer.id} twice")
            singers[singer.id] = singer
        order = [int(i) for i in data["order"]]
        if sorted(order) != sorted(singers):
            raise RotationError("the order does not list every singer once")
        done = {int(i) for i in data["done"]} & set(singers)
        current = None
        if data.get("current"):
            c = data["current"]
            r = c["request"]
            current = Performance(int(c["singer_id"]),
                                  Request(int(r["id"]), check_song_id(r["song_id"]), str(r.get("title", "")),
                                          str(r.get("artist", "")), check_key(r.get("key"))),
                                  float(c.get("started", 0)))
        prefs = {str(k): Preferences(int(v["key"]), float(v["tempo"]), float(v["guide"])).validated()
                 for k, v in dict(data.get("preferences", {})).items()}
        history = [h for h in data.get("history", []) if isinstance(h, dict)]
        ids = list(singers) + list(seen_requests) + ([current.request.id] if current else [])
        self.singers, self.order, self.done, self.current = singers, order, done, current
        self.preferences, self.history = prefs, history[-HISTORY_MAX:]
        self.round = max(1, int(data.get("round", 1)))
        self._next_id = max([int(data.get("next_id", 1)), *[i + 1 for i in ids]])

    def _changed(self) -> None:
        self.version += 1
        if self.defer_save is not None:
            self.defer_save()  # the owner saves a burst of changes once, soon (and on close)
        else:
            self.save()
        if self.on_change is not None:
            self.on_change()

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    # ------------------------------------------------------------------------------------ singers
    def singer(self, singer_id: int) -> Singer:
        singer = self.singers.get(singer_id) if isinstance(singer_id, int) else None
        if singer is None:
            raise RotationError("no such singer")
        return singer

    def find_singer(self, name: str) -> Singer | None:
        key = _key(clean_name(name))
        return next((s for s in self.singers.values() if _key(s.name) == key), None)

    def add_singer(self, name: str, colour: str = "") -> Singer:
        """A new singer at the end of the order (so: at the end of this round). A name already in the
        rotation (any case) returns that singer."""
        name = clean_name(name)
        existing = self.find_singer(name)
        if existing is not None:
            return existing
        if len(self.singers) >= MAX_SINGERS:
            raise RotationError(f"the rotation is full ({MAX_SINGERS} singers)")
        if colour and not COLOUR_RE.match(colour):
            raise RotationError("a colour looks like #a1b2c3")
        singer = Singer(self._new_id(), name, colour or PALETTE[len(self.singers) % len(PALETTE)])
        self.singers[singer.id] = singer
        self.order.append(singer.id)
        self.preferences.setdefault(_key(name), Preferences())
        self._changed()
        return singer

    def remove_singer(self, singer_id: int) -> Singer:
        singer = self.singer(singer_id)
        del self.singers[singer_id]
        self.order.remove(singer_id)
        self.done.discard(singer_id)
        self._changed()
        return singer

    def rename_singer(self, singer_id: int, name: str) -> None:
        singer = self.singer(singer_id)
        name = clean_name(name)
        other = self.find_singer(name)
        if other is not None and other.id != singer_id:
            raise RotationError(f"{name} is already in the rotation")
        self.preferences.setdefault(_key(name), self.preferences.get(_key(singer.name), Preferences()))
        singer.name = name
        self._changed()

    def reorder(self, ids: list[int]) -> None:
        """The whole order at once (a drag in the window or on the host's phone)."""
        if not isinstance(ids, list) or sorted(ids) != sorted(self.order):
            raise RotationError("the new order must list every singer once")
        self.order = list(ids)
        self._changed()

    def move_singer(self, singer_id: int, to: int) -> None:
        self.singer(singer_id)
        order = [i for i in self.order if i != singer_id]
        order.insert(max(0, min(int(to), len(order))), singer_id)
        self.reorder(order)

    def set_held(self, singer_id: int, held: bool) -> None:
        self.singer(singer_id).held = bool(held)
        self._changed()

    def skip_singer(self, singer_id: int) -> None:
        """Pass this singer's turn in the current round (they sing again next round)."""
        self.singer(singer_id)
        self.done.add(singer_id)
        self._changed()

    # ----------------------------------------------------------------------------------- requests
    def request(self, singer_id: int, song_id: str, title: str = "", artist: str = "", key: int | None = None
                ) -> Request:
        singer = self.singer(singer_id)
        song_id = check_song_id(song_id)
        key = check_key(key)
        if len(singer.waiting()) >= MAX_REQUESTS_PER_SINGER:
            raise RotationError(f"at most {MAX_REQUESTS_PER_SINGER} songs wait per singer")
        req = Request(self._new_id(), song_id, str(title)[:200], str(artist)[:200], key)
        singer.requests.append(req)
        self._changed()
        return req

    def find_request(self, request_id: int) -> tuple[Singer, Request]:
        for singer in self.singers.values():
            for req in singer.requests:
                if req.id == request_id:
                    return singer, req
        raise RotationError("no such request")

    def withdraw(self, request_id: int, singer_id: int | None = None) -> Request:
        """Remove a request; with ``singer_id``, only when it is that singer's (a guest withdrawing)."""
        singer, req = self.find_request(request_id)
        if singer_id is not None and singer.id != singer_id:
            raise RotationError("that request is not yours")
        singer.requests.remove(req)
        self._changed()
        return req

    def move_request(self, request_id: int, to_singer: int, index: int | None = None) -> None:
        """Give a request to another singer (or move it within the same singer's list)."""
        target = self.singer(to_singer)
        singer, req = self.find_request(request_id)
        if target is not singer and len(target.waiting()) >= MAX_REQUESTS_PER_SINGER:
            raise RotationError(f"at most {MAX_REQUESTS_PER_SINGER} songs wait per singer")
        singer.requests.remove(req)
        pos = len(target.requests) if index is None else max(0, min(int(index), len(target.requests)))
        target.requests.insert(pos, req)
        self._changed()

    def mark_failed(self, song_id: str, reason: str) -> int:
        """Every waiting request of ``song_id`` fails with ``reason`` (a separation that failed ahead
        of its turn). Returns how many."""
        n = 0
        for singer in self.singers.values():
            for req in singer.requests:
                if req.song_id == song_id and req.state == "waiting":
                    req.state, req.error = "failed", str(reason)[:300]
                    n += 1
        if n:
            self._changed()
        return n

    # --------------------------------------------------------------------------------- the order
    def _eligible(self, singer: Singer) -> bool:
        return not singer.held and bool(singer.waiting())

    def upcoming(self, limit: int | None = None) -> list[tuple[Singer, Request]]:
        """The turns to come, in order (this round's rest, then the following rounds), each singer's
        requests taken in their order: what the room screen and the phones show."""
        queues = {i: list(self.singers[i].waiting()) for i in self.order if not self.singers[i].held}
        done = set(self.done)
        out: list[tuple[Singer, Request]] = []
        limit = limit if limit is not None else sum(len(q) for q in queues.values())
        while len(out) < limit:
            due = [i for i in self.order if i not in done and queues.get(i)]
            if not due:
                if not any(queues.values()):
                    break
                done = set()
                continue
            i = due[0]
            out.append((self.singers[i], queues[i].pop(0)))
            done.add(i)
        return out

    def next_turn(self) -> tuple[Singer, Request] | None:
        nxt = self.upcoming(1)
        return nxt[0] if nxt else None

    def place_of(self, singer_id: int) -> int | None:
        """How many turns come before this singer's next one (0 = next), None when not waiting."""
        for n, (singer, _) in enumerate(self.upcoming()):
            if singer.id == singer_id:
                return n
        return None

    # ------------------------------------------------------------------------------ performances
    def start_next(self) -> Performance | None:
        """Make the next turn current (it leaves the singer's list); None when nobody can sing."""
        if self.current is not None:
            raise RotationError("a song is still on")
        turn = self.next_turn()
        if turn is None:
            return None
        singer, req = turn
        if singer.id in self.done:  # nobody else was due: a new round
            self.done = set()
            self.round += 1
        singer.requests.remove(req)
        self.done.add(singer.id)
        self.current = Performance(singer.id, req)
        self._changed()
        return self.current

    def finish_current(self, outcome: str = "sung") -> dict | None:
        """End the current song (``sung`` or ``skipped``) into the history."""
        if outcome not in ("sung", "skipped"):
            raise RotationError("outcome is sung or skipped")
        perf = self.current
        if perf is None:
            return None
        singer = self.singers.get(perf.singer_id)
        entry = {"singer": singer.name if singer else "?", "singer_id": perf.singer_id,
                 "song_id": perf.request.song_id, "title": perf.request.title, "artist": perf.request.artist,
                 "key": perf.request.key, "started": perf.started, "ended": time.time(), "outcome": outcome,
                 "round": self.round}
        self.history.append(entry)
        del self.history[:-HISTORY_MAX]
        self.current = None
        self._changed()
        return entry

    def fail_current(self, reason: str) -> Request | None:
        """The current song cannot play: it goes back to its singer marked failed (shown with the
        reason, never picked again) and the singer keeps their turn in this round."""
        perf = self.current
        if perf is None:
            return None
        req = perf.request
        req.state, req.error = "failed", str(reason)[:300]
        singer = self.singers.get(perf.singer_id)
        if singer is not None:
            singer.requests.insert(0, req)
            self.done.discard(singer.id)
        self.history.append({"singer": singer.name if singer else "?", "singer_id": perf.singer_id,
                             "song_id": req.song_id, "title": req.title, "artist": req.artist, "key": req.key,
                             "started": perf.started, "ended": time.time(), "outcome": "failed",
                             "error": req.error, "round": self.round})
        self.current = None
        self._changed()
        return req

    # ---------------------------------------------------------------------------- preferences
    def prefs(self, singer_id: int) -> Preferences:
        return self.preferences.setdefault(_key(self.singer(singer_id).name), Preferences())

    def set_prefs(self, singer_id: int, key: int | None = None, tempo: float | None = None,
                  guide: float | None = None) -> Preferences:
        p = self.prefs(singer_id)
        checked = check_key(key)
        new = Preferences(p.key if checked is None else checked,
                          p.tempo if tempo is None else _check_number(tempo, *TEMPO_RANGE, "tempo"),
                          p.guide if guide is None else _check_number(guide, *GUIDE_RANGE, "vocal guide level"))
        self.preferences[_key(self.singer(singer_id).name)] = new
        self._changed()
        return new

    def settings_for(self, perf: Performance) -> Preferences:
        """What to apply when ``perf`` starts: the singer's preferences, the request's own key first."""
        singer = self.singers.get(perf.singer_id)
        p = self.preferences.get(_key(singer.name), Preferences()) if singer else Preferences()
        return Preferences(perf.request.key if perf.request.key is not None else p.key, p.tempo, p.guide)

    def new_evening(self) -> None:
        """Clear singers, order, rounds and history; the preferences stay."""
        self.singers, self.order, self.done, self.current, self.history, self.round = {}, [], set(), None, [], 1
        self._changed()

    # ---------------------------------------------------------------------------------- snapshot
    def snapshot(self) -> dict:
        """Everything a phone or the room screen shows (JSON-able, no paths)."""
        places: dict = {}
        upcoming = []
        for n, (singer, req) in enumerate(self.upcoming()):
            places.setdefault(singer.id, n)
            upcoming.append({"singer_id": singer.id, "singer": singer.name, "request_id": req.id,
                             "song_id": req.song_id, "title": req.title, "artist": req.artist})
        cur = None
        if self.current is not None:
            s = self.singers.get(self.current.singer_id)
            r = self.current.request
            cur = {"singer_id": self.current.singer_id, "singer": s.name if s else "?", "request_id": r.id,
                   "song_id": r.song_id, "title": r.title, "artist": r.artist, "key": r.key}
        return {
            "version": self.version,
            "round": self.round,
            "current": cur,
            "upcoming": upcoming,
            "singers": [{"id": s.id, "name": s.name, "colour": s.colour, "held": s.held,
                         "done": s.id in self.done, "place": places.get(s.id),
                         "prefs": asdict(self.preferences.get(_key(s.name), Preferences())),
                         "requests": [{"id": r.id, "song_id": r.song_id, "title": r.title, "artist": r.artist,
                                       "key": r.key, "state": r.state, "error": r.error} for r in s.requests]}
                        for s in (self.singers[i] for i in self.order)],
            "history": [{k: h.get(k) for k in ("singer", "title", "artist", "outcome", "error")}
                        for h in self.history[-20:]],
        }
