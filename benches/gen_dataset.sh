#!/usr/bin/env bash
# Dataset generation throughput, measured side by side in one run:
#   dd       the disk's sequential write rate: dd from /dev/zero with a final fsync
#   gen      outcore gen --dtype f64 --dist uniform (all threads, through a mapping, fsync)
#   np.save  numpy: np.random.default_rng(seed).random(n), np.save, fsync (one thread)
#   np.mmap  numpy: open_memmap, rng.random(out=block) per 16 Mi elements, flush, fsync
# Each round runs all four in turn, each writing a fresh file into space freed by the
# previous one; the table gives the median and best of the rounds and each median's ratio
# to dd's.
#
# usage: benches/gen_dataset.sh [SIZE_GIB [DIR [ROUNDS]]]     (default: 4 $DATA 3)
# env:   DATA            the default DIR (default: target/bench-data, in the repository)
#        OUTCORE_PYTHON  a python with numpy (default: python3)
set -euo pipefail

size_gib=${1:-4}
dir=${2:-${DATA:-target/bench-data}}
rounds=${3:-3}
python=${OUTCORE_PYTHON:-python3}
bytes=$((size_gib << 30))
n=$((bytes / 8))
cd "$(dirname "$0")/.."

cargo build --release --quiet -p outcore-cli
gen=target/release/outcore
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; rm -f "$dir"/bench-gen-*.tmp "$dir"/bench-gen-*.npy' EXIT

echo "# outcore gen benchmark: ${size_gib} GiB of uniform f64, $rounds rounds, in $dir"
echo "# $(date -u +%FT%TZ) $(nproc) cpus; load before: $(cut -d' ' -f1-3 /proc/loadavg)"

# Warm the disk (and the memory the page cache will use): the first write to never-used
# blocks runs several times slower than later ones.
dd if=/dev/zero of="$dir/bench-gen-warm.tmp" bs=8M count=$((2 * size_gib * 128)) conv=fsync status=none
rm -f "$dir/bench-gen-warm.tmp"

now() { date +%s.%N; }

run_dd() {
    local t0 t1
    t0=$(now)
    dd if=/dev/zero of="$dir/bench-gen-dd.tmp" bs=8M count=$((size_gib * 128)) conv=fsync status=none
    t1=$(now)
    rm -f "$dir/bench-gen-dd.tmp"
    echo "$t1 - $t0" | bc -l
}

run_gen() {
    local t0 t1
    t0=$(now)
    "$gen" gen --dtype f64 --dist uniform --size "${size_gib}GiB" --seed 1 --quiet \
        --out "$dir/bench-gen-gen.npy" >"$tmp/gen.out"
    t1=$(now)
    rm -f "$dir/bench-gen-gen.npy"
    echo "$t1 - $t0" | bc -l
}

cat >"$tmp/np.py" <<'EOF'
import os, sys, time
import numpy as np
mode, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = time.perf_counter()
rng = np.random.default_rng(1)
if mode == "save":
    a = rng.random(n)
    with open(path, "wb") as f:
        np.save(f, a)
        f.flush()
        os.fsync(f.fileno())
else:
    m = np.lib.format.open_memmap(path, mode="w+", dtype="<f8", shape=(n,))
    block = 1 << 24
    for i in range(0, n, block):
        rng.random(out=m[i:i + block])
    m.flush()
    del m
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
print(time.perf_counter() - t0)
EOF

run_np() {
    local t
    t=$("$python" "$tmp/np.py" "$1" "$dir/bench-gen-np.npy" "$n")
    rm -f "$dir/bench-gen-np.npy"
    echo "$t"
}

for r in $(seq "$rounds"); do
    d=$(run_dd)
    g=$(run_gen)
    s=$(run_np save)
    m=$(run_np mmap)
    printf '# round %d: dd %.2f s, gen %.2f s, np.save %.2f s, np.mmap %.2f s\n' "$r" "$d" "$g" "$s" "$m"
    echo "$d $g $s $m" >>"$tmp/times"
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# outcore gen's own report (last round):"
sed 's/^/#   /' "$tmp/gen.out"

"$python" - "$tmp/times" "$bytes" <<'EOF'
import sys
import numpy as np
t = np.loadtxt(sys.argv[1], ndmin=2)
gb = int(sys.argv[2]) / 1e9
names = ["dd (disk, fsync)", "outcore gen (2 threads)", "numpy rng + np.save", "numpy rng + open_memmap"]
med = np.median(t, axis=0)
best = t.min(axis=0)
print(f"| writer | median s | median GB/s | best GB/s | median rate / dd |")
print(f"|---|---|---|---|---|")
for i, name in enumerate(names):
    print(f"| {name} | {med[i]:.2f} | {gb / med[i]:.2f} | {gb / best[i]:.2f} | {med[0] / med[i]:.2f} |")
EOF
