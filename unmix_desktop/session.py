"""The song session: one observable owner of everything the listener sets on a song (no Qt).

A :class:`Session` holds the stem names of the open song and its *named controls* (the Mixxx
idea): ``"<stem>.gain_db"``, ``"<stem>.mute"``, ``"<stem>.solo"``, ``"<stem>.pan"``,
``"master.gain_db"``, ``"loop.a"``, ``"loop.b"``, ``"loop.enabled"`` and, declared for the
features built on top of the session, ``"tempo.ratio"``, ``"key.semitones"``, ``"markers"``
(a list of ``{"t": seconds, "label": str}``), ``"lyrics.path"`` and ``"lyrics.offset_ms"``.

* Everyone writes through :meth:`Session.set` (or the typed setters, which call it); the value is
  validated, stored, and every observer is called with ``(control, value)`` on the caller's
  thread. A batch of changes (:meth:`Session.batch`, e.g. a preset) notifies once with ``"*"``.
* The player (:class:`PlayerLink`) and export (:meth:`Session.mix_state`) read the session.
* *Monitoring* (what only the listener hears: output mute, output device) lives apart in
  :class:`Monitor` and never changes :meth:`Session.mix_state`, hence never an export.
* :meth:`Session.save` / :func:`load_session_file` keep the controls per song in a small JSON file
  (atomic write) next to the stem cache, so faders, mutes, solos, pans, master, loop and markers
  survive reopening.
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .atomic import atomic_write_bytes
from .audio.mixer import MAX_GAIN_DB, MixError, MixState

Observer = Callable[[str, Any], None]

SESSION_VERSION = 1
STEM_CONTROLS = ("gain_db", "mute", "solo", "pan")
#: Global controls and their defaults. ``tempo.ratio`` (0.25..2), ``key.semitones`` (-12..12) and
#: ``key.cents`` (-50..50) reach the player's stretch stage; ``click.*`` is the metronome strip (a
#: stem the player plays beside the song, never exported) and the count-in toggle.
GLOBAL_DEFAULTS: dict[str, Any] = {
    "master.gain_db": 0.0,
    "loop.a": None,
    "loop.b": None,
    "loop.enabled": False,
    "tempo.ratio": 1.0,
    "key.semitones": 0,
    "key.cents": 0,
    "click.gain_db": -6.0,
    "click.mute": True,
    "click.count_in": False,
    "markers": [],
    "lyrics.path": None,
    "lyrics.offset_ms": 0,
}
#: Tempo range (the player's stretcher) and fine-tune range in cents.
MIN_TEMPO, MAX_TEMPO = 0.25, 2.0
MAX_CENTS = 50
#: The metronome's stem name in the player (see analysis.practice.CLICK_STEM).
CLICK = "click"
#: Shortest A-B loop (seconds): shorter loops would be mostly crossfade.
MIN_LOOP_S = 0.05
#: Stems that a four-stem split derives from "accompaniment" (their controls start from its own).
DERIVED_FROM = {"drums": "accompaniment", "bass": "accompaniment", "other": "accompaniment",
                "guitar": "accompaniment", "piano": "accompaniment"}  # 6-source Demucs


class SessionError(MixError):
    """An invalid control name or value."""


def _float(value, what: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise SessionError(f"{what} must be a number, got {value!r}") from None
    if math.isnan(x):
        raise SessionError(f"{what} must be a number, got NaN")
    return min(max(x, lo), hi)


class Session:
    """The named controls of one song (see the module docstring). ``names``: stems in display order."""

    def __init__(self, names: Iterable[str] = (), song_key: str | None = None, title: str = ""):
        self.names: tuple[str, ...] = tuple(names)
        if len(set(self.names)) != len(self.names):
            raise SessionError(f"duplicate stem names: {', '.join(self.names)}")
        self.song_key = song_key  # content hash of the song file (names the saved session)
        self.title = title
        self._values: dict[str, Any] = dict(GLOBAL_DEFAULTS)
        self._values["markers"] = []
        for n in self.names:
            self._values.update({f"{n}.gain_db": 0.0, f"{n}.mute": False, f"{n}.solo": False, f"{n}.pan": 0.0})
        self._observers: list[Observer] = []
        self._batch = 0
        self._dirty = False

    # observers -------------------------------------------------------------------------------
    def observe(self, callback: Observer) -> Callable[[], None]:
        """Call ``callback(control, value)`` after every change; returns a function that unsubscribes."""
        self._observers.append(callback)
        return lambda: self._observers.remove(callback) if callback in self._observers else None

    def _notify(self, control: str, value: Any) -> None:
        if self._batch:
            self._dirty = True
            return
        for callback in list(self._observers):
            callback(control, value)

    @contextmanager
    def batch(self) -> Iterator["Session"]:
        """Several changes, one notification (``("*", None)``) at the end."""
        self._batch += 1
        try:
            yield self
        finally:
            self._batch -= 1
            if not self._batch and self._dirty:
                self._dirty = False
                self._notify("*", None)

    # named controls --------------------------------------------------------------------------
    @property
    def controls(self) -> list[str]:
        return list(self._values)

    def get(self, control: str) -> Any:
        try:
            value = self._values[control]
        except KeyError:
            raise SessionError(f"unknown control '{control}' (stems: {', '.join(self.names) or 'none'})") from None
        return list(value) if isinstance(value, list) else value

    def set(self, control: str, value: Any) -> None:
        """Validate and store ``value``; observers hear about it when it changed."""
        if control not in self._values:
            raise SessionError(f"unknown control '{control}' (stems: {', '.join(self.names) or 'none'})")
        value = self._validate(control, value)
        if self._values[control] == value:
            return
        self._values[control] = value
        self._notify(control, value)

    def _validate(self, control: str, value: Any) -> Any:
        kind = control.rsplit(".", 1)[-1]
        if kind == "gain_db":
            if value is None:  # how JSON stores -inf dB
                return -math.inf
            return _float(value, f"gain of '{control}'", hi=MAX_GAIN_DB)
        if kind in ("mute", "solo", "enabled"):
            if control == "loop.enabled" and value and not self.loop_valid(self.get("loop.a"), self.get("loop.b")):
                raise SessionError("set the loop start (A) and end (B) first")
            return bool(value)
        if kind == "pan":
            return _float(value, f"pan of '{control}'", -1.0, 1.0)
        if control in ("loop.a", "loop.b"):
            return None if value is None else _float(value, control, lo=0.0)
        if control == "tempo.ratio":
            return round(_float(value, "tempo", MIN_TEMPO, MAX_TEMPO), 6)
        if control == "key.cents":
            return int(round(_float(value, "fine tune", -MAX_CENTS, MAX_CENTS)))
        if kind == "count_in":
            return bool(value)
        if control == "key.semitones":
            return int(round(_float(value, "key", -12, 12)))
        if control == "markers":
            return sorted(({"t": _float(m["t"], "marker time", lo=0.0), "label": str(m.get("label", ""))}
                           for m in value), key=lambda m: m["t"])
        if control == "lyrics.path":
            return None if value is None else str(value)
        if control == "lyrics.offset_ms":
            return int(round(_float(value, "lyrics offset", -600_000, 600_000)))
        return value

    # typed setters (the window's widgets and shortcuts use these) -----------------------------
    def set_gain_db(self, name: str, db: float) -> None:
        self.set(f"{name}.gain_db", db)

    def set_mute(self, name: str, muted: bool) -> None:
        self.set(f"{name}.mute", muted)

    def set_solo(self, name: str, soloed: bool) -> None:
        self.set(f"{name}.solo", soloed)

    def set_pan(self, name: str, pan: float) -> None:
        self.set(f"{name}.pan", pan)

    def set_master_db(self, db: float) -> None:
        self.set("master.gain_db", db)

    def toggle(self, control: str) -> None:
        self.set(control, not self.get(control))

    def apply_preset(self, muted: Iterable[str]) -> None:
        """A preset is a whole mix: the listed stems muted, the others on, solos off, faders at 0 dB,
        pans centred (so that a preset followed by a fader move reads as "Custom")."""
        muted = set(muted)
        with self.batch():
            for n in self.names:
                self.set(f"{n}.solo", False)
                self.set(f"{n}.mute", n in muted)
                self.set(f"{n}.gain_db", 0.0)
                self.set(f"{n}.pan", 0.0)

    def is_default_level(self) -> bool:
        """Every fader at 0 dB and every pan centred."""
        return all(self._values[f"{n}.gain_db"] == 0.0 and self._values[f"{n}.pan"] == 0.0 for n in self.names)

    # loop ------------------------------------------------------------------------------------
    @staticmethod
    def loop_valid(a: float | None, b: float | None) -> bool:
        return a is not None and b is not None and b - a >= MIN_LOOP_S

    @property
    def loop(self) -> tuple[float, float] | None:
        """``(a, b)`` seconds when the loop is on, else ``None``."""
        a, b = self._values["loop.a"], self._values["loop.b"]
        return (a, b) if self._values["loop.enabled"] and self.loop_valid(a, b) else None

    def set_loop_a(self, position: float) -> None:
        """Loop start at ``position``; an end at or before it is dropped."""
        b = self._values["loop.b"]
        with self.batch():
            self.set("loop.a", position)
            if b is not None and not self.loop_valid(position, b):
                self.set("loop.enabled", False)
                self.set("loop.b", None)
            elif b is not None:
                self.set("loop.enabled", True)

    def set_loop_b(self, position: float, default_length: float = 5.0) -> None:
        """Loop end at ``position``; without a valid start, the loop starts ``default_length`` earlier.
        The loop is switched on."""
        a = self._values["loop.a"]
        with self.batch():
            if not self.loop_valid(a, position):
                a = max(position - default_length, 0.0)
                self.set("loop.a", a)
            self.set("loop.b", position)
            if self.loop_valid(a, position):
                self.set("loop.enabled", True)

    def clear_loop(self) -> None:
        with self.batch():
            self.set("loop.enabled", False)
            self.set("loop.a", None)
            self.set("loop.b", None)

    # what the player and export read ----------------------------------------------------------
    def mix_state(self) -> MixState:
        """The mix as a :class:`MixState` (a copy): what export renders and the player plays."""
        state = MixState.from_names(self.names)
        for n in self.names:
            state.set_gain_db(n, self._values[f"{n}.gain_db"])
            state.set_mute(n, self._values[f"{n}.mute"])
            state.set_solo(n, self._values[f"{n}.solo"])
            state.set_pan(n, self._values[f"{n}.pan"])
        state.set_master_db(self._values["master.gain_db"])
        return state

    def audible(self, name: str) -> bool:
        return self.mix_state().audible(name)

    # carrying controls over (2 -> 4 stems, reopening) ------------------------------------------
    def to_dict(self) -> dict:
        stems = {n: {k: _jsonable(self._values[f"{n}.{k}"]) for k in STEM_CONTROLS} for n in self.names}
        glob = {k: _jsonable(v) for k, v in self._values.items() if k in GLOBAL_DEFAULTS}
        return {"version": SESSION_VERSION, "song_key": self.song_key, "title": self.title,
                "stems": stems, "controls": glob}

    def update_from(self, data: dict) -> None:
        """Take the controls in ``data`` (:meth:`to_dict` of this or an older session of the song)
        that apply here. Stems this session has and ``data`` lacks start from the stem they are
        derived from (drums/bass/other from accompaniment). Bad values are skipped."""
        stems = dict(data.get("stems") or {})
        for n in self.names:
            if n not in stems and DERIVED_FROM.get(n) in stems:
                stems[n] = stems[DERIVED_FROM[n]]
        with self.batch():
            for n in self.names:
                for k, v in (stems.get(n) or {}).items():
                    self._try_set(f"{n}.{k}", v)
            controls = dict(data.get("controls") or {})
            enabled = controls.pop("loop.enabled", False)
            for k, v in controls.items():
                self._try_set(k, v)
            self._try_set("loop.enabled", enabled)

    def _try_set(self, control: str, value: Any) -> None:
        if control not in self._values:
            return
        try:
            self.set(control, value)
        except (SessionError, TypeError, KeyError, ValueError):
            pass

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (temporary file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(self.to_dict(), indent=1, allow_nan=False).encode("utf-8"))
        return path


def _jsonable(value: Any) -> Any:
    """-inf dB (a fader at the bottom) is stored as ``null``; lists are copied."""
    if isinstance(value, float) and math.isinf(value):
        return None
    return [dict(v) for v in value] if isinstance(value, list) else value


#: The JSON kind each saved control must have ("number?" = a number or null).
_CONTROL_KINDS = {"gain_db": "number?", "mute": "bool", "solo": "bool", "pan": "number",
                  "master.gain_db": "number?", "loop.a": "number?", "loop.b": "number?", "loop.enabled": "bool",
                  "tempo.ratio": "number", "key.semitones": "number", "key.cents": "number",
                  "click.gain_db": "number?", "click.mute": "bool", "click.count_in": "bool",
                  "markers": "markers", "lyrics.path": "string?", "lyrics.offset_ms": "number"}


def _check_control(what: str, kind: str, value: Any) -> None:
    from . import persist as p

    if kind.startswith("number"):
        p.expect_number(value, what, allow_none=kind.endswith("?"))
    elif kind == "bool":
        p.expect_bool(value, what)
    elif kind == "string?":
        if value is not None:
            p.expect_str(value, what)
    elif kind == "markers":
        for i, m in enumerate(p.expect_list(value, what)):
            p.expect_dict(m, f"{what}[{i}]")
            p.expect_number(m.get("t"), f"{what}[{i}].t", lo=0.0)
            p.expect_str(m.get("label", ""), f"{what}[{i}].label")


def validate_session(data: Any) -> dict | None:
    """A saved session checked field by field (:mod:`.persist`); raises :class:`~.persist.Invalid`
    naming the first bad field. Another version's file is ``None`` (ignored, left as it is)."""
    from . import persist as p

    p.expect_dict(data, "the session")
    version = p.expect_int(data.get("version"), "'version'")
    if version != SESSION_VERSION:
        return None
    if data.get("song_key") is not None:
        p.expect_str(data["song_key"], "'song_key'")
    p.expect_str(data.get("title", ""), "'title'")
    for name, controls in p.expect_dict(data.get("stems", {}), "'stems'").items():
        for key, value in p.expect_dict(controls, f"'stems.{name}'").items():
            if key in STEM_CONTROLS:
                _check_control(f"'stems.{name}.{key}'", _CONTROL_KINDS[key], value)
    for key, value in p.expect_dict(data.get("controls", {}), "'controls'").items():
        if key in GLOBAL_DEFAULTS:
            _check_control(f"'controls.{key}'", _CONTROL_KINDS[key], value)
    return data


def load_session_file(path: str | Path) -> dict | None:
    """The saved controls, or ``None`` when there is none. A file that does not validate is set
    aside (``NAME.bad-<time>``) with one notice (:func:`.persist.load_json_validated`)."""
    from .persist import load_json_validated

    return load_json_validated(path, validate_session, None)


class SessionStore:
    """Saved sessions, one JSON file per song (by content hash), next to the stem cache folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, song_key: str) -> Path:
        if not song_key or not all(c in "0123456789abcdef" for c in song_key):
            raise SessionError(f"invalid song key {song_key!r}")
        return self.root / f"{song_key}.json"

    def load(self, session: Session) -> bool:
        """Apply the saved controls of ``session.song_key``; False when there were none."""
        if not session.song_key:
            return False
        data = load_session_file(self.path(session.song_key))
        if data is None:
            return False
        session.update_from(data)
        return True

    def save(self, session: Session) -> Path | None:
        if not session.song_key:
            return None
        return session.save(self.path(session.song_key))


# -------------------------------------------------------------------------------------------------
# monitoring: what only the listener hears
# -------------------------------------------------------------------------------------------------

class Monitor:
    """Output mute and output device. Observable like a session; never part of a mix or an export."""

    def __init__(self, device: str | None = None):
        self.output_muted = False
        self.device = device
        self._observers: list[Observer] = []

    def observe(self, callback: Observer) -> Callable[[], None]:
        self._observers.append(callback)
        return lambda: self._observers.remove(callback) if callback in self._observers else None

    def set_output_muted(self, muted: bool) -> None:
        if bool(muted) != self.output_muted:
            self.output_muted = bool(muted)
            for cb in list(self._observers):
                cb("output.mute", self.output_muted)

    def set_device(self, device: str | None) -> None:
        if device != self.device:
            self.device = device
            for cb in list(self._observers):
                cb("output.device", device)


class PlayerLink:
    """Pushes a session and a monitor into a player through its lock-free setters.

    ``player``: a :class:`~unmix_desktop.audio.player.StemPlayer` (or anything with its setters)
    already loaded with the session's stems. The player's master gain is the session's master,
    or silence while the monitor's output is muted. ``on_error(text)`` hears a loop the player
    refuses.
    """

    def __init__(self, session: Session, monitor: Monitor, player, on_error: Callable[[str], None] | None = None):
        self.session, self.monitor, self.player = session, monitor, player
        self.on_error = on_error
        self._unsubscribe = [session.observe(self._on_session), monitor.observe(self._on_monitor)]
        self.push_all()

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    def push_all(self) -> None:
        state = self.session.mix_state()
        if self.monitor.output_muted:
            state.master_db = -math.inf
        self.player.set_mix_state(state)
        self._push_loop()
        self._push_click()
        self._push_stretch()

    def _push_click(self) -> None:
        """The metronome stem, when the player has one: its fader and mute, and audible whenever a
        stem is soloed (a solo should not silence the click)."""
        if CLICK not in getattr(self.player, "names", ()):
            return
        s = self.session
        self.player.set_gain_db(CLICK, s.get("click.gain_db"))
        self.player.set_mute(CLICK, s.get("click.mute"))
        self.player.set_solo(CLICK, any(s.get(f"{n}.solo") for n in s.names))

    def _push_stretch(self) -> None:
        if not hasattr(self.player, "set_tempo"):
            return
        self.player.set_tempo(self.session.get("tempo.ratio"))
        self.player.set_key(self.session.get("key.semitones"), self.session.get("key.cents"))

    def _push_master(self) -> None:
        self.player.set_master_db(-math.inf if self.monitor.output_muted else self.session.get("master.gain_db"))

    def _push_loop(self) -> None:
        loop = self.session.loop
        if loop is None:
            self.player.clear_loop()
            return
        try:
            self.player.set_loop(*loop)
        except Exception as exc:  # noqa: BLE001 - PlayerError: too short for this song
            self.player.clear_loop()
            if self.on_error:
                self.on_error(str(exc))

    def _on_session(self, control: str, value) -> None:
        name, _, kind = control.rpartition(".")
        if control == "*":
            self.push_all()
        elif control == "master.gain_db":
            self._push_master()
        elif name == "loop":
            self._push_loop()
        elif name in ("tempo", "key"):
            self._push_stretch()
        elif name == CLICK or kind == "solo":
            if kind == "solo":
                self.player.set_solo(name, value)
            self._push_click()
        elif kind == "gain_db":
            self.player.set_gain_db(name, value)
        elif kind == "mute":
            self.player.set_mute(name, value)
        elif kind == "pan":
            self.player.set_pan(name, value)

    def _on_monitor(self, control: str, value) -> None:
        if control == "output.mute":
            self._push_master()
