"""The glibc allocator settings of a Demucs run (separation/allocator.py): applied in the process that runs
the engine (big blocks come from the heap, not from a fresh mmap each), and the memory handed back to the
system when the run ends. Each case runs in a fresh interpreter: the settings are process-wide."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
                                reason="glibc malloc settings (Linux/glibc only)")

CHILD = textwrap.dedent(r"""
    import ctypes, json, os, sys, threading
    from fractions import Fraction
    import numpy as np
    import torch
    from unmix_desktop.separation import allocator
    from unmix_desktop.separation.demucs import DemucsModel, stream_demucs

    class Info(ctypes.Structure):  # glibc's struct mallinfo2
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                   "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = Info
    PAGE = os.sysconf("SC_PAGE_SIZE")

    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE / 2**20

    def mmapped_by(nbytes):
        # bytes of mmapped blocks while an array of nbytes (numpy data comes from malloc) is alive
        before = libc.mallinfo2().hblkhd
        a = np.ones(nbytes // 8)
        during = libc.mallinfo2().hblkhd
        del a
        return during - before

    class BigTemp(torch.nn.Module):
        # a stand-in network whose every segment touches a temporary of argv[2] MB, then frees it
        sources = ["drums", "bass", "other", "vocals"]
        samplerate = 44100
        audio_channels = 2
        segment = Fraction(1)
        rss_in_run = 0.0

        def forward(self, mix):
            tmp = torch.ones(int(sys.argv[2]) * 2**20 // 4)
            out = mix[:, None].expand(-1, 4, -1, -1) * 0.25 + tmp[:1] - 1
            del tmp
            BigTemp.rss_in_run = max(BigTemp.rss_in_run, rss_mb())
            return out

    report = {"applied_before": allocator.applied(), "mmapped_before": mmapped_by(100 * 2**20)}
    mix = np.random.default_rng(0).standard_normal((44100 * 3, 2)).astype(np.float32) * 0.1
    model = DemucsModel([BigTemp()], None, {"name": "bigtemp"})
    rss0 = rss_mb()
    out = {}

    def run():
        for offset, blocks in stream_demucs(model, mix, threads=1):
            out[offset] = blocks["vocals"]

    if sys.argv[1] == "thread":  # the window's background pass runs the engine on a worker thread
        t = threading.Thread(target=run)
        t.start()
        t.join()
    else:
        run()
    got = np.concatenate([out[k] for k in sorted(out)])
    report.update(rss_before=rss0, rss_in_run=BigTemp.rss_in_run, rss_after=rss_mb(),
                  applied_after=allocator.applied(), max_err=float(np.abs(got - mix * 0.25).max()))
    report["mmapped_after"] = mmapped_by(100 * 2**20)  # (after the RSS: this block stays in the heap)
    print(json.dumps(report))
""")


def run_child(mode: str, temp_mb: int, **env) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, mode, str(temp_mb)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT), **env})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# on a worker thread glibc serves a block over 64 MB (a thread arena's heap size) by mmap whatever the
# settings, so the thread case uses a 48 MB temporary
@pytest.mark.parametrize("mode,temp_mb", [("main", 300), ("thread", 48)])
def test_settings_applied_by_the_engine_and_memory_returned_after(mode, temp_mb):
    r = run_child(mode, temp_mb)
    assert r["max_err"] < 1e-4  # the stand-in network's output came through
    assert not r["applied_before"] and r["mmapped_before"] >= 100 * 2**20  # glibc default: a big block is mmapped
    assert r["applied_after"] and r["mmapped_after"] == 0  # set by the run: big blocks come from the heap
    # during the run the freed temporary stays in the process (no mmap/munmap and page faults per
    # segment); when the run ends it is given back
    assert r["rss_in_run"] - r["rss_before"] > temp_mb * 0.8, r
    # most of it comes back when the run ends. (Not "RSS back to where it was": what else the run left
    # resident, e.g. modules it imported and a thread arena's fragments, varies with the code around it:
    # 23 MB on one commit, 50 MB on the next, for the same 48 MB temporary on a worker thread.)
    assert r["rss_in_run"] - r["rss_after"] > temp_mb * 0.5, r
    assert r["rss_after"] - r["rss_before"] < temp_mb * 0.5 + 40, r


def test_turned_off_by_the_environment():
    r = run_child("main", 300, UNMIX_MALLOC_TUNE="0")
    assert not r["applied_after"] and r["mmapped_after"] >= 100 * 2**20
    assert r["max_err"] < 1e-4


def test_a_full_collection_only_after_a_run_that_stopped(monkeypatch):
    """A run that ends normally frees its tensors by reference counting: no full garbage collection (it holds
    the GIL ~0.4 s with torch and Qt loaded, an audible gap in the window playing the song whose best-quality
    pass just ended). A run that stopped (cancel, error) may leave cycles holding tensors: collected first."""
    import gc

    from unmix_desktop.separation import allocator

    calls = []
    monkeypatch.setattr(allocator, "apply_settings", lambda: True)   # (not this test process's real malloc)
    monkeypatch.setattr(allocator, "release_memory", lambda: calls.append("trim") or True)
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append("collect") or 0)
    with allocator.tuned_allocator() as ok:
        assert ok
    assert calls == ["trim"]
    calls.clear()
    with pytest.raises(RuntimeError):
        with allocator.tuned_allocator():
            raise RuntimeError("cancelled")
    assert calls == ["collect", "trim"]
    calls.clear()
    with allocator.tuned_allocator():   # nested: only the outermost one trims
        with allocator.tuned_allocator():
            pass
        assert calls == []
    assert calls == ["trim"]
