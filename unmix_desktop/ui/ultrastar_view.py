"""UltraStar songs in the window: import a chart (its audio opens as the song, its notes replace the
tracked melody in the note lane, the singing score follows the chart, its syllables are the
lyrics) and export the open song as an UltraStar folder in a worker. The chart is remembered in
the session as ``lyrics.path``, so reopening the song brings the chart back."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog

from ..lyrics.ultrastar import UltraStarError, chart_melody, looks_like_ultrastar, read

if TYPE_CHECKING:
    from .main_window import MainWindow


def chart_of_session(session) -> Path | None:
    """The UltraStar chart the session's ``lyrics.path`` names, if it is one."""
    chosen = session.get("lyrics.path") if session is not None else None
    if not chosen:
        return None
    path = Path(chosen)
    try:
        return path if path.is_file() and looks_like_ultrastar(path.read_bytes()[:8192]) else None
    except OSError:
        return None


def melody_from_chart(path: Path):
    """(contour with weights, display notes) of a chart file; ``None`` when it cannot be read."""
    try:
        return chart_melody(read(path))
    except UltraStarError:
        return None


class UltraStarController(QObject):
    def __init__(self, window: MainWindow):
        super().__init__(window)
        self.w = window
        self.pending: Path | None = None
        self.task = None
        window.song_loaded.connect(self._on_song_loaded)

    def choose_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.w, "Import UltraStar song", "",
                                              "UltraStar (*.txt);;All files (*)")
        if path:
            self.import_chart(path)

    def import_chart(self, path: str | Path) -> bool:
        """Read the chart; open its audio as the song (unless it is open), then apply the chart."""
        try:
            chart = read(path)
        except UltraStarError as exc:
            self.w.show_error("Cannot import this UltraStar song", str(exc))
            return False
        # what was skipped in a malformed chart is said once, by the lyrics pane when it loads the chart
        audio = chart.audio_path
        song = self.w.song
        if song is not None and (audio is None or not audio.is_file() or Path(song.path) == audio):
            self.apply(chart.path)
            return True
        if audio is None or not audio.is_file():
            self.w.show_error("Cannot import this UltraStar song",
                              f"{chart.path}: its audio file ({audio.name if audio else 'none named'}) is missing; "
                              "open the song first, then import the chart")
            return False
        self.pending = chart.path
        return self.w.open_song(audio)

    def _on_song_loaded(self) -> None:
        if self.pending is not None and self.w.song is not None:
            path, self.pending = self.pending, None
            self.apply(path)

    def apply(self, path: Path) -> None:
        """The chart becomes the song's lyrics and melody (remembered in the session)."""
        k = self.w.karaoke_ctl
        k.lyrics.open_file(path)          # the pane shows the chart's syllables; session lyrics.path
        k.melody.start()                  # the lane takes the chart (chart_of_session), the scorer follows

    # export ----------------------------------------------------------------------------------
    def choose_export(self) -> None:
        w = self.w
        if w.song is None:
            w.notify("Open a song first, then export it for UltraStar.", "info", 5000)
            return
        folder = QFileDialog.getExistingDirectory(w, "Export UltraStar song into folder", str(w.song.path.parent))
        if folder:
            self.export(Path(folder) / f"{w.song.path.stem} (UltraStar)")

    def export(self, out: Path, on_done=None):
        from ..analysis.beats import estimate_beats
        from ..lyrics.align import from_lyrics
        from ..lyrics.chart import export_folder, export_targets
        from ..lyrics.text import detect_language

        w = self.w
        song = w.song
        existing = [p for p in export_targets(out, song.path).values() if p.exists()]
        if existing:
            w.show_error("Export UltraStar", f"{existing[0]}: already exists; choose another folder")
            return None
        lyrics = w.karaoke_ctl.lyrics.lyrics
        alignment = from_lyrics(lyrics) if lyrics is not None and lyrics.synced else None
        if alignment is not None:
            alignment.language = detect_language(lyrics.text())
        contour = w.karaoke_ctl.melody.contour
        stems, sr, path = dict(song.stems), song.sample_rate, song.path

        def job(report, cancel):
            from ..analysis.melody import melody_for_audio

            vocals = stems["vocals"]
            melody = contour if contour is not None and getattr(contour, "weights", None) is None else \
                melody_for_audio(vocals, sr)
            instrumental = stems.get("accompaniment")
            if instrumental is None:
                instrumental = sum(a for k, a in stems.items() if k != "vocals")
            grid = estimate_beats(stems, sr)
            return export_folder(out, path, vocals, instrumental, sr, melody, alignment, grid.bpm,
                                 grid.beats[0] if grid.beats else 0.0)

        def done(chart):
            self.task = None
            w.notify(f"UltraStar song written: {chart.path}", "info", 8000)
            if on_done:
                on_done(chart)

        def failed(message):
            self.task = None
            w.show_error("Export UltraStar", message)

        self.task = w.start_task(job, "ultrastar-export", on_done=done, on_error=failed)
        return self.task
