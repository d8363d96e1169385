"""Files and folders the app writes, and how it proves which ones are its own.

* Temporary names carry the writing process's id: ``.<name>.part-<pid>-<random>.<ext>`` for a
  file, ``.<name>.partial-<pid>-<random>`` for a folder. A later run removes such leftovers
  (after a kill -9 or a power cut) only when that process no longer exists
  (:func:`remove_stale`). The user's name is cut to :data:`NAME_LIMIT` characters in them, so a
  long song name never makes the temporary name too long for the file system.
* A result folder the app created holds :data:`MARKER`, a small JSON file listing the files the
  app wrote there with their size and modification time. Only those files (still as written)
  are ever replaced or removed; anything else in the folder is the user's and is left alone.
* Once all stems of a song are written, the marker also records the *job* that made them
  (:func:`job_record`: the source's name, size and modification time, the model, the settings,
  the output rate, format and stems). ``unmix separate`` skips a song whose result folder holds
  the same job and all its files unchanged (:func:`is_done`). While files are being replaced
  the marker has no job, so an interrupted run is never taken for a finished one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from .errors import AudioError

MARKER = ".unmix-stems.json"
NAME_LIMIT = 40
_PARTIAL_DIR = re.compile(r"^\..*\.partial-(\d+)-[A-Za-z0-9_]+$")
_PART_FILE = re.compile(r"^\..*\.part-(\d+)-[A-Za-z0-9_]+\.[A-Za-z0-9]+$")


def umask() -> int:
    """The process umask (read without changing it for long)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (ours counts; unknown means alive, to be safe)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def temp_file(folder: Path, name: str, suffix: str) -> Path:
    """A new empty file ``folder/.<name>.part-<pid>-<random><suffix>`` with ordinary permissions."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name[:NAME_LIMIT]}.part-{os.getpid()}-", suffix=suffix, dir=folder)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600; the result is an ordinary file
    return Path(tmp)


def temp_dir(parent: Path, name: str) -> Path:
    """A new empty folder ``parent/.<name>.partial-<pid>-<random>`` with ordinary permissions."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{name[:NAME_LIMIT]}.partial-{os.getpid()}-", dir=parent))
    os.chmod(tmp, 0o777 & ~umask())
    return tmp


def remove_mine(folder: Path) -> None:
    """Remove this process's temporary files/folders in ``folder``: the clean-up after a signal
    that arrived between creating one and remembering its path."""
    remove_leftovers(folder, {os.getpid()})


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is one of the app's temporary file/folder names."""
    return bool(_PARTIAL_DIR.match(name) or _PART_FILE.match(name))


def os_error_path(exc: OSError, fallback: Path) -> Path:
    """The path an OS error is about, as the user knows it: a rename's destination, and the
    folder instead of one of the app's temporary names."""
    name = exc.filename2 or exc.filename  # a rename names its destination second
    where = Path(os.fsdecode(name)) if name else Path(fallback)
    return where.parent if is_temp_name(where.name) else where


def _sweep(folder: Path, doomed) -> list[Path]:
    """Remove the app's temporary files/folders in ``folder`` for which ``doomed(pid, entry)`` holds
    (``pid``: the writer's process id in the name). Errors are ignored (a leftover is harmless; the
    next run tries again). Returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        try:
            folder_entry = entry.is_dir(follow_symlinks=False)
            if not folder_entry and not entry.is_file(follow_symlinks=False):
                continue
            match = (_PARTIAL_DIR if folder_entry else _PART_FILE).match(entry.name)
            if not match or not doomed(int(match.group(1)), entry):
                continue
            if folder_entry:
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


def remove_stale(folder: Path) -> list[Path]:
    """Remove the app's temporary files/folders in ``folder`` whose writing process is gone.

    A partial folder is removed only when it holds nothing but plain files."""
    def doomed(pid: int, entry) -> bool:
        if pid_alive(pid):
            return False
        return not entry.is_dir(follow_symlinks=False) or all(
            e.is_file(follow_symlinks=False) for e in os.scandir(entry.path))

    return _sweep(folder, doomed)


def remove_leftovers(folder: Path, pids) -> list[Path]:
    """Remove the temporary files/folders in ``folder`` written by the processes ``pids`` (which
    must be gone): a cluster run's clean-up of its own workers after one died or was stopped,
    where "is that process alive" cannot be asked of another machine."""
    pids = {int(p) for p in pids}
    return _sweep(folder, lambda pid, entry: pid in pids)


# -- result folders --------------------------------------------------------------------------
def _stat(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def read_marker(folder: Path) -> dict[str, dict | None] | None:
    """``{file name: {size, mtime_ns} or None}`` of the files the app wrote in ``folder``;
    ``None`` when the folder is not one the app created (no readable marker)."""
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return None
    return {str(k): (v if isinstance(v, dict) else None) for k, v in files.items()}


def write_marker(folder: Path, files: dict[str, dict | None], job: dict | None = None) -> None:
    """Atomically (re)write the marker. A ``None`` entry means "being replaced by the app now".
    ``job``: what made the files (:func:`job_record`), only once they are all written."""
    tmp = temp_file(folder, "unmix-stems", ".json")
    data = {"app": "unmix-desktop", "version": 1, "files": files}
    if job is not None:
        data["job"] = job
    try:
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, folder / MARKER)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_job(folder: Path) -> dict | None:
    """The job recorded in ``folder``'s marker (``None``: none, or not a folder the app created)."""
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    job = data.get("job") if isinstance(data, dict) else None
    return job if isinstance(job, dict) else None


def job_record(source: Path, **options) -> dict:
    """What identifies one song's separation: the source file's name, size and modification
    time (not its content: cheap for a whole library; a changed file is separated again) and the
    ``options`` (model, settings, rate, format, stems; JSON values)."""
    st = Path(source).stat()
    return {"source": {"name": Path(source).name, "size": st.st_size, "mtime_ns": st.st_mtime_ns},
            **json.loads(json.dumps(options))}


def is_done(folder: Path, job: dict, files: list[str]) -> bool:
    """Whether ``folder`` holds ``files`` written by the same ``job`` and unchanged since."""
    owned = read_marker(folder)
    if owned is None or read_job(folder) != job:
        return False
    return all(name in owned and (folder / name).is_file() and owns(folder, name, owned) for name in files)


def stamp(folder: Path, names) -> dict[str, dict]:
    """Marker entries for files just written in ``folder``."""
    return {name: _stat(folder / name) for name in names}


def owns(folder: Path, name: str, owned: dict[str, dict | None]) -> bool:
    """True when ``folder/name`` is a file the app wrote and nobody changed since."""
    if name not in owned:
        return False
    expected = owned[name]
    path = folder / name
    if path.is_symlink() or not path.is_file():
        return not path.exists() and not path.is_symlink()
    if expected is None:
        return True
    try:
        return _stat(path) == {"size": expected.get("size"), "mtime_ns": expected.get("mtime_ns")}
    except OSError:
        return False


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == Path(b).resolve() or (a.exists() and Path(b).exists() and os.path.samefile(a, b))
    except OSError:
        return False


def unusable_reason(folder: Path, files: list[str], protect=()) -> str | None:
    """Why result files ``files`` cannot be written into ``folder`` (``None``: they can).

    Usable: a folder that does not exist yet, or one the app created whose files of those
    names are absent or were written by the app and not changed since.
    """
    if not os.path.lexists(folder):
        return None
    if folder.is_symlink() or not folder.is_dir():
        return "exists and is not a folder"
    owned = read_marker(folder)
    if owned is None:
        return "exists and was not created by unmix"
    for name in files:
        path = folder / name
        if not os.path.lexists(path):
            continue
        if any(_same(path, p) for p in protect):
            return f"{name} there is the song being separated"
        if not owns(folder, name, owned):
            return f"{name} there was not written by unmix (or was changed since)"
    return None


def choose_result_dir(out: Path, base: str, files: list[str], taken=(), protect=(),
                      tries: int = 10) -> tuple[Path, str | None]:
    """The folder under ``out`` for one song's results, and why it is not ``out/base`` (or ``None``).

    Tries ``base``, ``base (stems)``, ``base (stems 2)`` … and returns the first usable one whose
    name (case-insensitively) is not in ``taken``. Raises :class:`AudioError` when none is usable.
    """
    names = [base, f"{base} (stems)"] + [f"{base} (stems {i})" for i in range(2, tries)]
    first = None
    taken = {t.casefold() for t in taken}
    for name in names:
        if name.casefold() in taken:
            first = first or "is used by an earlier song of this run"
            continue
        reason = unusable_reason(out / name, files, protect)
        if reason is None:
            return out / name, (None if name == base else f"{out / base} {first}")
        first = first or reason
    raise AudioError(out / base, f"{first}; and so are '{names[1]}' .. '{names[-1]}' (choose another --out)")
