"""Which torch device a command runs on: one place that turns ``--device NAME`` into a device.

Imports torch lazily, so the command line stays quick when the option is not used.
"""

from __future__ import annotations

from .errors import UsageError


def resolve_device(name: str | None):
    """``None``/``"auto"`` -> cuda when available, else cpu; ``cpu``, ``cuda``, ``cuda:N``, ``mps``.

    Returns a ``torch.device``. Raises :class:`UsageError` (one line) for an unknown name or a
    device this machine / this torch build does not have.
    """
    import torch

    text = (name or "").strip().lower()
    if text in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kind, sep, index = text.partition(":")
    if sep and not index.isdigit():
        raise UsageError(f"--device {name}: expected cpu, cuda, cuda:N or mps")
    if kind == "cpu" and not sep:
        return torch.device("cpu")
    if kind == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA support" if torch.version.cuda is None else "no CUDA GPU is available"
            raise UsageError(f"--device {name}: {why} (use --device cpu)")
        count = torch.cuda.device_count()
        if sep and int(index) >= count:
            raise UsageError(f"--device {name}: this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})")
        return torch.device(text)
    if kind == "mps" and not sep:
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UsageError(f"--device {name}: Apple MPS is not available on this machine (use --device cpu)")
        return torch.device("mps")
    raise UsageError(f"--device {name}: unknown device (use cpu, cuda, cuda:N or mps)")
