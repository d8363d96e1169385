"""Bad input against the phone remote (127.0.0.1): malformed requests and bodies, wrong types, oversized
bodies, bad tokens, traversal paths, raw garbage on the socket. Each gets a clear 4xx (a JSON error
with the security headers), never a 5xx or a traceback, and nothing in the rotation changes."""

from __future__ import annotations

import json
import random
import socket

import pytest
from party_helpers import Party

from unmix_desktop.party.rotation import RotationError, clean_name

BAD_VALUES = [None, True, False, -1, 0, 2**70, 1.5, float("1e308"), "", " ", "x" * 5000, "../../etc/passwd",
              "<script>alert(1)</script>", "\u0000", "\u202e", [], [1, 2], {}, {"$gt": ""}, "1; DROP TABLE",
              "song00/../../x", "%2e%2e%2f"]
TRAVERSAL = ["/static/../server.py", "/static/..%2fserver.py", "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
             "/static/....//....//etc/passwd", "/static/%252e%252e%252fserver.py", "/static/app.js%2f..%2f..",
             "/static/..;/server.py", "/static/~/.bashrc", "/static/.", "/static/app.js.bak", "/.git/config",
             "/static/APP.JS", "/api/../static/../../etc/passwd", "/static/%c0%ae%c0%ae/server.py"]


@pytest.fixture
def party(tmp_path):
    p = Party(tmp_path)
    ann = p.call("POST", "/api/join", {"name": "Ann"})[1]
    p.call("POST", "/api/request", {"singer_id": ann["singer_id"], "secret": ann["secret"], "song_id": "song01"})
    p.ann = ann
    p.host = p.login()
    yield p
    p.close()


def valid_name(value) -> bool:
    try:
        clean_name(value)
        return True
    except RotationError:
        return False


def state(party) -> str:
    return party.owner(lambda: json.dumps(party.rotation.to_dict(), sort_keys=True))


def check_4xx(status, data, headers, what):
    assert 400 <= status < 500, (what, status, data)
    assert isinstance(data, dict) and isinstance(data.get("error"), str) and data["error"], (what, data)
    assert "Traceback" not in data["error"] and "File \"" not in data["error"], (what, data)
    assert headers.get("x-content-type-options") == "nosniff" and "frame-ancestors" in headers.get(
        "content-security-policy", ""), (what, headers)


def test_fuzz_every_endpoint_gets_a_clear_4xx_and_nothing_changes(party):
    before = state(party)
    rng = random.Random(24)
    a = party.ann
    cases = []
    # wrong types / values in every field of every guest endpoint
    for value in BAD_VALUES:
        if not valid_name(value):
            cases.append(("POST", "/api/join", {"name": value}, {}))
        cases += [("POST", "/api/request", {"singer_id": value, "secret": a["secret"], "song_id": "song02"}, {}),
                  ("POST", "/api/request", {"singer_id": a["singer_id"], "secret": value, "song_id": "song02"}, {}),
                  ("POST", "/api/request", {"singer_id": a["singer_id"], "secret": a["secret"], "song_id": value}, {}),
                  ("POST", "/api/withdraw", {"singer_id": a["singer_id"], "secret": a["secret"], "request_id": value},
                   {}),
                  ("POST", "/api/host/login", {"pin": value}, {})]
        valid_key = isinstance(value, int) and not isinstance(value, bool) and -12 <= value <= 12
        if value is not None and not valid_key:
            cases.append(("POST", "/api/request", {"singer_id": a["singer_id"], "secret": a["secret"],
                                                   "song_id": "song02", "key": value}, {}))
    # host actions with bad arguments (a valid session), and without a session
    hs = {"X-Host-Session": party.host}
    for action, field in [("reorder", "order"), ("skip_singer", "singer_id"), ("hold", "singer_id"),
                          ("remove_singer", "singer_id"), ("move_request", "request_id"), ("key", "value"),
                          ("tempo", "value"), ("guide", "value"), ("remove_request", "request_id"),
                          ("add_singer", "name"), ("rename_singer", "name"), ("set_prefs", "singer_id")]:
        for value in rng.sample(BAD_VALUES, 6):
            if action in ("add_singer", "rename_singer") and valid_name(value):
                continue  # a valid name would (rightly) be accepted
            cases.append(("POST", f"/api/host/{action}", {field: value, "singer_id": 999999}, hs))
        cases.append(("POST", f"/api/host/{action}", {}, {"X-Host-Session": "nope"}))
    cases.append(("POST", "/api/host/new_evening", {}, {}))
    cases.append(("POST", "/api/host/../host/skip", {}, hs))
    for method in ("PUT", "DELETE", "PATCH"):
        cases.append((method, "/api/join", {"name": "Zed"}, {}))
    cases.append(("GET", "/api/join", None, {}))
    cases.append(("GET", "/nothing/here", None, {}))
    cases.append(("GET", "/api/search?q=" + "z" * 81, None, {}))
    for path in TRAVERSAL:
        cases.append(("GET", path, None, {}))
    host_lock_guard = 0
    for method, path, body, headers in cases:
        if path == "/api/host/login":
            host_lock_guard += 1
            if host_lock_guard > 4:  # the PIN lockout would answer 429 (also a 4xx): keep within it
                continue
        if headers is hs:
            party.server.host_rate.events.clear()
        status, data, h = party.call(method, path, body, headers=headers)
        check_4xx(status, data, h, (method, path, body))
    # malformed bodies and bad tokens
    raw_cases = [(b"{", "application/json"), (b"null", "application/json"), (b'"x"', "application/json"),
                 (b"\xff" * 100, "application/json"), (b"name=Zed", "application/x-www-form-urlencoded"),
                 (b'{"name": "Zed"}', "text/plain"), (b'{"name": "' + b"a" * 9000 + b'"}', "application/json"),
                 (b"[" * 5000, "application/json"), (b'{"name": "Zed", "name": 5}', "application/json")]
    for raw, ctype in raw_cases:
        status, data, h = party.call("POST", "/api/join", raw=raw, headers={"Content-Type": ctype})
        check_4xx(status, data, h, raw[:40])
    for token in ["", "x", party.token[:-1], party.token + "x", party.token.upper(), "%00", "a" * 4000]:
        for path in ("/", "/static/app.js", "/api/state", "/ws"):
            status, data, h = party.call("GET", path, token=token or None)
            check_4xx(status, data, h, (path, token[:20]))
        status, data, h = party.call("POST", "/api/join", {"name": "Zed"}, token=token or None)
        check_4xx(status, data, h, ("join", token[:20]))
    assert len(cases) > 150
    assert state(party) == before  # nothing changed
    assert party.call("GET", "/api/state")[0] == 200  # and the server still serves


def raw_http(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        out = b""
        while b"\r\n\r\n" not in out:  # the answer's head (the server closes after a bad request)
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            out += chunk
    return out


@pytest.mark.parametrize("data", [
    b"GARBAGE\r\n\r\n",
    b"GET /api/state HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"GET " + b"/" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/state HTTP/1.1\r\n" + b"X-A: " + b"b" * 20000 + b"\r\n\r\n",
    b"POST /api/join HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc",
    b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
])
def test_raw_garbage_on_the_socket_is_a_4xx(party, data):
    before = state(party)
    answer = raw_http(party.port, data)
    assert answer.startswith(b"HTTP/1.") and answer.split(b" ")[1][:1] == b"4", answer[:200]
    assert b"Traceback" not in answer
    assert state(party) == before
    assert party.call("GET", "/api/state")[0] == 200


def test_oversized_chunked_body_is_refused(party):
    before = state(party)
    body = b"".join(b"%x\r\n%s\r\n" % (4096, b"a" * 4096) for _ in range(8)) + b"0\r\n\r\n"
    answer = raw_http(party.port, b"POST /api/join HTTP/1.1\r\nHost: x\r\nX-Party-Token: " + party.token.encode() +
                      b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert state(party) == before
