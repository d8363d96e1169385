"""The driver of ``unmix separate --cluster ADDRESS``: plans the run like a local one, then hands
the songs to workers on a Ray cluster and writes the report.

* **Same semantics as the local run**: the plan (recursive listing, mirrored layout, result-folder
  markers, skip what is already separated, ``--force``, formats and rates) is
  :func:`~unmix_desktop.commands.separate.plan_run`; a worker separates with
  :func:`~unmix_desktop.commands.separate.separate_one`; one line per failed song, the run goes on,
  exit status 2 when any song failed.
* **Workers**: one actor per ``--cpus-per-task`` cores (and ``--gpus-per-task`` GPUs) the cluster
  has, spread over the nodes; each loads the model once (:class:`~.worker.SongWorker`). A song
  whose worker or node dies is given to another worker (up to :data:`ATTEMPTS` tries); the dead
  worker is replaced. A song's own failure (cannot decode...) is not retried.
* **Nothing half-written**: workers write under temporary names and rename; what a dead or
  stopped worker left is removed by the driver (:func:`~unmix_desktop.outputs.remove_leftovers`,
  by the workers' process ids), once that worker is known to be gone.
* **Stopping**: Ctrl-C / SIGTERM / SIGHUP on the driver kill every worker of the run, wait until
  they are gone, remove their leftovers, then stop like a local run (exit 130 / 143 / 129).
"""

from __future__ import annotations

import copy
import os
import sys
import time
from pathlib import Path
from typing import Any

from .. import outputs
from ..errors import Stopped, UnmixError, UsageError
from .stats import RunStats, SongRecord, report_dict, write_report
from .worker import SongWorker, pack_model

#: Tries per song when its worker or node dies (a song's own error is not retried).
ATTEMPTS = 3
#: How long the run waits for a worker to start when none is running (no capacity left).
START_TIMEOUT = float(os.environ.get("UNMIX_CLUSTER_START_TIMEOUT", "300"))
#: The driver's options passed to every worker (everything that shapes the stems).
WORKER_OPTIONS = ("model", "model_file", "targets", "stems", "four_stem_model", "niter", "softmask", "power",
                  "residual", "logit", "tta", "window", "format", "max_duration", "device", "rate")


def _host(address: str) -> str:
    rest = address.split("://", 1)[-1]
    if rest.startswith("["):
        return rest[: rest.find("]") + 1]
    return rest.rsplit(":", 1)[0] if ":" in rest else rest


def _loopback(host: str) -> bool:
    return host in ("localhost", "::1", "[::1]") or host.startswith("127.")


def import_ray(address: str):
    """``ray``, or a one-line :class:`UsageError` saying how to get it.

    A cluster on a loopback address keeps every Ray connection on loopback: Ray would otherwise
    swap 127.0.0.1 for the machine's network address (a one-node cluster on 127.0.0.1 runs in
    Ray's single-machine mode; nodes of a test cluster on one machine take 127.0.0.2, .3 ...)."""
    if _host(address) in ("127.0.0.1", "localhost", "::1", "[::1]"):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError as exc:
        raise UsageError("--cluster needs Ray, which is not installed: pip install 'unmix-desktop[cluster]' "
                         f"(or pip install 'ray==2.60.0'); see docs/SCALING.md ({exc.name or exc})") from exc
    return ray


def check_reachable(address: str, timeout: float = 10.0) -> None:
    """A ``HOST:PORT`` or ``ray://HOST:PORT`` address that refuses or ignores a TCP connection is one
    line at once (Ray itself retries for minutes); ``auto`` is left to Ray."""
    import socket

    if address == "auto":
        return
    rest = address.split("://", 1)[-1]
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"--cluster {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    host = host.strip("[]")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise UnmixError(f"cannot reach the Ray cluster at {address}: {reason} "
                         "(is the head node started? `ray start --head`, see docs/SCALING.md)") from exc


def _reason(exc: BaseException) -> str:
    """One line for a worker failure: our own error's text when a worker raised one."""
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 5:
        if isinstance(cur, UnmixError):
            return str(cur)
        cur = getattr(cur, "cause", None) or cur.__cause__
        seen += 1
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _model_location(args) -> tuple[str, str] | None:
    """``(name, location)`` of a model the workers may not have (a user model or ``--model-file``);
    ``None`` for models every installation has (the package's and the bundled ones)."""
    if args.model_file:
        return Path(args.model_file).name, str(Path(args.model_file).resolve())
    from ..separation.registry import default_model_name, list_models

    name = args.model or default_model_name()
    for info in list_models():
        if info.name == name and info.kind == "user":
            return name, info.location
    return None


class _Pool:
    """The run's workers: start, replace, stop; remembers every worker process id it had."""

    def __init__(self, ray, args, options: dict, threads: int, model: tuple | None) -> None:
        self.ray = ray
        self.cls = ray.remote(SongWorker).options(
            num_cpus=args.cpus_per_task, num_gpus=args.gpus_per_task or None, max_restarts=0,
            max_task_retries=0, scheduling_strategy="SPREAD")
        self.options, self.threads = options, threads
        self.model_ref, self.model_digest, self.model_name = None, "", ""
        if model is not None:
            pack = pack_model(model[1])
            self.model_ref = [ray.put(pack)]  # in a list: the worker fetches it only when it needs it
            self.model_digest, self.model_name = pack["digest"], model[0]
        self.actors: dict[int, Any] = {}  # actor handles
        self.starting: dict = {}  # where() ref -> actor id
        self.idle: list[int] = []
        self.info: dict[int, dict] = {}
        self.pids: set[tuple[str, int]] = set()
        self._next = 0
        self.start_errors: list[str] = []

    def start(self) -> None:
        handle = self.cls.remote(self.options, self.threads, self.model_ref, self.model_digest, self.model_name)
        aid = self._next
        self._next += 1
        self.actors[aid] = handle
        self.starting[handle.where.remote()] = aid

    def started(self, ref) -> None:
        aid = self.starting.pop(ref)
        try:
            info = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            self.start_errors.append(_reason(exc))
            self.actors.pop(aid, None)
            return
        self.info[aid] = info
        self.pids.add((info["host"], int(info["pid"])))
        self.idle.append(aid)

    def drop(self, aid: int) -> None:
        handle = self.actors.pop(aid, None)
        if handle is not None:
            try:
                self.ray.kill(handle, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone: nothing to kill
                pass
        if aid in self.idle:
            self.idle.remove(aid)

    def stop_all(self) -> None:
        for aid in list(self.actors):
            self.drop(aid)


def cluster_capacity(ray, args) -> int:
    """How many workers of this size the cluster holds at once."""
    resources = ray.cluster_resources()
    count = int(resources.get("CPU", 0) // max(args.cpus_per_task, 1))
    if args.gpus_per_task:
        count = min(count, int(resources.get("GPU", 0) // args.gpus_per_task))
    return count


def run_cluster(args, out: Path, warn) -> int:
    from ..commands.separate import (
        _error_line,
        _label,
        _make_separator,
        model_id,
        output_names,
        plan_run,
        summary,
        write_stems,
    )

    ray = import_ray(args.cluster)
    check_reachable(args.cluster)
    if args.jobs > 1:
        print("unmix: note: --jobs is for a local run; with --cluster every worker of the cluster is used",
              file=sys.stderr)
    # the model is loaded once here too: a wrong name or a damaged model is one line before any work
    local = copy.copy(args)
    local.device = "cpu"
    separator = _make_separator(local, threads=1)
    names = output_names(separator, args)
    plan = plan_run(args, out, names, separator.settings, model_id(args), warn)
    del separator
    if not plan.tasks:
        return summary(args, plan.total, 0, plan.skipped, plan.failed)
    options = {k: getattr(args, k) for k in WORKER_OPTIONS}
    if args.gpus_per_task and not args.device:
        options["device"] = "cuda"
    elif not args.device:
        options["device"] = "cpu"
    saved = _signal_handlers()
    RECEIVED.clear()   # this run's signals only
    try:
        host = _host(args.cluster)
        extra = {"_node_ip_address": host} if _loopback(host) and host.startswith("127.") else {}
        ray.init(address=args.cluster, log_to_driver=False, logging_level="ERROR", configure_logging=True,
                 include_dashboard=False, **extra)
    except Exception as exc:
        raise UnmixError(f"cannot reach the Ray cluster at {args.cluster}: {_reason(exc)}") from exc
    finally:
        _restore_signal_handlers(saved)
    try:
        return _run(ray, args, out, plan, names, options, write_stems, _error_line, _label, summary)
    finally:
        try:
            ray.shutdown()
        except Exception:  # noqa: BLE001 - shutting down a broken connection: nothing left to do
            pass


def _run(ray, args, out, plan, names, options, write_stems, _error_line, _label, summary) -> int:
    from ..audio.io import audio_info
    from ..commands.separate import _say

    capacity = cluster_capacity(ray, args)
    if capacity < 1:
        raise UnmixError(f"the Ray cluster at {args.cluster} has no room for a worker of {args.cpus_per_task} "
                         f"CPU(s){f' and {args.gpus_per_task} GPU(s)' if args.gpus_per_task else ''} "
                         f"(it has {ray.cluster_resources()})")
    pool = _Pool(ray, args, options, args.cpus_per_task, _model_location(args))
    records: list[SongRecord] = []
    for path, final_dir, _job in plan.tasks:
        records.append(SongRecord(str(path), str(final_dir)))
    stats = RunStats(total=plan.total, failed=plan.failed)
    for rec in records:
        try:
            info = audio_info(rec.song)
            rec.audio_seconds = info.frames / info.sample_rate if info.sample_rate else None
        except (UnmixError, OSError):
            rec.audio_seconds = None
        stats.audio_total += rec.audio_seconds or 0.0
    pending = list(range(len(plan.tasks)))
    inflight: dict = {}  # ref -> (actor id, task index)
    last_line = 0.0
    tty = sys.stderr.isatty()
    folders = {Path(final_dir).parent for _, final_dir, _ in plan.tasks} | {Path(f) for _, f, _ in plan.tasks}
    no_worker_since: float | None = None

    shown = [""]

    def show(force: bool = False) -> None:
        nonlocal last_line
        now = time.monotonic()
        if args.quiet or (not force and now - last_line < (0.5 if tty else 10.0)):
            return
        last_line = now
        stats.running = len(inflight)
        line = stats.line(now)
        if not tty and force and line.split("|")[0] == shown[0].split("|")[0]:
            return  # the closing line says nothing new
        shown[0] = line
        sys.stderr.write(("\r" if tty else "") + line + ("" if tty else "\n"))
        sys.stderr.flush()

    def fail(i: int, line: str) -> None:
        records[i].status, records[i].error = "failed", line
        stats.failed += 1
        if tty and not args.quiet:
            sys.stderr.write("\n")
        _say(line)

    def finish(i: int, result: dict, aid: int) -> None:
        path, final_dir, job = plan.tasks[i]
        rec = records[i]
        info = pool.info.get(aid, {})
        rec.worker, rec.node = f"{result.get('host', '?')}:{result.get('pid', '?')}", info.get("node", "")
        rec.model_source = info.get("model_source", "")
        for line in result.get("warnings", []):
            _say(f"unmix: warning: {line}")
        if result["status"] != "done":
            fail(i, result["error"])
            return
        if args.ship_audio:  # the driver writes: the local run's writer, the local run's files
            try:
                write_stems(result["stems"], Path(final_dir), args.format, protect=(path,), rate=result["rate"],
                            job=job)
            except (UnmixError, OSError) as exc:
                fail(i, _error_line(exc, Path(path)))
                return
        rec.status, rec.seconds = "done", result["seconds"]
        stats.done += 1
        stats.audio_done += rec.audio_seconds or 0.0
        if not args.quiet:
            if tty:
                sys.stderr.write("\r\033[K")
            _say(f"{_label(Path(path))}: {len(names)} stems -> {final_dir} ({rec.worker}, {rec.seconds:.1f} s)")

    def submit(aid: int, i: int) -> None:
        path, final_dir, job = plan.tasks[i]
        handle = pool.actors[aid]
        records[i].status = "running"
        records[i].attempts += 1
        if args.ship_audio:
            try:
                data = Path(path).read_bytes()
            except OSError as exc:
                fail(i, _error_line(exc, Path(path)))
                pool.idle.append(aid)
                return
            ref = handle.separate_shipped.remote(str(Path(path).resolve()), [ray.put(data)], job)
        else:
            ref = handle.separate.remote(str(Path(path).resolve()), str(Path(final_dir).resolve()), job)
        inflight[ref] = (aid, i)

    try:
        for _ in range(min(capacity, len(plan.tasks))):
            pool.start()
        while pending or inflight:
            while pending and pool.idle:
                submit(pool.idle.pop(0), pending.pop(0))
            waiting = list(inflight) + list(pool.starting)
            if not waiting:  # every worker is gone and none could be started
                if no_worker_since is None:
                    no_worker_since = time.monotonic()
                if pool.start_errors and len(pool.start_errors) >= 2 * capacity:
                    raise UnmixError(f"the workers could not start: {pool.start_errors[-1]}")
                if time.monotonic() - no_worker_since > START_TIMEOUT:
                    raise UnmixError(f"no worker could be started on the Ray cluster at {args.cluster} "
                                     f"for {START_TIMEOUT:.0f} s")
                for _ in range(min(capacity, len(pending)) - len(pool.actors)):
                    pool.start()
                time.sleep(0.2)
                continue
            no_worker_since = None
            ready, _ = ray.wait(waiting, num_returns=1, timeout=0.5)
            for ref in ready:
                if ref in pool.starting:
                    pool.started(ref)
                    if pool.start_errors and not pool.actors:
                        if len(pool.start_errors) >= 2 * capacity:
                            raise UnmixError(f"the workers could not start: {pool.start_errors[-1]}")
                        pool.start()
                    continue
                aid, i = inflight.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:  # a bug in a worker, not a dead one
                    fail(i, f"unmix: error: {plan.tasks[i][0]}: {_reason(exc)}")
                    pool.idle.append(aid)
                    continue
                except ray.exceptions.RayError as exc:  # the worker or its node died: another one tries
                    pool.drop(aid)
                    pool.start()
                    if records[i].attempts >= ATTEMPTS:
                        fail(i, f"unmix: error: {plan.tasks[i][0]}: its worker died {ATTEMPTS} times "
                                f"({_reason(exc)})")
                    else:
                        records[i].status = "pending"
                        pending.insert(0, i)
                    continue
                pool.idle.append(aid)
                finish(i, result, aid)
            show()
    except BaseException as exc:
        # a signal (Stopped / KeyboardInterrupt) or a fatal error: no worker goes on, nothing half-written
        pool.stop_all()
        deadline = time.monotonic() + 30
        while inflight and time.monotonic() < deadline:
            ready, _ = ray.wait(list(inflight), num_returns=len(inflight), timeout=1.0)
            for ref in ready:
                inflight.pop(ref, None)
        _clean(folders, pool)
        if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Stopped) and RECEIVED:
            raise Stopped(RECEIVED[0]) from None
        raise
    _clean(folders, pool)
    pool.stop_all()
    show(force=True)
    if tty and not args.quiet:
        sys.stderr.write("\n")
    report = Path(args.report) if args.report else out / "unmix-cluster-report.json"
    cluster = {"address": args.cluster, "workers": len(pool.info), "cpus_per_task": args.cpus_per_task,
               "gpus_per_task": args.gpus_per_task, "ship_audio": bool(args.ship_audio),
               "resources": {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU", "memory")}}
    try:
        write_report(report, report_dict(stats, records, cluster))
    except OSError as exc:
        print(f"unmix: warning: {report}: could not write the report ({exc.strerror or exc})", file=sys.stderr)
    return summary(args, plan.total, stats.done, plan.skipped, stats.failed)


def _signal_handlers() -> dict:
    """The stop signals' current Python handlers (the command's: stop cleanly)."""
    import signal

    return {sig: signal.getsignal(sig) for sig in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP"))
            if sig is not None}


def _restore_signal_handlers(saved: dict) -> None:
    """``ray.init`` replaces the SIGTERM handler (its own exits without clean-up) and Ray's core worker
    installs C-level ones; the command's own handlers (stop cleanly: workers killed, leftovers
    removed, exit 143) are set again."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    for sig, handler in saved.items():
        if callable(handler):
            signal.signal(sig, _recording(handler))
        elif handler is not None:
            signal.signal(sig, handler)


#: Signals received during a cluster run. Ray turns an exception raised by a signal handler while it
#: waits in its own code into a plain KeyboardInterrupt, losing which signal it was; the run re-raises
#: it as :class:`~unmix_desktop.errors.Stopped` with the signal recorded here (exit 143 for SIGTERM).
RECEIVED: list[int] = []


def _recording(handler):
    def on_signal(signum, frame):
        RECEIVED.append(int(signum))
        handler(signum, frame)

    return on_signal


def _clean(folders, pool) -> None:
    """Remove the temporary files of this run's workers (all gone by now) in the run's folders."""
    pids = {pid for _, pid in pool.pids}
    for folder in folders if pids else ():
        outputs.remove_leftovers(folder, pids)
