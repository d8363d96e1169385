# Our own PyInstaller hook for torch; it takes precedence over the one in pyinstaller-hooks-contrib.
#
# The contrib hook collects every torch submodule and every data file of the wheel (C++ test
# binaries in torch/test and torch/bin, Inductor templates, ...), about 250 MB more than a CPU
# inference app needs. This one lets the import analysis find the torch modules our code reaches
# and collects only the shared libraries torch loads itself. The subpackages the app never loads
# (torch._dynamo, torch._inductor, torch.onnx, ... and with them sympy/networkx) are excluded in
# packaging/unmix-desktop.spec.
import os

from PyInstaller import compat
from PyInstaller.utils.hooks import PY_DYLIB_PATTERNS, collect_dynamic_libs

# TorchScript helpers (torch._jit_internal, @torch.jit._overload used at import time) read the
# Python source with inspect: ship the .py files next to the byte-code (as the contrib hook does).
module_collection_mode = "pyz+py"
warn_on_missing_hiddenimports = False

# Libraries torch's own code or the Python extension need at run time; not its C++ test libraries.
_NOT_NEEDED = ("libjitbackend_test", "libtorchbind_test", "libbackend_with_compiler", "libaoti_custom_ops")
binaries = [
    (src, dest)
    for src, dest in collect_dynamic_libs("torch", search_patterns=PY_DYLIB_PATTERNS + ["*.so.*"])
    if not any(part in src for part in _NOT_NEEDED) and "/test/" not in src.replace("\\", "/")
]
# torch/__init__.py refuses to import without its shared-memory manager executable (Linux/macOS).
if not compat.is_win:
    from PyInstaller.utils.hooks import get_package_paths

    _shm = os.path.join(get_package_paths("torch")[1], "bin", "torch_shm_manager")
    if os.path.isfile(_shm):
        binaries.append((_shm, os.path.join("torch", "bin")))
datas = []
hiddenimports = []

if compat.is_linux:
    # As in the contrib hook: no top-level symlinks to torch/lib (they confuse torch's library lookup).
    bindepend_symlink_suppression = ["**/torch/lib/*.so*"]
