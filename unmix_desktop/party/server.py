"""The phone remote: an aiohttp server (HTTP + WebSockets) on its own thread and event loop.

Why aiohttp: one maintained dependency that is the server, the WebSocket endpoint and the test
client at once, asyncio-native (no ASGI server to pick and wire as with Starlette + uvicorn), with
request body limits and an ``AppRunner`` that can be started and stopped inside a running app.

    server = PartyServer(service, dispatch, host="127.0.0.1", port=0, pin="1234")
    server.start()            # binds now (raises OSError when it cannot); server.url = guest URL + token
    server.rotate_token()     # old links and their WebSockets stop working
    server.publish(snapshot)  # from any thread: every phone gets the new state
    server.stop()             # closes every connection and the socket

Security (docs/ARCHITECTURE.md, Party): the random token is required on every request (page,
static files, API, WebSocket); host actions need a host session from the PIN, PIN failures are
rate-limited per client and overall; every input is validated by the service; songs are library
ids; only the few files of ``static/`` are served, from memory, by exact name; bodies are limited
to :data:`MAX_BODY`; every response carries CSP / no framing / nosniff / no-referrer headers;
errors are one JSON line (``{"error": "..."}``) with a 4xx status, never a traceback.
"""

from __future__ import annotations

import asyncio
import hmac
import importlib.resources
import json
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable

from aiohttp import WSMsgType, web

from .rotation import RotationError

log = logging.getLogger(__name__)

MAX_BODY = 8 * 1024
MAX_WS_MESSAGE = 1024
MAX_WEBSOCKETS = 400
PIN_FAILURES_PER_CLIENT = 5          # per minute, then 429 until the minute is over
PIN_FAILURES_TOTAL = 30              # per minute from everyone together
HOST_ACTIONS_PER_SECOND = 20
DISPATCH_TIMEOUT_S = 10.0
BROADCAST_INTERVAL_S = 0.1
STATIC_TYPES = {".html": "text/html", ".js": "application/javascript", ".css": "text/css",
                ".svg": "image/svg+xml"}
STATIC_FILES = ("app.js", "app.css")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def load_static() -> dict[str, tuple[bytes, str]]:
    """The app's own static files, read once from package data: name -> (bytes, content type)."""
    root = importlib.resources.files("unmix_desktop.party") / "static"
    out = {}
    for name in ("index.html", *STATIC_FILES):
        suffix = name[name.rfind("."):]
        out[name] = ((root / name).read_bytes(), STATIC_TYPES[suffix])
    return out


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class RateLimit:
    """At most ``limit`` events per ``window_s`` for each key (a sliding window)."""

    def __init__(self, limit: int, window_s: float = 60.0):
        self.limit, self.window_s = limit, window_s
        self.events: dict[str, deque] = {}

    def blocked(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        q = self.events.get(key)
        while q and now - q[0] > self.window_s:
            q.popleft()
        return q is not None and len(q) >= self.limit

    def add(self, key: str, now: float | None = None) -> None:
        self.events.setdefault(key, deque()).append(time.monotonic() if now is None else now)
        if len(self.events) > 10000:  # many clients: forget the oldest
            self.events.pop(next(iter(self.events)))


class PartyServer:
    def __init__(self, service, dispatch: Callable, host: str = "127.0.0.1", port: int = 0,
                 pin: str | None = None, token: str | None = None):
        self.service = service
        self.dispatch = dispatch
        self.host = host
        self.port = port
        self.pin = pin or f"{secrets.randbelow(10000):04d}"
        self.token = token or secrets.token_urlsafe(12)
        self.static = load_static()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.runner: web.AppRunner | None = None
        self.sockets: set[web.WebSocketResponse] = set()
        self.host_sessions: dict[str, float] = {}
        self.pin_failures = RateLimit(PIN_FAILURES_PER_CLIENT)
        self.pin_failures_total = RateLimit(PIN_FAILURES_TOTAL)
        self.host_rate = RateLimit(HOST_ACTIONS_PER_SECOND, 1.0)
        self.last_snapshot: str | None = None   # the last WebSocket message (all phones get the same)
        self.last_state: str | None = None      # ... its state, as JSON text: what GET /api/state answers
        self.requests_served = 0
        self._ready = threading.Event()
        self._flush_pending = False
        self._start_error: BaseException | None = None

    # ------------------------------------------------------------------------------- lifecycle
    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive() and self.runner is not None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/?t={self.token}"

    def start(self, timeout: float = 10.0) -> str:
        if self.running:
            return self.url
        self._ready.clear()
        self._start_error = None
        self.thread = threading.Thread(target=self._run, name="party-server", daemon=True)
        self.thread.start()
        if not self._ready.wait(timeout):
            raise OSError(f"the party server did not start within {timeout:.0f} s")
        if self._start_error is not None:
            self.thread.join(5)
            self.thread = None
            raise self._start_error
        self.service.listeners.append(self.publish)
        self.dispatch(self.service.changed)  # the first state, computed on the owner's thread
        return self.url

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._open())
        except BaseException as exc:  # noqa: BLE001 - handed to start() on the caller's thread
            self._start_error = exc if isinstance(exc, OSError) else OSError(str(exc))
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _open(self) -> None:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._guard])
        app.router.add_get("/", self._page)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/api/state", self._state)
        app.router.add_get("/api/search", self._search)
        app.router.add_post("/api/join", self._join)
        app.router.add_post("/api/request", self._request)
        app.router.add_post("/api/withdraw", self._withdraw)
        app.router.add_post("/api/host/login", self._login)
        app.router.add_post("/api/host/{action}", self._host)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None)
        sock = sockets[0] if sockets else None
        if sock is not None:
            self.port = sock.getsockname()[1]

    def stop(self, timeout: float = 10.0) -> None:
        """Close every WebSocket and connection and the listening socket; the thread ends."""
        if self.publish in self.service.listeners:
            self.service.listeners.remove(self.publish)
        loop, thread = self.loop, self.thread
        if loop is None or thread is None or not thread.is_alive():
            return

        async def close() -> None:
            for ws in list(self.sockets):
                await ws.close(code=1001, message=b"the host stopped the remote")
            if self.runner is not None:
                await self.runner.cleanup()
            self.runner = None

        try:
            asyncio.run_coroutine_threadsafe(close(), loop).result(timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            self.thread = None
            self.loop = None

    def rotate_token(self) -> str:
        """A new token: old links, pages and WebSockets stop working (phones scan the new QR)."""
        self.token = secrets.token_urlsafe(12)
        self.host_sessions.clear()
        if self.loop is not None:
            async def drop() -> None:
                for ws in list(self.sockets):
                    await ws.close(code=4001, message=b"the link changed: scan the new code")
            asyncio.run_coroutine_threadsafe(drop(), self.loop)
        return self.url

    def publish(self, snapshot: dict) -> None:
        """Send ``snapshot`` to every phone (any thread). ``GET /api/state`` answers it at once; the
        WebSockets get the latest state at most every :data:`BROADCAST_INTERVAL_S` (a burst of changes
        is one message per phone, not one per change)."""
        loop = self.loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(self._update, snapshot)  # a fresh dict: encoded on this loop's thread

    def _update(self, snapshot: dict) -> None:
        text = json.dumps({"type": "state", "state": snapshot})
        self.last_snapshot = text
        self.last_state = text[len('{"type": "state", "state": '):-1]
        if not self._flush_pending:
            self._flush_pending = True
            assert self.loop is not None  # _update runs on the server's loop
            self.loop.call_later(BROADCAST_INTERVAL_S, self._broadcast)

    def _broadcast(self) -> None:
        self._flush_pending = False
        text = self.last_snapshot
        if text is None:
            return
        for ws in list(self.sockets):
            if not ws.closed:
                asyncio.ensure_future(self._send(ws, text))

    @staticmethod
    async def _send(ws: web.WebSocketResponse, text: str) -> None:
        try:
            await ws.send_str(text)
        except (ConnectionError, RuntimeError):
            pass

    # ---------------------------------------------------------------------------------- guards
    def _token_ok(self, request: web.Request) -> bool:
        given = request.query.get("t") or request.headers.get("X-Party-Token") or ""
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode())

    @web.middleware
    async def _guard(self, request: web.Request, handler) -> web.StreamResponse:
        self.requests_served += 1
        try:
            if not self._token_ok(request):
                response = _error(403, "this link is not valid (any more): scan the party's QR code again")
            else:
                response = await handler(request)
        except _Bad as exc:
            response = _error(exc.status, exc.message)
        except web.HTTPException as exc:
            text = {404: "not found", 405: "method not allowed", 413: f"request too large (at most {MAX_BODY} "
                    "bytes)"}.get(exc.status, exc.reason)
            response = _error(exc.status, text)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("party server: %s %s", request.method, request.path)
            response = _error(500, "something went wrong on the host")
        if not response.prepared:
            response.headers.update(SECURITY_HEADERS)
        return response

    async def _body(self, request: web.Request) -> dict:
        if request.content_type != "application/json":
            raise _Bad(415, "send JSON (Content-Type: application/json)")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise _Bad(413, f"request too large (at most {MAX_BODY} bytes)") from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: [[[[... nested too deep
            raise _Bad(400, "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise _Bad(400, "the body must be a JSON object")
        return data

    async def _call(self, fn: Callable[[], object]) -> web.Response:
        """Run ``fn`` on the owner's thread; its errors become clear 4xx answers."""
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(self.dispatch(fn)), DISPATCH_TIMEOUT_S)
        except RotationError as exc:
            return _error(422, str(exc))
        except PermissionError as exc:
            return _error(403, str(exc))
        except LookupError as exc:
            return _error(404, str(exc.args[0]) if exc.args else "not found")
        except asyncio.TimeoutError:
            return _error(503, "the host app is busy: try again")
        return web.json_response(result)

    # -------------------------------------------------------------------------------- handlers
    async def _page(self, request: web.Request) -> web.Response:
        body, ctype = self.static["index.html"]
        html = body.replace(b"{{TOKEN}}", self.token.encode())  # urlsafe base64: nothing to escape
        return web.Response(body=html, content_type=ctype, charset="utf-8")

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info.get("name", "")
        if name not in STATIC_FILES:  # only these names, never a path
            return _error(404, "not found")
        body, ctype = self.static[name]
        return web.Response(body=body, content_type=ctype, charset="utf-8")

    async def _state(self, request: web.Request) -> web.Response:
        if self.last_state is not None:  # the state last pushed to the phones: no trip to the UI thread
            return web.Response(text=self.last_state, content_type="application/json")
        return await self._call(self.service.snapshot)

    async def _search(self, request: web.Request) -> web.Response:
        q = request.query.get("q", "")
        if len(q) > 80:
            return _error(422, "search for at most 80 characters")
        songs = self.service.catalog.search(q)  # the catalogue is thread-safe: no trip to the owner
        return web.json_response({"songs": [s.public() for s in songs]})

    async def _join(self, request: web.Request) -> web.Response:
        data = await self._body(request)
        return await self._call(lambda: self.service.join(data.get("name")))

    async def _request(self, request: web.Request) -> web.Response:
        d = await self._body(request)
        return await self._call(lambda: self.service.guest_request(d.get("singer_id"), d.get("secret"),
                                                                   d.get("song_id"), d.get("key")))

    async def _withdraw(self, request: web.Request) -> web.Response:
        d = await self._body(request)
        return await self._call(lambda: self.service.guest_withdraw(d.get("singer_id"), d.get("secret"),
                                                                    d.get("request_id")))

    def _client(self, request: web.Request) -> str:
        return request.remote or "?"

    async def _login(self, request: web.Request) -> web.Response:
        client = self._client(request)
        if self.pin_failures.blocked(client) or self.pin_failures_total.blocked("all"):
            return _error(429, "too many wrong PINs: wait a minute")
        data = await self._body(request)
        pin = data.get("pin")
        if not isinstance(pin, str) or len(pin) > 32 or not hmac.compare_digest(pin.encode(), self.pin.encode()):
            self.pin_failures.add(client)
            self.pin_failures_total.add("all")
            return _error(403, "wrong PIN")
        session = secrets.token_urlsafe(18)
        self.host_sessions[session] = time.monotonic()
        return web.json_response({"host": session})

    async def _host(self, request: web.Request) -> web.Response:
        session = request.headers.get("X-Host-Session", "")
        if not any(hmac.compare_digest(session.encode("utf-8", "replace"), s.encode()) for s in self.host_sessions):
            return _error(403, "host actions need the PIN")
        if self.host_rate.blocked(session):
            return _error(429, "too many host actions: slow down")
        self.host_rate.add(session)
        action = request.match_info["action"]
        data = await self._body(request)
        if action == "rotate_token":
            url = self.rotate_token()
            return web.json_response({"url": url, "token": self.token})
        return await self._call(lambda: self.service.host(action, data))

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if len(self.sockets) >= MAX_WEBSOCKETS:
            return _error(503, "too many phones connected")
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=MAX_WS_MESSAGE)
        for name, value in SECURITY_HEADERS.items():
            ws.headers[name] = value
        await ws.prepare(request)
        self.sockets.add(ws)
        token = self.token
        try:
            text = self.last_snapshot
            if text is None:
                snap = await asyncio.wait_for(asyncio.wrap_future(self.dispatch(self.service.snapshot)),
                                              DISPATCH_TIMEOUT_S)
                text = json.dumps({"type": "state", "state": snap})
            await ws.send_str(text)
            async for msg in ws:  # phones only listen; a ping keeps the line open
                if msg.type == WSMsgType.TEXT and msg.data == "ping":
                    await ws.send_str('{"type": "pong"}')
                elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
                if token != self.token:
                    break
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            self.sockets.discard(ws)
        return ws


class _Bad(Exception):
    """A 4xx with our own message (raised inside handlers, answered by the guard)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message
