"""The singer rotation (Qt-free): fair order, holds and skips, moves, failures, preferences, persistence."""

from __future__ import annotations

import json
import random

import pytest

from unmix_desktop.party.rotation import Rotation, RotationError, clean_name


def sing_all(rot: Rotation, limit: int = 100) -> list[str]:
    """Start and finish turns until nobody can sing; the singers' names in the order they sang."""
    sang = []
    for _ in range(limit):
        perf = rot.start_next()
        if perf is None:
            break
        sang.append(rot.singers[perf.singer_id].name)
        rot.finish_current()
    return sang


def test_each_singer_once_per_round_in_order(tmp_path):
    rot = Rotation(tmp_path / "r.json")
    a, b, c = (rot.add_singer(n) for n in ("Ann", "Bob", "Cy"))
    for s, n in ((a, 3), (b, 1), (c, 2)):
        for k in range(n):
            rot.request(s.id, f"song{s.id}x{k}", title=f"{s.name} {k}")
    assert sing_all(rot) == ["Ann", "Bob", "Cy", "Ann", "Cy", "Ann"]
    assert [h["title"] for h in rot.history] == ["Ann 0", "Bob 0", "Cy 0", "Ann 1", "Cy 1", "Ann 2"]
    assert rot.round == 3


def test_new_singer_joins_at_the_end_of_this_round(tmp_path):
    rot = Rotation(tmp_path / "r.json")
    for n in ("Ann", "Bob", "Cy"):
        s = rot.add_singer(n)
        rot.request(s.id, "s1")
        rot.request(s.id, "s2")
    rot.start_next()
    rot.finish_current()  # Ann sang in round 1
    dee = rot.add_singer("Dee")
    rot.request(dee.id, "s9")
    assert [s.name for s, _ in rot.upcoming()] == ["Bob", "Cy", "Dee", "Ann", "Bob", "Cy"]
    assert rot.place_of(dee.id) == 2
    assert sing_all(rot) == ["Bob", "Cy", "Dee", "Ann", "Bob", "Cy"]


def test_hold_keeps_place_skip_passes_turn_and_reorder(tmp_path):
    rot = Rotation(tmp_path / "r.json")
    a, b, c = (rot.add_singer(n) for n in ("Ann", "Bob", "Cy"))
    for s in (a, b, c):
        rot.request(s.id, "x1")
        rot.request(s.id, "x2")
    rot.set_held(a.id, True)
    assert [s.name for s, _ in rot.upcoming(2)] == ["Bob", "Cy"]
    rot.start_next()
    rot.finish_current()  # Bob
    rot.set_held(a.id, False)
    assert rot.next_turn()[0].name == "Ann"  # kept her place in this round
    rot.skip_singer(a.id)
    assert rot.next_turn()[0].name == "Cy"
    rot.reorder([c.id, b.id, a.id])
    # Cy ends this round; the next rounds follow the new order (Bob has one song left)
    assert [s.name for s, _ in rot.upcoming()] == ["Cy", "Cy", "Bob", "Ann", "Ann"]
    with pytest.raises(RotationError):
        rot.reorder([a.id, b.id])


def test_fairness_property_random_operations(tmp_path):
    """Whatever happens (joins, requests, withdrawals, holds, reorders), nobody sings twice in a round
    while someone else in the rotation who could sing (not held, a song waiting) has not sung in it."""
    rng = random.Random(7)
    for trial in range(30):
        rot = Rotation()
        names = [f"S{i}" for i in range(8)]
        sang_in_round: dict[int, set[int]] = {}
        for step in range(120):
            op = rng.random()
            if op < 0.15 and len(rot.singers) < 8:
                s = rot.add_singer(rng.choice(names))
                rot.request(s.id, f"j{step}")
            elif op < 0.45 and rot.singers:
                rot.request(rng.choice(list(rot.singers)), f"r{step}")
            elif op < 0.5 and rot.singers:
                s = rot.singers[rng.choice(list(rot.singers))]
                if s.requests:
                    rot.withdraw(rng.choice(s.requests).id, s.id)
            elif op < 0.55 and rot.singers:
                order = list(rot.order)
                rng.shuffle(order)
                rot.reorder(order)
            elif op < 0.6 and rot.singers:
                sid = rng.choice(list(rot.singers))
                rot.set_held(sid, not rot.singers[sid].held)
            else:
                before_done = set(rot.done)
                could = {i for i, s in rot.singers.items() if not s.held and s.waiting()}
                perf = rot.start_next()
                if perf is None:
                    assert not could, (trial, step)
                    continue
                r = rot.round
                sang_in_round.setdefault(r, set())
                assert perf.singer_id not in sang_in_round[r], (trial, step)
                if perf.singer_id in before_done:  # a new round began: nobody eligible was left
                    assert not (could - before_done), (trial, step)
                sang_in_round[r].add(perf.singer_id)
                rot.finish_current(rng.choice(["sung", "skipped"]))


def test_move_request_withdraw_and_guest_ownership(tmp_path):
    rot = Rotation(tmp_path / "r.json")
    a, b = rot.add_singer("Ann"), rot.add_singer("Bob")
    r1 = rot.request(a.id, "one", "One")
    r2 = rot.request(a.id, "two", "Two", key=-2)
    rot.move_request(r2.id, b.id)
    assert [r.id for r in a.requests] == [r1.id] and [r.id for r in b.requests] == [r2.id]
    rot.move_request(r1.id, b.id, 0)
    assert [r.id for r in b.requests] == [r1.id, r2.id]
    with pytest.raises(RotationError):
        rot.withdraw(r1.id, singer_id=a.id)  # not Ann's any more
    rot.withdraw(r1.id, singer_id=b.id)
    assert [r.id for r in b.requests] == [r2.id]
    with pytest.raises(RotationError):
        rot.move_request(999, a.id)


def test_failure_is_shown_and_skipped_and_turn_kept(tmp_path):
    rot = Rotation(tmp_path / "r.json")
    a, b = rot.add_singer("Ann"), rot.add_singer("Bob")
    rot.request(a.id, "bad", "Broken")
    rot.request(a.id, "good", "Fine")
    rot.request(b.id, "b1", "Bee")
    perf = rot.start_next()
    assert perf.request.song_id == "bad"
    rot.fail_current("song.mp3: cannot decode")
    ann = rot.singers[a.id]
    assert ann.requests[0].state == "failed" and "cannot decode" in ann.requests[0].error
    assert rot.start_next().request.song_id == "good"  # Ann keeps her turn, the failed song is never picked
    rot.finish_current()
    assert rot.mark_failed("b1", "missing file") == 1
    assert rot.start_next() is None  # Bob's only song failed ahead of its turn: nobody can sing
    snap = rot.snapshot()
    assert snap["history"][0]["outcome"] == "failed"
    assert [r["state"] for r in snap["singers"][1]["requests"]] == ["failed"]


def test_preferences_survive_new_evening_and_restart(tmp_path):
    path = tmp_path / "r.json"
    rot = Rotation(path)
    a = rot.add_singer("Ann")
    rot.set_prefs(a.id, key=-3, tempo=0.9, guide=0.25)
    rot.request(a.id, "s1")
    rot.request(a.id, "s2", key=2)
    perf = rot.start_next()
    assert rot.settings_for(perf).key == -3 and rot.settings_for(perf).guide == 0.25
    again = Rotation(path)  # restart mid-evening: the current song, requests, order and history come back
    assert again.current is not None and again.current.request.song_id == "s1"
    assert [r.song_id for r in again.singers[a.id].requests] == ["s2"]
    again.finish_current()
    p2 = again.start_next()
    assert again.settings_for(p2).key == 2 and again.settings_for(p2).tempo == 0.9
    again.finish_current()
    again.new_evening()
    assert not again.singers and not again.history
    ann = Rotation(path).add_singer("ANN")  # next evening, any case
    assert Rotation(path).prefs(ann.id).key == -3
    with pytest.raises(RotationError):
        again.set_prefs(ann.id, tempo=5)
    new_ids = Rotation(path)
    assert new_ids.add_singer("Zed").id > ann.id  # ids are never reused


def test_bad_file_is_set_aside_not_deleted(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{"version": 1, "singers": [{"id": 1, "name": "<script>", "requests": []}]}')
    rot = Rotation(path)
    assert rot.load_error and "set aside" in rot.load_error and not rot.singers
    aside = list(tmp_path.glob("r.json.bad-*"))
    assert len(aside) == 1 and "<script>" in aside[0].read_text()
    rot.add_singer("Ann")
    assert json.loads(path.read_text())["singers"][0]["name"] == "Ann"
    path.write_text("{not json")
    assert "JSONDecodeError" in Rotation(path).load_error


@pytest.mark.parametrize("bad", ["", "   ", "x" * 33, "<b>", "a\nb", "a\x00", 5, None, "a'b", "\u202eevil"])
def test_bad_names_refused(bad):
    with pytest.raises(RotationError):
        clean_name(bad)


def test_names_cleaned_and_unique():
    rot = Rotation()
    a = rot.add_singer("  Ann   Lee ")
    assert a.name == "Ann Lee"
    assert rot.add_singer("ann lee") is a
    assert clean_name("Zoë-Maë 2") == "Zoë-Maë 2"
    with pytest.raises(RotationError):
        rot.request(a.id, "../etc/passwd")
    with pytest.raises(RotationError):
        rot.request(a.id, "ok", key=13)
    with pytest.raises(RotationError):
        rot.request(12345, "ok")


def test_deferred_saving_writes_once_when_the_owner_asks(tmp_path):
    path = tmp_path / "r.json"
    calls = []
    rot = Rotation(path)
    rot.defer_save = lambda: calls.append(1)
    a = rot.add_singer("Ann")
    rot.request(a.id, "s1")
    assert len(calls) == 2 and not path.exists()
    rot.save()
    assert [s.name for s in Rotation(path).singers.values()] == ["Ann"]
