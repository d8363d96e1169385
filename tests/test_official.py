"""Official open-unmix checkpoints: safe load, import, and download from a loopback server."""

from __future__ import annotations

import hashlib
import http.server
import io
import pickle
import threading
from functools import partial

import pytest
import torch

from unmix_desktop.errors import ModelError
from unmix_desktop.separation import official
from unmix_desktop.separation.bundle import load_bundle
from unmix_desktop.separation.model import OpenUnmix
from unmix_desktop.separation.registry import list_models, load_model


def _checkpoint_bytes(seed: int) -> bytes:
    torch.manual_seed(seed)
    net = OpenUnmix(hidden_size=8, nb_layers=2, max_bin=64)
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    return buf.getvalue()


def _hashed_name(target: str, data: bytes) -> str:
    return f"{target}-{hashlib.sha256(data).hexdigest()[:8]}.pth"


def test_config_inferred_from_official_layout(tmp_path):
    data = _checkpoint_bytes(0)
    path = tmp_path / _hashed_name("vocals", data)
    path.write_bytes(data)
    model = load_model(path)
    assert model.targets == ["vocals"]
    net = model.networks["vocals"]
    assert (net.hidden_size, net.nb_layers, net.nb_bins, net.nb_output_bins) == (8, 2, 64, 2049)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_checkpoint_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "vocals-00000000.pth"
    path.write_bytes(pickle.dumps({"fc1.weight": Evil()}))
    with pytest.raises(ModelError, match="refused or unreadable"):
        official.load_official_checkpoint(path)
    assert not marker.exists()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "mirror"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_download_official_from_loopback_mirror(server, tmp_path, monkeypatch):
    root, url = server
    files = {}
    for i, target in enumerate(["vocals", "drums"]):
        data = _checkpoint_bytes(i)
        name = _hashed_name(target, data)
        (root / name).write_bytes(data)
        files[target] = name
    monkeypatch.setitem(official.OFFICIAL_MODELS, "umx-test",
                        {"base_url": "http://unused.invalid/", "files": files, "description": "test mirror"})
    fractions = []
    dest = tmp_path / "models"
    folder = official.download_official("umx-test", base_url=url, dest_root=dest,
                                        progress=lambda t, f: fractions.append((t, f)))
    model = load_bundle(folder)
    assert model.targets == ["vocals", "drums"]
    assert ("vocals", 1.0) in fractions and ("drums", 1.0) in fractions
    assert sorted(p.name for p in dest.iterdir()) == ["umx-test"]  # temp downloads are gone


def test_download_detects_corruption(server, tmp_path, monkeypatch):
    root, url = server
    data = _checkpoint_bytes(0)
    name = _hashed_name("vocals", data)
    (root / name).write_bytes(data[:-10] + b"0123456789")  # corrupted on the mirror
    monkeypatch.setitem(official.OFFICIAL_MODELS, "umx-bad", {"base_url": url, "files": {"vocals": name},
                                                              "description": ""})
    with pytest.raises(ModelError, match="checksum mismatch"):
        official.download_official("umx-bad", dest_root=tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []


def test_download_unreachable_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(official.OFFICIAL_MODELS, "umx-x", {"base_url": "http://127.0.0.1:9/",
                                                            "files": {"vocals": "vocals-12345678.pth"},
                                                            "description": ""})
    with pytest.raises(ModelError, match="download failed"):
        official.download_official("umx-x", dest_root=tmp_path / "m")


def test_imported_model_is_listed_by_registry(tmp_path, monkeypatch):
    data = _checkpoint_bytes(1)
    path = tmp_path / _hashed_name("vocals", data)
    path.write_bytes(data)
    monkeypatch.setenv("UNMIX_DATA_DIR", str(tmp_path / "data"))
    official.import_official([path], "umx-imported")
    names = {m.name: m for m in list_models()}
    assert names["umx-imported"].kind == "user" and names["umx-imported"].targets == ["vocals"]
    assert load_model("umx-imported").targets == ["vocals"]
