#!/usr/bin/env python3
"""outcore on more than one machine, with Dask: two recipes that run.

(a) Statistics across workers. The driver turns a .npy into a Zarr array with
    `outcore convert x.npy x.zarr`; Dask (`dask.array.from_zarr`) then computes mean, std,
    min, max and a histogram on the cluster's workers, each worker decoding the chunks it is
    given straight from the Zarr directory. The results are compared with
    `outcore stats x.zarr --json` (one machine, chunk by chunk).

(b) A global sort of an array larger than any one worker's memory budget, across workers:
    1. the driver samples splitters: `outcore stats x.npy --percentiles ...` gives the exact
       k-1 quantiles that cut the data into k key ranges of about equal size;
    2. each worker (one task per shard, `client.map`) reads the input with numpy's memmap,
       block by block, keeps the values of its key range and writes them as its shard
       `shard-i.npy`, then runs `outcore sort shard-i.npy shard-i.sorted.npy --memory BUDGET`
       (an external sort within BUDGET) and returns the sorted shard's path;
    3. the driver checks that every shard is sorted, that shard i ends where shard i+1 starts,
       and that the shards concatenated equal `np.sort(x)` (this last check loads the whole
       array on the driver: skip it with --no-check for data larger than the driver's memory).
    Shard i holds the values v with s[i-1] < v <= s[i] (s: the splitters); NaN goes to the
    last shard, where `outcore sort` puts it last, as np.sort does.

What runs where:
  * the driver (this script): writes the input, runs `outcore convert` and `outcore stats`,
    submits tasks, checks results;
  * the scheduler (`dask scheduler`, or the LocalCluster this script starts): hands tasks to
    workers;
  * the workers (`dask worker`): compute the Dask statistics, cut the shards and run
    `outcore sort` on them, each with its own memory budget;
  * the data: every path (the input, the Zarr array, the shards) is in --data-dir, which
    every machine must see at the same path: a shared filesystem (NFS, Lustre, CephFS, ...).
    Recipe (a) also works from an object store (`dask.array.from_zarr("s3://bucket/x.zarr")`
    with s3fs installed, after copying the Zarr directory there); recipe (b) as written needs
    the shared filesystem, since `outcore sort` reads and writes local paths (with an object
    store, a worker would download its key range to local scratch, sort it there and upload
    the sorted shard).

Run it on one machine (a LocalCluster of 2 worker processes, 1 thread each):
    cargo build --release -p outcore-cli --features zarr
    python examples/scale_out.py --outcore target/release/outcore --n 2000000

On a real cluster:
    dask scheduler                                  # on the scheduler machine
    dask worker tcp://SCHEDULER:8786 --nthreads 1   # on each worker machine
    python examples/scale_out.py --scheduler tcp://SCHEDULER:8786 \\
        --data-dir /shared/outcore-demo --outcore /shared/bin/outcore \\
        --n 2000000000 --worker-memory 2GiB --no-check
The `outcore` binary must exist at the --outcore path on every worker (built with
`--features zarr` for the driver's Zarr steps), and Python on the workers needs numpy.

Exit status 0 when every check passes, 1 on a mismatch.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

BLOCK = 1 << 20  # elements per block when workers scan the input


def run(cmd):
    """Runs a command, returns its stdout; on failure prints its stderr and raises."""
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stderr}")
    return r.stdout


def fail(msg):
    print(f"MISMATCH: {msg}", file=sys.stderr)
    sys.exit(1)


def write_input(path, n, seed=1):
    """The input: n float64 values (normal, with repeated values), written block by block."""
    rng = np.random.default_rng(seed)
    x = np.lib.format.open_memmap(path, mode="w+", dtype="<f8", shape=(n,))
    for a in range(0, n, BLOCK):
        b = min(a + BLOCK, n)
        v = rng.standard_normal(b - a)
        v[::97] = np.round(v[::97], 1)  # duplicates, which straddle the splitters
        x[a:b] = v
    x.flush()
    del x


# ---------------------------------------------------------------------------------------
# (a) statistics with Dask on the workers, compared with `outcore stats`


def stats_recipe(client, outcore, data_dir, x_path):
    import dask
    import dask.array as da

    z_path = os.path.join(data_dir, "x.zarr")
    run([outcore, "convert", x_path, z_path, "--chunks", "262144", "--codec", "zstd",
         "--force", "--quiet"])
    t = time.time()
    d = da.from_zarr(z_path)
    mean, std, lo, hi = dask.compute(d.mean(), d.std(), d.min(), d.max())
    counts, _ = da.histogram(d, bins=16, range=(float(lo), float(hi)))
    counts = counts.compute()
    print(f"(a) dask on {len(client.scheduler_info()['workers'])} workers: "
          f"{d.numblocks[0]} chunks, {time.time() - t:.2f} s")
    ours = json.loads(run([outcore, "stats", z_path, "--json", "--bins", "16", "--quiet"]))
    print(f"    mean {mean:.12g} std {std:.12g} min {lo:.12g} max {hi:.12g}")
    for key, got, rel in (("mean", mean, 1e-9), ("std", std, 1e-9), ("min", lo, 0.0),
                          ("max", hi, 0.0)):
        want = ours[key]
        if abs(got - want) > rel * max(abs(want), 1e-300):
            fail(f"{key}: dask {got!r}, outcore stats {want!r}")
    if counts.tolist() != ours["histogram"]["counts"]:
        fail(f"histogram: dask {counts.tolist()}, outcore stats {ours['histogram']['counts']}")
    print("    dask's mean, std, min, max and histogram equal `outcore stats x.zarr`")


# ---------------------------------------------------------------------------------------
# (b) a global sort across workers


def shard_and_sort(i, x_path, splitters, data_dir, outcore, memory):
    """On a worker: cut shard i (the values v with s[i-1] < v <= s[i]) out of the input with
    numpy's memmap, block by block, then sort it with `outcore sort` within `memory`."""
    x = np.load(x_path, mmap_mode="r")
    lo = splitters[i - 1] if i > 0 else None
    hi = splitters[i] if i < len(splitters) else None

    def keep(v):
        m = np.ones(len(v), dtype=bool)
        if lo is not None:
            m &= ~(v <= lo)  # NaN is never <= anything: it lands in the last shard
        if hi is not None:
            m &= v <= hi
        return m

    count = sum(int(keep(x[a:a + BLOCK]).sum()) for a in range(0, len(x), BLOCK))
    shard = os.path.join(data_dir, f"shard-{i}.npy")
    out = np.lib.format.open_memmap(shard, mode="w+", dtype=x.dtype, shape=(count,))
    pos = 0
    for a in range(0, len(x), BLOCK):
        v = x[a:a + BLOCK]
        v = v[keep(v)]
        out[pos:pos + len(v)] = v
        pos += len(v)
    out.flush()
    del out
    sorted_path = os.path.join(data_dir, f"shard-{i}.sorted.npy")
    run([outcore, "sort", shard, sorted_path, "--memory", memory, "--force", "--quiet"])
    os.remove(shard)
    return sorted_path, count


def sort_recipe(client, outcore, data_dir, x_path, shards, memory, check):
    t = time.time()
    pcts = [100.0 * i / shards for i in range(1, shards)]
    splitters = []
    if pcts:
        s = json.loads(run([outcore, "stats", x_path, "--json", "--quiet", "--percentiles",
                            ",".join(repr(p) for p in pcts)]))
        # A NaN percentile (null) means NaN reaches below it: its shard takes everything up
        # to +inf, the later ones only NaN.
        splitters = [np.inf if v is None else float(v) for v in s["percentiles"].values()]
    print(f"(b) {shards} shards, splitters {[round(v, 6) for v in splitters]}")
    futures = client.map(shard_and_sort, range(shards), x_path=x_path, splitters=splitters,
                         data_dir=data_dir, outcore=outcore, memory=memory, pure=False)
    results = client.gather(futures)
    sizes = [c for _, c in results]
    print(f"    shard sizes {sizes}, sorted on the workers with `outcore sort --memory "
          f"{memory}` in {time.time() - t:.2f} s")
    x = np.load(x_path, mmap_mode="r")
    if sum(sizes) != len(x):
        fail(f"the shards hold {sum(sizes)} values, the input {len(x)}")
    prev = None
    for path, _ in results:
        y = np.load(path, mmap_mode="r")
        if len(y) == 0:
            continue
        body = y[~np.isnan(y)] if y.dtype.kind == "f" else y
        if len(body) > 1 and not np.all(body[:-1] <= body[1:]):
            fail(f"{path} is not sorted")
        if prev is not None and not (prev <= y[0] or np.isnan(y[0])):
            fail(f"{path} starts at {y[0]}, below the end of the shard before it ({prev})")
        if len(body):
            prev = body[-1]
    if check:
        got = np.concatenate([np.load(p) for p, _ in results])
        if not np.array_equal(got, np.sort(np.load(x_path)), equal_nan=True):
            fail("the concatenated shards differ from np.sort(x)")
        print("    the concatenated shards equal np.sort(x)")
    else:
        print("    every shard is sorted and the shards follow each other (--no-check: "
              "np.sort skipped)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scheduler", metavar="ADDRESS",
                    help="a Dask scheduler, e.g. tcp://host:8786 [default: start a "
                         "LocalCluster of 2 worker processes]")
    ap.add_argument("--data-dir", metavar="DIR",
                    help="a directory every worker sees at the same path [default: a new "
                         "temporary directory, removed afterwards: fine for a LocalCluster]")
    ap.add_argument("--outcore", metavar="PATH",
                    help="the outcore binary, built with --features zarr [default: "
                         "target/release/outcore, else outcore on PATH]")
    ap.add_argument("--n", type=int, default=2_000_000, help="elements of the input")
    ap.add_argument("--shards", type=int,
                    help="key ranges of the global sort [default: one per worker]")
    ap.add_argument("--worker-memory", default="4MiB", metavar="SIZE",
                    help="each worker's `outcore sort --memory` [default: 4MiB]")
    ap.add_argument("--no-check", action="store_true",
                    help="skip the np.sort comparison (it loads the input on the driver)")
    args = ap.parse_args()

    outcore = args.outcore
    if outcore is None:
        here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target",
                            "release", "outcore")
        outcore = here if os.path.exists(here) else shutil.which("outcore")
    if not outcore:
        ap.error("no outcore binary: build it with `cargo build --release -p outcore-cli "
                 "--features zarr` or pass --outcore")
    outcore = os.path.abspath(outcore)

    from dask.distributed import Client, LocalCluster

    own_dir = args.data_dir is None
    data_dir = tempfile.mkdtemp(prefix="outcore-scale-out-") if own_dir else args.data_dir
    os.makedirs(data_dir, exist_ok=True)
    cluster = None
    try:
        if args.scheduler:
            client = Client(args.scheduler)
        else:
            cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                   dashboard_address=None)
            client = Client(cluster)
        workers = len(client.scheduler_info()["workers"])
        x_path = os.path.join(data_dir, "x.npy")
        write_input(x_path, args.n)
        print(f"input: {args.n} float64 ({args.n * 8 / 2**20:.1f} MiB) in {data_dir}; "
              f"{workers} workers, each sorting within {args.worker_memory}")
        stats_recipe(client, outcore, data_dir, x_path)
        sort_recipe(client, outcore, data_dir, x_path, args.shards or workers,
                    args.worker_memory, not args.no_check)
        client.close()
    finally:
        if cluster is not None:
            cluster.close()
        if own_dir:
            shutil.rmtree(data_dir, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    main()
