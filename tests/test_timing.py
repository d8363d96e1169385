"""The timing editor's document (Qt-free): edits keep word order, tap-along by line and by word,
undo/redo, where Save writes (never over a user's file unasked), and chart-weighted scoring."""

from __future__ import annotations

import numpy as np
import pytest

from unmix_desktop.analysis.melody import ChartContour, Contour, shift_contour
from unmix_desktop.analysis.singing import SingScorer
from unmix_desktop.lyrics.align import AlignedLine, AlignedWord, Alignment
from unmix_desktop.lyrics.timing import (
    MIN_WORD_S,
    Cursor,
    TimingDoc,
    needs_confirmation,
    save_lrc,
    save_target,
    written_by_us,
)


def doc() -> TimingDoc:
    return TimingDoc(Alignment([
        AlignedLine(1.0, 2.0, [AlignedWord("a", 1.0, 1.5), AlignedWord("b", 1.5, 2.0)]),
        AlignedLine(3.0, 4.0, [AlignedWord("c", 3.0, 3.5), AlignedWord("d", 3.5, 4.0)]),
        AlignedLine(6.0, 7.0, [AlignedWord("e", 6.0, 7.0)]),
    ], "en"))


def starts(d: TimingDoc) -> list[float]:
    return [round(d.word(c).start, 3) for c in d.flat()]


def test_edits_keep_order_and_undo_redo():
    d = doc()
    d.set_word_start(Cursor(1, 0), 2.5)
    assert d.lines[1].start == 2.5
    assert d.set_word_start(Cursor(0, 1), 5.0) == pytest.approx(2.5 - MIN_WORD_S)  # clamped before "c"
    assert d.lines[0].end == pytest.approx(d.word(Cursor(0, 1)).end) and d.lines[0].words[-1].end <= 2.5
    d.nudge(Cursor(2, 0), -0.05)
    assert d.word(Cursor(2, 0)).start == pytest.approx(5.95)
    d.shift_line(1, -10)  # clamped by the line before
    assert d.lines[1].start > d.lines[0].words[-1].start
    before = starts(d)
    assert d.undo() and d.undo() and d.undo() and d.undo()
    assert starts(d) == [1.0, 1.5, 3.0, 3.5, 6.0] and not d.can_undo()
    assert d.redo() and d.redo() and d.redo() and d.redo() and starts(d) == before and not d.can_redo()
    d.set_word_end(Cursor(2, 0), 9.0)
    assert d.lines[2].end == 9.0


def test_tap_lines_and_words():
    d = doc()
    d.start_tapping(words=False)
    assert d.tap(0.5) == Cursor(0, 0)
    assert starts(d)[:2] == [0.5, 1.0]  # the line moved, its spacing kept
    d.tap(3.5)
    d.tap(5.0)
    assert [li.start for li in d.lines] == [0.5, 3.5, 5.0]
    assert d.tap(9.0) is None  # past the last line
    d.start_tapping(Cursor(1, 0), words=True)
    d.tap(3.2)
    d.tap(3.9)
    assert starts(d)[2:4] == [3.2, 3.9] and d.tap_cursor == Cursor(2, 0)
    # a line tapped so late it would run into the next line is squeezed into the room left
    d = doc()
    d.start_tapping(Cursor(1, 0))
    d.tap(5.9)
    assert d.lines[1].end <= d.lines[2].start + 1e-9 and d.lines[1].start == 5.9


def test_save_target_and_confirmation(tmp_path):
    song = tmp_path / "s.wav"
    user = tmp_path / "s.lrc"
    assert save_target(song, None) == user and not needs_confirmation(user)
    user.write_text("[00:01.00]mine\n", encoding="utf-8")
    assert needs_confirmation(user) and not written_by_us(user)
    ours = save_lrc(doc().alignment, tmp_path / "data" / "s-1.lrc")
    assert written_by_us(ours) and not needs_confirmation(ours)
    assert save_target(song, ours) == ours           # the file the editor wrote for this song
    assert save_target(song, user) == user           # a user's file is only the default target...
    assert needs_confirmation(save_target(song, user))  # ...and needs a yes


def test_chart_weights_in_the_scorer():
    times = np.arange(0, 3, 0.01)
    hz = np.full(times.size, 220.0, np.float32)
    weights = np.where(times < 1, 1.0, np.where(times < 2, 2.0, 0.0)).astype(np.float32)
    melody = ChartContour(times, hz, weights)
    scorer = SingScorer(shift_contour(melody, 0))
    assert scorer.weights is not None
    scorer.add(times[times < 1], np.full((times < 1).sum(), 220.0))          # normal: hit
    scorer.add(times[(times >= 1) & (times < 2)], np.full(100, 300.0))        # golden: miss
    scorer.add(times[times >= 2], np.full((times >= 2).sum(), 300.0))         # freestyle: not scored
    assert scorer.score() == pytest.approx(1 / 3)    # golden counts double
    assert scorer.score(2.0, 3.0) is None
    plain = SingScorer(Contour(times, hz))
    assert plain.weights is None
