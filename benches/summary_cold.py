#!/usr/bin/env python3
"""The fused summary of a cold file against the fastest single pass over it, and numpy.

    python benches/summary_cold.py [--gib 8] [--cap-mib 2048] [--rounds 5]

Run from the repository root as root (the memory cap needs it). Makes (once) a GIB GiB
`.npy` of normal f64 in $DATA (default target/bench-data) with `outcore gen`, then runs
ROUNDS rounds. In each round every command runs in its own process under
`../shared/tools/memcap CAP_MIB` (the file is at least 4x the cap, so it cannot stay in
the page cache), with the file evicted from the page cache first:

* the single passes: `dd bs=8M` to /dev/null, outcore's `kernels::sum` over the mapping,
  and numpy's `np.load(mmap_mode='r').sum()`; the fastest of the three is the round's
  single-pass time;
* outcore's summary (pages released behind it, as `outcore stats` does): count, NaN count, sum, mean, std, min, max, argmin, argmax and a
  64-bin histogram over [-8, 8], in one fused pass (`stream::describe`);
* numpy doing the same statistics, the best way it can under the cap: one pass over the
  mapping in 16 MiB slices, each slice reduced with numpy's own functions (`isnan().sum`,
  `sum`, `min`, `max`, `argmin`, `argmax`, `histogram`, and mean and M2 merged across slices
  with Chan's formula); numpy's one-call-per-statistic on the whole memmap would read the
  file once per statistic, and `std` would allocate a temporary as large as the file;
* outcore's exact median, p1 and p99 (numpy's linear method), `stream::percentiles`.

It prints each round, then the median and [min, max] over rounds of every time and of
the ratios taken within a round, and the cap's peak. The results are checked: outcore's
summary against its own sum pass (bit for bit) and against numpy (counts, extrema,
indices and histogram exactly, sum, mean and std to 1e-9).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LO, HI, BINS = -8.0, 8.0, 64

NUMPY_SUMMARY = r"""
import json, sys, time
import numpy as np
t = time.perf_counter()
a = np.load(sys.argv[1], mmap_mode="r")
lo, hi, bins = float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
step = 1 << 21
count = len(a); nans = 0; total = 0.0; n = 0; mean = 0.0; m2 = 0.0
mn = mx = None; amin = amax = 0; hist = np.zeros(bins, dtype=np.int64)
for s in range(0, count, step):
    c = a[s:s + step]
    nans += int(np.isnan(c).sum())
    total += float(c.sum())
    cm = float(c.mean()); cm2 = float(((c - cm) ** 2).sum()); k = len(c)
    d = cm - mean; tot = n + k
    mean += d * k / tot; m2 += cm2 + d * d * n * k / tot; n = tot
    i, j = int(c.argmin()), int(c.argmax())
    if mn is None or c[i] < mn: mn, amin = float(c[i]), s + i
    if mx is None or c[j] > mx: mx, amax = float(c[j]), s + j
    hist += np.histogram(c, bins, (lo, hi))[0]
print(json.dumps({"secs": time.perf_counter() - t, "count": count, "nan_count": nans,
                  "sum": total, "mean": mean, "std": (m2 / n) ** 0.5, "min": mn, "max": mx,
                  "argmin": amin, "argmax": amax, "hist": hist.tolist()}))
"""

NUMPY_SUM = r"""
import json, sys, time
import numpy as np
t = time.perf_counter()
s = float(np.load(sys.argv[1], mmap_mode="r").sum())
print(json.dumps({"secs": time.perf_counter() - t, "sum": s}))
"""


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def bench_binary():
    out = subprocess.run(
        ["cargo", "bench", "-p", "outcore-bench", "--bench", "summary", "--no-run"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stderr
    m = re.search(r"\((target/release/deps/summary-[0-9a-f]+)\)", out)
    if not m:
        sys.exit("could not find the summary bench binary in:\n" + out)
    return os.path.join(ROOT, m.group(1))


def evict(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def capped(memcap, cap, cmd):
    """Runs cmd under the cap; returns (wall seconds, stdout, peak MiB)."""
    with tempfile.NamedTemporaryFile("r", suffix=".memcap") as rep:
        env = dict(os.environ, MEMCAP_REPORT=rep.name)
        t = time.perf_counter()
        p = subprocess.run([memcap, str(cap), "--"] + cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t
        if p.returncode != 0:
            sys.exit(f"{cmd} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        line = rep.read()
    peak = int(re.search(r"max_usage_mb=(\d+)", line).group(1))
    oom = re.search(r"oom_kill=(\d+)", line)
    if oom and int(oom.group(1)) > 0:
        sys.exit(f"{cmd} was OOM-killed under the cap")
    return wall, p.stdout, peak


def check(oc, npy, summary_sum):
    assert oc["sum"] == summary_sum, ("fused sum != kernels::sum", oc["sum"], summary_sum)
    for k in ["count", "nan_count", "min", "max", "argmin", "argmax", "hist"]:
        assert oc[k] == npy[k], (k, oc[k], npy[k])
    for k in ["sum", "mean", "std"]:
        assert abs(oc[k] - npy[k]) <= 1e-9 * max(1.0, abs(npy[k])), (k, oc[k], npy[k])


def med(v):
    return f"{statistics.median(v):.2f} [{min(v):.2f}, {max(v):.2f}]"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gib", type=int, default=8)
    ap.add_argument("--cap-mib", type=int, default=2048)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    py = os.environ.get("OUTCORE_PYTHON", sys.executable)
    memcap = os.environ.get("MEMCAP", os.path.join(ROOT, "..", "shared", "tools", "memcap"))
    data = os.environ.get("DATA", os.path.join(ROOT, "target", "bench-data"))
    os.makedirs(data, exist_ok=True)
    if a.gib * 1024 < 4 * a.cap_mib:
        sys.exit("the file must be at least 4x the cap")

    sh(["cargo", "build", "--release", "-p", "outcore-cli"], cwd=ROOT, capture_output=True)
    binary = bench_binary()
    path = os.path.join(data, f"summary-f64-{a.gib}g.npy")
    if not os.path.exists(path):
        sh([os.path.join(ROOT, "target", "release", "outcore"), "gen", "--dtype", "f64",
            "--dist", "normal", "--size", f"{a.gib}GiB", "--out", path, "--quiet"])
    print(f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} load {os.getloadavg()}")
    print(f"# {path}: {os.path.getsize(path) / 2**30:.1f} GiB of f64, cap {a.cap_mib} MiB, "
          f"every command cold, {a.rounds} rounds")

    cmds = {
        "dd bs=8M": ["dd", f"if={path}", "of=/dev/null", "bs=8M", "status=none"],
        "outcore kernels::sum": [binary, "sum", path],
        "numpy .sum() (mmap)": [py, "-c", NUMPY_SUM, path],
        "outcore summary": [binary, "describe", path, str(LO), str(HI)],
        "numpy summary (one pass)": [py, "-c", NUMPY_SUMMARY, path, str(LO), str(HI), str(BINS)],
        "outcore median+p1+p99": [binary, "quantiles", path],
    }
    times = {k: [] for k in cmds}
    peaks = {k: [] for k in cmds}
    ratios = {"summary / fastest pass": [], "quantiles / fastest pass": [],
              "numpy summary / outcore summary": [], "fastest pass GB/s": []}
    size = os.path.getsize(path)
    for r in range(a.rounds):
        order = list(cmds) if r % 2 == 0 else list(reversed(cmds))
        out = {}
        for k in order:
            evict(path)
            wall, stdout, peak = capped(memcap, a.cap_mib, cmds[k])
            times[k].append(wall)
            peaks[k].append(peak)
            out[k] = json.loads(stdout) if stdout.strip().startswith("{") else None
        check(out["outcore summary"], out["numpy summary (one pass)"], out["outcore kernels::sum"]["sum"])
        fastest = min(times[k][-1] for k in ["dd bs=8M", "outcore kernels::sum", "numpy .sum() (mmap)"])
        ratios["summary / fastest pass"].append(times["outcore summary"][-1] / fastest)
        ratios["quantiles / fastest pass"].append(times["outcore median+p1+p99"][-1] / fastest)
        ratios["numpy summary / outcore summary"].append(
            times["numpy summary (one pass)"][-1] / times["outcore summary"][-1])
        ratios["fastest pass GB/s"].append(size / fastest / 1e9)
        print(f"round {r + 1}: " + ", ".join(f"{k} {times[k][-1]:.2f} s" for k in cmds), flush=True)

    print(f"\n| command (cold, under a {a.cap_mib} MiB cap) | seconds, median [min, max] | peak MiB (max) |")
    print("|---|---|---|")
    for k in cmds:
        print(f"| {k} | {med(times[k])} | {max(peaks[k])} |")
    print("\n| ratio, per round | median [min, max] |")
    print("|---|---|")
    for k, v in ratios.items():
        print(f"| {k} | {med(v)} |")
    print(f"# done {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} load {os.getloadavg()}")


if __name__ == "__main__":
    main()
