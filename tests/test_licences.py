"""The licence inventory (packaging/licences.py; issue 21, "a licence we can ship"): everything the wheel
depends on and every library it carries or loads has an SPDX licence that may ship inside a GPL-3.0-or-later
program; GPL-2.0-only, non-free and unknown components fail; resources/THIRD_PARTY_NOTICES is current."""

from __future__ import annotations

import email.message
import importlib.metadata as md
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packaging"))

import licences  # noqa: E402


@pytest.fixture(scope="module")
def inventory():
    return licences.inventory()


def test_everything_we_ship_has_a_licence_compatible_with_gpl3(inventory):
    assert licences.problems(inventory) == []
    names = {c.name for c in inventory}
    assert {"numpy", "torch", "librubberband.so.2", "libportaudio.so.2"} <= names
    assert "pylibrb" not in names  # the GPL-2.0-only binding is gone
    rubberband = next(c for c in inventory if c.name == "librubberband.so.2")
    assert rubberband.licence == "GPL-2.0-or-later" and rubberband.version.startswith("librubberband2 3.")


def test_the_notices_file_is_current(inventory):
    """resources/THIRD_PARTY_NOTICES (in the wheel and the bundle) lists exactly what is shipped now. A new
    dependency makes this fail: run `python packaging/licences.py` and commit the file."""
    shipped = licences.parse_table(licences.NOTICES.read_text())
    now = licences.table(inventory)
    assert shipped == now, (f"missing: {sorted(now - shipped)}; stale: {sorted(shipped - now)}; "
                            "run: python packaging/licences.py")


def _meta(**fields) -> email.message.Message:
    m = email.message.Message()
    for key, value in fields.items():
        for v in value if isinstance(value, list) else [value]:
            m[key.replace("_", "-")] = v
    return m


def test_pylibrb_metadata_reads_as_gpl2_only_and_fails():
    """pylibrb 0.1.2's own metadata (License: GPLv2 and the GPLv2 classifier, no "or later")."""
    meta = _meta(Name="pylibrb", License="GPLv2",
                 Classifier=["License :: OSI Approved :: GNU General Public License v2 (GPLv2)"])
    spdx, source = licences.python_licence("pylibrb", meta)
    assert spdx == "GPL-2.0-only" and source == "License field"
    bad = licences.problems([licences.Component("python", "pylibrb", "0.1.2", spdx, source)])
    assert len(bad) == 1 and "GPL-2.0-only cannot be combined with GPL-3.0" in bad[0]


def test_the_old_dependency_list_with_pylibrb_fails(tmp_path):
    """The check run on the dependency list from before the change (pylibrb==0.1.2 among them)."""
    try:
        md.distribution("pylibrb")
    except md.PackageNotFoundError:
        pytest.skip("pylibrb is not installed here (it is no longer a dependency)")
    old = tmp_path / "pyproject.toml"
    old.write_text('[project]\nname = "x"\ndependencies = ["numpy>=1.24", "pylibrb==0.1.2"]\n')
    r = subprocess.run([sys.executable, str(ROOT / "packaging" / "licences.py"), "--check", "--pyproject", str(old)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    assert r.stderr.strip() == ("licences: python pylibrb 0.1.2: GPL-2.0-only (GPL-2.0-only cannot be combined "
                                "with GPL-3.0; License field)")


@pytest.mark.parametrize("expr, ok", [
    ("MIT", True),
    ("LGPL-3.0-only OR GPL-2.0-only OR GPL-3.0-only", True),  # Qt: one acceptable branch is enough
    ("GPL-2.0-only", False),
    ("BSD-3-Clause AND GPL-2.0-only", False),  # AND: every part must be acceptable
    ("GPL-3.0-or-later WITH GCC-exception-3.1", True),
    ("GPL-3.0-or-later WITH Some-Unknown-exception", False),
    ("LicenseRef-Proprietary", False),
    ("CC-BY-NC-4.0", False),  # non-free
    ("(Apache-2.0 OR MIT) AND BSD-2-Clause", True),
])
def test_policy_on_licence_expressions(expr, ok):
    assert licences._acceptable(expr) is ok


def test_unknown_licences_fail_instead_of_passing():
    spdx, source = licences.python_licence("someone", _meta(Name="someone", License="Custom licence, see site",
                                                            Classifier=["License :: OSI Approved :: BSD License"]))
    assert spdx is None and "add it to REVIEWED" in source  # "BSD License" alone does not say which BSD
    bad = licences.problems([licences.Component("python", "someone", "1", spdx, source),
                             licences.Component("embedded", "libmystery-0123abcd.so.1", "", None, "unknown")])
    assert len(bad) == 2 and all("licence unknown" in line for line in bad)
    assert licences.embedded_licence("libx264-d6533a8d.so.165") == ("GPL-2.0-or-later", "x264")
    assert licences.embedded_licence("libdrm-egl-server.so") is None  # Qt's plugin, not libdrm


def test_debian_copyright_is_read_from_dpkg():
    component = licences.system_library("librubberband.so.2", "tempo/key change")
    assert component.licence == "GPL-2.0-or-later"
    assert component.source == "/usr/share/doc/librubberband2/copyright (Files: *)"


def test_bundle_mode_rules_on_every_system_library_at_the_top_of_the_bundle(tmp_path):
    """--bundle: each library at the top of _internal/ that no Python distribution ships is traced to its
    Debian package (dpkg -S, then its copyright); one nobody can trace is a problem, not a pass."""
    internal = tmp_path / "unmix-desktop" / "_internal"
    (internal / "resources").mkdir(parents=True)
    for name in ("librubberband.so.2", "libpython3.11.so.1.0", "libmystery-unknown.so.7", "base_library.zip"):
        (internal / name).write_bytes(b"")
    closure = licences.dependency_closure()
    found = {c.name: c for c in licences.bundle_libraries(tmp_path / "unmix-desktop", closure)}
    assert set(found) == {"librubberband.so.2", "libpython3.11.so.1.0", "libmystery-unknown.so.7"}
    assert found["librubberband.so.2"].licence == "GPL-2.0-or-later"
    assert found["libpython3.11.so.1.0"].licence == "PSF-2.0"
    assert licences.problems(list(found.values())) == [
        "system libmystery-unknown.so.7: licence unknown (not found on this system)"]
    r = subprocess.run([sys.executable, str(ROOT / "packaging" / "licences.py"), "--bundle",
                        str(tmp_path / "unmix-desktop")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "libmystery-unknown.so.7: licence unknown" in r.stderr
    for notices in (tmp_path / "unmix-desktop", internal / "resources"):
        text = (notices / "THIRD_PARTY_NOTICES").read_text()
        assert "librubberband.so.2 librubberband2" in text and "libmystery-unknown.so.7: UNKNOWN" in text
    assert licences.NOTICES.read_text() != text  # the checkout's copy is not touched
