"""`unmix models`: list installed models (name, targets, size, where); import or download
official open-unmix weights and Demucs checkpoints into the user models folder.

* ``--download htdemucs|htdemucs_6s|htdemucs_ft|hdemucs_mmi|...`` fetches the official Demucs weights
  (:mod:`unmix_desktop.separation.model_store`: resumable, SHA-256 checked, atomic install; address
  overridable with ``$UNMIX_MODEL_BASE_URL`` or ``--base-url``); ``--download umxhq`` the open-unmix ones.
* ``--import FILE.th [--name NAME]`` (or a bag ``.yaml`` with its ``.th`` files beside it, or a known
  bag's ``.th`` files) registers Demucs checkpoints fetched by hand; ``.pth`` files are open-unmix.

A damaged model folder is skipped with one warning line on stderr (folder and reason); the
others are listed. ``--import --name`` takes a plain folder name: paths, ``..``, hidden or empty
names and names already installed are refused before anything is written."""

from __future__ import annotations

import sys

from ..errors import ModelError, UnmixError
from ..progress import ProgressBar


def add_parser(sub):
    p = sub.add_parser("models", help="list, import or download separation models")
    p.add_argument("--import", dest="import_files", nargs="+", metavar="FILE",
                   help="import Demucs checkpoints (955717e8-8726e21a.th, or a bag .yaml with its .th files beside "
                        "it) or official open-unmix checkpoints (vocals-b62c91ce.pth ...) as one model")
    p.add_argument("--name", help="name for --import (default: the official name of a known Demucs checkpoint, "
                                  "else umx-imported / the checkpoint's signature)")
    p.add_argument("--download", metavar="MODEL",
                   help="download official weights into the user models folder: htdemucs, htdemucs_6s, htdemucs_ft "
                        "(Hybrid Transformer Demucs, MIT) or umxhq (open-unmix)")
    p.add_argument("--base-url", help="mirror to download from instead of the official address")
    return p


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _import_name(name: str | None) -> str:
    """The checked name of the model ``--import`` creates; raises :class:`ModelError` (one line)."""
    from ..paths import user_models_dir
    from ..separation.bundle import validate_model_name
    from ..separation.registry import list_models

    name = validate_model_name("umx-imported" if name is None else name)
    if any(m.name == name and m.kind != "user" for m in list_models()):
        raise ModelError(f"invalid model name '{name}': a built-in model has that name")
    try:
        root = user_models_dir()
    except OSError as exc:
        raise ModelError(f"{exc.filename or 'user models folder'}: cannot create the models folder "
                         f"({exc.strerror or exc})") from exc
    folder = root / name
    if folder.exists() or folder.is_symlink():
        raise ModelError(f"{folder}: a model named '{name}' is already installed "
                         "(choose another --name, or delete that folder first)")
    return name


def _is_demucs_files(files: list[str]) -> bool:
    return any(str(f).lower().endswith((".th", ".yaml", ".yml")) for f in files)


def _demucs_catalogue() -> dict:
    try:
        from ..separation.model_store import known_models

        return known_models()
    except ImportError:
        return {}


def _download_demucs(name: str, base_url: str | None) -> int:
    from ..separation import model_store

    bar = ProgressBar(name)
    shown = False

    def progress(p: model_store.Progress) -> None:
        nonlocal shown
        shown = True
        bar.update(p.fraction or 0.0, p.line())

    try:
        folder = model_store.download_model(name, base_url=base_url, progress=progress)
    except BaseException:
        if shown:
            bar.close()
        raise
    if shown:
        bar.close()
    meta = model_store.read_manifest(folder)
    print(f"Installed {name} ({', '.join(meta['sources'])}) -> {folder}")
    return 0


def _import_demucs(files: list[str], name: str | None) -> int:
    from ..separation import model_store

    if name is not None:
        _import_name(name)
    folder = model_store.import_model(files, name)
    meta = model_store.read_manifest(folder)
    print(f"Imported {len(meta['files'])} checkpoint(s) as {folder.name} ({', '.join(meta['sources'])}) -> {folder}")
    return 0


def run(args) -> int:
    from ..separation import official
    from ..separation.registry import scan_models

    if args.import_files and _is_demucs_files(args.import_files):
        return _import_demucs(args.import_files, args.name)
    if args.download and args.download not in official.OFFICIAL_MODELS:
        if args.download not in _demucs_catalogue():
            known = sorted([*official.OFFICIAL_MODELS, *_demucs_catalogue()])
            raise ModelError(f"unknown model '{args.download}' (downloadable: {', '.join(known)})")
        return _download_demucs(args.download, args.base_url)
    if args.import_files:
        name = _import_name(args.name)
        folder = official.import_official(args.import_files, name)
        print(f"Imported {len(args.import_files)} checkpoint(s) as {folder.name} -> {folder}")
        return 0
    if args.download:
        bars: dict[str, ProgressBar] = {}

        def progress(target: str, fraction: float) -> None:
            bar = bars.setdefault(target, ProgressBar(target))
            bar.update(fraction)
            if fraction >= 1.0:
                bar.close()

        try:
            folder = official.download_official(args.download, base_url=args.base_url, progress=progress)
        except UnmixError:
            if bars:
                sys.stderr.write("\n")
            raise
        print(f"Installed {args.download} -> {folder}")
        return 0
    models, broken = scan_models()
    for bad in broken:
        what = f"skipping model '{bad.name}'" if bad.name else "skipping user models"
        print(f"unmix: warning: {what}: {bad.reason}", file=sys.stderr)
    if not models:
        print("No separation model is installed.")
        return 0
    rows = [("NAME", "TARGETS", "SIZE", "KIND", "WHERE")]
    rows += [(m.name, ",".join(m.targets), _size(m.size_bytes), m.kind, m.location) for m in models]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4])
    print(f"\nDefault: {models[0].name}")
    installed = {m.name for m in models}
    missing = [(n, spec) for n, spec in _demucs_catalogue().items()
               if n not in installed and spec.get("supported", True)]
    if missing:
        print("Downloadable (unmix models --download NAME): " + ", ".join(
            f"{n} ({len(spec['sources'])} stems" + (f", {spec['size_mb']:.0f} MB)" if spec.get("size_mb") else ")")
            for n, spec in missing))
    return 0
