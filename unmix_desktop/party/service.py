"""What the phone remote may do, as plain method calls (no Qt, no network): the seam between the
web server (:mod:`.server`, its own thread and event loop) and whoever owns the rotation (the window).

* :class:`PartyService` runs on the **owner's thread** only: the server never calls it directly but
  hands a function to a **dispatcher** (``dispatch(fn) -> concurrent.futures.Future``). The window's
  dispatcher queues the call onto the UI thread; :class:`ThreadDispatcher` (tests, benchmarks) runs
  calls one at a time on a thread of its own.
* :class:`Playback` is the narrow command interface the window implements for the current song:
  pause/resume, skip, key, tempo, vocal guide level; :class:`NoPlayback` does nothing.
* Guests are singers who joined from a phone; each holds a random ``secret`` (kept by their browser)
  without which nobody can request or withdraw in their name.
* Every change calls the ``listeners`` with a fresh :meth:`PartyService.snapshot` (on the owner's
  thread); the server pushes it to every phone.
"""

from __future__ import annotations

import concurrent.futures
import hmac
import secrets
from collections.abc import Callable
from typing import Any, Protocol

from .catalog import Catalog
from .rotation import GUIDE_RANGE, KEY_RANGE, TEMPO_RANGE, Rotation, RotationError, check_key, check_song_id


class Playback(Protocol):
    def state(self) -> dict: ...                       # {"playing", "position", "duration", "key", "tempo", "guide"}
    def command(self, name: str, value: object = None) -> None: ...   # NAMES below


PLAYBACK_COMMANDS = ("play_pause", "skip", "key", "tempo", "guide", "start_next")


class NoPlayback:
    """No player (tests of the rotation over the network): commands only change the numbers shown."""

    def __init__(self, rotation: Rotation | None = None):
        self.values: dict[str, object] = {"playing": False, "position": 0.0, "duration": 0.0, "key": 0,
                                          "tempo": 1.0, "guide": 0.0}
        self.rotation = rotation
        self.log: list[tuple[str, object]] = []

    def state(self) -> dict:
        return dict(self.values)

    def command(self, name: str, value: object = None) -> None:
        self.log.append((name, value))
        if name == "play_pause":
            self.values["playing"] = not self.values["playing"]
        elif name in ("key", "tempo", "guide"):
            self.values[name] = value
        elif name == "skip" and self.rotation is not None:
            self.rotation.finish_current("skipped")
        elif name == "start_next" and self.rotation is not None and self.rotation.current is None:
            self.rotation.start_next()


class ThreadDispatcher:
    """Runs every call on one thread of its own, in order (the owner's thread outside the window)."""

    def __init__(self):
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="party-owner")

    def __call__(self, fn: Callable[[], object]) -> concurrent.futures.Future:
        return self._pool.submit(fn)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


HOST_ACTIONS = ("add_singer", "remove_singer", "rename_singer", "reorder", "skip_singer", "hold",
                "move_request", "remove_request", "set_prefs", "new_evening", *PLAYBACK_COMMANDS)


def _text(args: dict, name: str) -> str:
    """A string argument as given (the rotation checks its length and characters); not a string: 400."""
    value = args.get(name)
    if not isinstance(value, str):
        raise RotationError(f"{name}: expected text")
    return value


def _int(args: dict, name: str) -> int:
    value = args.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RotationError(f"{name} must be a whole number")
    return value


def _number(args: dict, name: str, lo: float, hi: float) -> float:
    value = args.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= float(value) <= hi:
        raise RotationError(f"{name} must be a number from {lo:g} to {hi:g}")
    return float(value)


class PartyService:
    def __init__(self, rotation: Rotation, catalog: Catalog, playback: Playback | None = None):
        self.rotation = rotation
        self.catalog = catalog
        self.playback = playback if playback is not None else NoPlayback(rotation)
        self.listeners: list[Callable[[dict], None]] = []
        self._secrets: dict[int, str] = {}
        rotation.on_change = self.changed

    # ----------------------------------------------------------------------------------- changes
    def changed(self) -> None:
        if not self.listeners:
            return
        snap = self.snapshot()
        for listener in list(self.listeners):
            listener(snap)

    def snapshot(self) -> dict:
        snap = self.rotation.snapshot()
        snap["playback"] = self.playback.state()
        return snap

    # ------------------------------------------------------------------------------------ guests
    def join(self, name: str) -> dict:
        """A guest joins with a name: a new singer (end of this round), or the singer of that name when
        nobody from a phone holds it yet. Returns ``{"singer_id", "secret", "name"}``."""
        existing = self.rotation.find_singer(name)
        if existing is not None and existing.id in self._secrets:
            raise RotationError(f"{existing.name} is already here: choose another name")
        singer = existing or self.rotation.add_singer(name)
        secret = secrets.token_urlsafe(18)
        self._secrets[singer.id] = secret
        return {"singer_id": singer.id, "secret": secret, "name": singer.name}

    def _guest(self, singer_id: object, secret: object) -> int:
        if isinstance(singer_id, bool) or not isinstance(singer_id, int) or not isinstance(secret, str):
            raise PermissionError("join first")
        known = self._secrets.get(singer_id)
        if known is None or singer_id not in self.rotation.singers or \
                not hmac.compare_digest(known.encode(), secret.encode()):
            raise PermissionError("join first: this phone is not a singer of the rotation")
        return singer_id

    def guest_request(self, singer_id: object, secret: object, song_id: object, key: object = None) -> dict:
        sid = self._guest(singer_id, secret)
        song = self.catalog.get(check_song_id(song_id))
        if song is None:
            raise LookupError("no such song in the library")
        req = self.rotation.request(sid, song.id, song.title, song.artist, check_key(key))
        return {"request_id": req.id}

    def guest_withdraw(self, singer_id: object, secret: object, request_id: object) -> dict:
        sid = self._guest(singer_id, secret)
        if isinstance(request_id, bool) or not isinstance(request_id, int):
            raise RotationError("request_id must be a whole number")
        self.rotation.withdraw(request_id, singer_id=sid)
        return {"withdrawn": request_id}

    # -------------------------------------------------------------------------------------- host
    def host(self, action: str, args: dict) -> dict:
        """Everything the window can do with the rotation, plus the current song's playback."""
        rot = self.rotation
        if action not in HOST_ACTIONS:
            raise LookupError(f"unknown action {action!r}")
        if action == "add_singer":
            s = rot.add_singer(_text(args, "name"))
            return {"singer_id": s.id}
        if action == "remove_singer":
            rot.remove_singer(_int(args, "singer_id"))
            self._secrets.pop(args["singer_id"], None)
        elif action == "rename_singer":
            rot.rename_singer(_int(args, "singer_id"), _text(args, "name"))
        elif action == "reorder":
            ids = args.get("order")
            if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
                raise RotationError("order must be a list of singer ids")
            rot.reorder(ids)
        elif action == "skip_singer":
            rot.skip_singer(_int(args, "singer_id"))
        elif action == "hold":
            held = args.get("held")
            if not isinstance(held, bool):
                raise RotationError("held must be true or false")
            rot.set_held(_int(args, "singer_id"), held)
        elif action == "move_request":
            index = args.get("index")
            if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
                raise RotationError("index must be a whole number")
            rot.move_request(_int(args, "request_id"), _int(args, "singer_id"), index)
        elif action == "remove_request":
            rot.withdraw(_int(args, "request_id"))
        elif action == "set_prefs":
            kw: dict[str, Any] = {}
            if "key" in args:
                kw["key"] = check_key(args["key"])
            if "tempo" in args:
                kw["tempo"] = _number(args, "tempo", *TEMPO_RANGE)
            if "guide" in args:
                kw["guide"] = _number(args, "guide", *GUIDE_RANGE)
            rot.set_prefs(_int(args, "singer_id"), **kw)
        elif action == "new_evening":
            rot.new_evening()
            self._secrets.clear()
        elif action in ("key", "tempo", "guide"):
            lo, hi = {"key": KEY_RANGE, "tempo": TEMPO_RANGE, "guide": GUIDE_RANGE}[action]
            value = _int(args, "value") if action == "key" else _number(args, "value", lo, hi)
            if action == "key":
                check_key(value)
            self.playback.command(action, value)
            self.changed()
        else:  # play_pause, skip, start_next
            self.playback.command(action)
            self.changed()
        return {"ok": True}
