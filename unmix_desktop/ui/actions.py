"""The window's menus and keyboard shortcuts.

Every shortcut belongs to exactly one :class:`QAction`, created once. Menus that are filled when
they open (Open Recent, Mix) add those same actions, or shortcut-less entries, so opening a menu
never registers a shortcut twice (Qt then ignores both as an "ambiguous shortcut overload").
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QKeySequence

from .presets import presets_for

if TYPE_CHECKING:
    from .main_window import MainWindow

SEEK_STEP_S = 5.0


class WindowActions:
    """Builds the menu bar and the window-wide shortcuts of ``window`` and keeps the actions."""

    def __init__(self, window: "MainWindow"):
        self.w = window
        self.shortcuts: dict[str, QAction] = {}  # shortcut text -> its one action
        self._build_menus()
        self._build_stem_shortcuts()

    def _action(self, text: str, slot, shortcut=None, menu=None, tip: str = "", checkable: bool = False) -> QAction:
        action = QAction(text, self.w)
        if shortcut:
            seq = QKeySequence(shortcut)
            key = seq.toString()
            if key in self.shortcuts:
                raise ValueError(f"shortcut {key} is already taken by '{self.shortcuts[key].text()}'")
            action.setShortcut(seq)
            self.shortcuts[key] = action
        if tip:
            action.setStatusTip(tip)
        action.setCheckable(checkable)
        action.triggered.connect(lambda _=False: slot())
        if menu is not None:
            menu.addAction(action)
        self.w.addAction(action)  # shortcuts work whether or not the menu was ever opened
        return action

    def _build_menus(self) -> None:
        w = self.w
        bar = w.menuBar()
        file_menu = bar.addMenu("&File")
        self.open = self._action("&Open…", w.choose_file, QKeySequence.StandardKey.Open, file_menu)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        lib = w.library_ctl
        self.add_to_queue = self._action("Add to &Queue…", lib.choose_queue_files, "Ctrl+Shift+O", file_menu,
                                         "Separate several songs one after another in the background")
        self.show_queue = self._action("Show Q&ueue", lib.show_queue, "Ctrl+Shift+U", file_menu)
        self.show_library = self._action("&Library", lib.toggle_library, "Ctrl+B", file_menu,
                                         "Every song separated before: search, open, delete")
        self.hide_panel = self._action("&Hide Songs Panel", lib.hide_panel, "Ctrl+Shift+B", file_menu,
                                       "Close the queue and library panel")
        self.reseparate = self._action("&Separate Again", w.separate_again, "Ctrl+R", file_menu,
                                       "Separate the open song again with the current settings")
        file_menu.addSeparator()
        self.export = self._action("&Export…", w.show_export, "Ctrl+E", file_menu)
        self.open_lyrics = self._action("Open &Lyrics…", w.lyrics_ctl.choose_file, "Ctrl+Shift+L", file_menu,
                                        "Open an .lrc lyrics file for the open song")
        self.lyrics_editor = self._action("Lyrics &Editor…", w.karaoke_ctl.show_lyrics_editor, "Ctrl+Shift+E",
                                          file_menu, "Paste plain lyrics, sync them to the song, fix and save")
        self.import_ultrastar = self._action("Import &UltraStar Song…", w.karaoke_ctl.ultrastar.choose_import, None,
                                             file_menu, "Open an UltraStar .txt: its notes, lyrics and audio")
        self.export_ultrastar = self._action("Export as UltraStar Song…", w.karaoke_ctl.ultrastar.choose_export, None,
                                             file_menu, "Write an UltraStar folder: notes, lyrics, audio, stems")
        file_menu.addSeparator()
        self.clear_cache = self._action("Clear Separation Cache", w.clear_cache, None, file_menu)
        file_menu.aboutToShow.connect(w.update_cache_action)
        file_menu.addSeparator()
        self.quit = self._action("&Quit", w.close, "Ctrl+Q", file_menu)

        t = w.transport_ctl
        play_menu = bar.addMenu("&Playback")
        self.play = self._action("Play / Pause", t.toggle_play, "Space", play_menu)
        self._action("Stop", t.stop, None, play_menu)
        self._action("Back to Start", lambda: t.seek(0.0), "Home", play_menu)
        self._action(f"Back {SEEK_STEP_S:.0f} s", lambda: t.seek_relative(-SEEK_STEP_S), "Left", play_menu)
        self._action(f"Forward {SEEK_STEP_S:.0f} s", lambda: t.seek_relative(SEEK_STEP_S), "Right", play_menu)
        play_menu.addSeparator()
        self._action("Set Loop Start (A)", t.set_loop_a, "[", play_menu)
        self._action("Set Loop End (B)", t.set_loop_b, "]", play_menu)
        self._action("Loop A–B On/Off", t.toggle_loop, "L", play_menu)
        self._action("Clear Loop", t.clear_loop, None, play_menu)

        self._build_practice_menu(bar)

        self.mix_menu = bar.addMenu("&Mix")
        self.mix_menu.aboutToShow.connect(self._fill_mix_menu)
        self.karaoke = self._action("Karaoke (no vocals)", lambda: w.apply_preset("karaoke"), "K")
        self.full_mix = self._action("Full mix", lambda: w.apply_preset("full"), "0")
        self.mute_output = self._action("Mute Output", w.toggle_output_mute, "M", checkable=True)

        k = w.karaoke_ctl
        sing_menu = bar.addMenu("&Sing")
        self.full_screen = self._action("Karaoke Full Screen", k.toggle_full_screen, "F11", sing_menu,
                                        "Big lyrics for a second screen or a TV (Esc to leave)")
        self.sing = self._action("Sing (Microphone)", k.sing.toggle, "Ctrl+Shift+S", sing_menu,
                                 "Your pitch over the melody and a score per line")
        self._action("Karaoke Night (Host Mode)", w.party, None, sing_menu,
                     "A singer rotation, a room screen and a phone remote for guests")
        self._action("Lyrics Earlier (−0.1 s)", lambda: k.lyrics.nudge(-100), "Ctrl+Alt+Left", sing_menu)
        self._action("Lyrics Later (+0.1 s)", lambda: k.lyrics.nudge(100), "Ctrl+Alt+Right", sing_menu)

        settings_menu = bar.addMenu("&Settings")
        self._action("&Preferences…", w.prefs_ctl.show_preferences, "Ctrl+,", settings_menu)

        help_menu = bar.addMenu("&Help")
        self._action("&Keyboard Shortcuts", w.show_shortcuts, "F1", help_menu)
        self._action("&About unmix-desktop", w.show_about, None, help_menu)

    def _build_practice_menu(self, bar) -> None:
        p = self.w.practice_ctl
        menu = bar.addMenu("P&ractice")
        self.slower = self._action("Slower (−5 %)", lambda: p.step_tempo(-1), "-", menu)
        self.faster = self._action("Faster (+5 %)", lambda: p.step_tempo(1), "=", menu)
        self.reset_tempo = self._action("Original Tempo", p.reset_tempo, "Backspace", menu)
        menu.addSeparator()
        self.key_down = self._action("Key Down a Semitone", lambda: p.step_key(-1), "Ctrl+-", menu)
        self.key_up = self._action("Key Up a Semitone", lambda: p.step_key(1), "Ctrl+=", menu)
        self.reset_key = self._action("Original Key", p.reset_key, "Ctrl+Backspace", menu)
        menu.addSeparator()
        self.snap = self._action("Snap A/B to Beats", p.toggle_snap, "Ctrl+G", menu)
        self._action("Nudge A a Beat Earlier", lambda: p.nudge("a", -1), "Ctrl+Left", menu)
        self._action("Nudge A a Beat Later", lambda: p.nudge("a", 1), "Ctrl+Right", menu)
        self._action("Nudge B a Beat Earlier", lambda: p.nudge("b", -1), "Ctrl+Shift+Left", menu)
        self._action("Nudge B a Beat Later", lambda: p.nudge("b", 1), "Ctrl+Shift+Right", menu)
        menu.addSeparator()
        self.click = self._action("Metronome Click On/Off", p.toggle_click, "C", menu)
        self.count_in = self._action("Count-in On/Off", p.toggle_count_in, "Shift+C", menu)
        self.trainer = self._action("Loop Trainer On/Off", p.toggle_trainer, "Ctrl+L", menu)
        menu.addSeparator()
        self.add_marker = self._action("Add Marker at Play Head", p.add_marker, "Ctrl+M", menu)
        self._action("Rename Marker…", p.ask_rename_marker, "F2", menu)
        self._action("Remove Marker", p.remove_marker, None, menu)
        self._action("Previous Marker", lambda: p.jump(-1), ",", menu)
        self._action("Next Marker", lambda: p.jump(1), ".", menu)
        self.markers_menu = menu.addMenu("Go to Marker")
        self.markers_menu.aboutToShow.connect(self._fill_markers_menu)

    def _fill_markers_menu(self) -> None:
        """Shortcut-less entries, one per marker (rebuilt on every opening)."""
        p = self.w.practice_ctl
        self.markers_menu.clear()
        markers = p.markers()
        for i, m in enumerate(markers):
            self.markers_menu.addAction(f"{m['label']}  ({m['t']:.1f} s)", lambda i=i: p.jump_to(i))
        if not markers:
            self.markers_menu.addAction("No markers (Ctrl+M adds one)").setEnabled(False)

    def _build_stem_shortcuts(self) -> None:
        mix = self.w.mix_ctl
        for i in range(9):
            self._action(f"Solo stem {i + 1}", lambda i=i: mix.toggle_index("solo", i), str(i + 1))
            self._action(f"Mute stem {i + 1}", lambda i=i: mix.toggle_index("mute", i), f"Alt+{i + 1}")

    # menus filled when they open -----------------------------------------------------------------
    def _fill_recent_menu(self) -> None:
        w = self.w
        self.recent_menu.clear()
        files = w.settings.recent_files
        for f in files:
            action = self.recent_menu.addAction(Path(f).name)
            action.setToolTip(f)
            action.setStatusTip(f)
            action.triggered.connect(lambda _=False, f=f: w.open_song(f))
        if not files:
            self.recent_menu.addAction("No recent songs").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear Recent", w.clear_recent)

    def _fill_mix_menu(self) -> None:
        w = self.w
        self.mix_menu.clear()
        session = w.session
        if session is None:
            self.mix_menu.addAction("Open a song first").setEnabled(False)
            return
        for p in presets_for(list(session.names)):
            if p.key == "karaoke":
                self.mix_menu.addAction(self.karaoke)
            elif p.key == "full":
                self.mix_menu.addAction(self.full_mix)
            else:  # no shortcut: nothing to collide with
                self.mix_menu.addAction(p.label, lambda key=p.key: w.apply_preset(key))
        self.mix_menu.addSeparator()
        self.mute_output.setChecked(w.monitor.output_muted)
        self.mix_menu.addAction(self.mute_output)

    def set_song_actions_enabled(self, enabled: bool) -> None:
        self.export.setEnabled(enabled)
        self.reseparate.setEnabled(enabled)
        self.export_ultrastar.setEnabled(enabled)
