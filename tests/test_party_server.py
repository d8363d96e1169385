"""The phone remote's web server on 127.0.0.1: token, PIN, validation, headers, live updates, stop."""

from __future__ import annotations

import asyncio
import json
import socket

import aiohttp
import pytest
from party_helpers import Party


@pytest.fixture
def party(tmp_path):
    p = Party(tmp_path)
    yield p
    p.close()


def test_page_and_static_files_need_the_token_and_carry_security_headers(party):
    status, text, headers = party.call("GET", f"/?t={party.token}", token=None)
    assert status == 200 and 'data-token="' + party.token in text and "<script" in text
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    for path in ("/", "/static/app.js", "/api/state", "/api/search?q=a"):
        status, data, headers = party.call("GET", path, token=None)
        assert status == 403 and "QR code" in data["error"], path
        assert headers["x-frame-options"] == "DENY"
        status, data, _ = party.call("GET", path, token="wrong" + party.token)
        assert status == 403, path
    status, js, headers = party.call("GET", f"/static/app.js?t={party.token}", token=None)
    assert status == 200 and "textContent" in js and headers["content-type"].startswith("application/javascript")


@pytest.mark.parametrize("path", [
    "/static/../server.py", "/static/..%2fserver.py", "/static/%2e%2e%2fserver.py", "/static/..%2F..%2F__init__.py",
    "/static/index.html", "/static/%2e%2e/%2e%2e/etc/passwd", "/../../etc/passwd", "/static//etc/passwd",
    "/static/app.js/../../rotation.py", "/static/..\\server.py", "/static/app.js%00.py", "/etc/passwd",
    "/static/./app.css/..", "/%2e%2e/%2e%2e/etc/hosts",
])
def test_path_traversal_never_serves_another_file(party, path):
    status, data, _ = party.call("GET", path)
    assert status in (400, 403, 404), (path, status)
    text = data if isinstance(data, str) else json.dumps(data)
    assert "root:" not in text and "import " not in text and "localhost" not in text
    assert status >= 400 and isinstance(data, dict) and "error" in data


def test_guest_flow_join_search_request_withdraw(party):
    status, data, _ = party.call("POST", "/api/join", {"name": "Ann"})
    assert status == 200, data
    ann = data
    status, data, _ = party.call("POST", "/api/join", {"name": "ann"})
    assert status == 422 and "already here" in data["error"]
    status, data, _ = party.call("GET", "/api/search?q=toto")
    assert [s["title"] for s in data["songs"]] == ["Africa", "Rosanna"]
    assert "path" not in data["songs"][0] and "/music" not in json.dumps(data)
    song = data["songs"][0]["id"]
    status, data, _ = party.call("POST", "/api/request", {"singer_id": ann["singer_id"], "secret": ann["secret"],
                                                          "song_id": song, "key": -2})
    assert status == 200, data
    rid = data["request_id"]
    snap = party.call("GET", "/api/state")[1]
    assert snap["upcoming"][0] == {"singer_id": ann["singer_id"], "singer": "Ann", "request_id": rid,
                                   "song_id": song, "title": "Africa", "artist": "Toto"}
    bob = party.call("POST", "/api/join", {"name": "Bob"})[1]
    # Bob cannot withdraw Ann's song, nor request in her name
    assert party.call("POST", "/api/withdraw", {"singer_id": bob["singer_id"], "secret": bob["secret"],
                                                "request_id": rid})[0] == 422
    assert party.call("POST", "/api/request", {"singer_id": ann["singer_id"], "secret": bob["secret"],
                                               "song_id": song})[0] == 403
    assert party.call("POST", "/api/request", {"singer_id": ann["singer_id"], "secret": ann["secret"],
                                               "song_id": "nosuchsong"})[0] == 404
    assert party.call("POST", "/api/withdraw", {"singer_id": ann["singer_id"], "secret": ann["secret"],
                                                "request_id": rid})[0] == 200
    assert party.call("GET", "/api/state")[1]["upcoming"] == []


def test_host_needs_pin_and_wrong_pins_are_rate_limited(party):
    party.call("POST", "/api/join", {"name": "Ann"})
    assert party.call("POST", "/api/host/skip", {}, headers={"X-Host-Session": "guess"})[0] == 403
    for _ in range(5):
        status, data, _ = party.call("POST", "/api/host/login", {"pin": "0000"})
        assert status == 403 and data["error"] == "wrong PIN"
    status, data, _ = party.call("POST", "/api/host/login", {"pin": party.server.pin})
    assert status == 429 and "wait a minute" in data["error"]  # even the right PIN, once locked out
    party.server.pin_failures.events.clear()
    party.server.pin_failures_total.events.clear()
    session = party.login()
    ids = [s["id"] for s in party.call("GET", "/api/state")[1]["singers"]]
    status, data, _ = party.call("POST", "/api/host/add_singer", {"name": "Bob"}, headers={"X-Host-Session": session})
    assert status == 200
    order = [data["singer_id"], *ids]
    assert party.call("POST", "/api/host/reorder", {"order": order}, headers={"X-Host-Session": session})[0] == 200
    assert [s["id"] for s in party.call("GET", "/api/state")[1]["singers"]] == order
    assert party.call("POST", "/api/host/tempo", {"value": 3}, headers={"X-Host-Session": session})[0] == 422
    assert party.call("POST", "/api/host/key", {"value": -3}, headers={"X-Host-Session": session})[0] == 200
    assert party.call("GET", "/api/state")[1]["playback"]["key"] == -3
    assert party.call("POST", "/api/host/format_disk", {}, headers={"X-Host-Session": session})[0] == 404
    # host actions are rate-limited too
    codes = [party.call("POST", "/api/host/play_pause", {}, headers={"X-Host-Session": session})[0]
             for _ in range(40)]
    assert 429 in codes


def test_body_limits_and_malformed_bodies(party):
    big = {"name": "x" * 10000}
    status, data, _ = party.call("POST", "/api/join", big)
    assert status == 413 and "too large" in data["error"]
    assert party.call("POST", "/api/join", raw=b"{not json", headers={"Content-Type": "application/json"})[0] == 400
    assert party.call("POST", "/api/join", raw=b"[1, 2]", headers={"Content-Type": "application/json"})[0] == 400
    assert party.call("POST", "/api/join", raw=b"name=x", headers={"Content-Type": "text/plain"})[0] == 415
    assert party.call("POST", "/api/join", raw=b"\xff\xfe", headers={"Content-Type": "application/json"})[0] == 400
    assert party.call("POST", "/api/join", {"name": "<img src=x onerror=alert(1)>"})[0] == 422
    assert party.call("GET", "/api/search?q=" + "a" * 200)[0] == 422
    assert party.call("PUT", "/api/join", {"name": "Ann"})[0] == 405
    assert party.owner(lambda: len(party.rotation.singers)) == 0


def ws_url(party, token=None):
    return f"ws://127.0.0.1:{party.port}/ws?t={token or party.token}"


def test_websocket_live_updates_token_rotation_and_stop(party):
    async def scenario():
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as bad:
                await http.ws_connect(ws_url(party, "nope"))
            assert bad.value.status == 403
            ws = await http.ws_connect(ws_url(party))
            first = json.loads((await ws.receive(timeout=10)).data)
            assert first["type"] == "state" and first["state"]["singers"] == []
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, lambda: party.call("POST", "/api/join", {"name": "Ann"}))
            msg = json.loads((await ws.receive(timeout=10)).data)
            assert [s["name"] for s in msg["state"]["singers"]] == ["Ann"]
            old = party.token
            await loop.run_in_executor(None, party.server.rotate_token)
            closed = await ws.receive(timeout=10)
            assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert party.call("GET", "/api/state", token=old)[0] == 403
            ws2 = await http.ws_connect(ws_url(party))
            await ws2.receive(timeout=10)
            await loop.run_in_executor(None, party.server.stop)
            end = await ws2.receive(timeout=10)
            assert end.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    asyncio.run(scenario())
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", party.port), timeout=2).close()


def test_port_in_use_is_a_clear_error(party, tmp_path):
    from unmix_desktop.party.server import PartyServer

    other = PartyServer(party.service, party.dispatch, host="127.0.0.1", port=party.port)
    with pytest.raises(OSError):
        other.start()
    assert not other.running
