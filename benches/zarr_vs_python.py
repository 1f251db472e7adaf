#!/usr/bin/env python3
"""Zarr at file scale: outcore against the Python tools a Dask user has, side by side in one run.

    python benches/zarr_vs_python.py [--gib 4] [--rounds 3] [--data-dir DIR]

(`python` with numpy, zarr, dask and distributed installed.) Data goes to --data-dir, else
$DATA, else target/bench-data; the `outcore` binary is built here with `--features zarr`.

Per round, in this order, each with the files it reads evicted from the page cache first
(fsync + POSIX_FADV_DONTNEED on every file):
  1. `outcore convert x.npy x.zarr --codec zstd:3 --chunks C` (C = 8 MiB of f64 per chunk);
  2. zarr-python writing the same array, same chunks, same codec and level, from
     `np.load(mmap_mode='r')`, in a process of its own (timed as a whole process, as 1 is),
     then fsync of every file it wrote: outcore's output is durable when the command returns
     (the zarrs store syncs each chunk file), so the Python side is timed to the same point;
  3. `outcore stats x.zarr --json` (count, NaN count, sum, mean, std, min, max, argmin, argmax);
  4. Dask on `da.from_zarr(x.zarr)` under `LocalCluster(n_workers=2, processes=True,
     threads_per_worker=1)`, the same nine statistics in one `dask.compute`. The cluster is
     started once, before the rounds, and its start-up is not counted (that favours Dask).
Ratios are taken within each round (Python tool / outcore) and reported as the median with
[min, max] over the rounds. Checks: both Zarr arrays hold the .npy's values, and Dask's
statistics equal outcore's (counts, min, max, argmin, argmax exactly; sum, mean, std to 1e-9
relative: the two sum in different orders).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def evict(path):
    """Drop a file's (or every file under a directory's) pages from the page cache."""
    paths = [path]
    if os.path.isdir(path):
        paths = [os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs]
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def build_outcore():
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "outcore-cli",
                    "--features", "zarr"], cwd=ROOT, check=True)
    return os.path.join(ROOT, "target", "release", "outcore")


def timed(cmd):
    t = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - t, out


ZARR_WRITER = r"""
import os, sys, numpy as np, zarr
from zarr.codecs import ZstdCodec
src, dst, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])
x = np.load(src, mmap_mode="r")
z = zarr.create_array(store=dst, shape=x.shape, chunks=(chunk,), dtype=x.dtype,
                      compressors=ZstdCodec(level=3), zarr_format=3, overwrite=True)
step = chunk * 16
for i in range(0, x.shape[0], step):
    z[i:i + step] = x[i:i + step]
# Durable, as outcore's output is (zarrs syncs every chunk file before it returns).
for d, _, fs in os.walk(dst):
    for f in fs:
        fd = os.open(os.path.join(d, f), os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
"""


def dask_stats(path):
    import dask
    import dask.array as da

    d = da.from_zarr(path)
    count, nans, s, mean, std, lo, hi, amin, amax = dask.compute(
        d.size, da.isnan(d).sum(), d.sum(), d.mean(), d.std(), d.min(), d.max(),
        d.argmin(), d.argmax())
    return {"count": int(count), "nan_count": int(nans), "sum": float(s), "mean": float(mean),
            "std": float(std), "min": float(lo), "max": float(hi), "argmin": int(amin),
            "argmax": int(amax)}


def same_values(npy, zarr_path):
    import zarr

    x = np.load(npy, mmap_mode="r")
    z = zarr.open_array(zarr_path, mode="r")
    step = 1 << 24
    return z.shape == x.shape and z.dtype == x.dtype and all(
        np.array_equal(z[i:i + step], x[i:i + step]) for i in range(0, x.shape[0], step))


def check_stats(ours, theirs):
    for k in ("count", "nan_count", "min", "max", "argmin", "argmax"):
        if ours[k] != theirs[k]:
            raise SystemExit(f"{k}: outcore {ours[k]!r}, dask {theirs[k]!r}")
    for k in ("sum", "mean", "std"):
        if abs(ours[k] - theirs[k]) > 1e-9 * abs(ours[k]):
            raise SystemExit(f"{k}: outcore {ours[k]!r}, dask {theirs[k]!r}")


def med(xs):
    return f"{statistics.median(xs):.2f} [{min(xs):.2f}, {max(xs):.2f}]"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data-dir", default=os.environ.get("DATA")
                    or os.path.join(ROOT, "target", "bench-data"))
    args = ap.parse_args()
    os.makedirs(args.data_dir, exist_ok=True)
    outcore = build_outcore()
    n = int(args.gib * (1 << 30)) // 8
    chunk = 1 << 20  # 8 MiB of f64
    x = os.path.join(args.data_dir, f"zarr_bench_{n}.npy")
    if not os.path.exists(x):
        log(f"generating {x} ({n} normal f64)")
        subprocess.run([outcore, "gen", "--dtype", "f64", "--dist", "normal", "--count", str(n),
                        "--seed", "7", "--out", x, "--quiet"], check=True)
    ours_z = os.path.join(args.data_dir, "zarr_bench_outcore.zarr")
    theirs_z = os.path.join(args.data_dir, "zarr_bench_python.zarr")

    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                           dashboard_address=None)
    client = Client(cluster)
    rows = {"convert_outcore": [], "convert_python": [], "stats_outcore": [], "stats_dask": []}
    try:
        for r in range(args.rounds):
            evict(x)
            t, _ = timed([outcore, "convert", x, ours_z, "--codec", "zstd:3", "--chunks",
                          str(chunk), "--force", "--quiet"])
            rows["convert_outcore"].append(t)
            evict(x)
            t, _ = timed([sys.executable, "-c", ZARR_WRITER, x, theirs_z, str(chunk)])
            rows["convert_python"].append(t)
            evict(ours_z)
            t, out = timed([outcore, "stats", ours_z, "--json", "--quiet"])
            rows["stats_outcore"].append(t)
            ours = json.loads(out)
            evict(ours_z)
            t0 = time.perf_counter()
            theirs = dask_stats(ours_z)
            rows["stats_dask"].append(time.perf_counter() - t0)
            check_stats(ours, theirs)
            log(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in rows.items()))
    finally:
        client.close()
        cluster.close()
    if not (same_values(x, ours_z) and same_values(x, theirs_z)):
        raise SystemExit("a Zarr array does not hold the .npy's values")

    conv = [p / o for p, o in zip(rows["convert_python"], rows["convert_outcore"])]
    stat = [d / o for d, o in zip(rows["stats_dask"], rows["stats_outcore"])]
    gib = n * 8 / (1 << 30)
    print(f"{gib:.2f} GiB of normal f64, cold, {args.rounds} rounds: median [min, max] seconds")
    print("| task | outcore | Python tool | Python tool / outcore |")
    print("|---|---|---|---|")
    print(f"| .npy -> Zarr v3, zstd 3, 8 MiB chunks | {med(rows['convert_outcore'])} "
          f"| zarr-python {med(rows['convert_python'])} | {med(conv)} |")
    print(f"| nine statistics of the Zarr array | {med(rows['stats_outcore'])} "
          f"| Dask, 2 worker processes {med(rows['stats_dask'])} | {med(stat)} |")
    print("checked: both Zarr arrays equal the .npy; Dask's statistics equal outcore's")


if __name__ == "__main__":
    main()
