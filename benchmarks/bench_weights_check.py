"""What verifying the Spleeter weights copy costs at load (issue 21): the two safetensors copies
read without a check (as before), with the CRC-32 recorded when the copy was made (what the app
does), and with SHA-256 instead, interleaved round by round so machine load hits all three alike.

    python benchmarks/bench_weights_check.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time

os.environ.setdefault("UNMIX_CACHE_DIR", tempfile.mkdtemp(prefix="unmix-bench-"))

from safetensors.numpy import load_file

from unmix_desktop.separation import spleeter as sp


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    paths = list(sp.spleeter_weights_paths().values())
    copies = []
    for path in paths:
        sp.load_checkpoint_cached(path)  # makes the verified copy
        copies.append(sp._converted_path(path))
    size = sum(c.stat().st_size for c in copies)

    def unchecked():  # what the loader did before
        return [load_file(str(c)) for c in copies]

    def crc32():
        return [sp._read_copy(c) for c in copies]

    def sha256():
        out = []
        for c in copies:
            arrays = load_file(str(c))
            h = hashlib.sha256()
            for name in sorted(arrays):
                h.update(memoryview(arrays[name]).cast("B"))
            h.hexdigest()
            out.append(arrays)
        return out

    times: dict[str, list[float]] = {"unchecked": [], "crc32": [], "sha256": []}
    for _ in range(args.rounds):
        for name, fn in (("unchecked", unchecked), ("crc32", crc32), ("sha256", sha256)):
            t = time.perf_counter()
            assert all(a is not None for a in fn())
            times[name].append(time.perf_counter() - t)
    base = statistics.median(times["unchecked"])
    print(f"two Spleeter copies, {size / 1e6:.0f} MB, {args.rounds} interleaved rounds (median):")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"  {name:9s} {med * 1000:7.1f} ms  (+{(med - base) * 1000:6.1f} ms over unchecked)")


if __name__ == "__main__":
    main()
