"""What runs on a cluster worker: one :class:`SongWorker` per worker process (a Ray actor), which
loads the model once and separates song after song with the same code as a local run.

No Ray import here: the driver wraps the class with ``ray.remote``; tests can use it directly.

* Shared file system (the default): the worker reads the song and writes its result folder
  itself (:func:`~unmix_desktop.commands.separate.separate_one`: temporary names, then rename),
  but never removes other processes' leftovers (it cannot tell whether a process of another
  machine is alive); the driver removes its own workers' leftovers.
* ``--ship-audio``: the song's bytes come through the object store; the worker decodes them from a
  private temporary file and returns the stems as ``float32`` arrays at the output rate; the driver
  writes them with the local run's writer, so the files are the ones a local run writes.
* Models the worker does not have (a user model, ``--model-file``) come from the driver as a
  :func:`pack_model` (bytes + SHA-256 of each file), verified before they are used.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

from ..errors import ModelError, UnmixError


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pack_model(location: str | os.PathLike) -> dict:
    """A model folder (bundle) or file (checkpoint) as ``{"name", "kind", "files": {rel: bytes},
    "sha256": {rel: hex}, "digest"}``; ``digest`` names the whole pack."""
    root = Path(location)
    if root.is_dir():
        paths = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
        base, kind = root, "folder"
    else:
        paths, base, kind = [root], root.parent, "file"
    files = {p.relative_to(base).as_posix(): p.read_bytes() for p in paths}
    sha = {rel: _digest(data) for rel, data in files.items()}
    digest = _digest("\n".join(f"{rel} {h}" for rel, h in sorted(sha.items())).encode())
    return {"name": root.name, "kind": kind, "files": files, "sha256": sha, "digest": digest}


def pack_digest(location: str | os.PathLike) -> str:
    """The :func:`pack_model` digest of a model without keeping its bytes."""
    return pack_model(location)["digest"]


def unpack_model(pack: dict, root: Path) -> Path:
    """Write a verified pack under ``root/<digest>/`` (once; atomic) and return the model's path
    (that folder for a bundle; the file in it for a checkpoint).

    Every file's SHA-256 is checked against the pack's record first; a mismatch or an unsafe name
    raises :class:`ModelError` and nothing is written."""
    for rel, data in pack["files"].items():
        parts = Path(rel).parts
        if Path(rel).is_absolute() or ".." in parts or not parts:
            raise ModelError(f"{pack['name']}: unsafe file name {rel!r} in the model sent by the driver")
        if _digest(data) != pack["sha256"].get(rel):
            raise ModelError(f"{pack['name']}/{rel}: damaged in transfer (SHA-256 differs from the driver's)")
    final = root / pack["digest"]
    if not final.exists():
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{pack['digest'][:12]}.partial-{os.getpid()}-", dir=root))
        try:
            for rel, data in pack["files"].items():
                dest = work / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
            try:
                os.rename(work, final)
            except OSError:
                if not final.exists():  # another worker of this machine won the race: use its copy
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final if pack["kind"] == "folder" else final / next(iter(pack["files"]))


def _local_copy(name: str, digest: str) -> str | None:
    """This machine's user model of that name when its files are the driver's (same digest)."""
    from ..separation.registry import list_models

    for info in list_models():
        if info.name == name and info.kind == "user":
            try:
                if pack_digest(info.location) == digest:
                    return info.location
            except OSError:
                return None
    return None


def model_cache_dir() -> Path:
    """Where a worker keeps models sent by drivers (per machine, outside the user's models)."""
    from ..paths import cache_dir

    return Path(cache_dir()) / "cluster-models"


class SongWorker:
    """One worker process: the model loaded once, then :meth:`separate` / :meth:`separate_shipped`
    per song. ``options`` are the separate command's options that shape the stems."""

    def __init__(self, options: dict, threads: int, model_ref: list | None = None, model_digest: str = "",
                 model_name: str = "") -> None:
        from ..commands.separate import _make_separator, output_names

        self.args = argparse.Namespace(**options)
        self.model_source = "local"
        if model_ref:  # a model the driver has: ours when we have the very same files, else its copy
            local = _local_copy(model_name, model_digest) if model_name else None
            if local:
                path = local
            else:
                import ray

                pack = ray.get(model_ref[0])
                if pack["digest"] != model_digest:
                    raise ModelError(f"{model_name}: the model sent by the driver is not the one it announced")
                path = str(unpack_model(pack, model_cache_dir()))
                self.model_source = "driver"
            self.args.model, self.args.model_file = None, path
        self.threads = threads
        self.separator = _make_separator(self.args, threads=threads)
        self.names = output_names(self.separator, self.args)

    def where(self) -> dict:
        """``{"host", "pid", "node", "model_source"}`` of this worker process; ``host`` is the
        machine's name and its node address (nodes of a test cluster share one machine)."""
        node, host = "", socket.gethostname()
        try:
            import ray

            node = ray.get_runtime_context().get_node_id()
            host = f"{host}/{ray.util.get_node_ip_address()}"
        except Exception:  # noqa: BLE001 - used outside Ray (tests): no node id or address
            pass
        self.host = host
        return {"host": host, "pid": os.getpid(), "node": node, "model_source": self.model_source}

    def _result(self, start: float, **fields) -> dict:
        return {"host": getattr(self, "host", socket.gethostname()), "pid": os.getpid(),
                "seconds": round(time.monotonic() - start, 3), **fields}

    def separate(self, path: str, final_dir: str, job: dict | None) -> dict:
        """Separate ``path`` into ``final_dir`` here (shared file system). Never raises for a
        song's own failure: ``{"status": "failed", "error": one line}``."""
        from ..commands.separate import _error_line, separate_one

        start = time.monotonic()
        warnings: list[str] = []
        try:
            files = separate_one(self.separator, Path(path), Path(final_dir), self.args, self.names, job,
                                 warn=warnings.append, clean_stale=False)
        except (UnmixError, OSError) as exc:
            return self._result(start, status="failed", error=_error_line(exc, Path(path)), warnings=warnings)
        return self._result(start, status="done", files=[str(f) for f in files], warnings=warnings)

    def separate_shipped(self, path: str, data: list, job: dict | None) -> dict:
        """Separate a song whose bytes came from the driver (``data``: ``[ObjectRef]`` or
        ``[bytes]``); returns ``{"status": "done", "stems": {name: (n, 2) float32}, "rate"}``."""
        from ..commands.separate import _error_line, collect_blocks, song_stems

        start = time.monotonic()
        blob = data[0]
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            import ray

            blob = ray.get(blob)
        song = Path(path)
        warnings: list[str] = []
        folder = Path(tempfile.mkdtemp(prefix="unmix-shipped-"))
        try:
            local = folder / song.name  # the same name: decoders go by the extension
            local.write_bytes(blob)
            try:
                with song_stems(self.separator, local, self.args, self.names, warn=warnings.append) as (blocks, rate):
                    stems = collect_blocks(blocks)
            except (UnmixError, OSError) as exc:  # name the driver's file, not our copy
                line = _error_line(exc, song).replace(str(local), str(song))
                return self._result(start, status="failed", error=line, warnings=warnings)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        warnings = [w.replace(str(local), str(song)) for w in warnings]
        return self._result(start, status="done", stems=stems, rate=rate, warnings=warnings)
