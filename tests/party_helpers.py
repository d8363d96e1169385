"""Shared helpers of the party tests: a server on 127.0.0.1 over a small catalogue, raw HTTP calls."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

from unmix_desktop.party.catalog import Catalog, Song
from unmix_desktop.party.rotation import Rotation
from unmix_desktop.party.server import PartyServer
from unmix_desktop.party.service import PartyService, ThreadDispatcher

SONGS = [("Dancing Queen", "ABBA"), ("Waterloo", "ABBA"), ("Wonderwall", "Oasis"), ("Hallelujah", "Leonard Cohen"),
         ("Africa", "Toto"), ("Rosanna", "Toto"), ("Bohemian Rhapsody", "Queen"), ("Valerie", "Amy Winehouse")]


def make_catalog() -> Catalog:
    return Catalog(Song(f"song{i:02d}", title, artist, 180.0 + i, Path(f"/music/{title}.flac"), True)
                   for i, (title, artist) in enumerate(SONGS))


class Party:
    """A running server (127.0.0.1, a free port) with its service, rotation and owner thread."""

    def __init__(self, tmp_path: Path, pin: str = "4321"):
        self.rotation = Rotation(tmp_path / "rotation.json")
        self.catalog = make_catalog()
        self.service = PartyService(self.rotation, self.catalog)
        self.dispatch = ThreadDispatcher()
        self.server = PartyServer(self.service, self.dispatch, host="127.0.0.1", port=0, pin=pin)
        self.server.start()

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def token(self) -> str:
        return self.server.token

    def call(self, method: str, path: str, body: object = None, token: str | None = "ok",
             headers: dict | None = None, raw: bytes | None = None) -> tuple[int, dict | str, dict]:
        """One raw HTTP request (the path is sent exactly as given); returns status, JSON or text, headers."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        h = dict(headers or {})
        if token == "ok":
            h["X-Party-Token"] = self.token
        elif token is not None:
            h["X-Party-Token"] = token
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=h)
        res = conn.getresponse()
        text = res.read().decode("utf-8", "replace")
        conn.close()
        try:
            payload = json.loads(text)
        except ValueError:
            payload = text
        return res.status, payload, {k.lower(): v for k, v in res.getheaders()}

    def owner(self, fn):
        """Run ``fn`` on the owner's thread (where the rotation lives) and return its result."""
        return self.dispatch(fn).result(10)

    def login(self) -> str:
        status, data, _ = self.call("POST", "/api/host/login", {"pin": self.server.pin})
        assert status == 200, data
        return data["host"]

    def close(self) -> None:
        self.server.stop()
        self.dispatch.close()
