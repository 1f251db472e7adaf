#!/usr/bin/env python3
"""The outcore Python module against numpy, in one run.

    python benches/python_vs_numpy.py [--data-dir DIR] [--n 100000000] [--gib 4]

DIR defaults to $DATA, else target/bench-data in the repository.

Needs the module installed (`pip install ./python`) and numpy. Prints:

  1. `outcore.sort` (2 threads) against `np.sort` (numpy sorts on one thread) on N random
     f64 and u64, each timed on a fresh copy of the same data, best of REPS runs.
  2. `outcore.describe(path)` of a cold GIB GiB f64 .npy file against numpy computing the
     same statistics (count, NaN count, sum, mean, std, min, max, argmin, argmax) on
     `np.load(path, mmap_mode="r")`. Cold: before each, the file is fsynced and its pages
     dropped with POSIX_FADV_DONTNEED (checked with `fincore` when present). Then hot, too.
  3. The overhead of a call on a 1 000-element f64 array (the issue's bar: under 50 µs).
"""

import argparse
import os
import shutil
import subprocess
import time
import timeit

import numpy as np

import outcore


def evict(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def resident(path):
    """fincore's resident size of `path`, or '?' without fincore."""
    if not shutil.which("fincore"):
        return "?"
    out = subprocess.run(["fincore", "-b", "-n", "-o", "RES", path], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def numpy_summary(x):
    return {
        "count": x.size,
        "nan_count": int(np.count_nonzero(np.isnan(x))),
        "sum": float(np.sum(x)),
        "mean": float(np.mean(x)),
        "std": float(np.std(x)),
        "min": float(np.min(x)),
        "max": float(np.max(x)),
        "argmin": int(np.argmin(x)),
        "argmax": int(np.argmax(x)),
    }


def best(f, reps):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_sort(n, reps):
    rng = np.random.default_rng(1)
    print(f"\n## sort: {n:.0e} elements, best of {reps} (fresh copy each run)")
    print("| dtype | np.sort (1 thread) | outcore.sort (2 threads) | speed-up |")
    print("|---|---|---|---|")
    for name, data in [
        ("f64", rng.standard_normal(n)),
        ("u64", rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)),
    ]:
        work = np.empty_like(data)
        want = None

        def run_np():
            nonlocal want
            np.copyto(work, data)
            want = np.sort(work)

        def run_oc():
            np.copyto(work, data)
            outcore.sort(work, threads=2)

        # The copy is timed in both, and subtracted.
        t_copy = best(lambda: np.copyto(work, data), reps)
        t_np = best(run_np, reps) - t_copy
        t_oc = best(run_oc, reps) - t_copy
        assert np.array_equal(work, want), "outcore.sort differs from np.sort"
        del want
        print(f"| {name} | {t_np:.2f} s | {t_oc:.2f} s | {t_np / t_oc:.2f}× |")


def bench_describe(data_dir, gib, reps):
    path = os.path.join(data_dir, f"python_bench_{gib}g.npy")
    n = gib * (1 << 30) // 8
    if not os.path.exists(path) or os.path.getsize(path) < n * 8:
        outcore.generate(path, "f64", "normal", count=n, seed=3)
    print(f"\n## describe: {gib} GiB f64 file ({n} elements), best of {reps}")
    results = {}

    def oc():
        results["outcore"] = outcore.describe(path)

    def npy():
        x = np.load(path, mmap_mode="r")
        results["numpy"] = numpy_summary(x)
        del x

    rows = []
    for label, f in [("outcore.describe(path)", oc), ("numpy on np.load(mmap_mode='r')", npy)]:
        cold = []
        for _ in range(reps):
            evict(path)
            res = resident(path)
            t = time.perf_counter()
            f()
            cold.append(time.perf_counter() - t)
        hot = best(f, reps)
        rows.append((label, min(cold), hot, res))
    o, w = results["outcore"], results["numpy"]
    for k in ["count", "nan_count", "min", "max", "argmin", "argmax"]:
        assert o[k] == w[k], (k, o[k], w[k])
    for k in ["sum", "mean", "std"]:
        assert abs(o[k] - w[k]) <= 1e-9 * max(1.0, abs(w[k])) * 1e3, (k, o[k], w[k])
    print("| what | cold | hot | resident before the cold run |")
    print("|---|---|---|---|")
    for label, c, h, res in rows:
        print(f"| {label} | {c:.2f} s | {h:.2f} s | {res} |")
    print(f"| ratio numpy / outcore | {rows[1][1] / rows[0][1]:.2f}× | {rows[1][2] / rows[0][2]:.2f}× | |")


def bench_overhead():
    x = np.arange(1000, dtype=np.float64)
    print("\n## overhead of one call on a 1 000-element f64 array (best of 7 × 10 000 calls)")
    print("| call | µs per call |")
    print("|---|---|")
    for label, f in [
        ("outcore.describe(x)", lambda: outcore.describe(x)),
        ("outcore.percentile(x, 50)", lambda: outcore.percentile(x, 50)),
        ("outcore.sort(x) (sorted input)", lambda: outcore.sort(x)),
        ("outcore.argsort(x)", lambda: outcore.argsort(x)),
        ("np.percentile(x, 50)", lambda: np.percentile(x, 50)),
        ("np.sort(x)", lambda: np.sort(x)),
    ]:
        t = min(timeit.repeat(f, number=10_000, repeat=7)) / 10_000
        print(f"| {label} | {t * 1e6:.1f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    data = os.environ.get("DATA") or os.path.join(root, "target", "bench-data")
    ap.add_argument("--data-dir", default=data)
    ap.add_argument("--n", type=int, default=100_000_000)
    ap.add_argument("--gib", type=int, default=4)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma-separated: sort, describe, overhead")
    a = ap.parse_args()
    os.makedirs(a.data_dir, exist_ok=True)
    skip = set(a.skip.split(","))
    print(f"outcore {outcore.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs")
    if "overhead" not in skip:
        bench_overhead()
    if "sort" not in skip:
        bench_sort(a.n, a.reps)
    if "describe" not in skip:
        bench_describe(a.data_dir, a.gib, a.reps)


if __name__ == "__main__":
    main()
