"""Cost of the stem cache's verification on a 4-minute song.

An entry of a 4-min song holds the decoded mixture and 2 (or 4) stems, float32 (n, 2) at 44.1 kHz:
3 x 84.7 MB (or 5 x 84.7 MB). ``StemCache.get`` checks every file's size and CRC-32 (written into
meta.json by ``put``) before serving it. This prints and writes benchmarks/results/bench_cache.json:

* the throughput of candidate checksums on the same bytes (zlib.crc32, zlib.adler32, hashlib's
  sha1/sha256/blake2b/md5; xxhash when installed), single thread;
* ``put`` and ``get`` wall time (files in the page cache: the verification cost, not the disk's),
  and ``get`` without the checksum (plain ``np.load`` of the same files) for comparison.

    python benchmarks/bench_cache.py [--minutes 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from unmix_desktop.cache import StemCache, make_key  # noqa: E402

SR = 44100


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    n = int(args.minutes * 60 * SR)
    rng = np.random.default_rng(0)
    stem = rng.standard_normal((n, 2)).astype(np.float32)
    view = memoryview(stem).cast("B")
    algos = {
        "crc32": lambda: zlib.crc32(view),
        "adler32": lambda: zlib.adler32(view),
        "sha1": lambda: hashlib.sha1(view).digest(),
        "sha256": lambda: hashlib.sha256(view).digest(),
        "blake2b": lambda: hashlib.blake2b(view).digest(),
        "md5": lambda: hashlib.md5(view).digest(),
    }
    try:
        import xxhash

        algos["xxh3_64"] = lambda: xxhash.xxh3_64(view).digest()
    except ImportError:
        pass
    result = {"minutes": args.minutes, "stem_mb": stem.nbytes / 1e6, "python": platform.python_version(),
              "machine": platform.machine(), "checksum_gb_per_s": {}, "entries": {}}
    print(f"one stem: {stem.nbytes / 1e6:.1f} MB ({args.minutes:g} min, float32 stereo)")
    for name, fn in algos.items():
        dt = best_of(fn, args.repeat)
        result["checksum_gb_per_s"][name] = round(stem.nbytes / dt / 1e9, 2)
        print(f"  {name:8s} {stem.nbytes / dt / 1e9:5.2f} GB/s  {dt * 1000:6.0f} ms per stem")

    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        cache = StemCache(Path(tmp) / "stems", max_bytes=1 << 40)
        for count in (2, 4):
            stems = {f"s{i}": np.roll(stem, i, axis=0) for i in range(count)}
            key = make_key(str(count), "m", "s")
            t_put = best_of(lambda: cache.put(key, stems, stem), args.repeat)
            t_get = best_of(lambda: cache.get(key), args.repeat)
            folder = cache.root / key
            files = sorted(folder.glob("*.npy"))
            t_load = best_of(lambda: [np.load(f) for f in files], args.repeat)
            total = sum(f.stat().st_size for f in files)
            result["entries"][f"{count}_stems"] = {"mb": round(total / 1e6, 1), "put_s": round(t_put, 3),
                                                   "get_verified_s": round(t_get, 3),
                                                   "np_load_unverified_s": round(t_load, 3)}
            print(f"{count} stems + mixture ({total / 1e6:.0f} MB): put {t_put:.2f} s, get (verified) {t_get:.2f} s, "
                  f"plain np.load {t_load:.2f} s")
            assert cache.get(key) is not None
    out = ROOT / "benchmarks" / "results" / "bench_cache.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
