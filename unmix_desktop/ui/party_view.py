"""Host mode (karaoke night) in the window: the rotation panel, the phone remote, the room screen.

* :class:`PartyController` owns the party's Qt-free parts (:class:`~unmix_desktop.party.rotation.Rotation`,
  :class:`~unmix_desktop.party.catalog.Catalog`, :class:`~unmix_desktop.party.service.PartyService`) and,
  while the remote is on, the :class:`~unmix_desktop.party.server.PartyServer` (its own thread).
  It is the service's :class:`~unmix_desktop.party.service.Playback` (the narrow command interface:
  pause, skip, key, tempo, vocal guide, start next) and its dispatcher (:class:`QtDispatcher`: the
  server's calls run on the UI thread, one at a time).
* A turn: :meth:`PartyController.start_next` takes the rotation's next turn, opens the song through the
  window (cache hit when it was separated), applies the singer's key / tempo / guide to the session
  when it is loaded and plays. A song that fails (cannot open, separation error) is marked failed in
  the rotation and the evening goes on with the next turn. At the song's end (or a skip) a countdown
  (``countdown_s``) runs on the room screen, then the next turn starts.
* Songs of the next turns that are not separated yet go to the batch queue (``library/queue.py``)
  ahead of their turn, nearest turn first; a failure there marks the request failed.
* :class:`RoomScreen` is the full-screen karaoke view with the singer's name, "Next: NAME — SONG",
  the countdown and the join QR code (installed as the karaoke controller's ``view_factory``).
"""

from __future__ import annotations

import concurrent.futures
import io
import math
import socket
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QRectF, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QFont, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..party.catalog import Catalog, Song, song_id_for, songs_from_files, songs_from_library
from ..party.rotation import Rotation, RotationError
from ..party.service import PartyService
from .karaoke_view import KaraokeView
from .lyrics_view import DIM

if TYPE_CHECKING:
    from .main_window import MainWindow

COUNTDOWN_S = 10
PRESEPARATE_TURNS = 3
END_MARGIN_S = 0.3
REFRESH_MS = 50
SAVE_MS = 200


def lan_address() -> str:
    """This machine's address on the local network (the interface of the default route); no packet is
    sent (a UDP socket's connect only picks the route). 127.0.0.1 when there is none."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere
        return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        s.close()


def qr_image(text: str, scale: int = 8) -> QImage:
    """The QR code of ``text`` (segno: a maintained, pure-Python encoder) as a QImage."""
    import segno

    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="png", scale=scale, border=2, dark="#000000", light="#ffffff")
    return QImage.fromData(buf.getvalue(), "PNG")


class QtDispatcher(QObject):
    """``dispatch(fn) -> Future``: runs ``fn`` on this object's (the UI) thread; any thread may call it."""

    _call = Signal(object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._call.connect(self._run, Qt.ConnectionType.QueuedConnection)

    def __call__(self, fn) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._call.emit((fn, future))
        return future

    @Slot(object)
    def _run(self, item) -> None:
        fn, future = item
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting server thread
            future.set_exception(exc)


# ------------------------------------------------------------------------------------------------
# the room screen
# ------------------------------------------------------------------------------------------------
class RoomScreen(KaraokeView):
    """The karaoke view for the room: lyrics while a song plays, the singer's name on top,
    "Next: NAME — SONG" and the join QR code; between songs the next singer big with a countdown."""

    def __init__(self, *args, party: PartyController, **kwargs):
        super().__init__(*args, **kwargs)
        self.party = party
        party.room_views.append(self)
        self.destroyed.connect(lambda *_: party.room_views.remove(self) if self in party.room_views else None)

    def paintEvent(self, event) -> None:
        info = self.party.room_info()
        if info["between"]:
            self._paint_between(info)
        else:
            super().paintEvent(event)
            self._paint_overlay(info)

    def _fonts(self, h: float) -> tuple[QFont, QFont, QFont]:
        big = QFont(self.font())
        big.setPixelSize(max(20, int(h * 0.09)))
        big.setWeight(QFont.Weight.Bold)
        mid = QFont(self.font())
        mid.setPixelSize(max(14, int(h * 0.045)))
        small = QFont(self.font())
        small.setPixelSize(max(12, int(h * 0.03)))
        return big, mid, small

    def _paint_qr(self, p: QPainter, rect: QRectF, info: dict) -> None:
        image = info.get("qr")
        if image is None or image.isNull():
            return
        side = min(rect.width(), rect.height())
        target = QRectF(rect.right() - side, rect.bottom() - side, side, side)
        p.drawImage(target, image)
        p.setPen(DIM)
        _, _, small = self._fonts(self.height())
        p.setFont(small)
        p.drawText(QRectF(target.left() - side, target.top() - small.pixelSize() * 1.8, side * 2,
                          small.pixelSize() * 1.6), Qt.AlignmentFlag.AlignCenter, "Scan to sing along")

    def _paint_overlay(self, info: dict) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h = self.width(), self.height()
        big, mid, small = self._fonts(h)
        margin = w * 0.05
        if info["singer"]:
            p.setFont(mid)
            p.setPen(QColor(info["colour"] or "#f0a04b"))
            p.drawText(QRectF(margin, h * 0.1, w - 2 * margin, h * 0.1), Qt.AlignmentFlag.AlignCenter,
                       f"♪ {info['singer']}")
        if info["next"]:
            p.setFont(small)
            p.setPen(DIM)
            p.drawText(QRectF(margin, h * 0.72, w * 0.7, h * 0.08),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, f"Next: {info['next']}")
        self._paint_qr(p, QRectF(w * 0.8, h * 0.7, w * 0.17, h * 0.185), info)  # below the next lyric line

    def _paint_between(self, info: dict) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        w, h = self.width(), self.height()
        p.fillRect(self.rect(), QColor("#07080b"))
        big, mid, small = self._fonts(h)
        margin = w * 0.06
        p.setFont(small)
        p.setPen(DIM)
        p.drawText(QRectF(margin, h * 0.04, w - 2 * margin, h * 0.06),
                   Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, "Karaoke night")
        if info["next_singer"]:
            p.drawText(QRectF(margin, h * 0.2, w * 0.6, h * 0.06), Qt.AlignmentFlag.AlignLeft, "Next up")
            p.setFont(big)
            p.setPen(QColor(info["next_colour"] or "#f0a04b"))
            p.drawText(QRectF(margin, h * 0.27, w * 0.62, h * 0.14),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, info["next_singer"])
            p.setFont(mid)
            p.setPen(QColor("#e7e9ee"))
            p.drawText(QRectF(margin, h * 0.42, w * 0.62, h * 0.1),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, info["next_song"])
            if info["countdown"] is not None:
                p.setFont(big)
                p.setPen(QColor("#f0a04b"))
                p.drawText(QRectF(margin, h * 0.58, w * 0.62, h * 0.16),
                           Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, f"{info['countdown']}")
        else:
            p.setFont(mid)
            p.drawText(QRectF(margin, h * 0.3, w * 0.62, h * 0.2), Qt.AlignmentFlag.AlignLeft |
                       Qt.AlignmentFlag.AlignVCenter | Qt.TextFlag.TextWordWrap,
                       "No songs waiting.\nScan the code to request one!")
        later = info["later"]
        if later:
            p.setFont(small)
            p.setPen(DIM)
            y = h * 0.78
            for line in later[:3]:
                p.drawText(QRectF(margin, y, w * 0.62, h * 0.05), Qt.AlignmentFlag.AlignLeft, line)
                y += h * 0.05
        self._paint_qr(p, QRectF(w * 0.68, h * 0.25, w * 0.27, h * 0.55), info)
        if info["url"]:
            p.setFont(small)
            p.setPen(DIM)
            p.drawText(QRectF(w * 0.5, h * 0.86, w * 0.45, h * 0.06),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, info["url_short"])


# ------------------------------------------------------------------------------------------------
# the panel
# ------------------------------------------------------------------------------------------------
class PartyPanel(QWidget):
    """The rotation (drag to reorder), the selected singer's songs, the remote's URL + QR."""

    def __init__(self, ctl: PartyController, parent: QWidget | None = None):
        super().__init__(parent)
        self.ctl = ctl
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        self.now = QLabel("Nobody is singing")
        self.now.setWordWrap(True)
        self.now.setObjectName("partyNow")
        lay.addWidget(self.now)
        row = QHBoxLayout()
        self.start_button = QPushButton("Start next")
        self.start_button.clicked.connect(ctl.start_next)
        self.skip_button = QPushButton("Skip song")
        self.skip_button.clicked.connect(ctl.skip_song)
        self.room_button = QPushButton("Room screen")
        self.room_button.clicked.connect(ctl.open_room_screen)
        for b in (self.start_button, self.skip_button, self.room_button):
            row.addWidget(b)
        lay.addLayout(row)

        lay.addWidget(QLabel("Singers (drag to reorder)"))
        self.singers = QListWidget()
        self.singers.setObjectName("partySingers")
        self.singers.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.singers.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.singers.model().rowsMoved.connect(self._on_rows_moved)
        self.singers.currentRowChanged.connect(lambda _: self._show_songs())
        lay.addWidget(self.singers, 2)
        row = QHBoxLayout()
        self.add_button = QPushButton("Add…")
        self.add_button.clicked.connect(self._add_singer)
        self.hold_button = QPushButton("Hold")
        self.hold_button.clicked.connect(self._toggle_hold)
        self.skip_singer_button = QPushButton("Skip turn")
        self.skip_singer_button.clicked.connect(lambda: self._with_singer(ctl.rotation.skip_singer))
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(lambda: self._with_singer(ctl.rotation.remove_singer))
        for b in (self.add_button, self.hold_button, self.skip_singer_button, self.remove_button):
            row.addWidget(b)
        lay.addLayout(row)

        self.songs_label = QLabel("Songs")
        lay.addWidget(self.songs_label)
        self.songs = QListWidget()
        self.songs.setObjectName("partySongs")
        lay.addWidget(self.songs, 1)
        row = QHBoxLayout()
        self.move_button = QPushButton("Move to…")
        self.move_button.clicked.connect(self._move_menu)
        self.drop_button = QPushButton("Remove song")
        self.drop_button.clicked.connect(self._remove_song)
        self.add_songs_button = QPushButton("Add songs…")
        self.add_songs_button.setToolTip("Songs guests can ask for besides the library (separated before their turn)")
        self.add_songs_button.clicked.connect(self._add_files)
        for b in (self.move_button, self.drop_button, self.add_songs_button):
            row.addWidget(b)
        lay.addLayout(row)

        self.history = QLabel("")
        self.history.setObjectName("partyHistory")
        self.history.setWordWrap(True)
        lay.addWidget(self.history)

        self.remote_button = QPushButton("Phone remote: off")
        self.remote_button.setCheckable(True)
        self.remote_button.toggled.connect(self._toggle_remote)
        lay.addWidget(self.remote_button)
        self.url = QLabel("")
        self.url.setWordWrap(True)
        self.url.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.url)
        self.qr = QLabel()
        self.qr.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(self.qr)
        self.new_link = QPushButton("New link (old ones stop working)")
        self.new_link.clicked.connect(ctl.rotate_token)
        lay.addWidget(self.new_link)
        self._refreshing = False

    # ------------------------------------------------------------------------------ actions
    def selected_singer(self) -> int | None:
        item = self.singers.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _with_singer(self, fn) -> None:
        sid = self.selected_singer()
        if sid is not None:
            self.ctl.guard(lambda: fn(sid))

    def _toggle_hold(self) -> None:
        sid = self.selected_singer()
        if sid is not None and sid in self.ctl.rotation.singers:
            self.ctl.guard(lambda: self.ctl.rotation.set_held(sid, not self.ctl.rotation.singers[sid].held))

    def _add_singer(self) -> None:
        name, ok = QInputDialog.getText(self, "Add a singer", "Name:")
        if ok and name.strip():
            self.ctl.guard(lambda: self.ctl.rotation.add_singer(name))

    def _add_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Songs for the party")
        if files:
            self.ctl.add_files(files)

    def _on_rows_moved(self, *args) -> None:
        if self._refreshing:
            return
        ids = [self.singers.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.singers.count())]
        self.ctl.guard(lambda: self.ctl.rotation.reorder(ids))

    def _selected_request(self) -> int | None:
        item = self.songs.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _remove_song(self) -> None:
        rid = self._selected_request()
        if rid is not None:
            self.ctl.guard(lambda: self.ctl.rotation.withdraw(rid))

    def _move_menu(self) -> QMenu | None:
        rid, sid = self._selected_request(), self.selected_singer()
        if rid is None:
            return None
        menu = QMenu(self)
        for other in (self.ctl.rotation.singers[i] for i in self.ctl.rotation.order if i != sid):
            menu.addAction(other.name, partial(self.ctl.guard, partial(self.ctl.rotation.move_request, rid, other.id)))
        self.move_menu = menu
        menu.popup(self.move_button.mapToGlobal(self.move_button.rect().bottomLeft()))
        return menu

    def _toggle_remote(self, on: bool) -> None:
        if self._refreshing:
            return
        if on:
            self.ctl.enable_remote()
        else:
            self.ctl.disable_remote()
        self.refresh()

    # ------------------------------------------------------------------------------ showing
    def refresh(self) -> None:
        rot = self.ctl.rotation
        self._refreshing = True
        try:
            cur = rot.current
            if cur is not None:
                singer = rot.singers.get(cur.singer_id)
                self.now.setText(f"Now: {singer.name if singer else '?'} — {cur.request.title}")
            else:
                self.now.setText("Nobody is singing" + (f" · next in {self.ctl.countdown} s"
                                                        if self.ctl.countdown is not None else ""))
            keep = self.selected_singer()
            places = {s.id: n for n, (s, _) in reversed(list(enumerate(rot.upcoming())))}
            self.singers.clear()
            for sid in rot.order:
                s = rot.singers[sid]
                waiting = len(s.waiting())
                failed = len(s.requests) - waiting
                bits = [f"{waiting} song{'s' if waiting != 1 else ''}"]
                if failed:
                    bits.append(f"{failed} failed")
                if s.held:
                    bits.append("on hold")
                elif sid in rot.done:
                    bits.append("sang this round")
                if sid in places:
                    bits.append("next" if places[sid] == 0 else f"in {places[sid]} turns")
                item = QListWidgetItem(f"{s.name}  ·  {', '.join(bits)}")
                pix = QPixmap(12, 12)
                pix.fill(QColor(s.colour or "#888888"))
                item.setIcon(QIcon(pix))
                item.setData(Qt.ItemDataRole.UserRole, sid)
                self.singers.addItem(item)
                if sid == keep:
                    self.singers.setCurrentItem(item)
            self._show_songs()
            last = rot.history[-3:]
            self.history.setText("Sung tonight: " + "; ".join(
                f"{h.get('singer')} — {h.get('title')}" + ("" if h.get("outcome") == "sung" else
                                                          f" ({h.get('outcome')})")
                for h in reversed(last)) if last else "")
            server = self.ctl.server
            on = server is not None and server.running
            self.remote_button.setChecked(on)
            self.remote_button.setText("Phone remote: on" if on else "Phone remote: off")
            self.new_link.setEnabled(on)
            if on:
                self.url.setText(f"{server.url}\nHost PIN: {server.pin}")
                self.qr.setPixmap(QPixmap.fromImage(self.ctl.qr).scaledToWidth(
                    180, Qt.TransformationMode.FastTransformation))
            else:
                self.url.setText("")
                self.qr.clear()
        finally:
            self._refreshing = False

    def _show_songs(self) -> None:
        sid = self.selected_singer()
        self.songs.clear()
        singer = self.ctl.rotation.singers.get(sid) if sid is not None else None
        self.songs_label.setText(f"Songs of {singer.name}" if singer else "Songs")
        if singer is None:
            return
        for r in singer.requests:
            text = f"{r.artist} – {r.title}" if r.artist else r.title
            if r.key:
                text += f"  (key {r.key:+d})"
            if r.state == "failed":
                text += f"  — failed: {r.error}"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, r.id)
            if r.state == "failed":
                item.setForeground(QColor("#e5676a"))
            self.songs.addItem(item)


# ------------------------------------------------------------------------------------------------
# the controller
# ------------------------------------------------------------------------------------------------
class PartyController(QObject):
    """Host mode: the rotation, its panel, the remote, turns and the room screen (see the module)."""

    changed = Signal()
    turn_started = Signal(int)      # request id: its song is loaded, the singer's settings applied
    turn_failed = Signal(int, str)  # request id, reason

    def __init__(self, window: MainWindow, rotation_path: str | Path | None = None,
                 countdown_s: int = COUNTDOWN_S):
        super().__init__(window)
        self.w = window
        if rotation_path is None:
            rotation_path = Path(window.library_ctl.runner.queue.path or Path.home()).parent / "party" / \
                "rotation.json"
        self.rotation = Rotation(rotation_path)
        self.catalog = Catalog()
        self.service = PartyService(self.rotation, self.catalog, playback=self)
        self.service.listeners.append(lambda snap: self._on_changed())
        self.dispatch = QtDispatcher(self)
        self.server = None
        self.qr: QImage | None = None
        self.countdown_s = countdown_s
        self.countdown: int | None = None
        self.room_views: list[RoomScreen] = []
        self._awaiting: int | None = None      # request id whose song is being opened
        self._playing: int | None = None       # request id whose song is loaded for the turn
        self._heard_playing = False
        self._queued: dict[int, str] = {}      # batch queue item id -> song id
        self.guide = 0.0
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_MS)
        self._refresh_timer.timeout.connect(self._refresh_now)
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(SAVE_MS)
        self._save_timer.timeout.connect(self.save)
        self.rotation.defer_save = lambda: None if self._save_timer.isActive() else self._save_timer.start()
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._count)
        self.panel = PartyPanel(self)
        self.dock = QDockWidget("Karaoke night", window)
        self.dock.setObjectName("partyDock")
        self.dock.setWidget(self.panel)
        window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.dock)
        window.song_loaded.connect(self._on_song_loaded)
        window.song_ready.connect(self._on_song_ready)
        window.separation_failed.connect(self._on_separation_failed)
        window.transport_ctl.timer.timeout.connect(self._on_tick)
        window.library_ctl.runner.item_finished.connect(self._on_queue_item)
        window.karaoke_ctl.view_factory = partial(RoomScreen, party=self)
        if self.rotation.load_error:
            window.notify(self.rotation.load_error, "warning", 0)
        # restarted mid-song: rotation.current is still there; "Start next" sings it again
        self.refresh_catalog()
        self.panel.refresh()

    # ------------------------------------------------------------------------------ helpers
    def guard(self, fn):
        """Run a rotation edit from the panel; a refusal is a notice, never an exception."""
        try:
            return fn()
        except RotationError as exc:
            self.w.notify(str(exc), "warning", 5000)
            return None

    def _on_changed(self) -> None:
        """After every change: the panel, the room screen and the separation ahead follow, once per
        event-loop turn however many changes came (a burst of phone requests is one refresh)."""
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def _refresh_now(self) -> None:
        self._refresh_timer.stop()
        self.panel.refresh()
        self._preseparate()
        for view in self.room_views:
            view.update()
        self.changed.emit()

    def refresh_catalog(self):
        """The library's separated songs, read in a worker (the index reads the cache's meta files)."""
        from ..library.index import LibraryIndex

        index = LibraryIndex(self.w.stem_cache, self.w.sessions.root)

        def done(entries) -> None:
            self.catalog.add(songs_from_library(entries))
            self.service.changed()

        return self.w.start_task(lambda report, cancel: index.scan(cancel), "party-catalog", on_done=done,
                                 on_error=lambda message: self.w.notify(f"Library: {message}", "warning"))

    def add_files(self, paths) -> int:
        from ..library.queue import collect_audio_files

        files, problems = collect_audio_files(paths)
        self.catalog.add(songs_from_files(files))
        if problems:
            self.w.notify("; ".join(problems[:3]), "warning", 6000)
        self.service.changed()
        return len(files)

    # ------------------------------------------------------------------------------ the remote
    def enable_remote(self, host: str | None = None, port: int = 0, pin: str | None = None) -> str:
        """Start the phone remote (binds now; raises OSError when it cannot). Returns the guest URL."""
        from ..party.server import PartyServer

        if self.server is not None and self.server.running:
            return self.server.url
        self.server = PartyServer(self.service, self.dispatch, host or lan_address(), port, pin)
        try:
            url = self.server.start()
        except OSError as exc:
            self.server = None
            self.w.show_error("Phone remote", f"cannot start the phone remote: {exc}")
            self.panel.refresh()
            raise
        self.qr = qr_image(url)
        self._refresh_now()
        return url

    def disable_remote(self) -> None:
        """Stop the server: every phone's connection is closed, nothing listens any more."""
        if self.server is not None:
            self.server.stop()
        self.server = None
        self.qr = None
        self.panel.refresh()
        for view in self.room_views:
            view.update()

    def rotate_token(self) -> str | None:
        if self.server is None:
            return None
        url = self.server.rotate_token()
        self.qr = qr_image(url)
        self.panel.refresh()
        for view in self.room_views:
            view.update()
        return url

    # --------------------------------------------------------------------- Playback interface
    def state(self) -> dict:
        s, p = self.w.session, self.w.player
        loaded = self._playing is not None and self.w.song is not None
        return {"playing": bool(loaded and p is not None and p.playing),
                "position": round(float(p.position), 1) if loaded else 0.0,
                "duration": round(float(self.w.song.duration), 1) if loaded else 0.0,
                "key": int(s.get("key.semitones")) if s is not None else 0,
                "tempo": float(s.get("tempo.ratio")) if s is not None else 1.0,
                "guide": self.guide, "countdown": self.countdown}

    def command(self, name: str, value: object = None) -> None:
        s = self.w.session
        if name == "play_pause":
            if self._playing is not None:
                self.w.toggle_play()
        elif name == "skip":
            self.skip_song()
        elif name == "start_next":
            self.start_next()
        elif name == "key" and s is not None:
            s.set("key.semitones", int(value))
            self._remember(key=int(value))
        elif name == "tempo" and s is not None:
            s.set("tempo.ratio", float(value))
            self._remember(tempo=float(value))
        elif name == "guide":
            self.set_guide(float(value))
            self._remember(guide=self.guide)

    def _remember(self, **prefs) -> None:
        """The host's change during a turn is that singer's preference from now on (next evening too);
        a key asked for with this one song stays the song's own."""
        cur = self.rotation.current
        if cur is None or self._playing != cur.request.id or cur.singer_id not in self.rotation.singers:
            return
        if "key" in prefs and cur.request.key is not None:
            return
        self.rotation.set_prefs(cur.singer_id, **prefs)

    def set_guide(self, level: float) -> None:
        """How much of the original vocal stays in: 0 = none (muted), 1 = all (0 dB)."""
        self.guide = max(0.0, min(1.0, float(level)))
        s = self.w.session
        if s is None or "vocals" not in s.names:
            return
        with s.batch():
            s.set("vocals.mute", self.guide <= 0.0)
            s.set("vocals.gain_db", 20 * math.log10(self.guide) if self.guide > 0 else 0.0)

    # ----------------------------------------------------------------------------------- turns
    def start_next(self) -> int | None:
        """Start the next turn (or the current one again after a restart). Returns its request id."""
        self._timer.stop()
        self.countdown = None
        rot = self.rotation
        if rot.current is not None and rot.current.request.id in (self._playing, self._awaiting):
            return rot.current.request.id  # already on
        if rot.current is None and rot.start_next() is None:
            self.w.notify("Nobody is waiting to sing.", "info", 4000)
            self.panel.refresh()
            return None
        req = rot.current.request
        song = self.catalog.get(req.song_id)
        if song is None or not Path(song.path).is_file():
            self._fail(req.id, f"{req.title or req.song_id}: the song file is not on this computer any more")
            return None
        self._awaiting, self._playing, self._heard_playing = req.id, None, False
        if not self.w.open_song(song.path):
            self._fail(req.id, self.w.last_error[1] if self.w.last_error else "cannot open the song")
            return None
        self.panel.refresh()
        return req.id

    def _fail(self, request_id: int, reason: str) -> None:
        self._awaiting = self._playing = None
        if self.rotation.current is not None and self.rotation.current.request.id == request_id:
            self.rotation.fail_current(reason)
        self.w.notify(f"Skipped: {reason}", "warning", 8000)
        self.turn_failed.emit(request_id, reason)
        self._begin_countdown()

    def _on_song_loaded(self) -> None:
        cur = self.rotation.current
        if self._awaiting is None or cur is None or cur.request.id != self._awaiting:
            return
        rid = self._awaiting
        self._awaiting, self._playing = None, rid
        prefs = self.rotation.settings_for(cur)
        s = self.w.session
        if s is not None:
            with s.batch():
                s.set("key.semitones", int(prefs.key))
                s.set("tempo.ratio", float(prefs.tempo))
        self.set_guide(prefs.guide)
        for view in self.room_views:  # the room sees the song as it was asked for
            view.title = f"{cur.request.title} — {cur.request.artist}" if cur.request.artist else cur.request.title
        player = self.w.player
        if getattr(player, "available", False) and not player.playing:
            try:
                player.play()
            except Exception as exc:  # noqa: BLE001 - the device refused: the host can press play
                self.w.notify(f"Playback failed: {exc}", "warning", 5000)
        self.turn_started.emit(rid)
        self.service.changed()

    def _on_song_ready(self) -> None:
        """A song separated during the evening (opened by hand too) can be asked for at once."""
        song = self.w.song
        if song is not None and song.path is not None and Path(song.path).is_file():
            sid = song_id_for(song.path)
            known = self.catalog.get(sid)
            self.catalog.add([Song(sid, known.title if known else song.title, known.artist if known else "",
                                   float(song.duration), Path(song.path), True)])
            self.service.changed()

    def _on_separation_failed(self, message: str) -> None:
        if self._awaiting is not None:
            self._fail(self._awaiting, message)

    def _on_tick(self) -> None:
        if self._playing is None or self.w.song is None:
            return
        player = self.w.player
        if player.playing:
            self._heard_playing = True
        elif self._heard_playing and player.position >= self.w.song.duration - END_MARGIN_S:
            self.song_ended()

    def song_ended(self) -> None:
        """The current song played to its end: into the history, then the countdown to the next."""
        self._playing = None
        self.rotation.finish_current("sung")
        self._begin_countdown()

    def skip_song(self) -> None:
        if self.rotation.current is None:
            return
        if self.w.player is not None and self.w.player.playing:
            self.w.player.pause()
        self._awaiting = self._playing = None
        self.rotation.finish_current("skipped")
        self._begin_countdown()

    def _begin_countdown(self) -> None:
        if self.rotation.next_turn() is None:
            self.countdown = None
            self.panel.refresh()
            return
        self.countdown = self.countdown_s
        if self.countdown_s <= 0:
            QTimer.singleShot(0, self.start_next)
        else:
            self._timer.start()
        self.service.changed()

    def _count(self) -> None:
        if self.countdown is None:
            self._timer.stop()
            return
        self.countdown -= 1
        if self.countdown <= 0:
            self._timer.stop()
            self.start_next()
        else:
            self.panel.refresh()
            for view in self.room_views:
                view.update()

    # ------------------------------------------------------------------------- separation ahead
    def _preseparate(self) -> None:
        """Songs of the next turns that are not separated go to the batch queue, nearest first."""
        runner = self.w.library_ctl.runner
        queued_paths = {str(Path(item.path)) for item in runner.queue.items}
        wanted = []
        for _, req in self.rotation.upcoming(PRESEPARATE_TURNS):
            song = self.catalog.get(req.song_id)
            if song is None or song.separated or str(song.path) in queued_paths:
                continue
            wanted.append(song)
        for n, song in enumerate(wanted):
            added, _ = runner.add_paths([song.path])
            for item in added:
                self._queued[item.id] = song.id
                if item.state == "pending":
                    runner.queue.move(item.id, n)

    def _on_queue_item(self, item_id: int, state: str) -> None:
        song_id = self._queued.pop(item_id, None)
        if song_id is None:
            return
        if state == "done":
            self.catalog.mark_separated(song_id)
        else:
            item = self.w.library_ctl.runner.queue.get(item_id)
            self.rotation.mark_failed(song_id, item.error if item is not None and item.error else "separation failed")

    # ------------------------------------------------------------------------------ the room
    def open_room_screen(self) -> KaraokeView:
        k = self.w.karaoke_ctl
        if k.view is not None:
            return k.view
        return k.open_full_screen()

    def room_info(self) -> dict:
        rot = self.rotation
        cur = rot.current
        upcoming = rot.upcoming(4)
        singer = rot.singers.get(cur.singer_id) if cur is not None else None
        playing = cur is not None and self._playing == cur.request.id

        def song_text(r) -> str:
            return f"{r.title} — {r.artist}" if r.artist else r.title

        nxt = upcoming[0] if upcoming else None
        if cur is not None and not playing:  # its song is opening: that singer is next up
            upcoming = [(singer, cur.request), *upcoming] if singer is not None else upcoming
            nxt = upcoming[0] if upcoming else None
        url = self.server.url if self.server is not None and self.server.running else ""
        return {
            "between": not playing,
            "singer": singer.name if singer else "",
            "colour": singer.colour if singer else "",
            "next": f"{nxt[0].name} — {song_text(nxt[1])}" if nxt and playing else "",
            "next_singer": nxt[0].name if nxt else "",
            "next_colour": nxt[0].colour if nxt else "",
            "next_song": song_text(nxt[1]) if nxt else "",
            "countdown": self.countdown,
            "later": [f"then {s.name} — {song_text(r)}" for s, r in upcoming[1:]],
            "qr": self.qr,
            "url": url,
            "url_short": url.split("?")[0],
        }

    def save(self) -> None:
        self._save_timer.stop()
        try:
            self.rotation.save()
        except OSError as exc:
            self.w.notify(f"Could not save the rotation ({exc.strerror or exc})", "warning", 5000)

    def close(self) -> None:
        self._timer.stop()
        self.disable_remote()
        self.save()
