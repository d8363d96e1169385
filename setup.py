"""Build hook (all metadata is in pyproject.toml): ship the top-level ``resources/`` folder (bundled
models, icons, desktop entry) inside the package, as ``unmix_desktop/resources/``, so that a plain
(non-editable) wheel install has them. ``paths.resources_dir()`` finds that folder through
``importlib.resources``; a source checkout or an editable install reads ``resources/`` itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
RESOURCES = ROOT / "resources"
PACKAGE_RESOURCES = Path("unmix_desktop") / "resources"


class build_py_with_resources(build_py):
    """``build_py`` that also copies ``resources/`` to ``<build_lib>/unmix_desktop/resources/``."""

    def _resource_files(self) -> list[Path]:
        return sorted(p for p in RESOURCES.rglob("*") if p.is_file() and "__pycache__" not in p.parts)

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # editable installs use the checkout's resources/ directly
        dest = Path(self.build_lib) / PACKAGE_RESOURCES
        if dest.exists():
            shutil.rmtree(dest)
        for src in self._resource_files():
            target = dest / src.relative_to(RESOURCES)
            self.mkpath(str(target.parent))
            self.copy_file(str(src), str(target), preserve_mode=False)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        if getattr(self, "editable_mode", False):
            return outputs
        dest = Path(self.build_lib) / PACKAGE_RESOURCES
        return outputs + [str(dest / p.relative_to(RESOURCES)) for p in self._resource_files()]


setup(cmdclass={"build_py": build_py_with_resources})
