"""Checks a sorted u64 file for benches/external_sort.sh, independently of outcore.

    python benches/check_u64.py FILE npy|raw

Prints "COUNT SUM XOR SORTED": the element count, the sum (mod 2^64) and the xor of
splitmix64's finaliser applied to each element (an order-independent checksum of the
multiset: equal for a permutation), and "yes" if the elements are in non-decreasing order.
Reads the file with read() in 64 MiB blocks, hashing 256 KiB at a time, and drops each
block's pages from the page cache behind it, so that it needs little memory at any size.
"""

import os
import sys

import numpy as np

path, kind = sys.argv[1], sys.argv[2]
BLOCK, SUB = 1 << 23, 1 << 15  # elements
MASK = (1 << 64) - 1
C1, C2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
S30, S27, S31 = np.uint64(30), np.uint64(27), np.uint64(31)

with open(path, "rb", buffering=0) as f:
    if kind == "npy":
        version = np.lib.format.read_magic(f)
        read_header = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }[version]
        shape, _fortran, dtype = read_header(f)
        assert dtype == np.dtype("<u8") and len(shape) == 1, (dtype, shape)
        n = shape[0]
    elif kind == "raw":
        n = os.fstat(f.fileno()).st_size // 8
    else:
        sys.exit(f"unknown kind {kind!r}: npy or raw")
    off = f.tell()
    size = os.fstat(f.fileno()).st_size
    assert size == off + 8 * n, f"{path}: {size} bytes, expected {off} + 8 * {n}"
    buf = np.empty(BLOCK, dtype="<u8")
    tmp = np.empty(BLOCK, dtype="<u8")
    total, xor, ordered, last, done = 0, 0, True, None, 0
    while done < n:
        k = min(BLOCK, n - done)
        x, t = buf[:k], tmp[:k]
        view, got = memoryview(x).cast("B"), 0
        while got < 8 * k:
            r = f.readinto(view[got:])
            assert r, f"{path}: short read"
            got += r
        for i in range(0, k, SUB):
            y, u = x[i : i + SUB], t[i : i + SUB]
            if ordered:
                ordered = bool(np.all(y[1:] >= y[:-1])) and (last is None or y[0] >= last)
            last = y[-1]
            # splitmix64's finaliser, in place (uint64 arithmetic wraps)
            np.right_shift(y, S30, out=u)
            np.bitwise_xor(y, u, out=y)
            np.multiply(y, C1, out=y)
            np.right_shift(y, S27, out=u)
            np.bitwise_xor(y, u, out=y)
            np.multiply(y, C2, out=y)
            np.right_shift(y, S31, out=u)
            np.bitwise_xor(y, u, out=y)
            total = (total + int(np.add.reduce(y, dtype=np.uint64))) & MASK
            xor ^= int(np.bitwise_xor.reduce(y))
        # Drop what was read (from 2 MiB before the block: large folios straddle its start).
        start = max(0, off + 8 * done - (2 << 20))
        os.posix_fadvise(f.fileno(), start, off + 8 * (done + k) - start, os.POSIX_FADV_DONTNEED)
        done += k

print(n, format(total, "016x"), format(xor, "016x"), "yes" if ordered else "no")
