#!/usr/bin/env python3
"""File-scale kernel benchmark: outcore against the machine, numpy and a plain loop, in one run.

What criterion cannot do: a file of several GiB, hot and cold page cache, `dd`, numpy on the
same file, and a run under a memory cap. Every figure in the printed tables is measured by
this one run; ratios compare figures taken minutes apart at most.

    python3 benches/kernels_vs_numpy.py [--data-dir DIR] --gib 4   # a python with numpy

DIR defaults to $DATA, else target/bench-data in the repository. The memory cap runs under
$MEMCAP, by default ../shared/tools/memcap beside the repository.

Steps
  1. Create DATA_DIR/kernels_bench.npy (normal f64, GIB GiB) unless it exists; warm the disk
     for writes (write and delete a file of the same size) before map-into-new-file is timed.
  2. Hot: run `kernels_file hot` (memory read/copy bandwidth on 2 threads over 1 GiB
     buffers, single-threaded plain loops over a 1 GiB Vec, every kernel on the mapped file,
     chunk-size sweep), then numpy on the same file (`np.load(mmap_mode='r')`).
  3. Cold: before each measurement, evict the file's pages (fsync + POSIX_FADV_DONTNEED):
     `dd bs=8M`, each kernel in outcore and in numpy, sum with each access hint; the whole
     round is repeated COLD_REPS times and each figure is its best (the disk is shared).
  4. Memory cap: `memcap CAP -- kernels_file stream` (windows released behind) on the file
     4x larger than the cap, and the same uncapped; results must be bit-identical and the
     cap's peak below the cap. Also once without releasing, for comparison.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MEMCAP = os.environ.get("MEMCAP") or os.path.join(ROOT, "..", "shared", "tools", "memcap")
DATA = os.environ.get("DATA") or os.path.join(ROOT, "target", "bench-data")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def bench_exe():
    out = subprocess.run(
        ["cargo", "bench", "-p", "outcore-bench", "--bench", "kernels_file", "--no-run", "--message-format=json"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "kernels_file" \
                and msg.get("executable"):
            return msg["executable"]
    raise SystemExit("kernels_file bench executable not found")


def parse(out):
    res = {}
    for line in out.splitlines():
        parts = line.split(" ", 3)
        if len(parts) >= 3 and re.match(r"^[0-9.]+$", parts[1]):
            name, secs, nbytes = parts[0], float(parts[1]), int(parts[2])
            res[name] = {"secs": secs, "bytes": nbytes, "gbps": nbytes / secs / 1e9,
                         "result": parts[3] if len(parts) > 3 else ""}
    return res


def evict(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def cached_pages(path):
    try:
        out = subprocess.run(["fincore", "-b", "-n", "-o", "RES", path],
                             capture_output=True, text=True).stdout.strip()
        return int(out or 0)
    except (OSError, ValueError):
        return -1


def make_file(path, gib):
    n = int(gib * 2**30) // 128 * 16
    if os.path.exists(path) and os.path.getsize(path) >= n * 8:
        return
    log(f"creating {path} ({gib} GiB of normal f64)")
    rng = np.random.default_rng(1)
    a = np.lib.format.open_memmap(path + ".tmp", mode="w+", dtype="<f8", shape=(n,))
    step = 1 << 24
    for i in range(0, n, step):
        a[i:i + step] = rng.standard_normal(min(step, n - i))
    a.flush()
    del a
    os.replace(path + ".tmp", path)


def warm_disk(data_dir, nbytes):
    """Write and delete a file of the same size, so that timed writes go to used space."""
    tmp = os.path.join(data_dir, "warm.tmp")
    log("warming the disk for writes")
    subprocess.run(["dd", "if=/dev/zero", f"of={tmp}", "bs=8M",
                    f"count={nbytes // (8 << 20)}", "conv=fsync"], check=True,
                   capture_output=True)
    os.remove(tmp)


def best(runs, f):
    t_best, r = float("inf"), None
    for _ in range(runs):
        t = time.perf_counter()
        r = f()
        t_best = min(t_best, time.perf_counter() - t)
    return t_best, r


def numpy_kernels(path, data_dir, runs):
    """numpy's way of computing what each outcore kernel computes, on the same file."""
    a = np.load(path, mmap_mode="r")
    nbytes = a.nbytes
    res = {}

    def rec(name, f, n=runs):
        t, r = best(n, f)
        res[name] = {"secs": t, "bytes": nbytes, "gbps": nbytes / t / 1e9, "result": repr(r)[:60]}
        log(f"numpy {name}: {nbytes / t / 1e9:.2f} GB/s")

    a.sum()  # warm
    rec("sum", lambda: float(a.sum()))
    rec("min_max", lambda: (float(a.min()), float(a.max())))
    rec("mean_var", lambda: (float(a.mean()), float(a.var())))
    rec("argmin", lambda: int(a.argmin()))
    rec("count", lambda: int(np.count_nonzero(a > 0)))
    rec("histogram", lambda: int(np.histogram(a, 100, (-5.0, 5.0))[0][50]))
    m = a.reshape(-1, 16)
    rec("axis0_stats_16col",
        lambda: (m.sum(0)[0], m.min(0)[0], m.max(0)[0], m.var(0)[0], float(m.mean(0)[0])))
    buf = np.empty_like(a)
    buf[:] = 0.0
    rec("cumsum_into", lambda: float(np.cumsum(a, out=buf)[-1]))
    del buf
    rec("filter_into", lambda: len(a[a > 0]))
    del a, m
    w = np.load(path, mmap_mode="r+")
    rec("map_in_place", lambda: np.negative(w, out=w) is w, n=2 * ((runs + 1) // 2))
    del w
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)  # write the in-place runs back before timing a writer
    os.close(fd)
    a = np.load(path, mmap_mode="r")
    out = os.path.join(data_dir, "kernels_bench_numpy_out.npy")

    def map_to_file():
        o = np.lib.format.open_memmap(out, mode="w+", dtype="<f8", shape=a.shape)
        np.multiply(a, 2.0, out=o)
        o.flush()
        del o
        fd = os.open(out, os.O_RDONLY)
        os.fsync(fd)  # outcore's persist syncs too
        os.close(fd)

    rec("map_to_file", map_to_file, n=2)
    os.remove(out)
    return res


def numpy_cold(path, kernel):
    evict(path)
    code = f"""
import time, numpy as np
t = time.perf_counter()
a = np.load({path!r}, mmap_mode={'r+' if kernel == 'map_in_place' else 'r'!r})
k = {kernel!r}
if k == "sum": r = a.sum()
elif k == "min_max": r = (a.min(), a.max())
elif k == "mean_var": r = (a.mean(), a.var())
elif k == "map_in_place": np.negative(a, out=a); r = 0
print(time.perf_counter() - t, a.nbytes)
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.split()
    secs, nbytes = float(out[0]), int(out[1])
    return {"secs": secs, "bytes": nbytes, "gbps": nbytes / secs / 1e9}


def rust_cold(exe, path, kernel, variant):
    evict(path)
    r = parse(subprocess.run([exe, "cold", path, kernel, variant], check=True,
                             capture_output=True, text=True).stdout)
    return next(iter(r.values()))


def dd_cold(path):
    evict(path)
    t = time.perf_counter()
    subprocess.run(["dd", f"if={path}", "of=/dev/null", "bs=8M"], check=True,
                   capture_output=True)
    secs = time.perf_counter() - t
    n = os.path.getsize(path)
    return {"secs": secs, "bytes": n, "gbps": n / secs / 1e9}


def memcap_run(exe, path, cap_mb, release):
    evict(path)
    args = [exe, "stream", path, "release" if release else "keep"]
    p = subprocess.run(["bash", MEMCAP, str(cap_mb), "--"] + args, capture_output=True,
                       text=True)
    m = re.search(r"max_usage_mb=(\d+).*oom_kill=(\S+) rc=(\S+)", p.stderr)
    return parse(p.stdout).get("stream_stats"), m.groups() if m else None, p


def fmt(x, d=2):
    return f"{x:.{d}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=DATA)
    ap.add_argument("--gib", type=float, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cold-reps", type=int, default=3, help="cold measurements: best of N")
    ap.add_argument("--cap-mb", type=int, default=0, help="memory cap (default: file size / 4)")
    ap.add_argument("--keep", action="store_true", help="keep the data file afterwards")
    args = ap.parse_args()
    os.makedirs(args.data_dir, exist_ok=True)
    path = os.path.join(args.data_dir, "kernels_bench.npy")
    load = open("/proc/loadavg").read().split()[:3]
    log(f"load average at start: {' '.join(load)}")
    exe = bench_exe()
    make_file(path, args.gib)
    nbytes = os.path.getsize(path)
    warm_disk(args.data_dir, nbytes)

    # ---- hot ----
    subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)
    log("outcore hot ...")
    rs = parse(subprocess.run([exe, "hot", path, args.data_dir, "1024"], check=True,
                              capture_output=True, text=True).stdout)
    log("numpy hot ...")
    npr = numpy_kernels(path, args.data_dir, max(2, args.runs - 1))

    # ---- cold ----
    log("cold ...")
    # The disk is shared: interleave the measurements and keep each one's best of N.
    cold = {}

    def keep(name, r):
        if name not in cold or r["gbps"] > cold[name]["gbps"]:
            cold[name] = r

    for _ in range(args.cold_reps):
        keep("dd", dd_cold(path))
        for k in ["sum", "min_max", "mean_var", "map_in_place"]:
            keep("rs_" + k, rust_cold(exe, path, k, "plain"))
            keep("np_" + k, numpy_cold(path, k))
        for v in ["sequential", "willneed", "release", "windows", "windows_release"]:
            keep("sum_" + v, rust_cold(exe, path, "sum", v))
    cold["sum_plain"] = cold["rs_sum"]

    # ---- memory cap ----
    cap = args.cap_mb or (nbytes >> 20) // 4
    log(f"memcap {cap} MiB ...")
    evict(path)
    free = parse(subprocess.run([exe, "stream", path, "release"], check=True,
                                capture_output=True, text=True).stdout)["stream_stats"]
    capped, rep, _ = memcap_run(exe, path, cap, True)
    capped_keep, rep_keep, _ = memcap_run(exe, path, cap, False)
    load_end = open("/proc/loadavg").read().split()[:3]

    # ---- report ----
    bw_read, bw_copy = rs["bw_read_2t"]["gbps"], rs["bw_copy_2t"]["gbps"]
    plain = {"sum": "plain_sum", "min_max": "plain_min_max", "mean_var": "plain_mean_var",
             "argmin": "plain_argmin", "count": "plain_count",
             "map_in_place": "plain_map_in_place"}
    writes = {"map_in_place", "map_to_file", "cumsum_into", "filter_into"}
    L = []
    L.append(f"File: {nbytes / 2**30:.1f} GiB of f64 (`{path}`); load average "
             f"{' '.join(load)} at start, {' '.join(load_end)} at end.")
    L.append(f"Machine, same run: 2-thread read {fmt(bw_read)} GB/s, 2-thread copy "
             f"{fmt(bw_copy)} GB/s; cold `dd bs=8M` {fmt(cold['dd']['gbps'])} GB/s "
             f"(best of {args.cold_reps}).")
    L.append("")
    L.append(f"Hot cache (file in the page cache; best of {args.runs} for outcore, of {max(2, args.runs - 1)} for numpy), GB/s of input:")
    L.append("")
    L.append("| kernel | outcore | of read/copy bw | numpy | outcore / numpy | plain 1-thread loop | outcore / plain |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    for k in ["sum", "min_max", "mean_var", "argmin", "count", "histogram",
              "axis0_stats_16col", "cumsum_into", "filter_into", "map_in_place", "map_to_file"]:
        o = rs[k]["gbps"]
        n = npr[k]["gbps"]
        bw = bw_copy if k in writes else bw_read
        pl = rs.get(plain.get(k, ""), {}).get("gbps")
        L.append(f"| {k} | {fmt(o)} | {fmt(100 * o / bw, 0)}% {'copy' if k in writes else 'read'} | "
                 f"{fmt(n)} | {fmt(o / n, 1)}x | {fmt(pl) if pl else '-'} | "
                 f"{fmt(o / pl, 1) + 'x' if pl else '-'} |")
    L.append(f"| (through a mapping) map_to_file | {fmt(rs['map_to_file_mapped']['gbps'])} | | | {fmt(rs['map_to_file_mapped']['gbps'] / npr['map_to_file']['gbps'], 1)}x | | |")
    L.append(f"| (Vec) sum | {fmt(rs['vec_sum']['gbps'])} | {fmt(100 * rs['vec_sum']['gbps'] / bw_read, 0)}% read | | | | |")
    L.append(f"| (Vec) map_in_place | {fmt(rs['vec_map_in_place']['gbps'])} | {fmt(100 * rs['vec_map_in_place']['gbps'] / bw_copy, 0)}% copy | | | | |")
    L.append("")
    L.append(f"Cold cache (file evicted before each run; best of {args.cold_reps} interleaved runs), GB/s:")
    L.append("")
    L.append("| kernel | outcore | of dd | numpy | outcore / numpy |")
    L.append("|---|---:|---:|---:|---:|")
    dd = cold["dd"]["gbps"]
    for k in ["sum", "min_max", "mean_var", "map_in_place"]:
        o, n = cold["rs_" + k]["gbps"], cold["np_" + k]["gbps"]
        L.append(f"| {k} | {fmt(o)} | {fmt(100 * o / dd, 0)}% | {fmt(n)} | {fmt(o / n, 1)}x |")
    L.append("")
    L.append("Cold sum by access hint: " + ", ".join(
        f"{v} {fmt(cold['sum_' + v]['gbps'])} GB/s ({fmt(100 * cold['sum_' + v]['gbps'] / dd, 0)}% of dd)"
        for v in ["plain", "sequential", "willneed", "release", "windows", "windows_release"]) + ".")
    L.append("")
    L.append("Chunk size (hot file, GB/s):")
    L.append("")
    L.append("| chunk | sum | mean_var | map_in_place |")
    L.append("|---:|---:|---:|---:|")
    for kib in [64, 256, 1024, 4096, 16384, 65536]:
        c = lambda s: fmt(rs[f"chunk_{kib}k_{s}"]["gbps"])
        L.append(f"| {kib} KiB | {c('sum')} | {c('mean_var')} | {c('map_in_place')} |")
    L.append("")
    same = capped and free and capped["result"] == free["result"]
    L.append(f"Memory cap {cap} MiB on the {nbytes >> 20} MiB file (sum, min, max, mean, var "
             f"in one `stream::fold_chunks` pass, chunks released behind): peak {rep[0] if rep else '?'} MiB, "
             f"oom_kill {rep[1] if rep else '?'}, rc {rep[2] if rep else '?'}, "
             f"{fmt(capped['gbps']) if capped else '?'} GB/s; uncapped "
             f"{fmt(free['gbps'])} GB/s; results bit-identical: {same}. Without releasing: "
             f"peak {rep_keep[0] if rep_keep else '?'} MiB, "
             f"{fmt(capped_keep['gbps']) if capped_keep else '?'} GB/s, results identical: "
             f"{bool(capped_keep and capped_keep['result'] == free['result'])}.")
    print("\n".join(L))
    print("\n<!-- raw: " + json.dumps({"rust": rs, "numpy": npr, "cold": cold}) + " -->")
    if not args.keep:
        os.remove(path)


if __name__ == "__main__":
    main()
