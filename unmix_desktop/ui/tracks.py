"""Track lanes: a mixer strip and a spectrogram (pyqtgraph ImageItem) per stem, with a playhead,
click-to-seek, the A-B loop region, the beat/bar grid, markers and a shared time ruler."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import shiboken6
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import QFrame, QHBoxLayout, QSizePolicy, QVBoxLayout, QWidget

from ..audio.spectrogram import DisplaySpectrogram
from ..progress import format_time
from . import theme
from .strips import MasterStrip, StemStrip, _StripBase

pg.setConfigOptions(antialias=False, imageAxisOrder="col-major", background=theme.PLOT_BG,
                    foreground=theme.TEXT_DIM)

LEVELS_DB = (-66.0, 0.0)
AXIS_WIDTH = 38
FREQ_TICKS = ((100, "100"), (1000, "1k"), (10000, "10k"))
MINOR_FREQ_TICKS = ((50, ""), (200, ""), (500, ""), (2000, ""), (5000, ""))
MARKER_COLOUR = theme.WARN


def stem_lookup_table(colour: str | None, n: int = 256) -> np.ndarray:
    """Colour map: plot background -> dark stem colour -> stem colour -> near white
    (``None``: the perceptual "inferno" map, used for the mixture)."""
    if colour is None:  # gamma 1.7: music spectra are dense, keep the middle of the range dark
        return pg.colormap.get("inferno").map(np.linspace(0.0, 1.0, n) ** 1.7, mode="byte")
    c = QColor(colour)
    def tint(f: float, blue: float = 0.0) -> QColor:
        return QColor(int(c.red() * f), int(c.green() * f), int(min(255, c.blue() * (f + blue))))

    stops = [
        (0.0, QColor(theme.PLOT_BG)),
        (0.42, tint(0.16, 0.05)),
        (0.72, tint(0.55)),
        (0.9, c),
        (1.0, QColor(255, 250, 240)),
    ]
    cmap = pg.ColorMap([s[0] for s in stops], [s[1] for s in stops])
    return cmap.getLookupTable(0.0, 1.0, n)


def _style_axis(axis: pg.AxisItem) -> None:
    axis.setPen(pg.mkPen(theme.BORDER))
    axis.setTextPen(pg.mkPen(theme.TEXT_DIM))
    font = QFont()
    font.setPointSizeF(7.5)
    axis.setStyle(tickFont=font, tickLength=-3, tickTextOffset=3)


#: Stacking in a lane: grid 4, loop 5, unready shade 6, playhead, markers (their labels on a plot-coloured
#: background, so the playhead passes behind a label instead of over its text).
PLAYHEAD_Z, MARKER_Z = 7, 8

class Canvas(pg.GraphicsView):
    """A light plot: a ViewBox and an axis in a GraphicsLayout (no PlotItem: no menus to build,
    so a lane is created in a few milliseconds)."""

    def __init__(self, axis: str = "left", background: str = theme.PLOT_BG):
        super().__init__(background=background)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.grid = pg.GraphicsLayout()
        self.grid.setContentsMargins(0, 0, 4, 0)
        self.grid.setSpacing(0)
        self.setCentralItem(self.grid)
        self.vb = pg.ViewBox(enableMouse=False, enableMenu=False, defaultPadding=0.0)
        self.vb.setMouseEnabled(x=False, y=False)
        self.vb.enableAutoRange(enable=False)
        self.axis = pg.AxisItem(axis)
        self.axis.linkToView(self.vb)
        _style_axis(self.axis)
        if axis == "left":
            self.axis.setWidth(AXIS_WIDTH)
            self.grid.addItem(self.axis, 0, 0)
            self.grid.addItem(self.vb, 0, 1)
        else:  # bottom: an invisible left column keeps it aligned with the lanes above
            spacer = pg.GraphicsWidget()
            spacer.setFixedWidth(AXIS_WIDTH)
            self.grid.addItem(spacer, 0, 0)
            self.grid.addItem(self.axis, 0, 1)

    def set_ranges(self, x: tuple[float, float], y: tuple[float, float]) -> None:
        self.vb.setRange(xRange=x, yRange=y, padding=0)


class SpectrogramLane(QWidget):
    """One stem: strip on the left, spectrogram on the right.

    The plot is made by :meth:`build_plot`, in a later event-loop turn than the strip (each takes a
    few tens of milliseconds on a slow machine); state set before that is applied when it appears.
    """

    seek_requested = Signal(float)

    def __init__(self, strip: _StripBase, colour: str | None, duration: float, parent: QWidget | None = None):
        super().__init__(parent)
        self.name = strip.name
        self.strip = strip
        self.colour = colour
        self.duration = max(duration, 1e-3)
        self.spectrogram: DisplaySpectrogram | None = None
        self.plot: Canvas | None = None
        self.image: pg.ImageItem | None = None
        self.playhead: pg.InfiniteLine | None = None
        self.region: pg.LinearRegionItem | None = None
        self.unready: pg.LinearRegionItem | None = None  # the part not separated yet, shaded
        self._ready: float | None = None
        self._position = 0.0
        self._loop: tuple[float, float] | None = None
        self._beats: tuple[list[float], list[float]] = ([], [])
        self._markers: list[dict] = []
        self.grid_items: list[pg.PlotCurveItem] = []
        self.marker_items: list[pg.InfiniteLine] = []
        self._bands = 160
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(6)
        self._layout.addWidget(strip)
        self._layout.addStretch(1)
        self.setMinimumHeight(strip.minimumSizeHint().height())  # the strip's controls never overlap

    def build_plot(self) -> None:
        if self.plot is not None:
            return
        self._layout.takeAt(1)  # the stretch that held the place
        self.plot = Canvas("left")
        self.plot.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.plot.setMinimumHeight(56)
        self._layout.addWidget(self.plot, 1)
        vb = self.plot.vb
        self.image = pg.ImageItem()
        self.image.setLookupTable(stem_lookup_table(self.colour))
        self.image.setLevels(LEVELS_DB)
        vb.addItem(self.image)
        self.placeholder = pg.TextItem("computing spectrogram…", color=theme.TEXT_DIM, anchor=(0.5, 0.5))
        vb.addItem(self.placeholder)
        self.playhead = pg.InfiniteLine(pos=self._position, angle=90, movable=False,
                                        pen=pg.mkPen("#ffffff", width=1.5))
        self.playhead.setZValue(PLAYHEAD_Z)  # under the markers: it never crosses out their labels
        vb.addItem(self.playhead)
        self._set_ranges()
        self.set_ready(self._ready)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        if self.spectrogram is not None:
            self.set_spectrogram(self.spectrogram)
        self.set_loop(self._loop)
        self.set_beats(*self._beats)
        self.set_markers(self._markers)

    def _set_ranges(self) -> None:
        self.plot.set_ranges((0, self.duration), (0, self._bands))
        self.placeholder.setPos(self.duration / 2, self._bands / 2)

    def set_spectrogram(self, spec: DisplaySpectrogram) -> None:
        self.spectrogram = spec
        if self.plot is None or not shiboken6.isValid(self.image):
            return  # not built yet, or already torn down by a rebuild
        self._bands = spec.bands
        self.image.setImage(spec.image, levels=LEVELS_DB, autoLevels=False)
        self.image.setRect(QRectF(0, 0, self.duration, spec.bands))
        self.placeholder.hide()
        lo, hi = spec.band_edges[0], spec.band_edges[-1]
        ticks = [(spec.band_of(f), label) for f, label in FREQ_TICKS if lo < f < hi]
        minor = [(spec.band_of(f), label) for f, label in MINOR_FREQ_TICKS if lo < f < hi]
        self.plot.axis.setTicks([ticks, minor])
        self._set_ranges()

    def set_position(self, seconds: float) -> None:
        self._position = seconds
        if self.playhead is not None:
            self.playhead.setValue(seconds)

    def set_loop(self, loop: tuple[float, float] | None) -> None:
        self._loop = loop
        if self.plot is None:
            return
        if loop is None:
            if self.region is not None:
                self.region.hide()
            return
        if self.region is None:
            self.region = pg.LinearRegionItem(values=loop, movable=False, brush=pg.mkBrush(61, 155, 233, 45),
                                              pen=pg.mkPen(QColor(theme.ACCENT), width=1))
            self.region.setZValue(5)
            self.plot.vb.addItem(self.region)
        self.region.setRegion(loop)
        self.region.show()

    def set_ready(self, ready: float | None) -> None:
        """Shade the part after ``ready`` seconds (still being separated); ``None``: all is ready."""
        self._ready = ready
        if self.plot is None:
            return
        if ready is None:
            if self.unready is not None:
                self.unready.hide()
            return
        if self.unready is None:
            hatch = QBrush(QColor(255, 255, 255, 46), Qt.BrushStyle.BDiagPattern)  # "not there yet"
            self.unready = pg.LinearRegionItem(values=(ready, self.duration), movable=False, brush=hatch,
                                               pen=pg.mkPen(QColor(theme.TEXT_DIM), width=1))
            self.unready.setZValue(6)
            self.unready.setToolTip("not separated yet: playback waits here")
            self.plot.vb.addItem(self.unready)
        self.unready.setRegion((ready, self.duration))
        self.unready.show()

    def set_beats(self, beats: list[float], downbeats: list[float]) -> None:
        """The beat grid: faint lines on beats, brighter ones on bar starts (one curve item each)."""
        self._beats = (list(beats), list(downbeats))
        if self.plot is None:
            return
        for item in self.grid_items:
            self.plot.vb.removeItem(item)
        self.grid_items = []
        down = set(round(t, 4) for t in downbeats)
        plain = [t for t in beats if round(t, 4) not in down]
        for times, pen in ((plain, pg.mkPen(255, 255, 255, 28, width=1)),
                           (downbeats, pg.mkPen(255, 255, 255, 70, width=1))):
            if not len(times):
                continue
            x = np.repeat(np.asarray(times, float), 2)
            y = np.tile([0.0, 10_000.0], len(times))  # taller than any band count: clipped by the view
            item = pg.PlotCurveItem(x, y, connect="pairs", pen=pen)
            item.setZValue(4)
            self.plot.vb.addItem(item, ignoreBounds=True)
            self.grid_items.append(item)

    def set_markers(self, markers: list[dict]) -> None:
        """Markers (``{"t", "label"}``): dashed lines, labelled on the mixture lane."""
        self._markers = [dict(m) for m in markers]
        if self.plot is None:
            return
        for item in self.marker_items:
            self.plot.vb.removeItem(item)
        self.marker_items = []
        for m in self._markers:
            line = pg.InfiniteLine(pos=m["t"], angle=90, movable=False,
                                   pen=pg.mkPen(MARKER_COLOUR, width=1, style=Qt.PenStyle.DashLine),
                                   label=m["label"] if self.name == "mixture" else None,
                                   labelOpts={"position": 0.9, "color": MARKER_COLOUR, "anchors": [(0, 0), (0, 0)],
                                              "fill": pg.mkBrush(theme.PLOT_BG)})
            line.setZValue(MARKER_Z)
            self.plot.vb.addItem(line, ignoreBounds=True)
            self.marker_items.append(line)

    def seconds_at(self, scene_pos) -> float | None:
        vb = self.plot.vb
        if not vb.sceneBoundingRect().contains(scene_pos):
            return None
        return float(min(max(vb.mapSceneToView(scene_pos).x(), 0.0), self.duration))

    def _clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        seconds = self.seconds_at(event.scenePos())
        if seconds is not None:
            event.accept()
            self.seek_requested.emit(seconds)


class TimeRuler(QWidget):
    """The time axis under the lanes, aligned with the spectrograms."""

    def __init__(self, duration: float, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addSpacing(_StripBase.STRIP_WIDTH + layout.spacing())  # no spacing is added next to a spacer
        self.plot = Canvas("bottom", background=theme.BG)
        self.plot.setFixedHeight(24)
        self.plot.axis.setStyle(tickLength=4)
        self.plot.axis.tickStrings = lambda values, scale, spacing: [format_time(v) for v in values]
        self.plot.set_ranges((0, max(duration, 1e-3)), (0, 1))
        layout.addWidget(self.plot, 1)


class TrackView(QWidget):
    """All lanes of a song: the mixture (with the master strip) and one per stem.

    Lanes are built one per event-loop turn (a lane with its plot takes a few tens of
    milliseconds), so showing a song never stalls the window; ``lane_added`` announces each
    one and ``built`` the end. Position, loop and spectrograms given earlier are applied to lanes
    as they appear.
    """

    seek_requested = Signal(float)
    lane_added = Signal(str)
    built = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.lanes: dict[str, SpectrogramLane] = {}
        self.strips: dict[str, StemStrip] = {}
        self.master: MasterStrip | None = None
        self.duration = 0.0
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(6)
        self.ruler: TimeRuler | None = None  # set once every lane and plot is built
        self._ruler: TimeRuler | None = None
        self._todo: list[tuple[str, int]] = []
        self._generation = 0
        self._position = 0.0
        self._loop: tuple[float, float] | None = None
        self._ready: float | None = None
        self._specs: dict[str, DisplaySpectrogram] = {}
        self._beats: tuple[list[float], list[float]] = ([], [])
        self._markers: list[dict] = []

    def clear(self) -> None:
        self._generation += 1
        self._todo = []
        while self._layout.count():
            item = self._layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.lanes.clear()
        self.strips.clear()
        self.master = None
        self.ruler = self._ruler = None
        self._specs = {}
        self._position = 0.0
        self._loop = None
        self._ready = None
        self._beats = ([], [])
        self._markers = []

    def set_song(self, names: list[str], duration: float) -> None:
        self.clear()
        self.duration = duration
        todo: list[tuple[str, str, int]] = [("strip", "mixture", -1)]
        todo += [("strip", name, i) for i, name in enumerate(names)]
        todo += [("ruler", "", -1)]  # before the plots: adding it last re-laid out every plot at once
        self._todo = todo + [("plot", "mixture", -1)] + [("plot", name, i) for i, name in enumerate(names)]
        self._build_next(self._generation)

    @property
    def is_built(self) -> bool:
        return self.ruler is not None

    def _build_next(self, generation: int) -> None:
        """One step per event-loop turn: every strip first (the controls work at once), the time ruler,
        then the plots."""
        if generation != self._generation or not self._todo:
            return
        step, name, index = self._todo.pop(0)
        if step == "ruler":
            self._ruler = TimeRuler(self.duration)
            self._layout.addWidget(self._ruler)
        elif step == "plot":
            self.lanes[name].build_plot()
        else:
            if index < 0:
                self.master = MasterStrip()
                strip, colour = self.master, None
            else:
                strip = StemStrip(name, theme.stem_colour(name, index), index)
                self.strips[name] = strip
                colour = strip.colour
            lane = SpectrogramLane(strip, colour, self.duration)
            lane.seek_requested.connect(self.seek_requested)
            lane.set_position(self._position)
            lane.set_loop(self._loop)
            lane.set_ready(self._ready)
            lane.set_beats(*self._beats)
            lane.set_markers(self._markers)
            if name in self._specs:
                lane.set_spectrogram(self._specs[name])
            self.lanes[name] = lane
            self._layout.addWidget(lane, 1)
            self.lane_added.emit(name)
        if not self._todo:
            self.ruler = self._ruler
            self.built.emit()
            return
        QTimer.singleShot(0, self, lambda: self._build_next(generation))  # (never after this view is gone)

    def set_spectrograms(self, specs: dict[str, DisplaySpectrogram]) -> None:
        self._specs = dict(specs)
        for name, spec in specs.items():
            if name in self.lanes:
                self.lanes[name].set_spectrogram(spec)

    def set_position(self, seconds: float) -> None:
        self._position = seconds
        for lane in self.lanes.values():
            lane.set_position(seconds)

    def set_loop(self, loop: tuple[float, float] | None) -> None:
        self._loop = loop
        for lane in self.lanes.values():
            lane.set_loop(loop)

    def set_ready(self, ready: float | None) -> None:
        """Seconds separated so far (the rest is shaded); ``None`` when the whole song is ready."""
        if ready == self._ready:
            return
        self._ready = ready
        for lane in self.lanes.values():
            lane.set_ready(ready)

    @property
    def ready(self) -> float | None:
        return self._ready

    def set_beats(self, beats: list[float], downbeats: list[float]) -> None:
        self._beats = (list(beats), list(downbeats))
        for lane in self.lanes.values():
            lane.set_beats(beats, downbeats)

    def set_markers(self, markers: list[dict]) -> None:
        self._markers = [dict(m) for m in markers]
        for lane in self.lanes.values():
            lane.set_markers(self._markers)

    @property
    def spectrograms_ready(self) -> bool:
        return self.is_built and all(lane.spectrogram is not None for lane in self.lanes.values())
