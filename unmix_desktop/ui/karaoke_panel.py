"""The karaoke part of the song page: the lyrics pane, the melody lane and the Sing strip, and
the full-screen karaoke view. Wires :class:`.lyrics_view.LyricsController`,
:class:`.melody_lane.MelodyController` and :class:`.sing_view.SingController` to the window:
song shown -> bind the session; lanes built -> read the lyrics (they need no stems: a song opened
while it separates shows them at once); song drawn -> the melody job (from the vocals: only on the
whole song, redone on ``song_complete`` when started earlier); display tick -> follow the player's
song position."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QVBoxLayout, QWidget

from .karaoke_view import KaraokeView
from .lyrics_editor import make_lyrics_editor
from .lyrics_view import LyricsController
from .melody_lane import MelodyController
from .sing_view import SingController
from .ultrastar_view import UltraStarController

if TYPE_CHECKING:
    from .main_window import MainWindow

FULL_SCREEN_KEY = "F11"
LYRICS_H, LANE_H = 128, 130
COMPACT_LYRICS_H = 52
COMPACT_LANES_H = 36
#: Song-page heights below which the melody lane, then the Sing strip, are hidden and the lyrics
#: pane becomes a compact strip (current and next line; shown only when the song has lyrics): a
#: small window keeps its lanes and transport usable and the lyrics, which karaoke needs most.
LANE_MIN_PAGE_H = 640
AREA_MIN_PAGE_H = 600  # below it: the compact lyrics strip (900x600 and smaller)


class KaraokeController(QObject):
    def __init__(self, window: MainWindow, mic_factory=None):
        super().__init__(window)
        self.w = window
        self.lyrics = window.lyrics_ctl = LyricsController(window)
        self.melody = window.melody_ctl = MelodyController(window)
        self.sing = window.sing_ctl = SingController(window, mic_factory)
        self.melody.ready.connect(self.sing.set_melody)
        self.editor = window.lyrics_editor_ctl = make_lyrics_editor(window, self.lyrics, self.melody)
        self.ultrastar = window.ultrastar_ctl = UltraStarController(window)
        self.view: KaraokeView | None = None
        self.view_factory = KaraokeView  # host mode puts its room screen here (ui/party_view.py)
        self.area = QWidget()
        self.area.setObjectName("karaokeArea")
        lay = QVBoxLayout(self.area)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        self.lyrics.pane.setFixedHeight(LYRICS_H)
        self.melody.lane.setFixedHeight(LANE_H)
        lay.addWidget(self.lyrics.pane)
        lay.addWidget(self.melody.lane)
        lay.addWidget(self.sing.panel)
        self._unobserve = None
        self._lyrics_song = None  # the SongResult whose lyrics were requested
        window.song_page.tracks.built.connect(self.load_lyrics)
        self._page = None
        self.lyrics.changed.connect(lambda: self.fit(self._page.height()) if self._page is not None else None)
        window.song_complete.connect(self.melody.on_song_complete)

    def install(self, song_page) -> None:
        """Put the karaoke area on ``song_page`` between the lanes and the transport bar."""
        layout = song_page.layout()
        layout.insertWidget(layout.indexOf(song_page.transport), self.area)
        self._page = song_page
        song_page.installEventFilter(self)
        self.fit(song_page.height())

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Resize:
            self.fit(event.size().height())
        return False

    def fit(self, page_height: int) -> None:
        """Show what fits a song page ``page_height`` pixels high."""
        compact = page_height < AREA_MIN_PAGE_H
        self.area.setVisible(not compact or self.lyrics.lyrics is not None)
        self.lyrics.pane.set_compact(compact)
        self.lyrics.pane.setFixedHeight(COMPACT_LYRICS_H if compact else LYRICS_H)
        self.sing.panel.setVisible(not compact)
        self.melody.lane.setVisible(page_height >= LANE_MIN_PAGE_H)
        if self._page is not None:  # the lanes scroll: in a low window they give the lyrics their room
            self._page.scroll.setMinimumHeight(COMPACT_LANES_H if compact else 0)
            self._page.layout().setSpacing(4 if compact else 8)

    def show_song(self, session, song) -> None:
        if self._unobserve is not None:
            self._unobserve()
        self._unobserve = session.observe(self._on_session)
        self.melody.bind(session)
        self.sing.set_melody(None)
        self.lyrics.bind(session, song.path)
        self._lyrics_song = None
        if self.view is not None:
            self.view.title, self.view.duration = song.title, song.duration
        self.tick()

    def start_jobs(self) -> None:
        """Read the lyrics and compute the melody in workers. Started once the song is drawn
        (``song_ready``): their first run imports mutagen and onnxruntime, whose loading holds the
        interpreter for a few hundred ms and would stall the window while it builds the lanes."""
        if self.w.song is not None:
            self.load_lyrics()
            self.melody.start()

    def load_lyrics(self) -> None:
        """Read the open song's lyrics (once per song shown), as soon as its lanes are built: they
        need no stems, so they do not wait for the separation or the spectrograms."""
        song = self.w.song
        if song is not None and self._lyrics_song is not song:
            self._lyrics_song = song
            self.lyrics.load()

    def _on_session(self, control: str, value) -> None:
        if control in ("key.semitones", "*"):
            self.sing.on_key_changed()

    def tick(self) -> None:
        self.lyrics.tick()
        self.melody.tick(self.lyrics.position())
        self.editor.tick(self.lyrics.position())
        if self.view is not None and self.sing.song_score is not None:
            self.view.score_text = f"Score {self.sing.song_score * 100:.0f} %"

    def show_lyrics_editor(self):
        return self.editor.show(self.w, self.lyrics.lyrics)

    # full screen -----------------------------------------------------------------------------
    def toggle_full_screen(self) -> KaraokeView | None:
        if self.view is not None:
            self.view.close()
            return None
        return self.open_full_screen()

    def open_full_screen(self) -> KaraokeView:
        song = self.w.song
        view = self.view_factory(song.title if song else "", song.duration if song else 0.0, FULL_SCREEN_KEY, self.w)
        view.closed.connect(lambda: self._on_view_closed(view))
        self.view = view
        self.lyrics.views.append(view)
        # On a second screen (a TV) when there is one; the geometry is set as well, for window
        # managers (or none, as in a kiosk) that ignore the full-screen request.
        screens = QGuiApplication.screens()
        own = self.w.screen()
        screen = next((s for s in screens if s is not own), own) or QGuiApplication.primaryScreen()
        if screen is not None:
            view.setGeometry(screen.geometry())
        view.showFullScreen()
        self.tick()
        return view

    def _on_view_closed(self, view: KaraokeView) -> None:
        if view in self.lyrics.views:
            self.lyrics.views.remove(view)
        if self.view is view:
            self.view = None
        view.deleteLater()

    def close(self) -> None:
        self.sing.stop()
        if self.view is not None:
            self.view.close()
