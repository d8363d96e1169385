"""The phone remote in a real browser: Debian's headless Chromium driven by Playwright (no browser
download), against the real window (in-process, offscreen, tiny model) serving on 127.0.0.1.

Two guests and the host, each in a separate browser context: join, search, request, the order
updates live on every phone, the host reorders and skips, and the window's rotation agrees.
Screenshots (phone page at 390x844, the host's page, the room screen) are written to
``$UNMIX_SCREENSHOTS`` when set (docs/screenshots/ holds the ones looked at), else to the test's
temp folder.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import time
from pathlib import Path

import mutagen.flac
import pytest

pytest.importorskip("pytestqt")

from conftest import make_song

from unmix_desktop.audio.io import save_audio

CHROMIUM = os.environ.get("UNMIX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = {"width": 390, "height": 844}
WAIT_MS = 90_000
T = 30_000  # Playwright waits (ms)


def need_browser():
    if not Path(CHROMIUM).is_file() and not shutil.which("chromium"):
        pytest.skip("no Chromium: install Debian's chromium (make test does: apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("Playwright is not installed (pip install playwright==1.65.2; no browser download needed)")


def shots_dir(tmp_path: Path) -> Path:
    d = Path(os.environ.get("UNMIX_SCREENSHOTS") or tmp_path / "shots")
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
def party(harness, tmp_path):
    need_browser()
    ctl = harness.window.party(rotation_path=tmp_path / "party" / "rotation.json", countdown_s=30)
    files = []
    for i, (title, artist) in enumerate([("Sunny Day", "The Tinies"), ("Moon River Test", "Aria"),
                                         ("Rainy Night", "The Tinies")]):
        p = tmp_path / "music" / f"track{i}.flac"
        p.parent.mkdir(exist_ok=True)
        save_audio(p, make_song(2.0, seed=i)["mixture"])
        tags = mutagen.flac.FLAC(p)
        tags["title"], tags["artist"] = title, artist
        tags.save()
        # synced lyrics beside the song (the room screen shows them)
        p.with_suffix(".lrc").write_text(f"[00:00.00]{title}, sing it loud\n[00:00.60]every word on the screen\n"
                                         "[00:01.20]one more line for the room\n[00:01.80]la la la\n")
        files.append(p)
    ctl.add_files(files)
    ctl.files = files
    yield ctl
    ctl.close()


def run_in_thread(qtbot, fn):
    """Run ``fn`` (the browser side) on a thread while this (the UI) thread keeps serving the window."""
    pool = concurrent.futures.ThreadPoolExecutor(1)
    fut = pool.submit(fn)
    qtbot.waitUntil(fut.done, timeout=240_000)
    pool.shutdown()
    return fut.result()


def test_two_guests_and_the_host_in_chromium(harness, party, tmp_path, qtbot):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=T)

    url = party.enable_remote("127.0.0.1", 0, "1357")
    shots = shots_dir(tmp_path)
    on_ui = lambda fn: party.dispatch(fn).result(30)  # noqa: E731 - read the window's state on its thread
    console_errors: list[str] = []

    def window_order(expected: list[str]) -> list[str]:
        """The singers in the window's panel, once it shows ``expected`` (or what it shows after 20 s)."""
        deadline = time.monotonic() + 20
        while True:
            shown = on_ui(lambda: [party.panel.singers.item(i).text().split("  ·  ")[0]
                                   for i in range(party.panel.singers.count())])
            if shown == expected or time.monotonic() > deadline:
                return shown
            time.sleep(0.05)

    def browser_side() -> dict:
        out = {}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                pages = {}
                for who in ("ann", "bob", "host"):
                    ctx = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
                    ctx.set_default_timeout(T)
                    page = ctx.new_page()
                    page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
                    page.on("pageerror", lambda e: console_errors.append(str(e)))
                    page.goto(url)
                    expect(page.locator("#conn")).to_have_text("live")
                    pages[who] = page
                ann, bob, host = pages["ann"], pages["bob"], pages["host"]

                # guests join and search
                for page, name in ((ann, "Ann"), (bob, "Bob")):
                    page.fill("#name", name)
                    page.click("#join")
                    expect(page.locator("#search-card")).to_be_visible()
                    expect(page.locator("#me-name")).to_have_text(name)
                ann.fill("#search", "tinies")
                expect(ann.locator("#results li")).to_have_count(2)
                expect(ann.locator("#results li").first).to_contain_text("Rainy Night")
                ann.select_option("#key", "-2")
                ann.locator("#results li", has_text="Sunny Day").get_by_role("button", name="Request").click()
                expect(ann.locator("#mine li")).to_contain_text(["Sunny Day  (key -2)"])
                bob.fill("#search", "moon")
                expect(bob.locator("#results li")).to_have_text(["Moon River TestAriaRequest"])
                bob.locator("#results li").get_by_role("button", name="Request").click()
                bob.fill("#search", "rainy")
                expect(bob.locator("#results li")).to_have_text(["Rainy NightThe TiniesRequest"])
                bob.locator("#results li").get_by_role("button", name="Request").click()
                expect(bob.locator("#mine li .song")).to_have_text(["Aria – Moon River Test",
                                                                    "The Tinies – Rainy Night"])
                # live on every phone: the order and each one's place
                for page in (ann, bob, host):
                    expect(page.locator("#rotation li")).to_have_count(3)
                    expect(page.locator("#rotation li").nth(0)).to_contain_text("1. Ann")
                    expect(page.locator("#rotation li").nth(1)).to_contain_text("2. Bob")
                expect(ann.locator("#myplace")).to_have_text("You're next!")
                expect(bob.locator("#myplace")).to_have_text("Place 2")
                # Bob withdraws his second song
                bob.locator("#mine li", has_text="Rainy Night").get_by_role("button", name="Withdraw").click()
                expect(ann.locator("#rotation li")).to_have_count(2)
                out["after_requests"] = window_order(["Ann", "Bob"])
                ann.screenshot(path=str(shots / "party-phone.png"), full_page=True)

                # the host: a wrong PIN, then the right one
                host.click("#host-details summary")
                host.fill("#host-pin", "0000")
                host.click("#host-login")
                expect(host.locator("#toast")).to_have_text("wrong PIN")
                host.fill("#host-pin", "1357")
                host.click("#host-login")
                expect(host.locator("#host-rotation li")).to_have_count(2)
                # reorder: Bob up; every phone and the window follow
                host.locator("#host-rotation li").nth(1).locator(".h-up").click()
                expect(ann.locator("#rotation li").nth(0)).to_contain_text("1. Bob")
                expect(bob.locator("#myplace")).to_have_text("You're next!")
                out["after_reorder"] = window_order(["Bob", "Ann"])
                # skip Bob's turn in this round: Ann is next
                expect(host.locator("#host-rotation li .who").nth(0)).to_have_text("Bob")
                host.locator("#host-rotation li").nth(0).locator(".h-skip-singer").click()
                expect(ann.locator("#myplace")).to_have_text("You're next!")
                out["next_after_skip"] = on_ui(lambda: party.rotation.next_turn()[0].name)
                # start the next song from the phone: the window opens and plays Ann's song
                host.click("#h-start")
                expect(ann.locator("#now")).to_contain_text("Ann — The Tinies – Sunny Day")
                expect(host.locator("#h-key-v")).to_have_text("-2")
                host.click("#h-key-up")
                expect(host.locator("#h-key-v")).to_have_text("-1")
                out["window_key"] = on_ui(lambda: harness.window.session.get("key.semitones"))
                host.locator("#host-rotation").scroll_into_view_if_needed()
                host.screenshot(path=str(shots / "party-host.png"))
                host.click("#h-skip")
                expect(ann.locator("#now")).to_have_text("Nobody yet")
                expect(ann.locator("#history li")).to_have_text(["AnnThe Tinies – Sunny Day  (skipped)"])
                out["history"] = on_ui(lambda: [(h["singer"], h["outcome"]) for h in party.rotation.history])
                # a guest cannot do host things: no session, 403
                status = ann.evaluate("""async () => (await fetch('/api/host/skip', {method: 'POST',
                    headers: {'X-Party-Token': document.body.dataset.token, 'Content-Type': 'application/json'},
                    body: '{}'})).status""")
                out["guest_host_status"] = status
                # the host asks for a new link: old pages go offline with a message, the old token is
                # refused, a phone that opens the new link (scans the new code) is still the same singer
                old_token = party.server.token
                host.click("#h-rotate")
                # the old page's URL holds the server's token until the rotation request lands: wait for
                # a new token in the URL (a clean-clone run at load ~20 read the old URL and got a 403)
                host.wait_for_url(lambda u: old_token not in u and party.server.token in u)
                expect(ann.locator("#conn")).to_have_text("offline")
                expect(ann.locator("#toast")).to_contain_text("scan the new code")
                out["old_token_status"] = ann.evaluate("""async () => (await fetch('/api/state',
                    {headers: {'X-Party-Token': document.body.dataset.token}})).status""")
                ann.goto(host.url)
                expect(ann.locator("#conn")).to_have_text("live")
                expect(ann.locator("#me-name")).to_have_text("Ann")
                host.click("#host-details summary")
                expect(host.locator("#host-form")).to_be_visible()  # the host unlocks again with the PIN
            finally:
                browser.close()
        return out

    out = run_in_thread(qtbot, browser_side)
    assert out["after_requests"] == ["Ann", "Bob"]
    assert out["after_reorder"] == ["Bob", "Ann"]
    assert out["next_after_skip"] == "Ann"
    assert out["window_key"] == -1
    assert out["history"] == [("Ann", "skipped")]
    assert out["guest_host_status"] == 403
    assert out["old_token_status"] == 403
    assert [r.title for r in party.rotation.singers[party.rotation.order[0]].requests] == ["Moon River Test"]
    assert not [e for e in console_errors if "wrong PIN" not in e and "403" not in e], console_errors

    # the room screen between songs (the countdown to Bob) and while a song plays
    party._begin_countdown()
    view = party.open_room_screen()
    view.resize(1280, 720)
    qtbot.waitUntil(view.isVisible, timeout=10_000)
    info = party.room_info()
    assert info["between"] and info["next_singer"] == "Bob" and info["countdown"] == 30
    assert view.grab().save(str(shots / "party-room-next.png"))
    with qtbot.waitSignal(party.turn_started, timeout=WAIT_MS):
        party.start_next()
    view.resize(1280, 720)
    qtbot.waitUntil(lambda: party.w.karaoke_ctl.lyrics.lyrics is not None, timeout=WAIT_MS)
    harness.window.seek(0.8)
    party.w.karaoke_ctl.tick()
    assert view.current_text() == "every word on the screen"
    assert not party.room_info()["between"] and party.room_info()["singer"] == "Bob"
    assert view.grab().save(str(shots / "party-room-singing.png"))
    view.close()
