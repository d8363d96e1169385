"""Downloaded and imported Demucs checkpoints: fetch, verify, install, re-verify (no Qt, no torch at import).

A Demucs model lives in the user models folder as ``<models>/<name>/``::

    demucs.json                 the manifest: sources, every file's size and SHA-256, the bag (if any)
    955717e8-8726e21a.th        the official checkpoint(s), under their official names
    <name>.yaml                 a bag of several checkpoints (models + per-source weights), as the reference writes it

* **Download** (:func:`download_model`): plain HTTP(S) with the standard library (``urllib``: no extra
  dependency, and the protocol needed -- GET, ``Range``, timeouts -- is all there). Each file goes to
  ``<models>/.downloads/<file>.part`` and, after an interruption (a dropped connection, a stall past the
  timeout, Ctrl-C, Cancel), a later call resumes it with an HTTP ``Range`` request. ``progress`` gets
  :class:`Progress` (bytes done/total over the whole model, speed, ETA). The base address is the
  reference's, or ``$UNMIX_MODEL_BASE_URL``.
* **Verified before use**: the 8 hex digits after the signature in an official name
  (``<sig>-<sha256 prefix>.th``) must start the file's SHA-256 before the file leaves ``.downloads``;
  a mismatch deletes it and installs nothing.
* **Atomic install** (:func:`install_files`): files + manifest go into a hidden staging folder that is
  renamed to ``<name>`` last; the registry only lists folders with a manifest, so nothing half-written
  is ever registered.
* **Re-verified before every load** (:func:`verify_installed`): size and full SHA-256 of every file
  against the manifest recorded when it was downloaded or imported (issue 21).

Every failure is one :class:`~unmix_desktop.errors.ModelError` line; a network failure also says how to
install a file fetched by hand (``unmix models --import FILE.th --name NAME``).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..atomic import atomic_write_bytes, atomic_write_json
from ..errors import Cancelled, ModelError

MANIFEST = "demucs.json"
FORMAT = "unmix-demucs"
VERSION = 1
DOWNLOADS = ".downloads"
ENV_BASE_URL = "UNMIX_MODEL_BASE_URL"
#: The reference's download root (``demucs/pretrained.py``), used when the Demucs package of this app
#: does not say otherwise.
DEFAULT_ROOT_URL = "https://dl.fbaipublicfiles.com/demucs/"
CHUNK = 1 << 16
#: Official checkpoint names: ``<8 hex signature>-<8 hex SHA-256 prefix>.th`` (or ``<sig>.th``).
SIG_RE = re.compile(r"^([0-9a-f]{8})(?:-([0-9a-f]{8,64}))?\.th$")


# ----------------------------------------------------------------------------------------- the catalogue

def known_models() -> dict[str, dict]:
    """Names -> ``{"files": [...], "sources": [...], "bag": {...} | None, "size_mb": ...}`` from the Demucs
    package (its registry comes from the reference's own files)."""
    from .demucs import KNOWN_MODELS

    return KNOWN_MODELS


def root_url() -> str:
    """Where models are downloaded from: ``$UNMIX_MODEL_BASE_URL``, else the reference's root."""
    env = os.environ.get(ENV_BASE_URL, "").strip()
    if env:
        return env.rstrip("/") + "/"
    try:
        from .demucs import ROOT_URL
    except ImportError:
        ROOT_URL = DEFAULT_ROOT_URL
    return ROOT_URL.rstrip("/") + "/"


def expected_prefix(filename: str) -> str | None:
    """The SHA-256 prefix an official file name promises (``None`` when the name carries none)."""
    m = SIG_RE.match(Path(filename).name)
    return m.group(2) if m else None


def signature(filename: str) -> str | None:
    m = SIG_RE.match(Path(filename).name)
    return m.group(1) if m else None


# ------------------------------------------------------------------------------------------- download

@dataclass
class Progress:
    """How far a download is: over the whole model (all its files)."""

    file: str
    done: int
    total: int | None
    speed: float  # bytes per second since this call started
    eta: float | None  # seconds left, None when the total or the speed is unknown

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.done / self.total) if self.total else None

    def line(self) -> str:
        from ..progress import format_time

        mb = 1e6
        size = f"{self.done / mb:.1f}/{self.total / mb:.1f} MB" if self.total else f"{self.done / mb:.1f} MB"
        eta = f", {format_time(self.eta)} left" if self.eta is not None else ""
        return f"{size} at {self.speed / mb:.1f} MB/s{eta}"


class _Stalled(Exception):
    pass


def hand_hint(urls: list[str], name: str) -> str:
    files = " ".join(Path(u).name for u in urls)
    return (f"to install it by hand, download {' '.join(urls)} with a browser and run "
            f"`unmix models --import {files} --name {name}`")


def _sha256_file(path: Path, hasher=None) -> "hashlib._Hash":
    h = hasher or hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h


def fetch(url: str, dest: Path, *, progress: Callable[[int, int | None], None] | None = None, cancel=None,
          timeout: float = 30.0, retries: int = 3) -> Path:
    """Download ``url`` to ``dest`` (a verified file), resuming ``dest``'s ``.part`` file if there is one.

    ``progress(bytes_of_this_file_done, its_size_or_None)`` is called as data comes. A dropped or stalled connection
    (no byte for ``timeout`` seconds) is retried ``retries`` times from where it stopped (HTTP
    ``Range``); then :class:`ModelError`, with the ``.part`` file kept for a later call. The SHA-256
    prefix in ``dest``'s name is checked before ``dest`` exists; a mismatch removes the data.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    want = expected_prefix(dest.name)
    attempt = 0
    restarted = False
    while True:
        have = part.stat().st_size if part.exists() else 0
        req = urllib.request.Request(url, headers={"User-Agent": "unmix-desktop", "Accept-Encoding": "identity"})
        if have:
            req.add_header("Range", f"bytes={have}-")
        try:
            try:
                resp = urllib.request.urlopen(req, timeout=timeout)
            except urllib.error.HTTPError as exc:
                if exc.code == 416 and have:  # nothing left to send: the part may be whole already
                    exc.close()
                    resp = None
                else:
                    raise
            if resp is not None:
                with resp:
                    total = None
                    if resp.status == 206 and have:
                        m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", resp.headers.get("Content-Range", ""))
                        if not m or int(m.group(1)) != have:  # a range we did not ask for: start again
                            have = 0
                        elif m.group(2) != "*":
                            total = int(m.group(2))
                    else:
                        have = 0  # the server sent the whole file
                    length = resp.headers.get("Content-Length")
                    if total is None and length is not None and length.isdigit():
                        total = have + int(length)
                    with open(part, "ab" if have else "wb") as fh:
                        if not have:
                            fh.truncate(0)
                        done = have
                        if progress:
                            progress(done, total)
                        while True:
                            if cancel is not None and cancel.is_set():
                                raise Cancelled()
                            try:
                                chunk = resp.read1(CHUNK)  # what has come, so a stall keeps it
                            except (TimeoutError, socket.timeout) as exc:
                                raise _Stalled() from exc
                            if not chunk:
                                break
                            fh.write(chunk)
                            done += len(chunk)
                            if progress:
                                progress(done, total)
                    if total is not None and done < total:
                        raise http.client.IncompleteRead(b"", total - done)
            digest = _sha256_file(part).hexdigest()
            if want and not digest.startswith(want):
                part.unlink(missing_ok=True)
                if have and not restarted:  # a damaged part from an earlier run: fetch it whole once more
                    restarted = True
                    continue
                raise ModelError(f"{url}: downloaded file is damaged (SHA-256 {digest[:8]}..., its name promises "
                                 f"{want}...); nothing was installed")
            os.replace(part, dest)
            return dest
        except urllib.error.HTTPError as exc:
            raise ModelError(f"{url}: download failed: the server answered {exc.code} {exc.reason}") from None
        except (_Stalled, TimeoutError, socket.timeout, ConnectionError, http.client.HTTPException,
                urllib.error.URLError) as exc:
            offline = isinstance(exc, urllib.error.URLError) and not isinstance(
                getattr(exc, "reason", None), (TimeoutError, socket.timeout))
            if attempt < retries and not offline:
                attempt += 1
                time.sleep(min(2.0, 0.2 * attempt))
                continue
            kept = part.stat().st_size if part.exists() else 0
            if isinstance(exc, (_Stalled, TimeoutError, socket.timeout)) or (
                    isinstance(exc, urllib.error.URLError) and not offline):
                why = f"the connection stalled (no data for {timeout:g} s)"
            elif offline:
                why = f"cannot reach the server ({_reason(exc)})"
            else:
                why = f"the connection dropped ({_reason(exc)})"
            resume = f"; {kept / 1e6:.1f} MB kept, run it again to resume" if kept else ""
            raise ModelError(f"{url}: download failed: {why}{resume}") from None
        except OSError as exc:
            raise ModelError(f"{exc.filename or dest}: cannot write the download ({exc.strerror or exc})") from None


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason).strip() or type(reason).__name__
    return text.splitlines()[0][:160]


def _url(base: str, file: str) -> str:
    """The file's address under ``base``: the reference's folder for an official file, else ``base/file``."""
    try:
        from .demucs import url_for

        return url_for(file, base)
    except (ImportError, KeyError):
        return base + file.lstrip("/")


def download_model(name: str, *, root: Path | None = None, base_url: str | None = None,
                   progress: Callable[[Progress], None] | None = None, cancel=None,
                   timeout: float = 30.0, retries: int = 3, catalogue: dict | None = None) -> Path:
    """Download a known Demucs model (``htdemucs``, ``htdemucs_6s``, ``htdemucs_ft``, ...) and install it
    as ``<root>/<name>``; returns the folder. Already installed and intact: returned as it is."""
    from ..paths import user_models_dir

    catalogue = known_models() if catalogue is None else catalogue
    if name not in catalogue:
        raise ModelError(f"unknown model '{name}' (downloadable: {', '.join(sorted(catalogue))})")
    spec = catalogue[name]
    root = Path(root) if root is not None else user_models_dir()
    folder = root / name
    if (folder / MANIFEST).is_file():
        verify_installed(folder)
        return folder
    base = (base_url.rstrip("/") + "/") if base_url else root_url()
    if spec.get("supported") is False:
        raise ModelError(f"model '{name}' ({spec.get('architecture', 'this architecture')}) cannot be run by this "
                         "version yet; not downloaded")
    urls = [_url(base, f) for f in spec["files"]]
    downloads = root / DOWNLOADS
    # bytes per file: the catalogue's estimate until the server states the real size (Content-Length)
    estimate = int(spec["size_mb"] * 1e6 / len(urls)) if spec.get("size_mb") else None
    sizes: dict[str, int | None] = {u: estimate for u in urls}
    start = time.monotonic()
    finished = 0  # bytes of the files already complete
    resumed_from = 0
    files: list[Path] = []
    try:
        for url in urls:
            dest = downloads / Path(url).name
            prefix = expected_prefix(dest.name)
            if dest.is_file() and prefix and _sha256_file(dest).hexdigest().startswith(prefix):
                sizes[url] = dest.stat().st_size
                finished += dest.stat().st_size
                files.append(dest)
                continue
            part = dest.with_name(dest.name + ".part")
            resumed_from += part.stat().st_size if part.exists() else 0

            def report(done: int, size: int | None = None, url=url) -> None:
                if size:
                    sizes[url] = size
                if not progress:
                    return
                now = time.monotonic()
                got = finished + done
                fresh = max(0, got - resumed_from)
                speed = fresh / max(now - start, 1e-3)
                total = sum(v or 0 for v in sizes.values()) if all(sizes.values()) else None
                total = total if total and total >= got else None
                eta = (total - got) / speed if total and speed > 0 else None
                progress(Progress(Path(url).name, got, total, speed, eta))

            fetch(url, dest, progress=report, cancel=cancel, timeout=timeout, retries=retries)
            sizes[url] = dest.stat().st_size
            finished += dest.stat().st_size
            files.append(dest)
    except ModelError as exc:
        if "download failed" in str(exc):
            raise ModelError(f"{exc}; {hand_hint(urls, name)}") from None
        raise
    card = {"name": name, "description": spec.get("description", f"Demucs {name} (official weights, MIT)"),
            "source_url": urls}
    folder = install_files(files, name, sources=list(spec["sources"]), bag=spec.get("bag"), root=root,
                           card=card, move=True)
    return folder


# ------------------------------------------------------------------------------------ install / verify

def _staging(root: Path, name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f".install-{name[:40]}-{os.getpid()}-", dir=root))


def install_files(files: list[Path], name: str, *, sources: list[str], bag: dict | None = None,
                  root: Path | None = None, card: dict | None = None, move: bool = False) -> Path:
    """Install checkpoint ``files`` as the model ``name`` (atomic: staging folder, manifest, rename).

    ``bag``: ``{"models": [signatures], "weights": [[per source] per model] | None, "segment": ...}`` for a
    bag of several checkpoints (written as ``<name>.yaml`` too). ``move`` takes the files away from where
    they are (the download folder); else they are copied. Refused: a name that is taken."""
    from ..paths import user_models_dir
    from .bundle import validate_model_name

    validate_model_name(name)
    root = Path(root) if root is not None else user_models_dir()
    folder = root / name
    if os.path.lexists(folder):
        raise ModelError(f"{folder}: a model named '{name}' is already installed "
                         "(choose another --name, or delete that folder first)")
    root.mkdir(parents=True, exist_ok=True)
    stage = _staging(root, name)
    try:
        entries = []
        for src in files:
            target = stage / src.name
            if move:
                os.replace(src, target)
            else:
                shutil.copyfile(src, target)
            entries.append({"name": src.name, "size": target.stat().st_size,
                            "sha256": _sha256_file(target).hexdigest()})
        manifest = {"format": FORMAT, "version": VERSION, "name": name, "architecture": "demucs",
                    "sources": list(sources), "files": entries, "bag": bag, "card": dict(card or {})}
        if bag:
            import yaml

            doc = {"models": list(bag["models"])}
            if bag.get("weights") is not None:
                doc["weights"] = bag["weights"]
            if bag.get("segment") is not None:
                doc["segment"] = bag["segment"]
            atomic_write_bytes(stage / f"{name}.yaml", yaml.safe_dump(doc, sort_keys=False).encode())
            manifest["entry"] = f"{name}.yaml"
        else:
            manifest["entry"] = entries[0]["name"]
        atomic_write_json(stage / MANIFEST, manifest)
        os.chmod(stage, 0o777 & ~_umask())
        try:
            os.rename(stage, folder)
        except OSError as exc:
            raise ModelError(f"{folder}: cannot install ({exc.strerror or exc})") from None
    except BaseException:
        if move:  # give the downloaded files back to the download folder (they stay verified)
            for src in files:
                if (stage / src.name).exists() and not src.exists():
                    try:
                        os.replace(stage / src.name, src)
                    except OSError:
                        pass
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return folder


def _umask() -> int:
    from ..atomic import umask

    return umask()


def read_manifest(folder: str | os.PathLike) -> dict:
    """Read and check ``<folder>/demucs.json``; raises :class:`ModelError` (``PATH: reason``)."""
    path = Path(folder) / MANIFEST
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{folder}: not a Demucs model folder (no {MANIFEST})") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (ValueError, RecursionError) as exc:
        raise ModelError(f"{path}: unreadable model description (not valid JSON: {str(exc)[:120]})") from None
    ok = (isinstance(meta, dict) and meta.get("format") == FORMAT and isinstance(meta.get("sources"), list)
          and meta["sources"] and all(isinstance(s, str) and s for s in meta["sources"])
          and isinstance(meta.get("files"), list) and meta["files"] and isinstance(meta.get("entry"), str))
    if not ok:
        raise ModelError(f"{path}: not an {FORMAT} model description")
    if not isinstance(meta.get("version"), int) or meta["version"] > VERSION:
        raise ModelError(f"{path}: version {meta.get('version')!r} is newer than this program reads ({VERSION})")
    for entry in meta["files"]:
        if not (isinstance(entry, dict) and isinstance(entry.get("name"), str) and "/" not in entry["name"]
                and "\\" not in entry["name"] and not entry["name"].startswith(".")
                and isinstance(entry.get("size"), int) and isinstance(entry.get("sha256"), str)
                and re.fullmatch(r"[0-9a-f]{64}", entry["sha256"])):
            raise ModelError(f"{path}: damaged file list")
    if "/" in meta["entry"] or "\\" in meta["entry"] or meta["entry"].startswith("."):
        raise ModelError(f"{path}: damaged entry {meta['entry']!r}")
    return meta


def check_installed(folder: str | os.PathLike, meta: dict | None = None) -> dict:
    """Cheap check (for listing): the manifest reads and every file has its recorded size."""
    folder = Path(folder)
    meta = meta or read_manifest(folder)
    for entry in meta["files"]:
        path = folder / entry["name"]
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise ModelError(f"{path}: weights file is missing") from None
        except OSError as exc:
            raise ModelError(f"{path}: cannot read ({exc.strerror or exc})") from None
        if size != entry["size"]:
            raise ModelError(f"{path}: weights file is {size} bytes, {MANIFEST} says {entry['size']} (damaged)")
    if not (folder / meta["entry"]).is_file():
        raise ModelError(f"{folder / meta['entry']}: missing")
    return meta


def verify_installed(folder: str | os.PathLike) -> dict:
    """Full check before a load: every file's size and SHA-256 equal those recorded at install time."""
    folder = Path(folder)
    meta = check_installed(folder)
    for entry in meta["files"]:
        path = folder / entry["name"]
        try:
            digest = _sha256_file(path).hexdigest()
        except OSError as exc:
            raise ModelError(f"{path}: cannot read ({exc.strerror or exc})") from None
        if digest != entry["sha256"]:
            raise ModelError(f"{path}: weights are damaged (SHA-256 {digest[:8]}... does not match "
                             f"{entry['sha256'][:8]}... recorded when it was installed)")
    return meta


def entry_path(folder: str | os.PathLike, meta: dict | None = None) -> Path:
    """What :func:`~unmix_desktop.separation.demucs.load_demucs` opens: the ``.th`` or the bag's ``.yaml``."""
    meta = meta or read_manifest(folder)
    return Path(folder) / meta["entry"]


def load_installed(folder: str | os.PathLike, device: str | None = None):
    """Verify (full SHA-256) and load an installed Demucs model."""
    meta = verify_installed(folder)  # before anything of the file is read by the loader
    from .demucs import load_demucs

    model = load_demucs(entry_path(folder, meta))
    card = dict(getattr(model, "card", None) or {})
    card.update({k: v for k, v in meta.get("card", {}).items() if k not in card or k == "name"})
    try:
        model.card = card
    except AttributeError:
        pass
    if device is not None and hasattr(model, "to"):
        model = model.to(device)
    return model


# ---------------------------------------------------------------------------------------------- import

def _bag_from_yaml(path: Path) -> tuple[list[Path], dict]:
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not a Demucs bag description ({str(exc).splitlines()[0][:120]})") from None
    models = doc.get("models") if isinstance(doc, dict) else None
    if not (isinstance(models, list) and models and all(isinstance(m, str) and re.fullmatch(r"[0-9a-f]{8}", m)
                                                        for m in models)):
        raise ModelError(f"{path}: not a Demucs bag description (needs 'models:' with 8-hex signatures)")
    files = []
    for sig in models:
        found = sorted(p for p in path.parent.glob(f"{sig}*.th") if signature(p.name) == sig)
        if not found:
            raise ModelError(f"{path}: checkpoint {sig}-*.th of the bag is not next to it in {path.parent}")
        files.append(found[0])
    bag = {"models": models, "weights": doc.get("weights"), "segment": doc.get("segment")}
    return files, bag


def _guess_name(files: list[Path], catalogue: dict) -> str | None:
    names = sorted(Path(f).name for f in files)
    for name, spec in catalogue.items():
        if sorted(Path(f).name for f in spec["files"]) == names:
            return name
    return None


def import_model(paths: list[str | os.PathLike], name: str | None = None, *, root: Path | None = None,
                 catalogue: dict | None = None) -> Path:
    """Register Demucs checkpoints fetched by hand: one ``.th``, several ``.th`` forming a known bag,
    or a bag ``.yaml`` with its ``.th`` files beside it. Each file is verified against the SHA-256
    prefix of its official name and opened with the safe loader before anything is installed."""
    given = [Path(p) for p in paths]
    for p in given:
        if not p.is_file():
            raise ModelError(f"{p}: {'is a folder' if p.is_dir() else 'file not found'}")
    if catalogue is None:
        try:
            catalogue = known_models()
        except ImportError:
            catalogue = {}
    bag = None
    yamls = [p for p in given if p.suffix in (".yaml", ".yml")]
    if yamls:
        if len(given) != 1:
            raise ModelError(f"{yamls[0]}: import a bag's .yaml alone (its .th files are found beside it)")
        files, bag = _bag_from_yaml(yamls[0])
        default_name = yamls[0].stem
    else:
        bad = [p for p in given if p.suffix != ".th"]
        if bad:
            raise ModelError(f"{bad[0]}: not a Demucs checkpoint (.th) or bag (.yaml)")
        files = given
        default_name = _guess_name(files, catalogue) or (signature(files[0].name) or files[0].stem)
        if len(files) > 1:
            known = _guess_name(files, catalogue)
            if not known or not catalogue[known].get("bag"):
                raise ModelError(f"{files[0]}: several .th files form a bag only with its .yaml "
                                 "(import the .yaml, or import one .th at a time)")
            bag = catalogue[known]["bag"]
    for f in files:
        want = expected_prefix(f.name)
        if want:
            digest = _sha256_file(f).hexdigest()
            if not digest.startswith(want):
                raise ModelError(f"{f}: damaged (SHA-256 {digest[:8]}..., its name promises {want}...)")
    name = name or default_name
    from .bundle import validate_model_name

    validate_model_name(name)
    # open every file with the safe loader before installing: a .th that runs code, or is not Demucs, stops here
    from .demucs import load_demucs

    sources: list[str] = []
    for f in files:
        model = load_demucs(f)
        sources = sources or list(model.sources)
        if list(model.sources) != sources:
            raise ModelError(f"{f}: its sources {model.sources} differ from the bag's {sources}")
    card = {"name": name, "description": f"Demucs checkpoint(s) imported from {', '.join(p.name for p in given)}"}
    folder = install_files(files, name, sources=sources, bag=bag, root=root, card=card, move=False)
    if bag:  # the bag as installed must load too
        try:
            load_demucs(entry_path(folder))
        except ModelError:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    return folder
